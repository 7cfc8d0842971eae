/**
 * Batch normalisation in training mode as fused kernels (channel = dim 1 of [N,C,...]), in float64,
 * each output rounded once. xhat = (x - mean) / sqrt(var + eps) with the batch mean and biased
 * variance of each channel over its M = numel / C values.
 *
 *   batchNormStats(x)                               -> stats [2,C]: mean, biased variance
 *   batchNormTrain(x, stats, [w], [b])              -> y = xhat * w + b
 *   batchNormGradSums(g, x, stats)                  -> [2,C]: sum(g * xhat), sum(g)
 *   batchNormBackwardInput(g, x, stats, sums, [w])  -> dx = w / sqrt(var + eps) * (g - sum(g) / M - xhat * sum(g * xhat) / M)
 *   batchNormRunningUpdate(runningMean, runningVar, stats) -> runningMean, runningVar (in place; see below)
 *
 * The last three take the statistics as batchNormStats gave them (rounded to float32 for any input
 * but float64), computed once in the forward, as PyTorch saves mean and invstd for the backward.
 */
import type { BatchNormParams, BatchNormRunningParams, NoParams } from '../../kernels.js';
import { arithmeticRounding, type RefArray, type RefKernel, type RefKernels } from './types.js';

/** [channels, values per channel (N times the spatial size), spatial size]. */
export function channelLayout(shape: readonly number[]): [number, number, number] {
  const C = shape[1]!;
  let S = 1;
  for (let d = 2; d < shape.length; d++) S *= shape[d]!;
  return [C, shape[0]! * S, S];
}

function computeStats(x: RefArray): { mean: Float64Array; variance: Float64Array } {
  const [C, M, S] = channelLayout(x.shape);
  const N = M / S;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0, o = (n * C + c) * S; i < S; i++) s += x.data[o + i]!;
    const m = s / M;
    let q = 0;
    for (let n = 0; n < N; n++) for (let i = 0, o = (n * C + c) * S; i < S; i++) q += (x.data[o + i]! - m) ** 2;
    mean[c] = m;
    variance[c] = q / M;
  }
  return { mean, variance };
}

/** Calls visit(index, channel) for every element, in storage order. */
function forEach(shape: readonly number[], visit: (i: number, c: number) => void): void {
  const [C, M, S] = channelLayout(shape);
  const total = M * C;
  for (let i = 0; i < total; i++) visit(i, Math.floor(i / S) % C);
}

/** The statistics input ([2,C]: means, then variances). */
function givenStats(stats: RefArray): { mean: Float64Array; variance: Float64Array } {
  const C = stats.shape[1]!;
  return { mean: stats.data.subarray(0, C), variance: stats.data.subarray(C, 2 * C) };
}

const batchNormStats: RefKernel<NoParams> = ([x]) => {
  const { mean, variance } = computeStats(x!);
  const out = new Float64Array(2 * mean.length);
  out.set(mean, 0);
  out.set(variance, mean.length);
  return [out];
};

const batchNormTrain: RefKernel<BatchNormParams> = ([x, stats, ...affine], p) => {
  const { mean, variance } = givenStats(stats!);
  const w = p.hasWeight ? affine[0]!.data : null;
  const b = p.hasBias ? affine[p.hasWeight ? 1 : 0]!.data : null;
  const y = new Float64Array(x!.data.length);
  forEach(x!.shape, (i, c) => {
    const xhat = (x!.data[i]! - mean[c]!) / Math.sqrt(variance[c]! + p.eps);
    y[i] = xhat * (w ? w[c]! : 1) + (b ? b[c]! : 0);
  });
  return [y];
};

const batchNormGradSums: RefKernel<BatchNormParams> = ([g, x, stats], p) => {
  const { mean, variance } = givenStats(stats!);
  const C = mean.length;
  const out = new Float64Array(2 * C);
  forEach(x!.shape, (i, c) => {
    const xhat = (x!.data[i]! - mean[c]!) / Math.sqrt(variance[c]! + p.eps);
    out[c] += g!.data[i]! * xhat;
    out[C + c] += g!.data[i]!;
  });
  return [out];
};

const batchNormBackwardInput: RefKernel<BatchNormParams> = ([g, x, stats, sums, w], p) => {
  const { mean, variance } = givenStats(stats!);
  const C = mean.length;
  const M = channelLayout(x!.shape)[1];
  const dx = new Float64Array(x!.data.length);
  forEach(x!.shape, (i, c) => {
    const invstd = 1 / Math.sqrt(variance[c]! + p.eps);
    const xhat = (x!.data[i]! - mean[c]!) * invstd;
    const scale = (p.hasWeight ? w!.data[c]! : 1) * invstd;
    dx[i] = scale * (g!.data[i]! - sums!.data[C + c]! / M - (xhat * sums!.data[c]!) / M);
  });
  return [dx];
};

/**
 * The running statistics in one kernel, as F.batchNorm's composite update computes them (its
 * scalars rounded to the tensors' dtype, each product and sum rounded):
 *   runningMean = (runningMean * (1 - momentum)) + (mean * momentum)
 *   runningVar  = (runningVar * (1 - momentum)) + ((var * unbiasFactor) * momentum)
 * inputs [runningMean, runningVar, stats]; outputs [runningMean, runningVar] (the same views).
 */
const batchNormRunningUpdate: RefKernel<BatchNormRunningParams> = ([rm, rv, stats], p) => {
  const { mean, variance } = givenStats(stats!);
  const [rr, rs] = [arithmeticRounding(rm!), arithmeticRounding(stats!)];
  // a sum of a running-dtype and a stats-dtype product is rounded in the wider of the two
  const rsum = arithmeticRounding(rm!, stats!);
  const keep = [rr(1 - p.momentum), rs(p.momentum), rs(p.unbiasFactor)] as const;
  const outMean = rm!.data.map((r, c) => rsum(rr(r * keep[0]) + rs(mean[c]! * keep[1])));
  const outVar = rv!.data.map((r, c) => rsum(rr(r * keep[0]) + rs(rs(variance[c]! * keep[2]) * keep[1])));
  return [outMean, outVar];
};

export const batchNormKernels = { batchNormStats, batchNormTrain, batchNormGradSums, batchNormBackwardInput, batchNormRunningUpdate } satisfies RefKernels;
