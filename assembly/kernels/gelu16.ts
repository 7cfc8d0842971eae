/**
 * Exact ('none') GELU and its gradient for float16 / bfloat16 storage, eight lanes at a time in
 * float32 (math_more.ts's gelu_<fmt> / gelu_grad_<fmt> call these for the 16-bit formats).
 *
 * Why not the float64 series of the float32 path: a 16-bit result keeps 11 (float16) or 8
 * (bfloat16) significant bits, and erf's series to 1e-17 cost ~40 float64 terms per element,
 * which made GELU half of a GPT step. Here erfc is the Chebyshev-fitted form of Numerical Recipes
 * (`erfcc`: relative error below 1.2e-7 for every z >= 0, so no cancellation on the negative side
 * where GELU is tiny), evaluated in float32: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2).
 * The float32 rounding adds a relative error of at most ~1e-5 (the exponent -z^2 near z = 9,
 * below that much less): far under half a 16-bit unit, so each result is the correctly rounded
 * one or, at a rounding boundary, its neighbour (the reference's float64 result within one unit
 * in the last place). NaN in gives NaN out; +-Inf and underflow as the reference
 * (gelu(-Inf) = -Inf * 0 = NaN, like the reference's formula).
 */
import { load1, store1, widenLo, widenHi, narrow8 } from './convert16';
import { exp4 } from './vexp';

const SQRT_HALF: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

/** The constants below, each repeated in 4 lanes (a load per use: see vexp.ts). */
const GTAB: usize = memory.data<f32>([
  0.17087277, 0.17087277, 0.17087277, 0.17087277, // 0
  -0.82215223, -0.82215223, -0.82215223, -0.82215223, // 1
  1.48851587, 1.48851587, 1.48851587, 1.48851587, // 2
  -1.13520398, -1.13520398, -1.13520398, -1.13520398, // 3
  0.27886807, 0.27886807, 0.27886807, 0.27886807, // 4
  -0.18628806, -0.18628806, -0.18628806, -0.18628806, // 5
  0.09678418, 0.09678418, 0.09678418, 0.09678418, // 6
  0.37409196, 0.37409196, 0.37409196, 0.37409196, // 7
  1.00002368, 1.00002368, 1.00002368, 1.00002368, // 8
  -1.26551223, -1.26551223, -1.26551223, -1.26551223, // 9
  1, 1, 1, 1, // 10
  0.5, 0.5, 0.5, 0.5, // 11
  SQRT_HALF, SQRT_HALF, SQRT_HALF, SQRT_HALF, // 12
  2, 2, 2, 2, // 13
  0, 0, 0, 0, // 14
  INV_SQRT_2PI, INV_SQRT_2PI, INV_SQRT_2PI, INV_SQRT_2PI, // 15
  -0.5, -0.5, -0.5, -0.5, // 16
], 16);

// @ts-ignore: decorator
@inline function gk(i: usize): v128 {
  return v128.load(GTAB + (i << 4));
}

/** erfc(z) for z >= 0 (z = +Inf: 0). */
// @ts-ignore: decorator
@inline function erfcPos4(z: v128): v128 {
  const t = f32x4.div(gk(10), f32x4.add(gk(10), f32x4.mul(gk(11), z)));
  // P(t) by Estrin's scheme (independent products, not a 9-deep Horner chain)
  const t2 = f32x4.mul(t, t);
  const t4 = f32x4.mul(t2, t2);
  const a0 = f32x4.add(gk(9), f32x4.mul(gk(8), t));
  const a1 = f32x4.add(gk(7), f32x4.mul(gk(6), t));
  const a2 = f32x4.add(gk(5), f32x4.mul(gk(4), t));
  const a3 = f32x4.add(gk(3), f32x4.mul(gk(2), t));
  const a4 = f32x4.add(gk(1), f32x4.mul(gk(0), t));
  const b0 = f32x4.add(a0, f32x4.mul(a1, t2));
  const b1 = f32x4.add(a2, f32x4.mul(a3, t2));
  const p = f32x4.add(f32x4.add(b0, f32x4.mul(b1, t4)), f32x4.mul(a4, f32x4.mul(t4, t4)));
  return f32x4.mul(t, exp4(f32x4.sub(p, f32x4.mul(z, z))));
}

/** erfc(-x / sqrt 2) = 1 + erf(x / sqrt 2), from erfc of |x| / sqrt 2. */
// @ts-ignore: decorator
@inline function cdf2(x: v128): v128 {
  const z = f32x4.mul(f32x4.abs(x), gk(12));
  const e = erfcPos4(z);
  return v128.bitselect(e, f32x4.sub(gk(13), e), f32x4.lt(x, gk(14)));
}

/** gelu(x) = x/2 erfc(-x / sqrt 2); NaN lanes keep x. */
// @ts-ignore: decorator
@inline function gelu4(x: v128): v128 {
  const r = f32x4.mul(f32x4.mul(gk(11), x), cdf2(x));
  return v128.bitselect(x, r, f32x4.ne(x, x));
}

/** g * gelu'(x) = g (erfc(-x / sqrt 2) / 2 + x e^(-x^2/2) / sqrt(2 pi)); NaN x or g gives NaN. */
// @ts-ignore: decorator
@inline function geluGrad4(x: v128, g: v128): v128 {
  const half = gk(11);
  const d = f32x4.add(f32x4.mul(half, cdf2(x)), f32x4.mul(f32x4.mul(x, gk(15)), exp4(f32x4.mul(f32x4.mul(gk(16), x), x))));
  const r = f32x4.mul(g, d);
  return v128.bitselect(f32x4.add(x, g), r, f32x4.ne(x, x));
}

/** Up to 4 elements of `fmt` from `i` (missing lanes 0). */
// @ts-ignore: decorator
@inline function loadPart(fmt: i32, p: usize, i: i32, k: i32): v128 {
  let v = f32x4.splat(0);
  const w: usize = 1;
  if (k > 0) v = f32x4.replace_lane(v, 0, load1(fmt, p + (<usize>i << w)));
  if (k > 1) v = f32x4.replace_lane(v, 1, load1(fmt, p + (<usize>(i + 1) << w)));
  if (k > 2) v = f32x4.replace_lane(v, 2, load1(fmt, p + (<usize>(i + 2) << w)));
  if (k > 3) v = f32x4.replace_lane(v, 3, load1(fmt, p + (<usize>(i + 3) << w)));
  return v;
}

// @ts-ignore: decorator
@inline function storePart(fmt: i32, p: usize, i: i32, k: i32, v: v128): void {
  const w: usize = 1;
  if (k > 0) store1(fmt, p + (<usize>i << w), f32x4.extract_lane(v, 0));
  if (k > 1) store1(fmt, p + (<usize>(i + 1) << w), f32x4.extract_lane(v, 1));
  if (k > 2) store1(fmt, p + (<usize>(i + 2) << w), f32x4.extract_lane(v, 2));
  if (k > 3) store1(fmt, p + (<usize>(i + 3) << w), f32x4.extract_lane(v, 3));
}

/** out[i] = gelu(x[i]), i < n, 16-bit `fmt` (F16 or BF16). */
// @ts-ignore: decorator
@inline export function gelu16(fmt: i32, x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const raw = v128.load(x + (<usize>i << 1));
    v128.store(out + (<usize>i << 1), narrow8(fmt, gelu4(widenLo(fmt, raw)), gelu4(widenHi(fmt, raw))));
  }
  for (; i < n; i += 4) {
    const k = min(4, n - i);
    storePart(fmt, out, i, k, gelu4(loadPart(fmt, x, i, k)));
  }
}

/** out[i] = g[i] * gelu'(x[i]), i < n, 16-bit `fmt`. */
// @ts-ignore: decorator
@inline export function geluGrad16(fmt: i32, x: usize, g: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const rx = v128.load(x + (<usize>i << 1));
    const rg = v128.load(g + (<usize>i << 1));
    const lo = geluGrad4(widenLo(fmt, rx), widenLo(fmt, rg));
    const hi = geluGrad4(widenHi(fmt, rx), widenHi(fmt, rg));
    v128.store(out + (<usize>i << 1), narrow8(fmt, lo, hi));
  }
  for (; i < n; i += 4) {
    const k = min(4, n - i);
    storePart(fmt, out, i, k, geluGrad4(loadPart(fmt, x, i, k), loadPart(fmt, g, i, k)));
  }
}
