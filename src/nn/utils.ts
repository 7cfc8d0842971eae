/** mx.nn.utils: gradient clipping. */
import { float32 } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { castTo } from '../ops/util.js';
import { add, mul, abs } from '../ops/elementwise.js';
import { stack } from '../ops/shape.js';
import { sum, max } from '../ops/reduce.js';
import { full } from '../ops/creation.js';
import { apply } from '../ops/dispatch.js';
import { scaleInPlaceFindingNonFinite } from '../ops/foreach.js';
import { defineOp } from '../ops/registry.js';

/** [x_1..k] -> float32 [k]: each input's sum of squares (the backend's `sumSquares` kernel; no gradient). */
defineOp({ name: 'sumSquares', autocast: 'none', infer: (xs) => ({ shape: [xs.length], dtype: float32 }) });

/**
 * Scale gradients in place so that their total norm is at most `maxNorm`; returns the total norm
 * (float32, before clipping). Call it after `scaler.unscale_(opt)` under loss scaling.
 */
export function clipGradNorm_(parameters: Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  const grads = [...parameters].map((p) => p.grad).filter((g): g is Tensor => g !== null);
  return noGrad(() => {
    if (grads.length === 0) return full([], 0);
    let total: Tensor;
    if (normType === Infinity) {
      total = max(stack(grads.map((g) => max(abs(castTo(g, float32))))));
    } else if (normType === 2 && nativeForeach(grads)) {
      return foreachClip2(grads.filter((g) => g.numel > 0), maxNorm);
    } else {
      // (x * x for the 2-norm: the same float32 value as |x|^2, without a pow kernel)
      const powered = (g: Tensor) => (normType === 2 ? mul(g, g) : abs(g).pow(normType));
      const powSum = grads.map((g) => sum(powered(castTo(g, float32)))).reduce((a, b) => add(a, b));
      total = powSum.pow(1 / normType);
    }
    const coef = mul(full([], maxNorm), total.add(1e-6).reciprocal()).clamp(null, 1);
    for (const g of grads) g.copy_(mul(castTo(g, float32), coef));
    return total;
  });
}

/** Whether the gradients' backend runs the multi-tensor kernels natively (wasm), all on one backend. */
function nativeForeach(grads: readonly Tensor[]): boolean {
  const backend = grads[0]!.backend;
  return grads.every((g) => g.backend === backend) && (backend.nativeKernel?.('sumSquares') ?? false) && (backend.nativeKernel?.('ampUnscale') ?? false);
}

/**
 * The 2-norm clip as PyTorch's foreach path: one `sumSquares` call for the norm, one multi-tensor
 * in-place scale for the gradients (`ampUnscale`, whose found-inf flag is not needed here), instead
 * of five ops per gradient; the same values as the ops path (float32 norm, each gradient times the
 * float32 coefficient, rounded once).
 */
function foreachClip2(grads: readonly Tensor[], maxNorm: number): Tensor {
  if (grads.length === 0) return full([], 0);
  const backend = grads[0]!.backend;
  const total = sum(apply('sumSquares', [...grads])).pow(0.5);
  const coef = mul(full([], maxNorm), total.add(1e-6).reciprocal()).clamp(null, 1);
  const found = Tensor.empty([], float32, backend).zero_();
  scaleInPlaceFindingNonFinite(grads, coef, found);
  found.dispose();
  return total;
}
