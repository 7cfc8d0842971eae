/**
 * Batch normalisation in training mode as fused ops. F.batchNorm uses them where the backend runs
 * their kernels natively: on a GPU a layer is then two dispatches forward (statistics, normalise)
 * and two backward (gradient sums, input gradient) instead of some 50 elementwise and reduction
 * ops, with far less memory traffic. Channel = dim 1. The statistics are computed once, in the
 * forward, and saved for the backward (PyTorch saves mean and invstd): they are an input of the
 * other ops, detached, since batchNormTrain's backward is the whole gradient, through the batch
 * mean and variance included.
 * Kernels: src/backend/reference/kernels/batch_norm.ts (the definition).
 *
 * Autocast: none. As PyTorch's batch_norm under CUDA autocast, the input keeps its dtype (a float16
 * convolution output stays float16) while the statistics and the arithmetic are float32 or wider;
 * the output is rounded once to the input's dtype. Weight and bias keep theirs (float32 masters).
 */
import type { Tensor } from '../tensor/tensor.js';
import { float32, float64 } from '../dtype/dtype.js';
import { apply } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { castTo, shapeStr } from '../ops/util.js';
import { narrow, reshape } from '../ops/shape.js';
import type { BatchNormParams } from '../backend/kernels.js';

function check(op: string, x: Tensor, affine: readonly Tensor[], p: BatchNormParams): void {
  if (x.ndim < 2) throw new RangeError(`${op}: expected an input of at least 2 dims [N,C,...], got ${shapeStr(x.shape)}`);
  if (affine.length !== Number(p.hasWeight) + Number(p.hasBias)) throw new Error(`${op}: ${affine.length} affine inputs for hasWeight=${p.hasWeight}, hasBias=${p.hasBias}`);
  const C = x.shape[1]!;
  for (const t of affine) {
    if (t.ndim !== 1 || t.shape[0] !== C) throw new RangeError(`${op}: weight/bias ${shapeStr(t.shape)} must have shape [${C}]`);
  }
}

/** The statistics' dtype: float32, float64 for a float64 input (gradcheck). */
const statsDtype = (x: Tensor) => (x.dt === float64 ? float64 : float32);

function checkStats(op: string, x: Tensor, stats: Tensor): void {
  if (stats.ndim !== 2 || stats.shape[0] !== 2 || stats.shape[1] !== x.shape[1] || stats.dt !== statsDtype(x)) {
    throw new RangeError(`${op}: statistics ${shapeStr(stats.shape)} ${stats.dtype} must be batchNormStats of the input (${shapeStr([2, x.shape[1]!])} ${statsDtype(x).name})`);
  }
}

/** [2,C] float32 (float64 for a float64 input): each channel's batch mean and biased variance. */
defineOp({
  name: 'batchNormStats', autocast: 'none',
  infer: ([x]) => {
    if (x!.ndim < 2) throw new RangeError(`batchNormStats: expected an input of at least 2 dims [N,C,...], got ${shapeStr(x!.shape)}`);
    return { shape: [2, x!.shape[1]!], dtype: statsDtype(x!) };
  },
});

/**
 * y = (x - mean) / sqrt(var + eps) * w + b; inputs [x, stats, w?, b?] with stats = batchNormStats(x)
 * (detached: the backward below is the whole gradient, through the statistics too).
 */
defineOp<BatchNormParams>({
  name: 'batchNormTrain', autocast: 'none',
  infer: ([x, stats, ...affine], p) => {
    check('batchNormTrain', x!, affine, p);
    checkStats('batchNormTrain', x!, stats!);
    return { shape: x!.shape, dtype: x!.dt };
  },
  backward: (g, { inputs: [x, stats, ...affine], params }) => {
    const C = x!.shape[1]!;
    const sums = apply('batchNormGradSums', [g, x!, stats!], params);
    const w = params.hasWeight ? affine[0]! : null;
    const b = params.hasBias ? affine[params.hasWeight ? 1 : 0]! : null;
    const row = (r: number, like: Tensor) => castTo(reshape(narrow(sums, 0, r, 1), [C]), like.dt);
    const dx = x!.requiresGrad ? apply('batchNormBackwardInput', w ? [g, x!, stats!, sums, w] : [g, x!, stats!, sums], params) : null;
    const grads: (Tensor | null)[] = [dx, null];
    if (w) grads.push(w.requiresGrad ? row(0, w) : null);
    if (b) grads.push(b.requiresGrad ? row(1, b) : null);
    return grads;
  },
});

/** [2,C] (the statistics' dtype): sum(g * xhat) and sum(g) per channel (the weight and bias gradients); inputs [g, x, stats]. */
defineOp<BatchNormParams>({
  name: 'batchNormGradSums', autocast: 'none',
  infer: ([g, x, stats]) => {
    if (g!.shape.join() !== x!.shape.join()) throw new RangeError(`batchNormGradSums: gradient ${shapeStr(g!.shape)} does not match input ${shapeStr(x!.shape)}`);
    checkStats('batchNormGradSums', x!, stats!);
    return { shape: [2, x!.shape[1]!], dtype: stats!.dt };
  },
});

/** The input gradient from g, x, its statistics, batchNormGradSums and the weight (inputs [g, x, stats, sums, w?]). */
defineOp<BatchNormParams>({
  name: 'batchNormBackwardInput', autocast: 'none',
  infer: ([g, x, stats]) => {
    checkStats('batchNormBackwardInput', x!, stats!);
    return { shape: x!.shape, dtype: x!.dt };
  },
});
