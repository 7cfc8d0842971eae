/** Accumulating a gradient into a leaf's `.grad`, which the leaf owns. */
import type { Tensor } from '../tensor/tensor.js';
import { apply, applyInto } from '../ops/dispatch.js';
import { castTo, shapeStr } from '../ops/util.js';
import { isContiguous } from '../shape/strides.js';

/**
 * Leaves own their gradient: a private contiguous tensor that outlives the step's scope. A gradient
 * the engine made for this leaf alone (`owned`) and that covers its whole storage contiguously is
 * kept as it is; anything else is copied.
 */
export function accumulateGrad(leaf: Tensor, g: Tensor, owned = false): void {
  if (leaf.grad && !leaf.grad.storage.disposed) {
    if (leaf.grad.shape.some((d, i) => d !== leaf.shape[i])) {
      throw new RangeError(`backward: existing .grad ${shapeStr(leaf.grad.shape)} does not match the tensor ${shapeStr(leaf.shape)}`);
    }
    applyInto('add', [leaf.grad, castTo(g, leaf.grad.dt)], leaf.grad, {});
    return;
  }
  const whole = owned && g.offset === 0 && g.numel === g.storage.size && isContiguous(g.shape, g.strides);
  const own = whole ? g : apply('contiguous', [g]);
  own.storage.escape();
  leaf.grad = own;
}


const homes = new WeakMap<Tensor, Tensor>();

/**
 * Route the record of where `param`'s gradient accumulates: float32 master weights (mx.amp.masterWeights)
 * take a 16-bit parameter's gradient into the master's `.grad`. Readers of gradients that must find
 * them after backward (DistributedDataParallel) look here. `null` removes the route.
 */
export function setGradientHome(param: Tensor, home: Tensor | null): void {
  if (home) homes.set(param, home);
  else homes.delete(param);
}

/** The tensor whose `.grad` holds `param`'s gradient (the parameter itself unless routed). */
export function gradientHome(param: Tensor): Tensor {
  return homes.get(param) ?? param;
}
