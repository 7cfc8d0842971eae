/**
 * Reading the fused attention's descriptor block (layout: attention.ts's header), addressing its
 * operands and moving rows between them and float32 scratch; shared by attention.ts,
 * attention_tiles.ts and attention_strips.ts. Module-internal (all @inline).
 */
import { F32, F16, f32x4ToF16, f32x4ToBf16, widenLo, f16RowFiniteToF32 } from './convert16';

/** Word i of the descriptor (int32). */
// @ts-ignore: decorator
@inline export function word(desc: usize, i: i32): i32 {
  return load<i32>(desc + (<usize>i << 2));
}

/** Word i of the descriptor as float32 bits. */
// @ts-ignore: decorator
@inline export function wordF(desc: usize, i: i32): f32 {
  return load<f32>(desc + (<usize>i << 2));
}

/** Element offset of batch b's first row in the operand whose strides start at desc word w. */
// @ts-ignore: decorator
@inline export function batchBase(desc: usize, w: i32, b: i32): i32 {
  const B2 = word(desc, 4);
  return (b / B2) * word(desc, w) + (b % B2) * word(desc, w + 1);
}

/** Address of element i of an array of `fmt` at p. */
// @ts-ignore: decorator
@inline export function elem(fmt: i32, p: usize, i: i32): usize {
  return p + (<usize>i << (fmt == F32 ? 2 : 1));
}

/** Address of float32 i of an array at p. */
// @ts-ignore: decorator
@inline export function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/** n rounded up to a multiple of 4. */
// @ts-ignore: decorator
@inline export function round4(n: i32): i32 {
  return (n + 3) & ~3;
}

/** 4 elements of `fmt` at p widened to float32 (16-bit formats: one 8-byte load, SIMD widening; exact). */
// @ts-ignore: decorator
@inline export function load4(fmt: i32, p: usize): v128 {
  if (fmt == F32) return v128.load(p);
  return widenLo(fmt, v128.load64_zero(p));
}

/** 4 float32 lanes rounded into `fmt` (nearest even, as store1) and stored at p. */
// @ts-ignore: decorator
@inline export function store4(fmt: i32, p: usize, v: v128): void {
  if (fmt == F32) v128.store(p, v);
  else {
    const bits = fmt == F16 ? f32x4ToF16(v) : f32x4ToBf16(v);
    store<u64>(p, i64x2.extract_lane(i16x8.narrow_i32x4_u(bits, bits), 0));
  }
}

/** One row of n elements of `fmt` at element `first` -> float32 at dst (n a multiple of 4). */
// @ts-ignore: decorator
@inline export function loadRow(fmt: i32, p: usize, first: i32, n: i32, dst: usize): void {
  const src = elem(fmt, p, first);
  if (fmt == F32) memory.copy(dst, src, <usize>n << 2);
  else {
    // float16 rows of whole 8s: 8 at a time in 16-bit lanes (convert16.ts), a row holding an Inf or
    // NaN widened again below
    if (fmt == F16 && (n & 7) == 0 && f16RowFiniteToF32(src, n, dst)) return;
    for (let e = 0; e < n; e += 4) v128.store(at(dst, e), load4(fmt, elem(fmt, src, e)));
  }
}

/** n float32 at src rounded into `fmt` at dst (n a multiple of 4). */
// @ts-ignore: decorator
@inline export function storeRow(fmt: i32, dst: usize, src: usize, n: i32): void {
  for (let e = 0; e < n; e += 4) store4(fmt, elem(fmt, dst, e), v128.load(at(src, e)));
}

/**
 * `rows` rows of n elements of `fmt` (row stride ld elements, from element `first`) -> float32
 * [rows4, n] at dst, the padding rows up to a multiple of 4 zeroed.
 */
// @ts-ignore: decorator
@inline export function loadRows(fmt: i32, p: usize, first: i32, ld: i32, rows: i32, n: i32, dst: usize): void {
  for (let r = 0; r < rows; r++) loadRow(fmt, p, first + r * ld, n, at(dst, r * n));
  const rows4 = round4(rows);
  if (rows4 > rows) memory.fill(at(dst, rows * n), 0, <usize>((rows4 - rows) * n) << 2);
}
