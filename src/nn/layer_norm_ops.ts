/**
 * Layer normalisation as fused ops. F.layerNorm takes them where the backend runs their kernels
 * natively (wasm): a LayerNorm is then two kernels forward (statistics, normalisation) and two
 * backward (input gradient, weight/bias sums) instead of some 30 elementwise and reduction ops,
 * which in a small transformer cost more in per-op host time than in arithmetic. The statistics
 * (mean and rstd of each row, float32) are computed once, in the forward, and saved for the
 * backward as PyTorch saves them; they are an input of the other ops, detached, since
 * layerNormFused's backward is the whole gradient, through the row mean and variance included.
 * Kernels: src/backend/reference/kernels/layer_norm.ts (the definition).
 *
 * Autocast: none here; F.layerNorm's op ('float32' in autocast) casts before it calls these.
 */
import type { Tensor } from '../tensor/tensor.js';
import { float32, float64 } from '../dtype/dtype.js';
import { apply } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { castTo, shapeStr } from '../ops/util.js';
import { narrow, reshape } from '../ops/shape.js';
import type { LayerNormParams } from '../backend/kernels.js';

/** The statistics' dtype: float32, float64 for a float64 input (gradcheck). */
const statsDtype = (x: Tensor) => (x.dt === float64 ? float64 : float32);

function rowsOf(op: string, x: Tensor, p: LayerNormParams): number {
  if (!(p.size >= 1) || x.numel % p.size !== 0 || x.shape[x.ndim - 1] === undefined) {
    throw new RangeError(`${op}: normalized size ${p.size} does not divide input ${shapeStr(x.shape)}`);
  }
  return x.numel / p.size;
}

function checkStats(op: string, x: Tensor, stats: Tensor, p: LayerNormParams): void {
  const R = rowsOf(op, x, p);
  if (stats.ndim !== 2 || stats.shape[0] !== 2 || stats.shape[1] !== R || stats.dt !== statsDtype(x)) {
    throw new RangeError(`${op}: statistics ${shapeStr(stats.shape)} ${stats.dtype} must be layerNormStats of the input (${shapeStr([2, R])} ${statsDtype(x).name})`);
  }
}

function checkAffine(op: string, affine: readonly Tensor[], p: LayerNormParams): void {
  if (affine.length !== Number(p.hasWeight) + Number(p.hasBias)) throw new Error(`${op}: ${affine.length} affine inputs for hasWeight=${p.hasWeight}, hasBias=${p.hasBias}`);
  for (const t of affine) if (t.numel !== p.size) throw new RangeError(`${op}: weight/bias ${shapeStr(t.shape)} must have ${p.size} elements`);
}

/** [2,R] float32 (float64 for a float64 input): each row's mean and 1 / sqrt(biased variance + eps). */
defineOp<LayerNormParams>({
  name: 'layerNormStats', autocast: 'none',
  infer: ([x], p) => ({ shape: [2, rowsOf('layerNormStats', x!, p)], dtype: statsDtype(x!) }),
});

/** y = (x - mean) * rstd * w + b; inputs [x, stats, w?, b?] with stats = layerNormStats(x), detached. */
defineOp<LayerNormParams>({
  name: 'layerNormFused', autocast: 'none',
  infer: ([x, stats, ...affine], p) => {
    checkStats('layerNormFused', x!, stats!, p);
    checkAffine('layerNormFused', affine, p);
    return { shape: x!.shape, dtype: x!.dt };
  },
  backward: (g, { inputs: [x, stats, ...affine], params }) => {
    const w = params.hasWeight ? affine[0]! : null;
    const b = params.hasBias ? affine[params.hasWeight ? 1 : 0]! : null;
    const dx = x!.requiresGrad ? apply('layerNormBackwardInput', w ? [g, x!, stats!, w] : [g, x!, stats!], params) : null;
    const sums = w?.requiresGrad || b?.requiresGrad ? apply('layerNormGradSums', [g, x!, stats!], params) : null;
    const row = (r: number, like: Tensor) => castTo(reshape(narrow(sums!, 0, r, 1), like.shape), like.dt);
    const grads: (Tensor | null)[] = [dx, null];
    if (w) grads.push(w.requiresGrad ? row(0, w) : null);
    if (b) grads.push(b.requiresGrad ? row(1, b) : null);
    return grads;
  },
});

/** [2,D] (the statistics' dtype): sums over the rows of g * xhat and of g (the weight and bias gradients); inputs [g, x, stats]. */
defineOp<LayerNormParams>({
  name: 'layerNormGradSums', autocast: 'none',
  infer: ([g, x, stats], p) => {
    if (g!.shape.join() !== x!.shape.join()) throw new RangeError(`layerNormGradSums: gradient ${shapeStr(g!.shape)} does not match input ${shapeStr(x!.shape)}`);
    checkStats('layerNormGradSums', x!, stats!, p);
    return { shape: [2, p.size], dtype: stats!.dt };
  },
});

/** The input gradient from g, x, its statistics and the weight (inputs [g, x, stats, w?]). */
defineOp<LayerNormParams>({
  name: 'layerNormBackwardInput', autocast: 'none',
  infer: ([g, x, stats], p) => {
    if (g!.shape.join() !== x!.shape.join()) throw new RangeError(`layerNormBackwardInput: gradient ${shapeStr(g!.shape)} does not match input ${shapeStr(x!.shape)}`);
    checkStats('layerNormBackwardInput', x!, stats!, p);
    return { shape: x!.shape, dtype: x!.dt };
  },
});

/** Layer norm over the last `size` elements through the fused ops (x, w, b of one dtype). */
export function fusedLayerNorm(x: Tensor, w: Tensor | undefined, b: Tensor | undefined, size: number, eps: number): Tensor {
  const params: LayerNormParams = { size, eps, hasWeight: !!w, hasBias: !!b };
  const stats = apply('layerNormStats', [x.detach()], params);
  const xs = [x, stats];
  if (w) xs.push(w);
  if (b) xs.push(b);
  return apply('layerNormFused', xs, params);
}
