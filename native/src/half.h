// float16 / bfloat16 <-> float32, bit for bit as src/dtype/convert.ts: round to nearest even,
// float16 subnormals, overflow to +-Inf, -0 kept, NaN kept NaN (quieted). Widening is exact.
#pragma once

#include <cstdint>
#include <cstring>

namespace mixprec {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t floatToHalf(float f) {
  const uint32_t x = floatBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xffu;
  const uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | (mant == 0 ? 0x7c00u : 0x7e00u | (mant >> 13)));
  const int e = static_cast<int>(exp) - 112;  // rebias 127 -> 15
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    const int shift = 14 - e;
    if (shift > 24) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    const uint32_t sig = mant | 0x800000u;
    const uint32_t half = 1u << (shift - 1);
    const uint32_t rem = sig & ((1u << shift) - 1);
    uint32_t r = sig >> shift;
    if (rem > half || (rem == half && (r & 1u))) r++;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;  // a carry into the exponent gives Inf
  return static_cast<uint16_t>(sign | r);
}

inline float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bitsFloat(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return bitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
  const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
  return sign ? -v : v;
}

inline uint16_t floatToBfloat16(float f) {
  const uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN: quiet
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float bfloat16ToFloat(uint16_t b) { return bitsFloat(static_cast<uint32_t>(b) << 16); }

}  // namespace mixprec
