/**
 * float16 / bfloat16 <-> float32 in registers, scalar and 4 lanes at a time (i32x4 lanes holding
 * 16-bit patterns in their low half). Narrowing rounds to nearest, ties to even, with float16
 * subnormals, overflow to ±Inf, -0 kept and NaN kept NaN (quieted, payload kept as the reference
 * codec does: float16 `sign | 0x7e00 | mant >>> 13`, bfloat16 `bits >>> 16 | 0x40`). Widening is
 * exact. Bit for bit the same as src/dtype/convert.ts.
 *
 * Not re-exported by assembly/index.ts: everything here is @inline and module-internal, shared by
 * the kernel files (the GEMM/convolution kernels may use it too).
 */

/** Storage formats of the floating dtypes the native kernels handle. */
export const F32: i32 = 0;
export const F16: i32 = 1;
export const BF16: i32 = 2;

/** log2 of the element size of a format. */
// @ts-ignore: decorator
@inline export function shiftOf(fmt: i32): usize {
  return fmt == F32 ? 2 : 1;
}

/* ------------------------------------------------------------------ scalar */

/** float16 bits -> float32 (exact; subnormals, Inf and NaN payloads kept). */
// @ts-ignore: decorator
@inline export function f16ToF32(h: u32): f32 {
  const m = (h & 0x7fff) << 13;
  let r: u32;
  if ((h & 0x7c00) == 0x7c00) r = m | 0x7f800000;
  else r = reinterpret<u32>(reinterpret<f32>(m) * reinterpret<f32>(0x77800000)); // * 2^112
  return reinterpret<f32>(r | ((h & 0x8000) << 16));
}

// @ts-ignore: decorator
@inline export function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

/** float32 -> float16 bits, round to nearest even, overflow to Inf, NaN kept (quiet). */
// @ts-ignore: decorator
@inline export function f32ToF16(v: f32): u32 {
  const bits = reinterpret<u32>(v);
  const sign = (bits >>> 16) & 0x8000;
  const x = bits & 0x7fffffff;
  if (x > 0x7f800000) return sign | 0x7e00 | ((x >>> 13) & 0x3ff);
  if (x >= 0x477ff000) return sign | 0x7c00;
  if (x < 0x38800000) {
    // subnormal / zero: the FPU's own round-to-nearest-even at ulp 2^-24
    return sign | (reinterpret<u32>(reinterpret<f32>(x) + 0.5) - 0x3f000000);
  }
  return sign | ((x + 0xc8000fff + ((x >>> 13) & 1)) >>> 13);
}

/** float32 -> bfloat16 bits, round to nearest even, NaN kept (quiet). */
// @ts-ignore: decorator
@inline export function f32ToBf16(v: f32): u32 {
  const x = reinterpret<u32>(v);
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** One element of `fmt` at `p`, widened to float32. */
// @ts-ignore: decorator
@inline export function load1(fmt: i32, p: usize): f32 {
  if (fmt == F32) return load<f32>(p);
  if (fmt == F16) return f16ToF32(<u32>load<u16>(p));
  return bf16ToF32(<u32>load<u16>(p));
}

/** Round a float32 into `fmt` and store it at `p`. */
// @ts-ignore: decorator
@inline export function store1(fmt: i32, p: usize, v: f32): void {
  if (fmt == F32) store<f32>(p, v);
  else if (fmt == F16) store<u16>(p, <u16>f32ToF16(v));
  else store<u16>(p, <u16>f32ToBf16(v));
}

/** The storage bits of a float32 value in `fmt` (float32: its own bits). */
// @ts-ignore: decorator
@inline export function encode(fmt: i32, v: f32): u32 {
  if (fmt == F32) return reinterpret<u32>(v);
  if (fmt == F16) return f32ToF16(v);
  return f32ToBf16(v);
}

/* ------------------------------------------------------------------ 4 lanes */

/** i32x4 of float16 patterns (low halves) -> f32x4. */
// @ts-ignore: decorator
@inline export function f16x4ToF32(h: v128): v128 {
  const o0 = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const e = v128.and(o0, i32x4.splat(0x7c00 << 13));
  let o = i32x4.add(o0, i32x4.splat((127 - 15) << 23));
  const special = i32x4.eq(e, i32x4.splat(0x7c00 << 13));
  o = i32x4.add(o, v128.and(special, i32x4.splat((128 - 16) << 23)));
  const sub = f32x4.sub(i32x4.add(o, i32x4.splat(1 << 23)), i32x4.splat(113 << 23));
  o = v128.bitselect(sub, o, i32x4.eq(e, i32x4.splat(0)));
  return v128.or(o, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** f32x4 -> i32x4 of float16 patterns (low halves), round to nearest even. */
// @ts-ignore: decorator
@inline export function f32x4ToF16(x: v128): v128 {
  const f = v128.and(x, i32x4.splat(0x7fffffff));
  const sign = i32x4.shr_u(v128.xor(x, f), 16);
  // normal range: rebias, round to nearest even on the 13 dropped bits (a carry into the exponent gives Inf)
  const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(f, i32x4.splat(((15 - 127) << 23) + 0xfff)), odd), 13);
  // below the smallest normal: let the float adder round (adding 0.5 aligns the subnormal grid)
  const subnormal = i32x4.sub(f32x4.add(f, i32x4.splat(126 << 23)), i32x4.splat(126 << 23));
  // >= 65536 (or Inf, NaN): Inf, or the quieted NaN with its payload
  const nan = i32x4.gt_s(f, i32x4.splat(0x7f800000));
  const big = v128.bitselect(
    v128.or(i32x4.splat(0x7e00), v128.and(i32x4.shr_u(f, 13), i32x4.splat(0x3ff))),
    i32x4.splat(0x7c00),
    nan,
  );
  let o = v128.bitselect(subnormal, normal, i32x4.lt_s(f, i32x4.splat(113 << 23)));
  o = v128.bitselect(big, o, i32x4.ge_s(f, i32x4.splat(143 << 23)));
  return v128.or(o, sign);
}

/** f32x4 -> i32x4 of bfloat16 patterns (low halves), round to nearest even, NaN quieted. */
// @ts-ignore: decorator
@inline export function f32x4ToBf16(x: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(x, 16), i32x4.splat(1));
  const r = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), lsb), 16);
  const nan = i32x4.gt_s(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  return v128.bitselect(v128.or(i32x4.shr_u(x, 16), i32x4.splat(0x40)), r, nan);
}

/** Widen the low / high four 16-bit patterns of `raw` (8 lanes of `fmt`) to f32x4. */
// @ts-ignore: decorator
@inline export function widenLo(fmt: i32, raw: v128): v128 {
  const h = i32x4.extend_low_i16x8_u(raw);
  return fmt == F16 ? f16x4ToF32(h) : i32x4.shl(h, 16);
}

// @ts-ignore: decorator
@inline export function widenHi(fmt: i32, raw: v128): v128 {
  const h = i32x4.extend_high_i16x8_u(raw);
  return fmt == F16 ? f16x4ToF32(h) : i32x4.shl(h, 16);
}

/** Two f32x4 rounded into 8 lanes of a 16-bit `fmt`. */
// @ts-ignore: decorator
@inline export function narrow8(fmt: i32, lo: v128, hi: v128): v128 {
  if (fmt == F16) return i16x8.narrow_i32x4_u(f32x4ToF16(lo), f32x4ToF16(hi));
  return i16x8.narrow_i32x4_u(f32x4ToBf16(lo), f32x4ToBf16(hi));
}

/** Elements 0..3 and 4..7 of 8 elements of `fmt` at `p` as two f32x4. */
// @ts-ignore: decorator
@inline export function load8lo(fmt: i32, p: usize): v128 {
  if (fmt == F32) return v128.load(p);
  return widenLo(fmt, v128.load(p));
}

// @ts-ignore: decorator
@inline export function load8hi(fmt: i32, p: usize): v128 {
  if (fmt == F32) return v128.load(p, 16);
  return widenHi(fmt, v128.load(p));
}

/** Store 8 elements (two f32x4) at `p`, rounding into `fmt`. */
// @ts-ignore: decorator
@inline export function store8(fmt: i32, p: usize, lo: v128, hi: v128): void {
  if (fmt == F32) {
    v128.store(p, lo);
    v128.store(p, hi, 16);
  } else v128.store(p, narrow8(fmt, lo, hi));
}
