/**
 * Exact ('none') GELU and its gradient for float16 / bfloat16 storage by table lookup (math_more.ts
 * exports them as gelu_lut16 / gelu_grad_lut_<fmt>; src/backend/wasm/native_math.ts owns the tables).
 *
 * Why tables: a 16-bit input has only 65536 values, so gelu(x) rounded to the format (65536 u16)
 * and gelu'(x) as float32 (65536 f32) are computed once per format with math_more.ts's float64
 * formulas (the reference's: erf's series, Lentz's continued fraction) by gelu_table_<fmt>, and a
 * call is then a load per element. The forward is the reference's float64 result rounded through
 * float32 (within one unit of the reference, and bit for bit it except at a double-rounding tie);
 * the gradient is g * gelu'(x) in float32 (gelu'(x) rounded to float32 first), rounded once, so
 * within one unit too. The SIMD float32 erfc this replaced cost ~6 ns per element (a division and
 * two exponentials per lane); a lookup costs well under 1. NaN, +-Inf and subnormal inputs are
 * table entries like any other, with the reference formula's values (gelu(-Inf) = NaN).
 *
 * Table layout (the caller allocates 65536 * 6 bytes, 16-byte aligned): forward u16[65536] at
 * `table`, gradient f32[65536] at `table + GELU_GRAD_OFFSET`.
 */
import { widenLo, widenHi, narrow8, load1, store1 } from './convert16';

/** Byte offset of the gradient half of a table. */
export const GELU_GRAD_OFFSET: usize = 65536 * 2;

/** out[i] = fwd[x[i]] for 16-bit patterns, i < n (either 16-bit format: the table knows which). */
// @ts-ignore: decorator
@inline export function geluLut16(table: usize, x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const raw = v128.load(x + (<usize>i << 1));
    let o = i16x8.splat(0);
    o = i16x8.replace_lane(o, 0, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 0) << 1)));
    o = i16x8.replace_lane(o, 1, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 1) << 1)));
    o = i16x8.replace_lane(o, 2, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 2) << 1)));
    o = i16x8.replace_lane(o, 3, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 3) << 1)));
    o = i16x8.replace_lane(o, 4, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 4) << 1)));
    o = i16x8.replace_lane(o, 5, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 5) << 1)));
    o = i16x8.replace_lane(o, 6, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 6) << 1)));
    o = i16x8.replace_lane(o, 7, load<u16>(table + (<usize>i16x8.extract_lane_u(raw, 7) << 1)));
    v128.store(out + (<usize>i << 1), o);
  }
  for (; i < n; i++) store<u16>(out + (<usize>i << 1), load<u16>(table + (<usize>load<u16>(x + (<usize>i << 1)) << 1)));
}

/** gelu'(x) of lanes 0..3 / 4..7 of eight 16-bit patterns `raw`, from the gradient table `d`. */
// @ts-ignore: decorator
@inline function gatherLo(d: usize, raw: v128): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 0) << 2)));
  v = f32x4.replace_lane(v, 1, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 1) << 2)));
  v = f32x4.replace_lane(v, 2, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 2) << 2)));
  v = f32x4.replace_lane(v, 3, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 3) << 2)));
  return v;
}

// @ts-ignore: decorator
@inline function gatherHi(d: usize, raw: v128): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 4) << 2)));
  v = f32x4.replace_lane(v, 1, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 5) << 2)));
  v = f32x4.replace_lane(v, 2, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 6) << 2)));
  v = f32x4.replace_lane(v, 3, load<f32>(d + (<usize>i16x8.extract_lane_u(raw, 7) << 2)));
  return v;
}

/** out[i] = g[i] * gelu'(x[i]) in float32, rounded once into `fmt` (F16 or BF16), i < n. */
// @ts-ignore: decorator
@inline export function geluGradLut16(fmt: i32, table: usize, x: usize, g: usize, out: usize, n: i32): void {
  const d = table + GELU_GRAD_OFFSET;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const rx = v128.load(x + (<usize>i << 1));
    const rg = v128.load(g + (<usize>i << 1));
    const lo = f32x4.mul(widenLo(fmt, rg), gatherLo(d, rx));
    const hi = f32x4.mul(widenHi(fmt, rg), gatherHi(d, rx));
    v128.store(out + (<usize>i << 1), narrow8(fmt, lo, hi));
  }
  for (; i < n; i++) {
    const p = <usize>i << 1;
    store1(fmt, out + p, load1(fmt, g + p) * load<f32>(d + (<usize>load<u16>(x + p) << 2)));
  }
}
