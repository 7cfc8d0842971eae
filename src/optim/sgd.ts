/** SGD with momentum, dampening, Nesterov and weight decay, PyTorch's update rule. */
import { Optimizer, type ParamGroup, type ParamGroupInit } from './optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { float32 } from '../dtype/dtype.js';
import { kernelView } from '../ops/dispatch.js';

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
      if (p.grad && this.canFuse(p, p.grad, group)) {
        this.fusedUpdate(p, p.grad, group);
        continue;
      }
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

  /**
   * Whether the fused kernel applies: the backend has it, the parameter and gradient are float32 /
   * float16 / bfloat16, and the momentum buffer (if any yet) is a live float32 tensor of the
   * parameter's shape on its backend; anything else (e.g. a buffer loaded from another backend)
   * takes the op-by-op path, which handles or reports it.
   */
  private canFuse(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): boolean {
    if (!p.backend.hasKernel('sgdUpdate') || !FUSED_DTYPES.has(p.dtype) || !FUSED_DTYPES.has(grad.dtype)) return false;
    if (grad.backend !== p.backend || !sameShape(grad.shape, p.shape)) return false;
    if (group.momentum === 0) return true;
    const buf = this.state.get(p)?.['momentumBuffer'];
    if (buf === undefined) return true;
    return typeof buf !== 'number' && !buf.storage.disposed && buf.backend === p.backend && buf.dtype === 'float32' && sameShape(buf.shape, p.shape);
  }

  /**
   * The same update as one `sgdUpdate` kernel call (backends that have it, e.g. wasm): parameter and
   * float32 momentum buffer updated in place, bit for bit what the op-by-op path computes (every
   * step rounded to float32, the parameter rounded once into its dtype), without the temporaries.
   */
  private fusedUpdate(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): void {
    const params: Record<string, unknown> = {
      lr: group.lr,
      momentum: group.momentum,
      dampening: group.dampening,
      weightDecay: group.weightDecay,
      nesterov: group.nesterov,
      maximize: group.maximize,
      first: false,
    };
    p.assertAlive('SGD.step');
    grad.assertAlive('SGD.step');
    if (group.momentum === 0) {
      p.backend.run('sgdUpdate', [kernelView(p), kernelView(grad)], [kernelView(p)], params);
      return;
    }
    const state = this.stateOf(p);
    let buf = state['momentumBuffer'] as Tensor | undefined;
    if (!buf) {
      // first step: the kernel starts the buffer from the gradient (its old contents are ignored)
      buf = keep(Tensor.empty(p.shape, float32, p.backend));
      state['momentumBuffer'] = buf;
      params['first'] = true;
    }
    p.backend.run('sgdUpdate', [kernelView(p), kernelView(grad), kernelView(buf)], [kernelView(p), kernelView(buf)], params);
  }
}

/** Parameter and gradient dtypes the fused kernel takes (float64 parameters keep the op-by-op path). */
const FUSED_DTYPES = new Set(['float32', 'float16', 'bfloat16']);

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
