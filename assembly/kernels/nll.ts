/**
 * The negative log-likelihood's per-target work (src/backend/wasm/native_nll.ts calls these; the
 * definition is src/backend/reference/kernels/nll.ts). float32 log-probabilities logp laid out
 * [N, C, S] (S: the elements after the class dim), int32 targets [N, S] (M = N S of them), an
 * optional float32 class weight w [C] (address 0: none). Target m = n S + s with class t counts
 * with weight wt = w[t] (1 without w), or 0 when t == ignoreIndex (then class 0 is read).
 *
 *   nll_check(target, M, C, ignoreIndex) -> i32
 *       the number of targets outside [0, C) other than ignoreIndex; call it first: the kernels
 *       below assume none.
 *   nll_pick(logp, target, w, M, C, S, ignoreIndex, losses, wts)
 *       losses[m] = -(logp[n, t, s] * wt) and wts[m] = wt, float32.
 *   nll_grad(out, g, scale, target, w, M, C, S, ignoreIndex)
 *       out [N, C, S] = 0, then out[n, t, s] = 0 + -(q * wt) with q = g[m] (reduction 'none': one
 *       gradient per target) or, with g = 0, q = scale (one for all).
 *
 * Exactly the JavaScript loops they replace: the product of two float32 values rounded to float32
 * is f32.mul (a float64 product of two floats is exact, so rounding it once to float32 is the same),
 * negation flips the sign, and 0 + x turns -0 into +0 and keeps NaN, in float32 as in float64. The
 * loops run on the calling thread: a loss has a few hundred to a few thousand targets.
 */

export function nll_check(target: usize, M: i32, C: i32, ignoreIndex: i32): i32 {
  let bad = 0;
  for (let m = 0; m < M; m++) {
    const t = load<i32>(target + (<usize>m << 2));
    if (t != ignoreIndex && (t < 0 || t >= C)) bad++;
  }
  return bad;
}

/** Weight of target class t (0 when ignored). */
// @ts-ignore: decorator
@inline function weightOf(w: usize, t: i32, ignoreIndex: i32): f32 {
  return t == ignoreIndex ? <f32>0 : w != 0 ? load<f32>(w + (<usize>t << 2)) : <f32>1;
}

/** Element index into [N, C, S] of target m's class (class 0 when ignored). */
// @ts-ignore: decorator
@inline function positionOf(m: i32, t: i32, C: i32, S: i32, ignoreIndex: i32): usize {
  const n = m / S;
  return (<usize>n * <usize>C + <usize>(t == ignoreIndex ? 0 : t)) * <usize>S + <usize>(m - n * S);
}

export function nll_pick(logp: usize, target: usize, w: usize, M: i32, C: i32, S: i32, ignoreIndex: i32, losses: usize, wts: usize): void {
  for (let m = 0; m < M; m++) {
    const t = load<i32>(target + (<usize>m << 2));
    const wt = weightOf(w, t, ignoreIndex);
    const lp = load<f32>(logp + (positionOf(m, t, C, S, ignoreIndex) << 2));
    store<f32>(losses + (<usize>m << 2), -(lp * wt));
    store<f32>(wts + (<usize>m << 2), wt);
  }
}

export function nll_grad(out: usize, g: usize, scale: f32, target: usize, w: usize, M: i32, C: i32, S: i32, ignoreIndex: i32): void {
  memory.fill(out, 0, <usize>M * <usize>C << 2);
  for (let m = 0; m < M; m++) {
    const t = load<i32>(target + (<usize>m << 2));
    const q = g != 0 ? load<f32>(g + (<usize>m << 2)) : scale;
    store<f32>(out + (positionOf(m, t, C, S, ignoreIndex) << 2), <f32>0 + -(q * weightOf(w, t, ignoreIndex)));
  }
}
