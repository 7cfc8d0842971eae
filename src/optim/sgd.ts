/** SGD with momentum, dampening, Nesterov and weight decay, PyTorch's update rule. */
import { Optimizer, type ParamGroup, type ParamGroupInit } from './optimizer.js';
import type { Tensor } from '../tensor/tensor.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<SGDOptions>>, options: Partial<SGDOptions> & { lr?: number } = {}) {
    const defaults: SGDOptions = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...options };
    if (!(defaults.lr >= 0)) throw new RangeError(`SGD: invalid learning rate ${defaults.lr}`);
    if (!(defaults.momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${defaults.momentum}`);
    if (!(defaults.weightDecay >= 0)) throw new RangeError(`SGD: invalid weightDecay ${defaults.weightDecay}`);
    if (defaults.nesterov && (defaults.momentum <= 0 || defaults.dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
    super(params, defaults);
  }

  protected updateGroup(group: ParamGroup<SGDOptions>): void {
    for (const p of group.params) {
      let d = this.grad32(p);
      if (!d) continue;
      const p32 = p.float();
      if (group.maximize) d = d.neg();
      if (group.weightDecay !== 0) d = d.add(p32.mul(group.weightDecay));
      if (group.momentum !== 0) {
        const state = this.stateOf(p);
        const prev = state['momentumBuffer'] as Tensor | undefined;
        const buf = this.setState(state, 'momentumBuffer', prev ? prev.mul(group.momentum).add(d.mul(1 - group.dampening)) : d);
        d = group.nesterov ? d.add(buf.mul(group.momentum)) : buf;
      }
      this.writeParam(p, p32.sub(d.mul(group.lr)));
    }
  }
}
