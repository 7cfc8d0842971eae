/**
 * The LSTM cell's sigmoid and tanh of four float32 lanes, rounded to float32: the same bits as
 * transcendental.ts's float64 sigmoidV / tanhV rounded once (the reference's Math.exp / Math.tanh
 * rounding), at less cost.
 *
 * Why: those float64 functions carry exp's Taylor series to r^13 by Horner's rule (a few units in
 * float64's last place, one long chain of dependent operations), which only matters where the value
 * lies next to a midpoint between two float32 numbers; the forward recurrence runs five of them per
 * element and step (~37% of its time). Here a shorter series (to r^10, relative error below 3.2e-13,
 * by Estrin's scheme: a shallow chain) gives y; y is accepted when y (1 - tol) and y (1 + tol)
 * round to the same float32, tol bounding the distance to the full-length value, so that value
 * rounds there too (rounding is monotone). A group of four lanes with one lane rejected takes the
 * full-length path: NaNs, and of the other 2^32 float32 inputs 14,773 for sigmoid and 66,534 for
 * tanh. Checked over all 2^32 inputs (tools/check-lstm-gates.mjs): every accepted lane, and every
 * result, has the full-length path's bits.
 */
import { sigmoidV, tanhV, tanhFrom, lo64, hi64, join32 } from './transcendental';

const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const LOG2E: f64 = 1.4426950408889634;
/** 1.5 * 2^52: adding it rounds a float64 below 2^51 in size to an integer, held in the low bits. */
const SHIFTER: f64 = 6755399441055744.0;
/** Tolerances (relative) of the short sigmoid and tanh against the full-length ones (3x slack). */
export const SIGMOID_TOL: f64 = 1e-12;
/** tanh = 1 - 2 / (exp(2|x|) + 1) amplifies exp's relative error by 2 / (exp(2|x|) - 1) <= 9.03 for |x| >= 0.1. */
export const TANH_TOL: f64 = 1e-11;

/**
 * exp of two float64 lanes, the same reduction as transcendental.ts's expV (x = k ln2 + r, the
 * same k and r), the series to r^10 (truncation below 3.2e-13 relative for |r| <= ln2 / 2), k by
 * the shifter and 2^k from its low bits. x is clamped to [-700, 700] (2^k stays normal): sigmoid
 * and tanh round to the same float32 there. NaN stays NaN.
 */
// @ts-ignore: decorator
@inline function expShort(x0: v128): v128 {
  const x = f64x2.pmin(f64x2.pmax(x0, f64x2.splat(-700)), f64x2.splat(700));
  const t = f64x2.add(f64x2.mul(x, f64x2.splat(LOG2E)), f64x2.splat(SHIFTER));
  const k = f64x2.sub(t, f64x2.splat(SHIFTER));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI))), f64x2.mul(k, f64x2.splat(LN2_LO)));
  // Estrin's scheme (a shallower dependency chain than Horner's)
  const r2 = f64x2.mul(r, r), r4 = f64x2.mul(r2, r2), r8 = f64x2.mul(r4, r4);
  const one = f64x2.splat(1);
  const q0 = f64x2.add(one, r);
  const q1 = f64x2.add(f64x2.splat(0.5), f64x2.mul(r, f64x2.splat(1.0 / 6.0)));
  const q2 = f64x2.add(f64x2.splat(1.0 / 24.0), f64x2.mul(r, f64x2.splat(1.0 / 120.0)));
  const q3 = f64x2.add(f64x2.splat(1.0 / 720.0), f64x2.mul(r, f64x2.splat(1.0 / 5040.0)));
  const q4 = f64x2.add(f64x2.splat(1.0 / 40320.0), f64x2.mul(r, f64x2.splat(1.0 / 362880.0)));
  const s0 = f64x2.add(q0, f64x2.mul(q1, r2));
  const s1 = f64x2.add(q2, f64x2.mul(q3, r2));
  const s2 = f64x2.add(q4, f64x2.mul(f64x2.splat(1.0 / 3628800.0), r2));
  const p = f64x2.add(f64x2.add(s0, f64x2.mul(s1, r4)), f64x2.mul(s2, r8));
  // the low 12 bits of t's pattern are k (two's complement); the shift drops the shifter's bits
  return f64x2.mul(p, i64x2.shl(i64x2.add(t, i64x2.splat(1023)), 52));
}

// @ts-ignore: decorator
@inline export function sigmoidShort(x: v128): v128 {
  const one = f64x2.splat(1);
  return f64x2.div(one, f64x2.add(one, expShort(f64x2.neg(x))));
}

/** tanh as tanhV computes it (the exp form from |x| = 0.1 on, the odd series below, to x^11 here: 4e-15 relative). */
// @ts-ignore: decorator
@inline export function tanhShort(x: v128): v128 {
  const a = f64x2.abs(x);
  const x2 = f64x2.mul(x, x);
  const x4 = f64x2.mul(x2, x2);
  const u0 = f64x2.add(f64x2.splat(-1.0 / 3.0), f64x2.mul(x2, f64x2.splat(2.0 / 15.0)));
  const u1 = f64x2.add(f64x2.splat(-17.0 / 315.0), f64x2.mul(x2, f64x2.splat(62.0 / 2835.0)));
  const p = f64x2.add(u0, f64x2.mul(x4, f64x2.add(u1, f64x2.mul(x4, f64x2.splat(-1382.0 / 155925.0)))));
  return tanhFrom(x, expShort(f64x2.add(a, a)), p, x2);
}

/**
 * Per float32 lane, all ones where every value within tol (relative) of the float64 pairs lo, hi
 * rounds to the same float32 (f32x4.eq: a NaN is never accepted).
 */
// @ts-ignore: decorator
@inline export function acceptedLanes(lo: v128, hi: v128, tol: f64): v128 {
  const eLo = f64x2.mul(f64x2.abs(lo), f64x2.splat(tol)), eHi = f64x2.mul(f64x2.abs(hi), f64x2.splat(tol));
  const down = join32(f64x2.sub(lo, eLo), f64x2.sub(hi, eHi));
  const up = join32(f64x2.add(lo, eLo), f64x2.add(hi, eHi));
  return f32x4.eq(down, up);
}

/** sigmoid of four float32 lanes, rounded to float32 (sigmoidV's bits). */
// @ts-ignore: decorator
@inline export function sigmoid4(v: v128): v128 {
  const lo = sigmoidShort(lo64(v)), hi = sigmoidShort(hi64(v));
  if (i32x4.all_true(acceptedLanes(lo, hi, SIGMOID_TOL))) return join32(lo, hi);
  return sigmoidFull(v);
}

/** tanh of four float32 lanes, rounded to float32 (tanhV's bits). */
// @ts-ignore: decorator
@inline export function tanh4(v: v128): v128 {
  const lo = tanhShort(lo64(v)), hi = tanhShort(hi64(v));
  if (i32x4.all_true(acceptedLanes(lo, hi, TANH_TOL))) return join32(lo, hi);
  return tanhFull(v);
}

// The full-length paths, called (not inlined) on the rare rejection: inlined five times into the
// cell's loop they cost registers on the common path.
function sigmoidFull(v: v128): v128 {
  return join32(sigmoidV(lo64(v)), sigmoidV(hi64(v)));
}
function tanhFull(v: v128): v128 {
  return join32(tanhV(lo64(v)), tanhV(hi64(v)));
}
