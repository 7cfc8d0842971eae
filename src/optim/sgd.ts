/**
 * SGD with momentum, dampening, Nesterov and weight decay, PyTorch's update rule. Where the backend
 * has the `sgdUpdate` kernel (reference, wasm) each parameter is one call, bit for bit the op-by-op
 * update (`fused: false` keeps that one). With a device foundInf (Optimizer.step) the kernel, or
 * where() op by op, leaves parameter and buffer unchanged when it is set.
 */
import { Optimizer, filledTensor, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { float32 } from '../dtype/dtype.js';
import { applyInto, kernelView } from '../ops/dispatch.js';
import { ne, where } from '../ops/elementwise.js';
import type { SgdHyperparameters, SgdUpdateParams } from '../backend/kernels.js';
import { sameShape } from '../shape/strides.js';

/** lr, momentum, dampening, weightDecay, nesterov, maximize: the fused kernel's hyperparameters. */
export type SGDOptions = SgdHyperparameters;

/**
 * State key of the momentum buffer's "not started yet" flag (a 0-d float32 tensor, 1 until a step
 * is taken). Only steps given a device foundInf make it: a buffer created by a step that may be
 * skipped on the device cannot know on the host whether it holds a step yet.
 */
const EMPTY_FLAG = 'momentumBufferEmpty';

export class SGD extends Optimizer<SGDOptions> {
  override readonly supportsFoundInf = true;
  /** Use the fused `sgdUpdate` kernel where the backend has it (default) or never (false). */
  readonly fused: boolean;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<SGDOptions>>, options: Partial<SGDOptions> & { lr?: number; fused?: boolean } = {}) {
    const { fused, ...rest } = options;
    const defaults: SGDOptions = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, ...rest };
    if (!(defaults.lr >= 0)) throw new RangeError(`SGD: invalid learning rate ${defaults.lr}`);
    if (!(defaults.momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${defaults.momentum}`);
    if (!(defaults.weightDecay >= 0)) throw new RangeError(`SGD: invalid weightDecay ${defaults.weightDecay}`);
    if (defaults.nesterov && (defaults.momentum <= 0 || defaults.dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
    super(params, defaults);
    this.fused = fused ?? true;
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
        let prev = state['momentumBuffer'] as Tensor | undefined;
        let flag = state[EMPTY_FLAG] as Tensor | undefined;
        if (!prev && this.stepFoundInf) {
          // the buffer starts here, but this step may be skipped on the device: flag it as empty
          prev = keep(filledTensor(p.backend, p.shape, 0));
          state['momentumBuffer'] = prev;
          flag = keep(filledTensor(p.backend, [], 1));
          state[EMPTY_FLAG] = flag;
        }
        let candidate: Tensor;
        if (!prev) candidate = d;
        else {
          candidate = prev.mul(group.momentum).add(d.mul(1 - group.dampening));
          if (flag) candidate = where(ne(flag, 0), d, candidate);
        }
        this.setState(state, 'momentumBuffer', prev ? this.unlessSkipped(prev, candidate) : candidate);
        if (flag) this.settleEmptyFlag(p, state, flag);
        d = group.nesterov ? d.add(candidate.mul(group.momentum)) : candidate;
      }
      this.writeParam(p, this.unlessSkipped(p32, p32.sub(d.mul(group.lr))));
    }
  }

  /**
   * After a step: the buffer holds a step unless this one was skipped on the device. The flag is
   * 0 or 1, so flag * skipFactor is where(skipped, flag, 0) in one in-place kernel (it runs every
   * step of a GradScaler loop, for every parameter).
   */
  private settleEmptyFlag(p: Tensor, state: ParamState, flag: Tensor): void {
    const factor = this.skipFactor();
    if (factor) applyInto('mul', [flag, factor], flag, {});
    else {
      delete state[EMPTY_FLAG];
      flag.dispose();
      this.spareFlags.get(p)?.dispose();
      this.spareFlags.delete(p);
    }
  }

  /**
   * Whether the fused kernel applies: the backend has it, the parameter and gradient are float32 /
   * float16 / bfloat16, and the momentum buffer (if any yet) is a live float32 tensor of the
   * parameter's shape on its backend; anything else (e.g. a buffer loaded from another backend)
   * takes the op-by-op path, which handles or reports it.
   */
  private canFuse(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): boolean {
    if (!this.fused || !p.backend.hasKernel('sgdUpdate') || !FUSED_DTYPES.has(p.dtype) || !FUSED_DTYPES.has(grad.dtype)) return false;
    if (grad.backend !== p.backend || !sameShape(grad.shape, p.shape)) return false;
    if (this.stepFoundInf && this.stepFoundInf.backend !== p.backend) return false;
    if (group.momentum === 0) return true;
    const state = this.state.get(p);
    const flag = state?.[EMPTY_FLAG];
    if (flag !== undefined && (typeof flag === 'number' || flag.storage.disposed || flag.backend !== p.backend || flag.dtype !== 'float32' || flag.numel !== 1)) return false;
    const buf = state?.['momentumBuffer'];
    if (buf === undefined) return true;
    return typeof buf !== 'number' && !buf.storage.disposed && buf.backend === p.backend && buf.dtype === 'float32' && sameShape(buf.shape, p.shape);
  }

  /**
   * The same update as one `sgdUpdate` kernel call (backends that have it: reference, wasm):
   * parameter and float32 momentum buffer updated in place, bit for bit what the op-by-op path
   * computes (every step rounded to float32, the parameter rounded once into its dtype), without the
   * temporaries. A device foundInf goes to the kernel, which then leaves both unchanged.
   */
  private fusedUpdate(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): void {
    const found = this.stepFoundInf;
    const params: SgdUpdateParams = {
      lr: group.lr,
      momentum: group.momentum,
      dampening: group.dampening,
      weightDecay: group.weightDecay,
      nesterov: group.nesterov,
      maximize: group.maximize,
      first: false,
      firstInput: false,
      foundInfInput: found !== null,
      flagOutput: false,
    };
    p.assertAlive('SGD.step');
    grad.assertAlive('SGD.step');
    const inputs = [kernelView(p), kernelView(grad)];
    const outputs = [kernelView(p)];
    let flag: Tensor | undefined;
    let state: ParamState | undefined;
    if (group.momentum !== 0) {
      state = this.stateOf(p);
      let buf = state['momentumBuffer'] as Tensor | undefined;
      flag = state[EMPTY_FLAG] as Tensor | undefined;
      if (!buf) {
        // first step: the kernel starts the buffer from the gradient (its old contents are ignored)
        buf = keep(Tensor.empty(p.shape, float32, p.backend));
        state['momentumBuffer'] = buf;
        if (found) {
          flag = keep(filledTensor(p.backend, [], 1));
          state[EMPTY_FLAG] = flag;
        } else params.first = true;
      }
      inputs.push(kernelView(buf));
      outputs.push(kernelView(buf));
      if (flag) {
        params.firstInput = true;
        inputs.push(kernelView(flag));
      }
    }
    if (found) inputs.push(kernelView(found));
    // The kernel also writes the flag's next value, into another tensor (every thread reads the
    // old one); the two swap each step, so the kernel's buffers (and bind groups) stay the same.
    const next = flag && found ? this.spareFlag(p, flag) : null;
    if (next) {
      params.flagOutput = true;
      outputs.push(kernelView(next));
    }
    p.backend.run('sgdUpdate', inputs, outputs, params);
    if (next) {
      state![EMPTY_FLAG] = next;
      this.spareFlags.set(p, flag!);
    } else if (flag) this.settleEmptyFlag(p, state!, flag);
  }

  /** Per parameter, the empty flag's other half (not optimizer state: its content is never read). */
  private readonly spareFlags = new WeakMap<Tensor, Tensor>();

  private spareFlag(p: Tensor, flag: Tensor): Tensor {
    const spare = this.spareFlags.get(p);
    if (spare && spare !== flag && !spare.storage.disposed && spare.backend === p.backend) return spare;
    return keep(Tensor.empty([], float32, p.backend));
  }
}

/** Parameter and gradient dtypes the fused kernel takes (float64 parameters keep the op-by-op path). */
const FUSED_DTYPES = new Set(['float32', 'float16', 'bfloat16']);

