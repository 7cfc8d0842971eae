/**
 * RMSprop, PyTorch 1.13's single-tensor update rule (torch/optim/rmsprop.py):
 *
 *   g = maximize ? -grad : grad
 *   g = g + weightDecay * p
 *   s = alpha * s + (1 - alpha) * g * g                      (squareAvg)
 *   centered: a = alpha * a + (1 - alpha) * g;  avg = sqrt(s - a * a) + eps   (gradAvg)
 *   else:     avg = sqrt(s) + eps
 *   momentum > 0: b = momentum * b + g / avg;  p = p - lr * b                 (momentumBuffer)
 *   else:         p = p - lr * g / avg
 *
 * Arithmetic in float32 for every parameter dtype (rounded once into a 16-bit parameter); the state
 * tensors are float32, `step` a number (a 0-d float32 device tensor once steps are given a device
 * foundInf). With a foundInf every new value goes through where(foundInf, old, new): no fused kernel.
 */
import { Optimizer, filledTensor, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
import type { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { addcdiv, addcmul } from '../ops/math.js';

export interface RMSpropOptions {
  lr: number;
  /** Smoothing constant of the squared-gradient average. */
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  /** Normalise by an estimate of the gradient's variance instead of its second moment. */
  centered: boolean;
  maximize: boolean;
}

export function checkRMSpropOptions(o: RMSpropOptions): void {
  if (!(o.lr >= 0)) throw new RangeError(`RMSprop: invalid learning rate ${o.lr}`);
  if (!(o.eps >= 0)) throw new RangeError(`RMSprop: invalid epsilon value ${o.eps}`);
  if (!(o.momentum >= 0)) throw new RangeError(`RMSprop: invalid momentum value ${o.momentum}`);
  if (!(o.weightDecay >= 0)) throw new RangeError(`RMSprop: invalid weightDecay value ${o.weightDecay}`);
  if (!(o.alpha >= 0)) throw new RangeError(`RMSprop: invalid alpha value ${o.alpha}`);
}

const f32 = Math.fround;

export class RMSprop extends Optimizer<RMSpropOptions> {
  override readonly supportsFoundInf = true;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<RMSpropOptions>>, options: Partial<RMSpropOptions> = {}) {
    const defaults: RMSpropOptions = { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false, ...options };
    checkRMSpropOptions(defaults);
    super(params, defaults);
  }

  override addParamGroup(group: ParamGroupInit<RMSpropOptions>): void {
    super.addParamGroup(group);
    checkRMSpropOptions(this.paramGroups[this.paramGroups.length - 1]!);
  }

  protected updateGroup(group: ParamGroup<RMSpropOptions>): void {
    const { lr, alpha, eps, weightDecay, momentum, centered } = group;
    const zerosFor = (p: Tensor) => keep(filledTensor(p.backend, p.shape, 0));
    for (const p of group.params) {
      let g = this.grad32(p);
      if (!g) continue;
      if (group.maximize) g = g.neg();
      const p32 = p.float();
      const state = this.stateOf(p);
      if (state['step'] === undefined) {
        state['step'] = 0; // counted below (a device counter when this step may be skipped on the device)
        state['squareAvg'] = zerosFor(p);
      }
      this.countStep(state, 'step', p.backend);
      // Created when first needed, so momentum or centering switched on later (OneCycleLR) starts from zero.
      if (momentum > 0 && state['momentumBuffer'] === undefined) state['momentumBuffer'] = zerosFor(p);
      if (centered && state['gradAvg'] === undefined) state['gradAvg'] = zerosFor(p);

      if (weightDecay !== 0) g = g.add(p32.mul(weightDecay));
      const sqOld = state['squareAvg'] as Tensor;
      const sq = addcmul(sqOld.mul(alpha), g, g, { value: f32(1 - alpha) });
      this.update(state, 'squareAvg', sqOld, sq);
      let avg: Tensor;
      if (centered) {
        const gaOld = state['gradAvg'] as Tensor;
        const ga = gaOld.mul(alpha).add(g.mul(1 - alpha));
        this.update(state, 'gradAvg', gaOld, ga);
        avg = addcmul(sq, ga, ga, { value: -1 }).sqrt();
      } else avg = sq.sqrt();
      avg = avg.add(eps);

      if (momentum > 0) {
        const bufOld = state['momentumBuffer'] as Tensor;
        const buf = addcdiv(bufOld.mul(momentum), g, avg);
        this.update(state, 'momentumBuffer', bufOld, buf);
        this.writeParam(p, this.unlessSkipped(p32, p32.add(buf.mul(-lr))));
      } else {
        this.writeParam(p, this.unlessSkipped(p32, addcdiv(p32, g, avg, { value: f32(-lr) })));
      }
    }
  }

  /** Store a new state value (kept as is where this step is skipped on the device). */
  private update(state: ParamState, key: string, old: Tensor, value: Tensor): void {
    this.setState(state, key, this.unlessSkipped(old, value));
  }
}
