/**
 * Elementwise kernels over float32, float16 and bfloat16 storage. 16-bit operands are widened to
 * float32 in registers, computed in float32 and rounded once on store (round to nearest even), so
 * every result is bit for bit the reference backend's (float64 compute, one rounding through
 * float32: double rounding is innocuous for + - * / of float32 operands), NaN payloads aside.
 *
 * Calling conventions (pointers are byte addresses in the shared memory, counts and strides are in
 * elements; every kernel processes a range so the runtime can split one call across threads):
 *
 *   <op>_<fmt>(a, b, out, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi)
 *       op in add, sub, mul, div; fmt in f32, f16, bf16. `out` is contiguous [rows, inner], row r
 *       (r0 <= r < r1) being (i0, i1) = (r / n1, r % n1); operand row starts are
 *       a + (i0 as0 + i1 as1), b + (i0 bs0 + i1 bs1), and along a row an operand's stride is
 *       ai / bi in {0, 1} (0: one value broadcast along the row).
 *   add_f32_<fmt>(a, b, out, n)
 *       a float32, b of fmt (f16, bf16), out float32, all contiguous: the mixed-dtype add.
 *   <op>s_<fmt>(a, s, out, r0, r1, n1, inner, as0, as1, swap)
 *       one operand a float32 scalar `s`: out = swap ? s op a : a op s (a's row stride is 1).
 *   relu_<fmt>(x, out, n), reluBackward_<fmt>(x, g, out, n)    contiguous
 *   cast_<from>_<to>(x, out, n)                                contiguous, between f32/f16/bf16
 *   fill8/16/32(out, n, bits), fill64(out, n, lo, hi)          a bit pattern repeated
 *   gather8/16/32/64(src, dst, r0, r1, d1, d2, d3, s0, s1, s2, s3)
 *       strided copy of a [d0, d1, d2, d3] view (strides s0..s3) into contiguous dst, rows
 *       r0..r1 of the d0 d1 d2 rows of d3 elements.
 * (The SGD update, sgd_<wfmt>_<gfmt>, lives with the other optimizer kernels in optim.ts.)
 */
import {
  F32, F16, BF16, shiftOf, load1, store1, encode, load8lo, load8hi, store8, widenLo, widenHi, narrow8,
  kv, K_ABS16X8, K_INF16X8, K_INFBF16X8, f16RowFiniteToF32,
} from './convert16';

const ADD: i32 = 0;
const SUB: i32 = 1;
const MUL: i32 = 2;
const DIV: i32 = 3;

// @ts-ignore: decorator
@inline function opV(op: i32, a: v128, b: v128): v128 {
  if (op == ADD) return f32x4.add(a, b);
  if (op == SUB) return f32x4.sub(a, b);
  if (op == MUL) return f32x4.mul(a, b);
  return f32x4.div(a, b);
}

// @ts-ignore: decorator
@inline function opS(op: i32, a: f32, b: f32): f32 {
  if (op == ADD) return a + b;
  if (op == SUB) return a - b;
  if (op == MUL) return a * b;
  return a / b;
}

/** out[0..n) = a[0..n) op b[0..n). */
// @ts-ignore: decorator
@inline function vv(op: i32, fmt: i32, a: usize, b: usize, o: usize, n: i32): void {
  const sh = shiftOf(fmt);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << sh;
    const lo = opV(op, load8lo(fmt, a + off), load8lo(fmt, b + off));
    const hi = opV(op, load8hi(fmt, a + off), load8hi(fmt, b + off));
    store8(fmt, o + off, lo, hi);
  }
  for (; i < n; i++) {
    const off = <usize>i << sh;
    store1(fmt, o + off, opS(op, load1(fmt, a + off), load1(fmt, b + off)));
  }
}

/** out = swap ? s op a : a op s, along a contiguous row. */
// @ts-ignore: decorator
@inline function vsRow(op: i32, fmt: i32, a: usize, s: f32, o: usize, n: i32, swap: bool): void {
  const sh = shiftOf(fmt);
  const sv = f32x4.splat(s);
  let i = 0;
  if (swap) {
    for (; i + 8 <= n; i += 8) {
      const off = <usize>i << sh;
      store8(fmt, o + off, opV(op, sv, load8lo(fmt, a + off)), opV(op, sv, load8hi(fmt, a + off)));
    }
    for (; i < n; i++) {
      const off = <usize>i << sh;
      store1(fmt, o + off, opS(op, s, load1(fmt, a + off)));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const off = <usize>i << sh;
      store8(fmt, o + off, opV(op, load8lo(fmt, a + off), sv), opV(op, load8hi(fmt, a + off), sv));
    }
    for (; i < n; i++) {
      const off = <usize>i << sh;
      store1(fmt, o + off, opS(op, load1(fmt, a + off), s));
    }
  }
}

/** Fill a contiguous row of `fmt` with one float32 value (rounded once). */
// @ts-ignore: decorator
@inline function fillRow(fmt: i32, o: usize, v: f32, n: i32): void {
  const bits = encode(fmt, v);
  if (fmt == F32) fill32(o, n, bits);
  else fill16(o, n, bits);
}

// @ts-ignore: decorator
@inline function binaryRows(
  op: i32, fmt: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32,
  as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32,
): void {
  const sh = shiftOf(fmt);
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = a + ((<usize>i0 * <usize>as0 + <usize>i1 * <usize>as1) << sh);
    const pb = b + ((<usize>i0 * <usize>bs0 + <usize>i1 * <usize>bs1) << sh);
    const po = o + ((<usize>r * <usize>inner) << sh);
    if (ai != 0 && bi != 0) vv(op, fmt, pa, pb, po, inner);
    else if (ai != 0) vsRow(op, fmt, pa, load1(fmt, pb), po, inner, false);
    else if (bi != 0) vsRow(op, fmt, pb, load1(fmt, pa), po, inner, true);
    else fillRow(fmt, po, opS(op, load1(fmt, pa), load1(fmt, pb)), inner);
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

// @ts-ignore: decorator
@inline function scalarRows(
  op: i32, fmt: i32, a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32,
): void {
  const sh = shiftOf(fmt);
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = a + ((<usize>i0 * <usize>as0 + <usize>i1 * <usize>as1) << sh);
    const po = o + ((<usize>r * <usize>inner) << sh);
    if (swap != 0) vsRow(op, fmt, pa, s, po, inner, true);
    else vsRow(op, fmt, pa, s, po, inner, false);
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

/* ------------------------------------------------------------------ binary exports */

export function add_f32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(ADD, F32, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function add_f16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(ADD, F16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function add_bf16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(ADD, BF16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function sub_f32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(SUB, F32, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function sub_f16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(SUB, F16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function sub_bf16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(SUB, BF16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function mul_f32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(MUL, F32, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function mul_f16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(MUL, F16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function mul_bf16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(MUL, BF16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function div_f32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(DIV, F32, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function div_f16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(DIV, F16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function div_bf16(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  binaryRows(DIV, BF16, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}

/**
 * out = a + b with a float32, b a 16-bit `fmt` and out float32, all contiguous (n elements): PyTorch's
 * float32 + float16 / bfloat16 promotion (a transformer's float32 residual stream plus a 16-bit branch
 * under autocast). The 16-bit operand is widened in registers (exact), so the result is bit for bit
 * a cast op followed by add_f32, without the cast's float32 copy.
 */
// @ts-ignore: decorator
@inline function addMixed(fmt: i32, a: usize, b: usize, o: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const raw = v128.load(b + (<usize>i << 1));
    const pa = a + (<usize>i << 2);
    const po = o + (<usize>i << 2);
    v128.store(po, f32x4.add(v128.load(pa), widenLo(fmt, raw)));
    v128.store(po, f32x4.add(v128.load(pa, 16), widenHi(fmt, raw)), 16);
  }
  for (; i < n; i++) store<f32>(o + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load1(fmt, b + (<usize>i << 1)));
}

export function add_f32_f16(a: usize, b: usize, o: usize, n: i32): void {
  addMixed(F16, a, b, o, n);
}
export function add_f32_bf16(a: usize, b: usize, o: usize, n: i32): void {
  addMixed(BF16, a, b, o, n);
}

export function adds_f32(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(ADD, F32, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function adds_f16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(ADD, F16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function adds_bf16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(ADD, BF16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function subs_f32(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(SUB, F32, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function subs_f16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(SUB, F16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function subs_bf16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(SUB, BF16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function muls_f32(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(MUL, F32, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function muls_f16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(MUL, F16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function muls_bf16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(MUL, BF16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function divs_f32(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(DIV, F32, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function divs_f16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(DIV, F16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function divs_bf16(a: usize, s: f32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(DIV, BF16, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}

/* ------------------------------------------------------------------ relu */

/** relu(x) = x > 0 || isNaN(x) ? x : +0, on float32 values. */
// @ts-ignore: decorator
@inline function reluF32(x: usize, o: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    const v = v128.load(x + off);
    const keep = v128.or(f32x4.gt(v, zero), f32x4.ne(v, v));
    v128.store(o + off, v128.and(v, keep));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    const v = load<f32>(x + off);
    store<f32>(o + off, v > 0 || v != v ? v : 0);
  }
}

/**
 * relu on 16-bit patterns without widening: a pattern is kept when its sign is clear or it is a
 * NaN (magnitude above Inf's `infBits`), and becomes +0 otherwise (-0 included).
 */
// @ts-ignore: decorator
@inline function relu16(infBits: i32, x: usize, o: usize, n: i32): void {
  const zero = i16x8.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << 1;
    const v = v128.load(x + off);
    // (constants from the table: a v128.const in a loop is rebuilt at every use, see convert16.ts)
    const inf = kv(infBits == 0x7c00 ? K_INF16X8 : K_INFBF16X8);
    const keep = v128.or(i16x8.ge_s(v, zero), i16x8.gt_s(v128.and(v, kv(K_ABS16X8)), inf));
    v128.store(o + off, v128.and(v, keep));
  }
  for (; i < n; i++) {
    const off = <usize>i << 1;
    const v = <i32>load<u16>(x + off);
    store<u16>(o + off, <u16>((v & 0x8000) == 0 || (v & 0x7fff) > infBits ? v : 0));
  }
}

export function relu_f32(x: usize, o: usize, n: i32): void {
  reluF32(x, o, n);
}
export function relu_f16(x: usize, o: usize, n: i32): void {
  relu16(0x7c00, x, o, n);
}
export function relu_bf16(x: usize, o: usize, n: i32): void {
  relu16(0x7f80, x, o, n);
}

/** reluBackward(x, g) = x > 0 ? g : +0 (NaN x gives 0), x and g of one format. */
// @ts-ignore: decorator
@inline function reluBackwardF32(x: usize, g: usize, o: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const off = <usize>i << 2;
    v128.store(o + off, v128.and(v128.load(g + off), f32x4.gt(v128.load(x + off), zero)));
  }
  for (; i < n; i++) {
    const off = <usize>i << 2;
    store<f32>(o + off, load<f32>(x + off) > 0 ? load<f32>(g + off) : 0);
  }
}

/** On 16-bit patterns: x > 0 exactly when 0 < pattern (as int16) <= Inf's pattern. */
// @ts-ignore: decorator
@inline function reluBackward16(infBits: i32, x: usize, g: usize, o: usize, n: i32): void {
  const zero = i16x8.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << 1;
    const v = v128.load(x + off);
    const inf = kv(infBits == 0x7c00 ? K_INF16X8 : K_INFBF16X8);
    const pos = v128.and(i16x8.gt_s(v, zero), i16x8.le_s(v, inf));
    v128.store(o + off, v128.and(v128.load(g + off), pos));
  }
  for (; i < n; i++) {
    const off = <usize>i << 1;
    const v = <i32>load<i16>(x + off);
    store<u16>(o + off, v > 0 && v <= infBits ? load<u16>(g + off) : 0);
  }
}

export function reluBackward_f32(x: usize, g: usize, o: usize, n: i32): void {
  reluBackwardF32(x, g, o, n);
}
export function reluBackward_f16(x: usize, g: usize, o: usize, n: i32): void {
  reluBackward16(0x7c00, x, g, o, n);
}
export function reluBackward_bf16(x: usize, g: usize, o: usize, n: i32): void {
  reluBackward16(0x7f80, x, g, o, n);
}

/* ------------------------------------------------------------------ casts */

// @ts-ignore: decorator
@inline function cast(from: i32, to: i32, x: usize, o: usize, n: i32): void {
  const si = shiftOf(from);
  const so = shiftOf(to);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const pi = x + (<usize>i << si);
    store8(to, o + (<usize>i << so), load8lo(from, pi), load8hi(from, pi));
  }
  for (; i < n; i++) store1(to, o + (<usize>i << so), load1(from, x + (<usize>i << si)));
}

export function cast_f32_f16(x: usize, o: usize, n: i32): void {
  cast(F32, F16, x, o, n);
}
export function cast_f32_bf16(x: usize, o: usize, n: i32): void {
  cast(F32, BF16, x, o, n);
}

// float16 -> float32 in blocks of this many values (a multiple of 8): a block that held an Inf or
// NaN is widened again from its source, still in the L1 cache.
const CAST_BLOCK: i32 = 512;

/**
 * float16 -> float32, a block at a time widened 8 values at once in 16-bit lanes (convert16.ts
 * f16RowFiniteToF32, exact for zeros, subnormals and normals; ~20 operations per 8 values against
 * ~30 in the 4-lane path); a block holding an Inf or NaN (only after an overflow) is widened again
 * by the 4-lane path, which keeps them and their payloads. Either way the same bits as `cast`.
 */
// @ts-ignore: decorator
@inline function castF16ToF32(x: usize, o: usize, n: i32): void {
  let i = 0;
  while (i + 8 <= n) {
    const m = min(n - i, CAST_BLOCK) & ~7;
    const src = x + (<usize>i << 1), dst = o + (<usize>i << 2);
    if (!f16RowFiniteToF32(src, m, dst)) {
      for (let j = 0; j < m; j += 8) {
        const p = src + (<usize>j << 1);
        store8(F32, dst + (<usize>j << 2), load8lo(F16, p), load8hi(F16, p));
      }
    }
    i += m;
  }
  for (; i < n; i++) store1(F32, o + (<usize>i << 2), load1(F16, x + (<usize>i << 1)));
}

export function cast_f16_f32(x: usize, o: usize, n: i32): void {
  castF16ToF32(x, o, n);
}
export function cast_bf16_f32(x: usize, o: usize, n: i32): void {
  cast(BF16, F32, x, o, n);
}
export function cast_f16_bf16(x: usize, o: usize, n: i32): void {
  cast(F16, BF16, x, o, n);
}
export function cast_bf16_f16(x: usize, o: usize, n: i32): void {
  cast(BF16, F16, x, o, n);
}

/* ------------------------------------------------------------------ fill */

export function fill8(o: usize, n: i32, bits: u32): void {
  memory.fill(o, <u8>bits, <usize>n);
}

export function fill16(o: usize, n: i32, bits: u32): void {
  const v = i16x8.splat(<i16>bits);
  let i = 0;
  for (; i + 8 <= n; i += 8) v128.store(o + (<usize>i << 1), v);
  for (; i < n; i++) store<u16>(o + (<usize>i << 1), <u16>bits);
}

export function fill32(o: usize, n: i32, bits: u32): void {
  const v = i32x4.splat(bits);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(o + (<usize>i << 2), v);
  for (; i < n; i++) store<u32>(o + (<usize>i << 2), bits);
}

export function fill64(o: usize, n: i32, lo: u32, hi: u32): void {
  const bits = (<u64>hi << 32) | <u64>lo;
  const v = i64x2.splat(bits);
  let i = 0;
  for (; i + 2 <= n; i += 2) v128.store(o + (<usize>i << 3), v);
  for (; i < n; i++) store<u64>(o + (<usize>i << 3), bits);
}

/* ------------------------------------------------------------------ strided copy */

/**
 * 4 rows of 32-bit elements (or 8 rows of 16-bit ones) of a transposing gather: row t of the block
 * is dst[q + t d3 + j] = src[p + t + j s3] (the rows are adjacent in the source: s2 = 1). Blocks of
 * 4 x 4 (8 x 8) elements are transposed in registers: one vector load per source column, one
 * vector store per destination row, instead of a strided scalar load per element.
 */
// @ts-ignore: decorator
@inline function transposeRows32(p: usize, q: usize, d3: i32, s3: i32): void {
  const step = <usize>(<isize>s3 << 2);
  const row = <usize>d3 << 2;
  let j = 0;
  for (; j + 4 <= d3; j += 4) {
    const c = p + <usize>j * step;
    const a0 = v128.load(c), a1 = v128.load(c + step), a2 = v128.load(c + 2 * step), a3 = v128.load(c + 3 * step);
    const l0 = v128.shuffle<u32>(a0, a1, 0, 4, 1, 5), h0 = v128.shuffle<u32>(a0, a1, 2, 6, 3, 7);
    const l1 = v128.shuffle<u32>(a2, a3, 0, 4, 1, 5), h1 = v128.shuffle<u32>(a2, a3, 2, 6, 3, 7);
    const o = q + (<usize>j << 2);
    v128.store(o, v128.shuffle<u64>(l0, l1, 0, 2));
    v128.store(o + row, v128.shuffle<u64>(l0, l1, 1, 3));
    v128.store(o + 2 * row, v128.shuffle<u64>(h0, h1, 0, 2));
    v128.store(o + 3 * row, v128.shuffle<u64>(h0, h1, 1, 3));
  }
  for (; j < d3; j++) {
    const c = p + <usize>j * step;
    for (let t: usize = 0; t < 4; t++) store<u32>(q + t * row + (<usize>j << 2), load<u32>(c + (t << 2)));
  }
}

// @ts-ignore: decorator
@inline function transposeRows16(p: usize, q: usize, d3: i32, s3: i32): void {
  const step = <usize>(<isize>s3 << 1);
  const row = <usize>d3 << 1;
  let j = 0;
  for (; j + 8 <= d3; j += 8) {
    const c = p + <usize>j * step;
    const a0 = v128.load(c), a1 = v128.load(c + step), a2 = v128.load(c + 2 * step), a3 = v128.load(c + 3 * step);
    const a4 = v128.load(c + 4 * step), a5 = v128.load(c + 5 * step), a6 = v128.load(c + 6 * step), a7 = v128.load(c + 7 * step);
    // 16-bit, then 32-bit, then 64-bit interleaves
    const b0 = v128.shuffle<u16>(a0, a1, 0, 8, 1, 9, 2, 10, 3, 11), b1 = v128.shuffle<u16>(a0, a1, 4, 12, 5, 13, 6, 14, 7, 15);
    const b2 = v128.shuffle<u16>(a2, a3, 0, 8, 1, 9, 2, 10, 3, 11), b3 = v128.shuffle<u16>(a2, a3, 4, 12, 5, 13, 6, 14, 7, 15);
    const b4 = v128.shuffle<u16>(a4, a5, 0, 8, 1, 9, 2, 10, 3, 11), b5 = v128.shuffle<u16>(a4, a5, 4, 12, 5, 13, 6, 14, 7, 15);
    const b6 = v128.shuffle<u16>(a6, a7, 0, 8, 1, 9, 2, 10, 3, 11), b7 = v128.shuffle<u16>(a6, a7, 4, 12, 5, 13, 6, 14, 7, 15);
    const c0 = v128.shuffle<u32>(b0, b2, 0, 4, 1, 5), c1 = v128.shuffle<u32>(b0, b2, 2, 6, 3, 7);
    const c2 = v128.shuffle<u32>(b1, b3, 0, 4, 1, 5), c3 = v128.shuffle<u32>(b1, b3, 2, 6, 3, 7);
    const c4 = v128.shuffle<u32>(b4, b6, 0, 4, 1, 5), c5 = v128.shuffle<u32>(b4, b6, 2, 6, 3, 7);
    const c6 = v128.shuffle<u32>(b5, b7, 0, 4, 1, 5), c7 = v128.shuffle<u32>(b5, b7, 2, 6, 3, 7);
    const o = q + (<usize>j << 1);
    v128.store(o, v128.shuffle<u64>(c0, c4, 0, 2));
    v128.store(o + row, v128.shuffle<u64>(c0, c4, 1, 3));
    v128.store(o + 2 * row, v128.shuffle<u64>(c1, c5, 0, 2));
    v128.store(o + 3 * row, v128.shuffle<u64>(c1, c5, 1, 3));
    v128.store(o + 4 * row, v128.shuffle<u64>(c2, c6, 0, 2));
    v128.store(o + 5 * row, v128.shuffle<u64>(c2, c6, 1, 3));
    v128.store(o + 6 * row, v128.shuffle<u64>(c3, c7, 0, 2));
    v128.store(o + 7 * row, v128.shuffle<u64>(c3, c7, 1, 3));
  }
  for (; j < d3; j++) {
    const c = p + <usize>j * step;
    for (let t: usize = 0; t < 8; t++) store<u16>(q + t * row + (<usize>j << 1), load<u16>(c + (t << 1)));
  }
}

// @ts-ignore: decorator
@inline function gather<T>(src: usize, dst: usize, r0: i32, r1: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): void {
  const size = <usize>sizeof<T>();
  // a transpose (rows adjacent in the source, columns strided): blocks of K rows in registers
  const K = size == 4 ? 4 : size == 2 ? 8 : 0;
  const blocks = K != 0 && s2 == 1 && s3 != 1 && d3 >= K;
  let i2 = r0 % d2;
  let i1 = (r0 / d2) % d1;
  let i0 = r0 / d2 / d1;
  for (let r = r0; r < r1; ) {
    let p = src + <usize>(<isize>i0 * s0 + <isize>i1 * s1 + <isize>i2 * s2) * size;
    const q = dst + <usize>r * <usize>d3 * size;
    let rows = 1;
    if (s3 == 1) memory.copy(q, p, <usize>d3 * size);
    else if (blocks && i2 + K <= d2 && r + K <= r1) {
      if (size == 4) transposeRows32(p, q, d3, s3);
      else transposeRows16(p, q, d3, s3);
      rows = K;
    } else {
      const step = <usize>(<isize>s3 * size);
      for (let j = 0; j < d3; j++, p += step) store<T>(q + <usize>j * size, load<T>(p));
    }
    r += rows;
    i2 += rows;
    if (i2 == d2) {
      i2 = 0;
      if (++i1 == d1) {
        i1 = 0;
        i0++;
      }
    }
  }
}

export function gather8(src: usize, dst: usize, r0: i32, r1: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): void {
  gather<u8>(src, dst, r0, r1, d1, d2, d3, s0, s1, s2, s3);
}
/**
 * Rows [r0, r1) of `bytes` bytes each: dst + r * dstStride <- src + r * srcStride (byte strides):
 * a piece of a cat along an inner dimension, one memory.copy per row instead of one JavaScript
 * copyWithin call per row.
 */
export function copy_rows(src: usize, srcStride: i32, dst: usize, dstStride: i32, bytes: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) memory.copy(dst + <usize>r * <usize>dstStride, src + <usize>r * <usize>srcStride, <usize>bytes);
}
export function gather16(src: usize, dst: usize, r0: i32, r1: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): void {
  gather<u16>(src, dst, r0, r1, d1, d2, d3, s0, s1, s2, s3);
}
export function gather32(src: usize, dst: usize, r0: i32, r1: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): void {
  gather<u32>(src, dst, r0, r1, d1, d2, d3, s0, s1, s2, s3);
}
export function gather64(src: usize, dst: usize, r0: i32, r1: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): void {
  gather<u64>(src, dst, r0, r1, d1, d2, d3, s0, s1, s2, s3);
}

/* ------------------------------------------------------------------ divBackwardDivisor */

/**
 * divBackwardDivisor_<fmt>(a, b, g, out, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi, gs0, gs1, gi)
 *     the gradient reaching the divisor of a / b: out = (-g a) / (b b), in float64 as the
 *     reference computes it (so bit for bit its result), rounded once; operands in the rows
 *     layout of the binary kernels, all of one format.
 */
// @ts-ignore: decorator
@inline function divGradRows(
  fmt: i32, a: usize, b: usize, g: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32,
  as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32, gs0: i32, gs1: i32, gi: i32,
): void {
  const sh = shiftOf(fmt);
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = a + ((<usize>i0 * <usize>as0 + <usize>i1 * <usize>as1) << sh);
    const pb = b + ((<usize>i0 * <usize>bs0 + <usize>i1 * <usize>bs1) << sh);
    const pg = g + ((<usize>i0 * <usize>gs0 + <usize>i1 * <usize>gs1) << sh);
    const po = o + ((<usize>r * <usize>inner) << sh);
    for (let j = 0; j < inner; j++) {
      const av = <f64>load1(fmt, pa + (<usize>(j * ai) << sh));
      const bv = <f64>load1(fmt, pb + (<usize>(j * bi) << sh));
      const gv = <f64>load1(fmt, pg + (<usize>(j * gi) << sh));
      store1(fmt, po + (<usize>j << sh), <f32>((-gv * av) / (bv * bv)));
    }
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function divBackwardDivisor_f32(a: usize, b: usize, g: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32, gs0: i32, gs1: i32, gi: i32): void {
  divGradRows(F32, a, b, g, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi, gs0, gs1, gi);
}
export function divBackwardDivisor_f16(a: usize, b: usize, g: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32, gs0: i32, gs1: i32, gi: i32): void {
  divGradRows(F16, a, b, g, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi, gs0, gs1, gi);
}
export function divBackwardDivisor_bf16(a: usize, b: usize, g: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32, gs0: i32, gs1: i32, gi: i32): void {
  divGradRows(BF16, a, b, g, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi, gs0, gs1, gi);
}
