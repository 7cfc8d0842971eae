// Array conversions between float32 and the 16-bit formats, and the float16 sum, for DDP's
// compressed buckets. On x86-64 CPUs with F16C the float16 ones use its instructions (8 values at a
// time, round to nearest even, subnormals, Inf and NaN as half.h; a signalling NaN comes back
// quiet), chosen at run time; elsewhere the scalar functions of half.h. The bfloat16 loops are
// branch-free so that the compiler vectorises them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "half.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MIXPREC_F16C 1
#endif

namespace mixprec {

#ifdef MIXPREC_F16C
inline bool hasF16C() {
  static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return yes;
}

__attribute__((target("avx,f16c"))) inline void floatsToHalvesF16C(const float* in, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; i++) out[i] = floatToHalf(in[i]);
}

__attribute__((target("avx,f16c"))) inline void halvesToFloatsF16C(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; i++) out[i] = halfToFloat(in[i]);
}

__attribute__((target("avx,f16c"))) inline void sumHalvesF16C(uint16_t* c, const uint16_t* a, const uint16_t* b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256 y = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(c + i), _mm256_cvtps_ph(_mm256_add_ps(x, y), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; i++) c[i] = floatToHalf(halfToFloat(a[i]) + halfToFloat(b[i]));
}
#endif

inline void floatsToHalves(const float* in, uint16_t* out, size_t n) {
#ifdef MIXPREC_F16C
  if (hasF16C()) return floatsToHalvesF16C(in, out, n);
#endif
  for (size_t i = 0; i < n; i++) out[i] = floatToHalf(in[i]);
}

inline void halvesToFloats(const uint16_t* in, float* out, size_t n) {
#ifdef MIXPREC_F16C
  if (hasF16C()) return halvesToFloatsF16C(in, out, n);
#endif
  for (size_t i = 0; i < n; i++) out[i] = halfToFloat(in[i]);
}

// c = a + b in float32, rounded once to float16 (Gloo's reduction signature).
inline void sumHalves(void* c, const void* a, const void* b, size_t n) {
  auto* out = static_cast<uint16_t*>(c);
  const auto* x = static_cast<const uint16_t*>(a);
  const auto* y = static_cast<const uint16_t*>(b);
#ifdef MIXPREC_F16C
  if (hasF16C()) return sumHalvesF16C(out, x, y, n);
#endif
  for (size_t i = 0; i < n; i++) out[i] = floatToHalf(halfToFloat(x[i]) + halfToFloat(y[i]));
}

inline void floatsToBfloat16(const float* in, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const uint32_t x = floatBits(in[i]);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t quietNaN = (x >> 16) | 0x40u;
    out[i] = static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? quietNaN : rounded);
  }
}

inline void bfloat16ToFloats(const uint16_t* in, float* out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = bitsFloat(static_cast<uint32_t>(in[i]) << 16);
}

}  // namespace mixprec
