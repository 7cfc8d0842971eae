/**
 * float64 SIMD transcendentals shared by the activation kernels (unary.ts) and the fused LSTM cell
 * (lstm.ts): exp, sigmoid and tanh of two float64 lanes, a few units in the last float64 place of
 * JavaScript's Math.exp / Math.tanh, so float32 results round as the reference kernels' do. Helpers
 * only (they take v128): this file is not re-exported by assembly/index.ts.
 */
// Cody-Waite split of ln 2 (fdlibm's): k * LN2_HI is exact for |k| < 2^11
const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const LOG2E: f64 = 1.4426950408889634;

/**
 * exp of two float64 lanes: x = k ln2 + r (|r| <= ln2 / 2), exp(r) by its Taylor series to r^13
 * (remainder below 4e-18), times 2^k built in the exponent bits. x is clamped to [-700, 700]
 * for the computation (2^k stays a normal number), which changes no value rounded to float32
 * afterwards (sigmoid and tanh are 0 or 1 there); beyond float64's range the result is Inf or 0
 * as Math.exp's; NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function expV(x0: v128): v128 {
  const x = f64x2.min(f64x2.max(x0, f64x2.splat(-700)), f64x2.splat(700));
  const k = f64x2.nearest(f64x2.mul(x, f64x2.splat(LOG2E)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI))), f64x2.mul(k, f64x2.splat(LN2_LO)));
  let p = f64x2.splat(1.0 / 6227020800.0); // 1/13!
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 479001600.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 39916800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 3628800.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 362880.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 40320.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 5040.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 720.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 120.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 24.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0 / 6.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(0.5));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1.0));
  const ki = i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(k));
  const y = f64x2.mul(p, i64x2.shl(i64x2.add(ki, i64x2.splat(1023)), 52));
  // where float64 exp overflows or underflows to 0, so does this (inf * 0 in a gradient stays NaN)
  const inf = v128.bitselect(f64x2.splat(Infinity), y, f64x2.gt(x0, f64x2.splat(709.782712893384)));
  return v128.bitselect(f64x2.splat(0), inf, f64x2.lt(x0, f64x2.splat(-745.1332191019412)));
}

// @ts-ignore: decorator
@inline export function sigmoidV(x: v128): v128 {
  const one = f64x2.splat(1);
  return f64x2.div(one, f64x2.add(one, expV(f64x2.neg(x))));
}

/**
 * tanh of two float64 lanes: sign(x) (1 - 2 / (exp(2|x|) + 1)) for |x| >= 0.1, where the
 * subtraction loses at most a factor 10 of relative accuracy, and the odd Taylor series to x^17
 * below (remainder under 1e-19 relative), which keeps tiny values and -0 exact.
 */
// @ts-ignore: decorator
@inline export function tanhV(x: v128): v128 {
  const a = f64x2.abs(x);
  const x2 = f64x2.mul(x, x);
  let p = f64x2.splat(6404582.0 / 10854718875.0);
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(-929569.0 / 638512875.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(21844.0 / 6081075.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(-1382.0 / 155925.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(62.0 / 2835.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(-17.0 / 315.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(2.0 / 15.0));
  p = f64x2.add(f64x2.mul(p, x2), f64x2.splat(-1.0 / 3.0));
  return tanhFrom(x, expV(f64x2.add(a, a)), p, x2);
}

/**
 * tanh of two float64 lanes x from e = exp(2|x|) and the odd series' p (tanh x = x (1 + p x^2),
 * x2 = x^2): sign(x) (1 - 2 / (e + 1)) from |x| = 0.1 on, the series below (it keeps -0).
 */
// @ts-ignore: decorator
@inline export function tanhFrom(x: v128, e: v128, p: v128, x2: v128): v128 {
  const one = f64x2.splat(1);
  const big = f64x2.sub(one, f64x2.div(f64x2.splat(2), f64x2.add(e, one)));
  const signed = v128.bitselect(x, big, i64x2.splat(0x8000000000000000));
  const small = f64x2.mul(x, f64x2.add(one, f64x2.mul(p, x2))); // x (1 + ...): keeps -0
  return v128.bitselect(small, signed, f64x2.lt(f64x2.abs(x), f64x2.splat(0.1)));
}

/** Four float32 lanes through `f` in float64, rounded back to float32 once. */
// @ts-ignore: decorator
@inline export function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
// @ts-ignore: decorator
@inline export function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<i64>(v, v, 1, 1));
}
// @ts-ignore: decorator
@inline export function join32(a: v128, b: v128): v128 {
  return v128.shuffle<i64>(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 2);
}

