/**
 * Adam and AdamW, PyTorch 1.13's single-tensor update rules (torch/optim/adam.py, adamw.py):
 *
 *   step += 1
 *   g = maximize ? -grad : grad
 *   Adam:  g = g + weightDecay * p                       (L2 penalty folded into the gradient)
 *   AdamW: p = p * (1 - lr * weightDecay)                (decoupled weight decay)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vMax = max(vMax, v)                                   (amsgrad; the denominator uses vMax)
 *   denom = sqrt(v) / sqrt(1 - beta2^step) + eps
 *   p = p - lr / (1 - beta1^step) * m / denom
 *
 * The arithmetic is float32 whatever the parameter's dtype: a float16 or bfloat16 parameter is widened,
 * updated in float32 and rounded once back into its dtype; the state (expAvg, expAvgSq, maxExpAvgSq)
 * is float32 and `step` a number, per parameter.
 */
import { Optimizer, type ParamGroup, type ParamGroupInit } from './optimizer.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../ops/creation.js';
import { maximum } from '../ops/elementwise.js';
import { addcdiv, addcmul } from '../ops/math.js';

export interface AdamOptions {
  lr: number;
  /** Decay rates of the first and second moment averages, each in [0, 1). */
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  /** Use the maximum of the second moment so far (AMSGrad). */
  amsgrad: boolean;
  maximize: boolean;
}

export type AdamWOptions = AdamOptions;

/** PyTorch's argument checks, with its messages. */
export function checkAdamOptions(name: string, o: AdamOptions): void {
  if (!(o.lr >= 0)) throw new RangeError(`${name}: invalid learning rate ${o.lr}`);
  if (!(o.eps >= 0)) throw new RangeError(`${name}: invalid epsilon value ${o.eps}`);
  if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new RangeError(`${name}: betas must be a pair [beta1, beta2], got ${JSON.stringify(o.betas)}`);
  for (let i = 0; i < 2; i++) {
    const b = o.betas[i]!;
    if (!(b >= 0 && b < 1)) throw new RangeError(`${name}: invalid beta parameter at index ${i}: ${b} (expected 0 <= beta < 1)`);
  }
  if (!(o.weightDecay >= 0)) throw new RangeError(`${name}: invalid weightDecay value ${o.weightDecay}`);
}

/** A float32 scalar as PyTorch passes a Python number to a float32 kernel (`value=` of addcmul/addcdiv). */
const f32 = Math.fround;

abstract class AdamBase extends Optimizer<AdamOptions> {
  /** AdamW: weight decay shrinks the parameter instead of adding to the gradient. */
  protected abstract readonly decoupled: boolean;

  override addParamGroup(group: ParamGroupInit<AdamOptions>): void {
    super.addParamGroup(group);
    checkAdamOptions(this.constructor.name, this.paramGroups[this.paramGroups.length - 1]!);
  }

  protected updateGroup(group: ParamGroup<AdamOptions>): void {
    const [beta1, beta2] = group.betas;
    const { lr, eps, weightDecay, amsgrad } = group;
    for (const p of group.params) {
      let g = this.grad32(p);
      if (!g) continue;
      if (group.maximize) g = g.neg();
      let p32 = p.float();
      const state = this.stateOf(p);
      if (state['step'] === undefined) {
        state['step'] = 0;
        this.setState(state, 'expAvg', zeros(p.shape));
        this.setState(state, 'expAvgSq', zeros(p.shape));
        if (amsgrad) this.setState(state, 'maxExpAvgSq', zeros(p.shape));
      }
      const step = (state['step'] as number) + 1;
      state['step'] = step;

      if (weightDecay !== 0) {
        if (this.decoupled) p32 = p32.mul(1 - lr * weightDecay);
        else g = g.add(p32.mul(weightDecay));
      }
      const m = this.setState(state, 'expAvg', (state['expAvg'] as Tensor).mul(beta1).add(g.mul(1 - beta1)));
      const v = this.setState(state, 'expAvgSq', addcmul((state['expAvgSq'] as Tensor).mul(beta2), g, g, { value: f32(1 - beta2) }));

      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      const stepSize = lr / biasCorrection1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);

      let second = v;
      if (amsgrad) {
        const prev = state['maxExpAvgSq'] as Tensor | undefined; // absent when amsgrad was switched on later
        second = this.setState(state, 'maxExpAvgSq', prev ? maximum(prev, v) : v);
      }
      const denom = second.sqrt().div(biasCorrection2Sqrt).add(eps);
      this.writeParam(p, addcdiv(p32, m, denom, { value: f32(-stepSize) }));
    }
  }
}

/** Adam (Kingma & Ba), with L2 weight decay, AMSGrad and maximize options. */
export class Adam extends AdamBase {
  protected readonly decoupled = false;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<AdamOptions>>, options: Partial<AdamOptions> = {}) {
    const defaults: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...options };
    checkAdamOptions('Adam', defaults);
    super(params, defaults);
  }
}

/** AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 1e-2). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<AdamWOptions>>, options: Partial<AdamWOptions> = {}) {
    const defaults: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, ...options };
    checkAdamOptions('AdamW', defaults);
    super(params, defaults);
  }
}
