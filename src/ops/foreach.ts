/** Multi-tensor (PyTorch's foreach) kernel calls shared by the GradScaler and gradient clipping. */
import type { Tensor } from '../tensor/tensor.js';
import { kernelView } from './dispatch.js';
import { mapPacked } from '../shape/packed.js';

/**
 * Every tensor multiplied in place by the 0-d float32 `factor` (float32 arithmetic, rounded once
 * into the tensor's dtype), and the 0-d float32 `found` set to 1 when any element was inf/NaN: one
 * `ampUnscale` kernel call for the whole list (the backend splits it as it must). The tensors must
 * be non-empty and on `found`'s backend.
 */
export function scaleInPlaceFindingNonFinite(tensors: readonly Tensor[], factor: Tensor, found: Tensor): void {
  const views = mapPacked(tensors, kernelView);
  found.backend.run('ampUnscale', [...views, kernelView(factor), kernelView(found)], [...views, kernelView(found)], {});
}
