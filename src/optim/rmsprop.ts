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
 * tensors are float32, `step` a number.
 */
import { Optimizer, type ParamGroup, type ParamGroupInit } from './optimizer.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../ops/creation.js';
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
    for (const p of group.params) {
      let g = this.grad32(p);
      if (!g) continue;
      if (group.maximize) g = g.neg();
      const p32 = p.float();
      const state = this.stateOf(p);
      if (state['step'] === undefined) {
        state['step'] = 0;
        this.setState(state, 'squareAvg', zeros(p.shape));
      }
      state['step'] = (state['step'] as number) + 1;
      // Created when first needed, so momentum or centering switched on later (OneCycleLR) starts from zero.
      if (momentum > 0 && state['momentumBuffer'] === undefined) this.setState(state, 'momentumBuffer', zeros(p.shape));
      if (centered && state['gradAvg'] === undefined) this.setState(state, 'gradAvg', zeros(p.shape));

      if (weightDecay !== 0) g = g.add(p32.mul(weightDecay));
      const sq = this.setState(state, 'squareAvg', addcmul((state['squareAvg'] as Tensor).mul(alpha), g, g, { value: f32(1 - alpha) }));
      let avg: Tensor;
      if (centered) {
        const ga = this.setState(state, 'gradAvg', (state['gradAvg'] as Tensor).mul(alpha).add(g.mul(1 - alpha)));
        avg = addcmul(sq, ga, ga, { value: -1 }).sqrt();
      } else avg = sq.sqrt();
      avg = avg.add(eps);

      if (momentum > 0) {
        const buf = this.setState(state, 'momentumBuffer', addcdiv((state['momentumBuffer'] as Tensor).mul(momentum), g, avg));
        this.writeParam(p, p32.add(buf.mul(-lr)));
      } else {
        this.writeParam(p, addcdiv(p32, g, avg, { value: f32(-lr) }));
      }
    }
  }
}
