/**
 * The negative log-likelihood loss as two fused ops. F.nllLoss (and so F.crossEntropy with class
 * targets) takes them where the backend runs their kernels natively (webgpu, wasm): the loss is one
 * dispatch and its gradient one or two, where the composite definition in src/nn/functional.ts is
 * some 20 small elementwise, gather and reduction ops. They are bit for bit that composite on the
 * reference backend (test/nll_fused.test.ts). Kernels: src/backend/kernels.ts (contract),
 * src/backend/reference/kernels/nll.ts (definition).
 *
 * As PyTorch's nll_loss, the class weight gets no gradient here: F.nllLoss keeps the composite
 * when the weight requires one.
 */
import type { Tensor } from '../tensor/tensor.js';
import { apply } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { shapeStr } from '../ops/util.js';
import type { NllParams } from '../backend/kernels.js';

const REDUCTIONS = new Set(['mean', 'sum', 'none']);

/** The loss of log-probabilities logp and int32 targets; inputs [logp, target, w?]. */
defineOp<NllParams>({
  name: 'nllLossFused', autocast: 'none',
  infer: ({ 0: logp, 1: target, 2: w }, p) => {
    if (!REDUCTIONS.has(p.reduction)) throw new RangeError(`nllLoss: reduction must be 'mean', 'sum' or 'none', got '${p.reduction as string}'`);
    const C = logp!.shape[p.classDim]!;
    if (w && (w.ndim !== 1 || w.shape[0] !== C)) throw new RangeError(`nllLoss: weight ${shapeStr(w.shape)} must have shape [${C}]`);
    return { shape: p.reduction === 'none' ? target!.shape : [], dtype: logp!.dt };
  },
  backward: (g, { inputs: { 0: logp, 1: target, 2: w }, params }) =>
    w ? [apply('nllLossBackward', [g, logp!, target!, w], params), null, null] : [apply('nllLossBackward', [g, logp!, target!], params), null],
});

/** The gradient of the loss with respect to logp; inputs [g, logp, target, w?] (no double backward, as the engine has none). */
defineOp<NllParams>({
  name: 'nllLossBackward', autocast: 'none',
  infer: ({ 1: logp }) => ({ shape: logp!.shape, dtype: logp!.dt }),
});

/** Whether F.nllLoss takes the fused ops: `fused` forces either way, else where the backend runs them natively. */
export function useFusedNll(logp: Tensor, weight: Tensor | undefined, fused: boolean | undefined): boolean {
  const weightGrad = weight?.requiresGrad ?? false;
  if (fused === true && weightGrad) throw new Error('nllLoss: the fused loss gives the class weight no gradient (as PyTorch); pass fused: false for one');
  return fused ?? (!weightGrad && (logp.backend.nativeKernel?.('nllLossFused') ?? false));
}
