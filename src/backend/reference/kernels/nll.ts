/**
 * The negative log-likelihood loss as two fused kernels (src/nn/nll_ops.ts): bit for bit the
 * composite nllLoss of src/nn/functional.ts on this backend (every per-element product rounded to
 * float32 as its ops round it, the sums accumulated wider and rounded once, as its reductions are).
 * logp [N,C,...] or [C] (class dim 1, or 0 for [C]); target int32 [N,...] (or 0-d); w [C] optional.
 * A target equal to ignoreIndex counts with weight 0. M = the number of targets.
 *
 *   nllLossFused(logp, target, [w])           -> 'none': l[m] = -(logp[m, t_m] * w_t)   (shape of target)
 *                                                'sum':  sum_m l[m]                          (0-d)
 *                                                'mean': sum_m l[m] / sum_m w_t_m            (0-d; NaN when that is 0)
 *   nllLossBackward(g, logp, target, [w])     -> dlogp [shape of logp]: 0 + -(q * w_t) at [m, t_m] (class 0 for an
 *                                                ignored target, whose weight is 0), 0 elsewhere,
 *                                                q = g[m] ('none'), g ('sum'), g / sum_m w_t_m ('mean'; 1 for a 0 sum)
 */
import type { NllParams } from '../../kernels.js';
import { arithmeticRounding, type RefArray, type RefKernel, type RefKernels } from './types.js';

/** For each target m: its class, and where logp's element [m, class] lives in storage order. */
function targets(logp: RefArray, target: RefArray, p: NllParams): { cls: number[]; at: number[] } {
  const C = logp.shape[p.classDim]!;
  let S = 1;
  for (let d = p.classDim + 1; d < logp.shape.length; d++) S *= logp.shape[d]!;
  const cls: number[] = [];
  const at: number[] = [];
  target.data.forEach((t, m) => {
    cls.push(t);
    const n = Math.floor(m / S);
    at.push((n * C + (t === p.ignoreIndex ? 0 : t)) * S + (m % S));
  });
  return { cls, at };
}

/** Weight of each target (0 when ignored), as the composite's mask times w. */
const weights = (cls: readonly number[], w: RefArray | undefined, p: NllParams): number[] =>
  cls.map((t) => (t === p.ignoreIndex ? 0 : w ? w.data[t]! : 1));

const nllLossFused: RefKernel<NllParams> = ([logp, target, w], p) => {
  const f = arithmeticRounding(logp!);
  const { cls, at } = targets(logp!, target!, p);
  const wt = weights(cls, w, p);
  const losses = at.map((i, m) => -f(logp!.data[i]! * wt[m]!));
  if (p.reduction === 'none') return [Float64Array.from(losses)];
  const total = f(losses.reduce((a, b) => a + b, 0));
  if (p.reduction === 'sum') return [Float64Array.of(total)];
  const den = f(wt.reduce((a, b) => a + b, 0));
  return [Float64Array.of(total / den)];
};

const nllLossBackward: RefKernel<NllParams> = ([g, logp, target, w], p) => {
  const f = arithmeticRounding(logp!);
  const { cls, at } = targets(logp!, target!, p);
  const wt = weights(cls, w, p);
  const out = new Float64Array(logp!.data.length);
  let q = (m: number) => g!.data[m]!;
  if (p.reduction === 'sum') q = () => g!.data[0]!;
  if (p.reduction === 'mean') {
    const den = f(wt.reduce((a, b) => a + b, 0));
    const scaled = f(g!.data[0]! / (den === 0 ? 1 : den));
    q = () => scaled;
  }
  // added into zeros as the composite's scatter does (so -0 becomes +0, NaN stays NaN)
  at.forEach((i, m) => (out[i] = out[i]! + -f(q(m) * wt[m]!)));
  return [out];
};

export const nllKernels = { nllLossFused, nllLossBackward } satisfies RefKernels;
