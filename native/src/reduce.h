// Element types and reduction functions of the collectives.
//
// float32, float64 and int32 sum with Gloo's own functions (gloo/math.h). Gloo has no bfloat16, and its
// float16 rounding is its own: both 16-bit formats are reduced by the functions below, which widen
// each pair to float32, combine, and round once to nearest even (half.h). float32 holds the exact
// sum or extreme of two 16-bit values closely enough that this single rounding is the correctly
// rounded result (24 >= 2 * 11 + 2 significand bits), so a reduction of two ranks is exact and
// every further hop of a ring rounds once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "gloo/math.h"
#include "convert.h"
#include "half.h"

namespace mixprec {

enum class DType { Float32, Float64, Int32, Float16, BFloat16 };
enum class ReduceOp { Sum, Avg, Max, Min };

inline DType parseDType(const std::string& name) {
  if (name == "float32") return DType::Float32;
  if (name == "float64") return DType::Float64;
  if (name == "int32") return DType::Int32;
  if (name == "float16") return DType::Float16;
  if (name == "bfloat16") return DType::BFloat16;
  throw std::invalid_argument("unsupported dtype '" + name + "' (float32, float16, bfloat16, float64, int32)");
}

inline ReduceOp parseReduceOp(const std::string& name) {
  if (name == "sum") return ReduceOp::Sum;
  if (name == "avg") return ReduceOp::Avg;
  if (name == "max") return ReduceOp::Max;
  if (name == "min") return ReduceOp::Min;
  throw std::invalid_argument("unknown reduce op '" + name + "' (sum, avg, max, min)");
}

inline size_t elementSize(DType t) {
  switch (t) {
    case DType::Float64: return 8;
    case DType::Float32:
    case DType::Int32: return 4;
    default: return 2;
  }
}

struct HalfFormat {
  static float widen(uint16_t v) { return halfToFloat(v); }
  static uint16_t narrow(float f) { return floatToHalf(f); }
};

struct BFloat16Format {
  static float widen(uint16_t v) { return bfloat16ToFloat(v); }
  static uint16_t narrow(float f) { return floatToBfloat16(f); }
};

template <typename Format, typename Combine>
void combine16(void* c, const void* a, const void* b, size_t n, Combine combine) {
  auto* out = static_cast<uint16_t*>(c);
  const auto* x = static_cast<const uint16_t*>(a);
  const auto* y = static_cast<const uint16_t*>(b);
  for (size_t i = 0; i < n; i++) out[i] = Format::narrow(combine(Format::widen(x[i]), Format::widen(y[i])));
}

template <typename Format>
void sum16(void* c, const void* a, const void* b, size_t n) {
  combine16<Format>(c, a, b, n, [](float p, float q) { return p + q; });
}

// max and min propagate NaN (as torch.maximum / torch.minimum), so the result does not depend on
// which rank's value is the first operand at a step of the ring (std::max's would).
template <typename T>
T nanMax(T p, T q) {
  return p != p ? p : q != q ? q : (p < q ? q : p);
}

template <typename T>
T nanMin(T p, T q) {
  return p != p ? p : q != q ? q : (q < p ? q : p);
}

template <typename Format>
void max16(void* c, const void* a, const void* b, size_t n) {
  combine16<Format>(c, a, b, n, nanMax<float>);
}

template <typename Format>
void min16(void* c, const void* a, const void* b, size_t n) {
  combine16<Format>(c, a, b, n, nanMin<float>);
}

template <typename T, T (*Combine)(T, T)>
void combineFloat(void* c, const void* a, const void* b, size_t n) {
  auto* out = static_cast<T*>(c);
  const auto* x = static_cast<const T*>(a);
  const auto* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; i++) out[i] = Combine(x[i], y[i]);
}

using ReduceFn = void (*)(void*, const void*, const void*, size_t);

// Gloo's sum; Gloo's max and min for integers, NaN-propagating ones for floats.
template <typename T>
ReduceFn nativeReduce(ReduceOp op) {
  if constexpr (std::is_floating_point_v<T>) {
    if (op == ReduceOp::Max) return &combineFloat<T, nanMax<T>>;
    if (op == ReduceOp::Min) return &combineFloat<T, nanMin<T>>;
  } else {
    if (op == ReduceOp::Max) return &gloo::max<T>;
    if (op == ReduceOp::Min) return &gloo::min<T>;
  }
  return &gloo::sum<T>;
}

template <typename Format>
ReduceFn halfReduce(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return &max16<Format>;
    case ReduceOp::Min: return &min16<Format>;
    default: return std::is_same_v<Format, HalfFormat> ? &sumHalves : &sum16<Format>;  // float16: F16C where the CPU has it
  }
}

// The function that combines two buffers of `dtype` for `op` (avg sums; the division follows).
inline ReduceFn reduceFunction(DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::Float32: return nativeReduce<float>(op);
    case DType::Float64: return nativeReduce<double>(op);
    case DType::Int32: return nativeReduce<int32_t>(op);
    case DType::Float16: return halfReduce<HalfFormat>(op);
    case DType::BFloat16: return halfReduce<BFloat16Format>(op);
  }
  return nullptr;
}

// avg: the sum divided by the number of ranks, in the element's precision (16-bit: in float32,
// rounded once).
inline void divideInPlace(void* data, size_t n, DType dtype, int divisor) {
  switch (dtype) {
    case DType::Float32: {
      auto* p = static_cast<float*>(data);
      for (size_t i = 0; i < n; i++) p[i] /= static_cast<float>(divisor);
      return;
    }
    case DType::Float64: {
      auto* p = static_cast<double*>(data);
      for (size_t i = 0; i < n; i++) p[i] /= divisor;
      return;
    }
    case DType::Float16: {
      auto* p = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < n; i++) p[i] = floatToHalf(halfToFloat(p[i]) / static_cast<float>(divisor));
      return;
    }
    case DType::BFloat16: {
      auto* p = static_cast<uint16_t*>(data);
      for (size_t i = 0; i < n; i++) p[i] = floatToBfloat16(bfloat16ToFloat(p[i]) / static_cast<float>(divisor));
      return;
    }
    case DType::Int32: throw std::invalid_argument("op 'avg' needs a floating dtype, got int32 (use 'sum')");
  }
}

}  // namespace mixprec
