/** mx.nn.utils: gradient clipping. */
import { float32 } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { castTo } from '../ops/util.js';
import { add, mul, abs } from '../ops/elementwise.js';
import { stack } from '../ops/shape.js';
import { sum, max } from '../ops/reduce.js';
import { full } from '../ops/creation.js';

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
