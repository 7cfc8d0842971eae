/** Accumulating a gradient into a leaf's `.grad`, which the leaf owns. */
import type { Tensor } from '../tensor/tensor.js';
import { apply, applyInto } from '../ops/dispatch.js';
import { castTo, shapeStr } from '../ops/util.js';

/** Leaves own their gradient: a private contiguous copy that outlives the step's scope. */
export function accumulateGrad(leaf: Tensor, g: Tensor): void {
  if (leaf.grad && !leaf.grad.storage.disposed) {
    if (leaf.grad.shape.some((d, i) => d !== leaf.shape[i])) {
      throw new RangeError(`backward: existing .grad ${shapeStr(leaf.grad.shape)} does not match the tensor ${shapeStr(leaf.shape)}`);
    }
    applyInto('add', [leaf.grad, castTo(g, leaf.grad.dt)], leaf.grad);
    return;
  }
  const own = apply('contiguous', [g]);
  own.storage.escape();
  leaf.grad = own;
}

