/**
 * Layer normalisation as fused kernels over the last `size` (D) elements of each of R rows, in
 * float64, each output rounded once. xhat = (x - mean) * rstd with the row's mean and
 * rstd = 1 / sqrt(biased variance + eps).
 *
 *   layerNormStats(x)                        -> stats [2,R]: mean, rstd
 *   layerNormFused(x, stats, [w], [b])       -> y = xhat * w + b
 *   layerNormGradSums(g, x, stats)           -> [2,D]: sum over rows of g * xhat, of g
 *   layerNormBackwardInput(g, x, stats, [w]) -> dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat))
 *
 * The last three take the statistics as layerNormStats gave them (rounded to float32 for any input
 * but float64), computed once in the forward, as PyTorch saves mean and rstd for the backward.
 */
import type { LayerNormParams } from '../../kernels.js';
import type { RefArray, RefKernel, RefKernels } from './types.js';

/** [R, D] of x, and the statistics as mean and rstd views. */
function rowsOf(x: RefArray, stats: RefArray): { R: number; D: number; mean: Float64Array; rstd: Float64Array } {
  const R = stats.shape[1]!;
  return { R, D: x.data.length / Math.max(R, 1), mean: stats.data.subarray(0, R), rstd: stats.data.subarray(R, 2 * R) };
}

const layerNormStats: RefKernel<LayerNormParams> = ([x], p) => {
  const D = p.size;
  const R = D === 0 ? 0 : x!.data.length / D;
  const out = new Float64Array(2 * R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += x!.data[r * D + j]!;
    const m = s / D;
    let q = 0;
    for (let j = 0; j < D; j++) q += (x!.data[r * D + j]! - m) ** 2;
    out[r] = m;
    out[R + r] = 1 / Math.sqrt(q / D + p.eps);
  }
  return [out];
};

const layerNormFused: RefKernel<LayerNormParams> = ([x, stats, ...affine], p) => {
  const { R, D, mean, rstd } = rowsOf(x!, stats!);
  const w = p.hasWeight ? affine[0]!.data : null;
  const b = p.hasBias ? affine[p.hasWeight ? 1 : 0]!.data : null;
  const y = new Float64Array(x!.data.length);
  for (let r = 0; r < R; r++) {
    for (let j = 0, i = r * D; j < D; j++, i++) y[i] = (x!.data[i]! - mean[r]!) * rstd[r]! * (w ? w[j]! : 1) + (b ? b[j]! : 0);
  }
  return [y];
};

const layerNormGradSums: RefKernel<LayerNormParams> = ([g, x, stats]) => {
  const { R, D, mean, rstd } = rowsOf(x!, stats!);
  const out = new Float64Array(2 * D);
  for (let r = 0; r < R; r++) {
    for (let j = 0, i = r * D; j < D; j++, i++) {
      out[j] += g!.data[i]! * (x!.data[i]! - mean[r]!) * rstd[r]!;
      out[D + j] += g!.data[i]!;
    }
  }
  return [out];
};

const layerNormBackwardInput: RefKernel<LayerNormParams> = ([g, x, stats, w], p) => {
  const { R, D, mean, rstd } = rowsOf(x!, stats!);
  const dx = new Float64Array(x!.data.length);
  for (let r = 0; r < R; r++) {
    let a = 0;
    let c = 0;
    for (let j = 0, i = r * D; j < D; j++, i++) {
      const gw = g!.data[i]! * (p.hasWeight ? w!.data[j]! : 1);
      a += gw;
      c += gw * (x!.data[i]! - mean[r]!) * rstd[r]!;
    }
    a /= D;
    c /= D;
    for (let j = 0, i = r * D; j < D; j++, i++) {
      const gw = g!.data[i]! * (p.hasWeight ? w!.data[j]! : 1);
      dx[i] = rstd[r]! * (gw - a - (x!.data[i]! - mean[r]!) * rstd[r]! * c);
    }
  }
  return [dx];
};

export const layerNormKernels = { layerNormStats, layerNormFused, layerNormGradSums, layerNormBackwardInput } satisfies RefKernels;
