/**
 * float16 / bfloat16 <-> float32 in registers, scalar and 4 lanes at a time (i32x4 lanes holding
 * 16-bit patterns in their low half). Narrowing rounds to nearest, ties to even, with float16
 * subnormals, overflow to ±Inf, -0 kept and NaN kept NaN (quieted, payload kept as the reference
 * codec does: float16 `sign | 0x7e00 | mant >>> 13`, bfloat16 `bits >>> 16 | 0x40`). Widening is
 * exact. Bit for bit the same as src/dtype/convert.ts.
 *
 * Not re-exported by assembly/index.ts: everything here is @inline and module-internal, shared by
 * the kernel files (the GEMM/convolution kernels may use it too). The SIMD helpers read their
 * constants from a table in static data (`kv`, below): use it for splat constants in hot loops too.
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

/* ------------------------------------------------------------------ SIMD constants */

// A v128.const inside a loop costs V8 (x64, Node 20) a materialisation through general-purpose
// registers at every use (movq / pinsrq: 4-5 instructions); TurboFan does not hoist it out of the
// loop. A load from a constant address is one instruction (often folded into its user). So the
// SIMD helpers read their splat constants from this table in the module's static data (below
// __heap_base, which the runtime's allocator starts from; every instance writes the same bytes):
// float32 -> float16 casts ran 1.5x faster (bench: 196,608 elements, 117 -> 77 us on one thread).

const KTAB: usize = memory.data<u32>([
  0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, //  0 float32 magnitude
  0x07800000, 0x07800000, 0x07800000, 0x07800000, //  1 15 << 23: float32 exponent + 15
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, //  2 float32 exponent field / +Inf
  0x40000000, 0x40000000, 0x40000000, 0x40000000, //  3 2.0f: the float16 subnormal range's rounding bias
  0x77800000, 0x77800000, 0x77800000, 0x77800000, //  4 2^112
  0x08800000, 0x08800000, 0x08800000, 0x08800000, //  5 2^-110
  0x00007c00, 0x00007c00, 0x00007c00, 0x00007c00, //  6 float16 exponent field
  0x00000fff, 0x00000fff, 0x00000fff, 0x00000fff, //  7
  0x00007fff, 0x00007fff, 0x00007fff, 0x00007fff, //  8 float16 magnitude / bfloat16 rounding
  0x00008000, 0x00008000, 0x00008000, 0x00008000, //  9 float16 sign (unused)
  0x38000000, 0x38000000, 0x38000000, 0x38000000, // 10 112 << 23: exponent rebias 15 -> 127
  0x0f800000, 0x0f800000, 0x0f800000, 0x0f800000, // 11 0x7c00 << 13
  0x00800000, 0x00800000, 0x00800000, 0x00800000, // 12 1 << 23
  0x38800000, 0x38800000, 0x38800000, 0x38800000, // 13 113 << 23
  0x00000001, 0x00000001, 0x00000001, 0x00000001, // 14
  0x00000040, 0x00000040, 0x00000040, 0x00000040, // 15 bfloat16 quiet bit
  0x00007e00, 0x00007e00, 0x00007e00, 0x00007e00, // 16 float16 quiet NaN
  0x000003ff, 0x000003ff, 0x000003ff, 0x000003ff, // 17 float16 mantissa
  0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff, // 18 i16x8: 16-bit magnitude
  0x7c007c00, 0x7c007c00, 0x7c007c00, 0x7c007c00, // 19 i16x8: float16 +Inf
  0x7f807f80, 0x7f807f80, 0x7f807f80, 0x7f807f80, // 20 i16x8: bfloat16 +Inf
  0x80000000, 0x80000000, 0x80000000, 0x80000000, // 21 float32 sign
  0x80008000, 0x80008000, 0x80008000, 0x80008000, // 22 i16x8: 16-bit sign (-0)
  0x8fffe000, 0x8fffe000, 0x8fffe000, 0x8fffe000, // 23 a sign-extended float16 pattern << 13 -> float32 bits of value * 2^-112
  0x0fffe000, 0x0fffe000, 0x0fffe000, 0x0fffe000, // 24 float16 exponent and mantissa << 13
  0x8fff8fff, 0x8fff8fff, 0x8fff8fff, 0x8fff8fff, // 25 i16x8: sign and a float16's bits 14..3 after >> 3
  0x38003800, 0x38003800, 0x38003800, 0x38003800, // 26 i16x8: 112 << 7, the exponent rebias in a float32's high half
  0xff80ff80, 0xff80ff80, 0xff80ff80, 0xff80ff80, // 27 i16x8: a float32's sign and exponent (high half)
  0xf7fef7fe, 0xf7fef7fe, 0xf7fef7fe, 0xf7fef7fe, // 28 i16x8: float16 65504 (the largest finite), << 1
], 16);

export const K_ABS32: usize = 0;
export const K_EXP15: usize = 1;
export const K_EXP32: usize = 2;
export const K_TWO: usize = 3;
export const K_2P112: usize = 4;
export const K_2M110: usize = 5;
export const K_EXP16: usize = 6;
export const K_FFF: usize = 7;
export const K_7FFF: usize = 8;
export const K_REBIAS: usize = 10;
export const K_INF16W: usize = 11;
export const K_ONE_E: usize = 12;
export const K_113: usize = 13;
export const K_ONE: usize = 14;
export const K_QBF16: usize = 15;
export const K_QNAN16: usize = 16;
export const K_MANT16: usize = 17;
export const K_ABS16X8: usize = 18;
export const K_INF16X8: usize = 19;
export const K_INFBF16X8: usize = 20;
export const K_SIGN32: usize = 21;
export const K_SIGN16X8: usize = 22;
export const K_F16SCALED: usize = 23;
export const K_MAG13: usize = 24;
export const K_SIGN_E8X8: usize = 25;
export const K_REBIAS16X8: usize = 26;
export const K_FF80X8: usize = 27;
export const K_MAXFINITE2X8: usize = 28;

/** Constant `i` of the table (see the K_* indices). */
// @ts-ignore: decorator
@inline export function kv(i: usize): v128 {
  return v128.load(KTAB + (i << 4));
}

/* ------------------------------------------------------------------ 4 lanes */

/**
 * i32x4 of float16 patterns, sign-extended to 32 bits -> f32x4 (exact). Integer operations and one
 * subtraction of normal floats: the exponent rebiased (Inf / NaN to 255, payload kept), and a
 * subnormal's value computed as 2^-14 (1.m) - 2^-14. (Scaling the pattern as a float32 by 2^112 in
 * one multiply is fewer instructions, but a float16 subnormal is a float32 subnormal there, which
 * x86 CPUs multiply in microcode: a cast with 3% subnormal inputs ran 2x slower on AMD Zen.)
 */
// @ts-ignore: decorator
@inline export function f16sx4ToF32(hs: v128): v128 {
  const w = i32x4.shl(hs, 13); // sign at bit 31, exponent and mantissa at bits 27..13
  const e = v128.and(w, kv(K_INF16W));
  let o = i32x4.add(v128.and(w, kv(K_MAG13)), kv(K_REBIAS));
  o = i32x4.add(o, v128.and(i32x4.eq(e, kv(K_INF16W)), kv(K_REBIAS)));
  o = v128.bitselect(f32x4.sub(i32x4.add(o, kv(K_ONE_E)), kv(K_113)), o, i32x4.eq(e, i32x4.splat(0)));
  return v128.or(o, v128.and(w, kv(K_SIGN32)));
}

/** i32x4 of float16 patterns (low halves, zero-extended) -> f32x4 (exact). */
// @ts-ignore: decorator
@inline export function f16x4ToF32(h: v128): v128 {
  // move the sign from bit 15 to bit 31 (a sign extension), then as above
  return f16sx4ToF32(i32x4.shr_s(i32x4.shl(h, 16), 16));
}

/**
 * f32x4 -> i32x4 of float16 patterns (low halves), round to nearest even. The float adder rounds:
 * 4|x| (|x| >= 65536 has overflowed to Inf in the first product) plus 2^(e + 15), e the exponent
 * of |x| (at least -14), leaves exactly the float16 mantissa above the sum's 13 dropped bits,
 * so the pattern is the sum's exponent (mod 32) and low 12 bits (a carry gives the next exponent,
 * 65520 and up give Inf); below 2^-14 the bias 2.0 aligns the subnormal grid.
 */
// @ts-ignore: decorator
@inline export function f32x4ToF16(x: v128): v128 {
  const abs = v128.and(x, kv(K_ABS32));
  const sign = i32x4.shr_u(v128.xor(x, abs), 16);
  const bias = i32x4.max_s(v128.and(i32x4.add(abs, kv(K_EXP15)), kv(K_EXP32)), kv(K_TWO));
  const f = f32x4.add(f32x4.mul(f32x4.mul(abs, kv(K_2P112)), kv(K_2M110)), bias);
  let o = i32x4.add(v128.and(i32x4.shr_u(f, 13), kv(K_EXP16)), v128.and(f, kv(K_FFF)));
  const nan = i32x4.gt_s(abs, kv(K_EXP32));
  if (v128.any_true(nan)) {
    // the quieted NaN with its payload's top bits
    o = v128.bitselect(v128.or(kv(K_QNAN16), v128.and(i32x4.shr_u(abs, 13), kv(K_MANT16))), o, nan);
  }
  return v128.or(o, sign);
}

/** f32x4 -> i32x4 of bfloat16 patterns (low halves), round to nearest even, NaN quieted. */
// @ts-ignore: decorator
@inline export function f32x4ToBf16(x: v128): v128 {
  const lsb = v128.and(i32x4.shr_u(x, 16), kv(K_ONE));
  let r = i32x4.shr_u(i32x4.add(i32x4.add(x, kv(K_7FFF)), lsb), 16);
  const nan = i32x4.gt_s(v128.and(x, kv(K_ABS32)), kv(K_EXP32));
  if (v128.any_true(nan)) r = v128.bitselect(v128.or(i32x4.shr_u(x, 16), kv(K_QBF16)), r, nan);
  return r;
}

/** Widen the low / high four 16-bit patterns of `raw` (8 lanes of `fmt`) to f32x4. */
// @ts-ignore: decorator
@inline export function widenLo(fmt: i32, raw: v128): v128 {
  if (fmt == F16) return f16sx4ToF32(i32x4.extend_low_i16x8_s(raw));
  return i32x4.shl(i32x4.extend_low_i16x8_u(raw), 16);
}

// @ts-ignore: decorator
@inline export function widenHi(fmt: i32, raw: v128): v128 {
  if (fmt == F16) return f16sx4ToF32(i32x4.extend_high_i16x8_s(raw));
  return i32x4.shl(i32x4.extend_high_i16x8_u(raw), 16);
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

/* ------------------------------------------------------------------ 8 float16 lanes, finite values */

// Widening 8 float16s at once without leaving their 16-bit lanes. A normal float16 h (sign s,
// magnitude a = h & 0x7fff) is the float32 with bits (s << 31) | ((a << 13) + (112 << 23)): exponent
// rebiased 15 -> 127, mantissa moved up. Its high 16 bits are s | ((a >> 3) + (112 << 7)) (the add
// stays below bit 15: a >> 3 is at most 0xfff) and its low 16 bits are h << 13 (the mantissa's low 3
// bits); two interleaving shuffles (punpcklwd / punpckhwd on x86) make the two f32x4. A zero is s << 31:
// the rebias left out. A subnormal (exponent field 0, a = 1..0x3ff, value a 2^-24) gets the rebias of
// exponent 1 instead, 113 << 7: that float32 is s (2^-14 + a 2^-24), and subtracting its own sign and
// exponent (s 2^-14) leaves s a 2^-24 exactly (Sterbenz: the operands are within a factor 2); every
// other lane subtracts +0, which changes no float (-0 - +0 = -0). No float32 subnormal is ever an
// operand (x86 runs those in microcode). About 20 operations per 8 values against ~30 for two
// f16sx4ToF32, no branch. Inf and NaN (exponent field 31) come out as large finite numbers: they are
// left to the caller, which tracks f16x8Magnitudes over a block and redoes the block with
// f16sx4ToF32 when f16x8AnyInfNaN says so (they only appear when a float16 value has overflowed).


// Each step is its own function so that a caller computes it once per 8 values for both halves:
//   zero = f16x8Zeros(h), sub = f16x8Subnormals(h, zero), high = f16x8High(h, zero, sub),
//   f16x8FiniteLo(h, high, sub), f16x8FiniteHi(h, high, sub).

/** All ones in the lanes of ±0. */
// @ts-ignore: decorator
@inline export function f16x8Zeros(h: v128): v128 {
  return i16x8.eq(i16x8.shl(h, 1), i16x8.splat(0));
}

/** 0xff80 (a float32's sign and exponent, high half; -0x80 as an i16) in the lanes of subnormals, else 0. */
// @ts-ignore: decorator
@inline export function f16x8Subnormals(h: v128, zero: v128): v128 {
  const e0 = i16x8.eq(v128.and(h, kv(K_INF16X8)), i16x8.splat(0)); // exponent field 0: zero or subnormal
  return v128.andnot(v128.and(e0, kv(K_FF80X8)), zero);
}

/** The float32s' high halves: sign | ((h >> 3) & 0xfff) + rebias (112 << 7; 113 << 7 for subnormals; 0 for ±0). */
// @ts-ignore: decorator
@inline export function f16x8High(h: v128, zero: v128, sub: v128): v128 {
  const rebias = i16x8.sub(v128.andnot(kv(K_REBIAS16X8), zero), sub); // - 0xff80 = + 0x80
  // h >>s 3 & 0x8fff: the sign at bit 15 and bits 14..3 of h at 11..0 in one shift and one mask
  return i16x8.add(v128.and(i16x8.shr_s(h, 3), kv(K_SIGN_E8X8)), rebias);
}

/** Elements 0..3 of 8 finite float16 patterns h as f32x4 (exact), from f16x8High and f16x8Subnormals. */
// @ts-ignore: decorator
@inline export function f16x8FiniteLo(h: v128, high: v128, sub: v128): v128 {
  const v = v128.shuffle<i16>(i16x8.shl(h, 13), high, 0, 8, 1, 9, 2, 10, 3, 11);
  // subnormal lanes: minus their own sign and exponent (s 2^-14); others: minus +0
  return f32x4.sub(v, v128.and(v, v128.shuffle<i16>(i16x8.splat(0), sub, 0, 8, 1, 9, 2, 10, 3, 11)));
}

/** Elements 4..7, as f16x8FiniteLo. */
// @ts-ignore: decorator
@inline export function f16x8FiniteHi(h: v128, high: v128, sub: v128): v128 {
  const v = v128.shuffle<i16>(i16x8.shl(h, 13), high, 4, 12, 5, 13, 6, 14, 7, 15);
  return f32x4.sub(v, v128.and(v, v128.shuffle<i16>(i16x8.splat(0), sub, 4, 12, 5, 13, 6, 14, 7, 15)));
}

/** Lane-wise i16x8.max_u of h << 1 (float16 magnitudes, doubled) into `acc`: see f16x8AnyInfNaN. */
// @ts-ignore: decorator
@inline export function f16x8Magnitudes(acc: v128, h: v128): v128 {
  return i16x8.max_u(acc, i16x8.shl(h, 1));
}

/** Whether f16x8Magnitudes (start: zeros) saw an Inf or NaN: a doubled magnitude of 0xf800 or more. */
// @ts-ignore: decorator
@inline export function f16x8AnyInfNaN(acc: v128): bool {
  return v128.any_true(i16x8.sub_sat_u(acc, kv(K_MAXFINITE2X8)));
}

/** 8 finite float16 values h widened (exact): elements 0..3 at d, 4..7 at d + hiStep. */
// @ts-ignore: decorator
@inline export function f16x8FiniteTo(d: usize, hiStep: usize, h: v128): void {
  const zero = f16x8Zeros(h), sub = f16x8Subnormals(h, zero), high = f16x8High(h, zero, sub);
  v128.store(d, f16x8FiniteLo(h, high, sub));
  v128.store(d + hiStep, f16x8FiniteHi(h, high, sub));
}

/**
 * `runs` runs of 8 float16 values, run r at src + r * srcStep (bytes), widened to float32 at dst
 * (32 bytes per run), 8 at a time as above. False when an Inf or NaN was among them: dst is then
 * wrong and the caller widens them again with f16sx4ToF32.
 */
// @ts-ignore: decorator
@inline export function f16x8RunsFiniteToF32(src: usize, srcStep: usize, runs: i32, dst: usize): bool {
  let mags = i16x8.splat(0);
  const end = dst + (<usize>runs << 5);
  while (dst < end) {
    const h = v128.load(src);
    mags = f16x8Magnitudes(mags, h);
    f16x8FiniteTo(dst, 16, h);
    src += srcStep;
    dst += 32;
  }
  return !f16x8AnyInfNaN(mags);
}

/** n float16 values at src (n a multiple of 8) widened to float32 at dst: f16x8RunsFiniteToF32 of one row. */
// @ts-ignore: decorator
@inline export function f16RowFiniteToF32(src: usize, n: i32, dst: usize): bool {
  return f16x8RunsFiniteToF32(src, 16, n >> 3, dst);
}
