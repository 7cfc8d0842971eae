/**
 * Comparisons, logical ops, `where`, sign ops and casts into the float formats from bool, int32 and
 * float64: the small kernels of a loss and of the GradScaler (crossEntropy's ignore-index mask, the
 * finite-gradient check). Results are the reference backend's bit for bit (NaN payloads aside):
 * every comparison of the stored values is exact in float32 / int32 lanes, selections and sign
 * flips copy bits, and casts round once as the reference codec does (through float32 for the
 * 16-bit formats).
 *
 * Element types of these kernels (the suffix of each export):
 *   f32, f16, bf16, i32, u8 (bool), f64.
 *
 * Layout (as the binary kernels of elementwise.ts): `out` contiguous [rows, inner], row r
 * (r0 <= r < r1) being (i0, i1) = (r / n1, r % n1); an operand's row starts at
 * p + (i0 s0 + i1 s1) elements and its stride along the row is 0 (broadcast) or 1.
 *
 *   cmp_<t>(op, a, b, out, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi)
 *       out (bool) = a op b; op: 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge, 6 logicalAnd, 7 logicalOr.
 *   test_<t>(op, x, out, r0, r1, n1, inner, xs0, xs1, xi)
 *       out (bool) = op 0: isfinite(x), op 1: logicalNot(x) (x == 0).
 *   sign_<t>(op, x, out, r0, r1, n1, inner, xs0, xs1, xi)      (t: f32, f16, bf16, i32)
 *       out = op 0: -x, op 1: |x| (sign-bit operations on floats, wrapping on int32).
 *   where<bytes>(c, a, b, out, r0, r1, n1, inner, cs0, cs1, ci, as0, as1, ai, bs0, bs1, bi)
 *       out = c != 0 ? a : b, elements of 1, 2, 4 or 8 bytes copied as bits.
 *   castto_<t>_<fmt>(x, out, n)                 (t: u8, i32, f64; fmt: f32, f16, bf16), contiguous.
 */
import { F32, F16, BF16, f16ToF32, bf16ToF32, store1, widenLo, kv, K_ABS32, K_EXP32, K_SIGN32, K_ABS16X8 } from './convert16';

const T_F32: i32 = 0;
const T_F16: i32 = 1;
const T_BF16: i32 = 2;
const T_I32: i32 = 3;
const T_U8: i32 = 4;
const T_F64: i32 = 5;

const EQ: i32 = 0;
const NE: i32 = 1;
const LT: i32 = 2;
const LE: i32 = 3;
const GT: i32 = 4;
const GE: i32 = 5;
const AND: i32 = 6;
const OR: i32 = 7;

/** log2 of the element size. */
// @ts-ignore: decorator
@inline function shiftT(t: i32): usize {
  if (t == T_U8) return 0;
  if (t == T_F16 || t == T_BF16) return 1;
  if (t == T_F64) return 3;
  return 2;
}

/** Whether 4-lane SIMD applies (float64 runs the scalar loop). */
// @ts-ignore: decorator
@inline function simdT(t: i32): bool {
  return t != T_F64;
}

/** Whether the SIMD lanes of `t` are float32 (else int32). */
// @ts-ignore: decorator
@inline function floatLanes(t: i32): bool {
  return t <= T_BF16;
}

/** One element as float64 (exact for every type). */
// @ts-ignore: decorator
@inline function ld1(t: i32, p: usize): f64 {
  if (t == T_F32) return <f64>load<f32>(p);
  if (t == T_F16) return <f64>f16ToF32(<u32>load<u16>(p));
  if (t == T_BF16) return <f64>bf16ToF32(<u32>load<u16>(p));
  if (t == T_I32) return <f64>load<i32>(p);
  if (t == T_U8) return <f64>load<u8>(p);
  return load<f64>(p);
}

/** 4 consecutive elements in lanes: float32 for the float formats, int32 for i32 / u8. */
// @ts-ignore: decorator
@inline function ld4(t: i32, p: usize): v128 {
  if (t == T_F32 || t == T_I32) return v128.load(p);
  if (t == T_F16) return widenLo(F16, v128.load64_zero(p));
  if (t == T_BF16) return widenLo(BF16, v128.load64_zero(p));
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
}

/** A float64 value of type t in all 4 lanes. */
// @ts-ignore: decorator
@inline function splat4(t: i32, v: f64): v128 {
  if (floatLanes(t)) return f32x4.splat(<f32>v);
  return i32x4.splat(<i32>v);
}

/** Row start of an operand (element offset i0 s0 + i1 s1, bytes). */
// @ts-ignore: decorator
@inline function rowAt(p: usize, sh: usize, i0: i32, i1: i32, s0: i32, s1: i32): usize {
  return p + (<usize>(<isize>i0 * <isize>s0 + <isize>i1 * <isize>s1) << sh);
}

/** 16 masks (i32 lanes of 0 / -1) as 16 bytes of 0 / 1. */
// @ts-ignore: decorator
@inline function packBool(m0: v128, m1: v128, m2: v128, m3: v128): v128 {
  return i8x16.abs(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(m0, m1), i16x8.narrow_i32x4_s(m2, m3)));
}

/* ------------------------------------------------------------------ comparisons */

// @ts-ignore: decorator
@inline function cmp1(op: i32, a: f64, b: f64): bool {
  switch (op) {
    case EQ: return a == b;
    case NE: return a != b;
    case LT: return a < b;
    case LE: return a <= b;
    case GT: return a > b;
    case GE: return a >= b;
    case AND: return a != 0 && b != 0;
    default: return a != 0 || b != 0;
  }
}

// @ts-ignore: decorator
@inline function cmp4(op: i32, fl: bool, a: v128, b: v128): v128 {
  if (fl) {
    switch (op) {
      case EQ: return f32x4.eq(a, b);
      case NE: return f32x4.ne(a, b);
      case LT: return f32x4.lt(a, b);
      case LE: return f32x4.le(a, b);
      case GT: return f32x4.gt(a, b);
      case GE: return f32x4.ge(a, b);
      case AND: return v128.and(f32x4.ne(a, f32x4.splat(0)), f32x4.ne(b, f32x4.splat(0)));
      default: return v128.or(f32x4.ne(a, f32x4.splat(0)), f32x4.ne(b, f32x4.splat(0)));
    }
  }
  switch (op) {
    case EQ: return i32x4.eq(a, b);
    case NE: return i32x4.ne(a, b);
    case LT: return i32x4.lt_s(a, b);
    case LE: return i32x4.le_s(a, b);
    case GT: return i32x4.gt_s(a, b);
    case GE: return i32x4.ge_s(a, b);
    case AND: return v128.and(i32x4.ne(a, i32x4.splat(0)), i32x4.ne(b, i32x4.splat(0)));
    default: return v128.or(i32x4.ne(a, i32x4.splat(0)), i32x4.ne(b, i32x4.splat(0)));
  }
}

// @ts-ignore: decorator
@inline function cmpRows(
  t: i32, op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32,
  as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32,
): void {
  const sh = shiftT(t);
  const fl = floatLanes(t);
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = rowAt(a, sh, i0, i1, as0, as1);
    const pb = rowAt(b, sh, i0, i1, bs0, bs1);
    const po = o + <usize>r * <usize>inner;
    let j = 0;
    if (simdT(t) && (ai | bi) != 0) {
      const va = splat4(t, ld1(t, pa));
      const vb = splat4(t, ld1(t, pb));
      for (; j + 16 <= inner; j += 16) {
        const qa = pa + (<usize>j << sh);
        const qb = pb + (<usize>j << sh);
        const es = <usize>4 << sh;
        const x0 = ai != 0 ? ld4(t, qa) : va, x1 = ai != 0 ? ld4(t, qa + es) : va;
        const x2 = ai != 0 ? ld4(t, qa + 2 * es) : va, x3 = ai != 0 ? ld4(t, qa + 3 * es) : va;
        const y0 = bi != 0 ? ld4(t, qb) : vb, y1 = bi != 0 ? ld4(t, qb + es) : vb;
        const y2 = bi != 0 ? ld4(t, qb + 2 * es) : vb, y3 = bi != 0 ? ld4(t, qb + 3 * es) : vb;
        v128.store(po + <usize>j, packBool(cmp4(op, fl, x0, y0), cmp4(op, fl, x1, y1), cmp4(op, fl, x2, y2), cmp4(op, fl, x3, y3)));
      }
    }
    for (; j < inner; j++) {
      const x = ld1(t, pa + (<usize>(j * ai) << sh));
      const y = ld1(t, pb + (<usize>(j * bi) << sh));
      store<u8>(po + <usize>j, cmp1(op, x, y) ? 1 : 0);
    }
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function cmp_f32(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_F32, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function cmp_f16(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_F16, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function cmp_bf16(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_BF16, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function cmp_i32(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_I32, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function cmp_u8(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_U8, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function cmp_f64(op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  cmpRows(T_F64, op, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}

/* ------------------------------------------------------------------ isfinite, logicalNot */

const ISFINITE: i32 = 0;

// @ts-ignore: decorator
@inline function test1(op: i32, v: f64): bool {
  if (op == ISFINITE) return v - v == 0; // false for ±Inf and NaN
  return v == 0;
}

// @ts-ignore: decorator
@inline function test4(op: i32, fl: bool, v: v128): v128 {
  if (op == ISFINITE) {
    // integers are finite; a float is when its exponent field is not all ones
    if (!fl) return i32x4.splat(-1);
    return i32x4.ne(v128.and(v, kv(K_EXP32)), kv(K_EXP32));
  }
  return fl ? f32x4.eq(v, f32x4.splat(0)) : i32x4.eq(v, i32x4.splat(0));
}

// @ts-ignore: decorator
@inline function testRows(t: i32, op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  const sh = shiftT(t);
  const fl = floatLanes(t);
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const px = rowAt(x, sh, i0, i1, xs0, xs1);
    const po = o + <usize>r * <usize>inner;
    let j = 0;
    if (xi == 0) {
      memory.fill(po, test1(op, ld1(t, px)) ? 1 : 0, <usize>inner);
      j = inner;
    } else if (simdT(t)) {
      const es = <usize>4 << sh;
      for (; j + 16 <= inner; j += 16) {
        const q = px + (<usize>j << sh);
        v128.store(po + <usize>j, packBool(test4(op, fl, ld4(t, q)), test4(op, fl, ld4(t, q + es)), test4(op, fl, ld4(t, q + 2 * es)), test4(op, fl, ld4(t, q + 3 * es))));
      }
    }
    for (; j < inner; j++) store<u8>(po + <usize>j, test1(op, ld1(t, px + (<usize>j << sh))) ? 1 : 0);
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function test_f32(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_F32, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function test_f16(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_F16, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function test_bf16(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_BF16, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function test_i32(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_I32, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function test_u8(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_U8, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function test_f64(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  testRows(T_F64, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}

/* ------------------------------------------------------------------ neg, abs */

const NEG: i32 = 0;

/** -x or |x| of one element of t (floats: the sign bit; int32: wrapping). */
// @ts-ignore: decorator
@inline function sign1(t: i32, op: i32, p: usize, q: usize): void {
  if (t == T_F32) {
    const v = load<u32>(p);
    store<u32>(q, op == NEG ? v ^ 0x80000000 : v & 0x7fffffff);
  } else if (t == T_I32) {
    const v = load<i32>(p);
    store<i32>(q, op == NEG ? -v : (v < 0 ? -v : v));
  } else {
    const v = <u32>load<u16>(p);
    store<u16>(q, <u16>(op == NEG ? v ^ 0x8000 : v & 0x7fff));
  }
}

/** 16 bytes of t: -x or |x|. */
// @ts-ignore: decorator
@inline function sign16B(t: i32, op: i32, v: v128): v128 {
  if (t == T_I32) return op == NEG ? i32x4.neg(v) : i32x4.abs(v);
  if (t == T_F32) return op == NEG ? v128.xor(v, kv(K_SIGN32)) : v128.and(v, kv(K_ABS32));
  return op == NEG ? v128.xor(v, v128.not(kv(K_ABS16X8))) : v128.and(v, kv(K_ABS16X8));
}

// @ts-ignore: decorator
@inline function signRows(t: i32, op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  const sh = shiftT(t);
  const per = 16 >> <i32>sh; // elements per v128
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const px = rowAt(x, sh, i0, i1, xs0, xs1);
    const po = o + ((<usize>r * <usize>inner) << sh);
    if (xi == 0) {
      // one value for the row: compute it once, then copy it along
      sign1(t, op, px, po);
      if (sh == 2) {
        const v = load<u32>(po);
        for (let j = 1; j < inner; j++) store<u32>(po + (<usize>j << 2), v);
      } else {
        const v = load<u16>(po);
        for (let j = 1; j < inner; j++) store<u16>(po + (<usize>j << 1), v);
      }
    } else {
      let j = 0;
      for (; j + per <= inner; j += per) v128.store(po + (<usize>j << sh), sign16B(t, op, v128.load(px + (<usize>j << sh))));
      for (; j < inner; j++) sign1(t, op, px + (<usize>j << sh), po + (<usize>j << sh));
    }
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function sign_f32(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  signRows(T_F32, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function sign_f16(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  signRows(T_F16, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function sign_bf16(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  signRows(T_BF16, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}
export function sign_i32(op: i32, x: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, xs0: i32, xs1: i32, xi: i32): void {
  signRows(T_I32, op, x, o, r0, r1, n1, inner, xs0, xs1, xi);
}

/* ------------------------------------------------------------------ where */

/** Lanes of `bytes`-wide elements selected where the condition bytes at c are nonzero. */
// @ts-ignore: decorator
@inline function condMask(bytes: i32, c: usize): v128 {
  const zero = i8x16.splat(0);
  if (bytes == 1) return i8x16.ne(v128.load(c), zero);
  if (bytes == 2) return i16x8.ne(i16x8.extend_low_i8x16_u(v128.load64_zero(c)), zero);
  return i32x4.ne(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(c))), zero);
}

// @ts-ignore: decorator
@inline function copyElem(bytes: i32, src: usize, dst: usize): void {
  if (bytes == 1) store<u8>(dst, load<u8>(src));
  else if (bytes == 2) store<u16>(dst, load<u16>(src));
  else if (bytes == 4) store<u32>(dst, load<u32>(src));
  else store<u64>(dst, load<u64>(src));
}

// @ts-ignore: decorator
@inline function whereRows(
  bytes: i32, c: usize, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32,
  cs0: i32, cs1: i32, ci: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32,
): void {
  const sh: usize = bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3;
  const per = 16 >> <i32>sh;
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pc = rowAt(c, 0, i0, i1, cs0, cs1);
    const pa = rowAt(a, sh, i0, i1, as0, as1);
    const pb = rowAt(b, sh, i0, i1, bs0, bs1);
    const po = o + ((<usize>r * <usize>inner) << sh);
    let j = 0;
    if (bytes <= 4 && ci != 0 && ai != 0 && bi != 0) {
      for (; j + per <= inner; j += per) {
        const off = <usize>j << sh;
        v128.store(po + off, v128.bitselect(v128.load(pa + off), v128.load(pb + off), condMask(bytes, pc + <usize>j)));
      }
    }
    for (; j < inner; j++) {
      const src = load<u8>(pc + <usize>(j * ci)) != 0 ? pa + (<usize>(j * ai) << sh) : pb + (<usize>(j * bi) << sh);
      copyElem(bytes, src, po + (<usize>j << sh));
    }
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function where8(c: usize, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, cs0: i32, cs1: i32, ci: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  whereRows(1, c, a, b, o, r0, r1, n1, inner, cs0, cs1, ci, as0, as1, ai, bs0, bs1, bi);
}
export function where16(c: usize, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, cs0: i32, cs1: i32, ci: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  whereRows(2, c, a, b, o, r0, r1, n1, inner, cs0, cs1, ci, as0, as1, ai, bs0, bs1, bi);
}
export function where32(c: usize, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, cs0: i32, cs1: i32, ci: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  whereRows(4, c, a, b, o, r0, r1, n1, inner, cs0, cs1, ci, as0, as1, ai, bs0, bs1, bi);
}
export function where64(c: usize, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, cs0: i32, cs1: i32, ci: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  whereRows(8, c, a, b, o, r0, r1, n1, inner, cs0, cs1, ci, as0, as1, ai, bs0, bs1, bi);
}

/* ------------------------------------------------------------------ casts into float formats */

/** x (u8, i32 or f64) -> fmt: to float32 (round to nearest even), then into fmt (the reference codec). */
// @ts-ignore: decorator
@inline function castTo(t: i32, fmt: i32, x: usize, o: usize, n: i32): void {
  const sh = shiftT(t);
  const so: usize = fmt == F32 ? 2 : 1;
  let i = 0;
  if (t != T_F64 && fmt == F32) {
    for (; i + 4 <= n; i += 4) v128.store(o + (<usize>i << 2), f32x4.convert_i32x4_s(ld4(t, x + (<usize>i << sh))));
  }
  for (; i < n; i++) {
    const p = x + (<usize>i << sh);
    let v: f32;
    if (t == T_U8) v = <f32>load<u8>(p);
    else if (t == T_I32) v = <f32>load<i32>(p);
    else v = <f32>load<f64>(p);
    store1(fmt, o + (<usize>i << so), v);
  }
}

export function castto_u8_f32(x: usize, o: usize, n: i32): void {
  castTo(T_U8, F32, x, o, n);
}
export function castto_u8_f16(x: usize, o: usize, n: i32): void {
  castTo(T_U8, F16, x, o, n);
}
export function castto_u8_bf16(x: usize, o: usize, n: i32): void {
  castTo(T_U8, BF16, x, o, n);
}
export function castto_i32_f32(x: usize, o: usize, n: i32): void {
  castTo(T_I32, F32, x, o, n);
}
export function castto_i32_f16(x: usize, o: usize, n: i32): void {
  castTo(T_I32, F16, x, o, n);
}
export function castto_i32_bf16(x: usize, o: usize, n: i32): void {
  castTo(T_I32, BF16, x, o, n);
}
export function castto_f64_f32(x: usize, o: usize, n: i32): void {
  castTo(T_F64, F32, x, o, n);
}
export function castto_f64_f16(x: usize, o: usize, n: i32): void {
  castTo(T_F64, F16, x, o, n);
}
export function castto_f64_bf16(x: usize, o: usize, n: i32): void {
  castTo(T_F64, BF16, x, o, n);
}
