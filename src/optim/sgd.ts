/**
 * SGD with momentum, dampening, Nesterov and weight decay, PyTorch's update rule. Where the backend
 * has the `sgdUpdate` kernel (reference, wasm, webgpu) each parameter is one call, bit for bit the
 * op-by-op update (`fused: false` keeps that one); where it runs `sgdUpdateMulti` natively (wasm) or
 * only has the reference (reference), the parameters of a group with one dtype pair and one
 * first-step state are updated by one call for them all (PyTorch's foreach path; the same bits).
 * With a device foundInf (Optimizer.step) the kernel, or where() op by op, leaves parameter and
 * buffer unchanged when it is set.
 */
import { Optimizer, filledTensor, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { float32 } from '../dtype/dtype.js';
import { applyInto, kernelView } from '../ops/dispatch.js';
import { ne, where } from '../ops/elementwise.js';
import type { SgdHyperparameters, SgdUpdateMultiParams, SgdUpdateParams } from '../backend/kernels.js';
import type { KernelTensor } from '../backend/backend.js';
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
    const batches: FusedEntry[][] = [];
    const params = group.params;
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      if (p.grad && this.canFuse(p, p.grad, group)) {
        const entry = this.fusedEntry(p, p.grad, group);
        if (multiTensor(p)) addToBatch(batches, entry);
        else this.fusedUpdate([entry], group);
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
    for (let i = 0; i < batches.length; i++) this.fusedUpdate(batches[i]!, group);
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
   * A parameter's fused update, its state made ready: the float32 momentum buffer (created on the
   * first step: the kernel then starts it from the gradient, ignoring its old contents) and, with a
   * device foundInf, the buffer's empty flag (a buffer created by a step that may be skipped).
   */
  private fusedEntry(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): FusedEntry {
    p.assertAlive('SGD.step');
    grad.assertAlive('SGD.step');
    const entry: FusedEntry = { p, grad, state: undefined, buf: undefined, flag: undefined, first: false };
    if (group.momentum === 0) return entry;
    const state = this.stateOf(p);
    let buf = state['momentumBuffer'] as Tensor | undefined;
    let flag = state[EMPTY_FLAG] as Tensor | undefined;
    if (!buf) {
      buf = keep(Tensor.empty(p.shape, float32, p.backend));
      state['momentumBuffer'] = buf;
      if (this.stepFoundInf) {
        flag = keep(filledTensor(p.backend, [], 1));
        state[EMPTY_FLAG] = flag;
      } else entry.first = true;
    }
    entry.state = state;
    entry.buf = buf;
    entry.flag = flag;
    return entry;
  }

  /**
   * The update of `entries` (one backend, parameter dtype, gradient dtype, `first` and flag presence)
   * as one `sgdUpdate` call (one entry) or one `sgdUpdateMulti` call: parameters and float32 momentum
   * buffers updated in place, bit for bit what the op-by-op path computes (every step rounded to
   * float32, the parameter rounded once into its dtype), without the temporaries. A device foundInf
   * goes to the kernel, which then leaves them unchanged.
   */
  private fusedUpdate(entries: readonly FusedEntry[], group: ParamGroup<SGDOptions>): void {
    const found = this.stepFoundInf;
    const k = entries.length;
    const e0 = entries[0]!;
    const flagged = e0.flag !== undefined;
    const params: SgdUpdateParams = {
      lr: group.lr,
      momentum: group.momentum,
      dampening: group.dampening,
      weightDecay: group.weightDecay,
      nesterov: group.nesterov,
      maximize: group.maximize,
      first: e0.first,
      firstInput: flagged,
      foundInfInput: found !== null,
      flagOutput: flagged && found !== null,
    };
    // inputs: params, grads, [buffers], [isFirst flags] (k apiece), [foundInf]; outputs: params, [buffers], [next flags]
    const inputs: KernelTensor[] = [];
    const outputs: KernelTensor[] = [];
    pushViews(inputs, entries, PARAM);
    pushViews(outputs, entries, PARAM);
    pushViews(inputs, entries, GRAD);
    if (group.momentum !== 0) {
      pushViews(inputs, entries, BUFFER);
      pushViews(outputs, entries, BUFFER);
    }
    if (flagged) pushViews(inputs, entries, FLAG);
    if (found) inputs.push(kernelView(found));
    // The kernel also writes each flag's next value, into another tensor (every thread reads the
    // old one); the two swap each step, so the kernel's buffers (and bind groups) stay the same.
    const nexts = params.flagOutput ? this.spareFlagsOf(entries, outputs) : null;
    if (k === 1) e0.p.backend.run('sgdUpdate', inputs, outputs, params);
    else {
      const multi = params as SgdUpdateMultiParams;
      multi.count = k;
      e0.p.backend.run('sgdUpdateMulti', inputs, outputs, multi);
    }
    if (flagged) this.settleFlags(entries, nexts);
  }

  /** Each entry's spare flag (the next flag's tensor), its view pushed onto `outputs`. */
  private spareFlagsOf(entries: readonly FusedEntry[], outputs: KernelTensor[]): Tensor[] {
    const nexts: Tensor[] = [];
    for (let i = 0; i < entries.length; i++) {
      nexts.push(this.spareFlag(entries[i]!.p, entries[i]!.flag!));
      outputs.push(kernelView(nexts[i]!));
    }
    return nexts;
  }

  /** After the kernel: each entry's next flag becomes its flag (the old one its spare), or without a device foundInf the flag is settled. */
  private settleFlags(entries: readonly FusedEntry[], nexts: readonly Tensor[] | null): void {
    for (let i = 0; i < entries.length; i++) {
      const { p, state, flag } = entries[i]!;
      if (nexts) {
        state![EMPTY_FLAG] = nexts[i]!;
        this.spareFlags.set(p, flag!);
      } else this.settleEmptyFlag(p, state!, flag!);
    }
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

/*
 * The step's host code loops by index and creates no closures: it runs once per step, too rarely for
 * V8 to optimise it in a fresh process's first few hundred steps (bench/README.md, "warm-up").
 */

/** A parameter waiting for its fused update, its state ready (fusedEntry). */
interface FusedEntry {
  p: Tensor;
  grad: Tensor;
  state: ParamState | undefined;
  buf: Tensor | undefined;
  flag: Tensor | undefined;
  /** The buffer starts with this step (no device foundInf: the host knows the step is taken). */
  first: boolean;
}

/**
 * Whether `p`'s backend takes the multi-tensor update: it runs it natively, or has no native
 * kernels at all (the reference: its kernel is the definition); a backend that only emulates it
 * (webgpu) updates tensor by tensor.
 */
const multiTensor = (p: Tensor): boolean => p.backend.hasKernel('sgdUpdateMulti') && (p.backend.nativeKernel?.('sgdUpdateMulti') ?? true);

const PARAM = 0;
const GRAD = 1;
const BUFFER = 2;
const FLAG = 3;

/**
 * Pushes the kernel view of each entry's parameter, gradient, buffer or flag onto `list`. The
 * once-per-step fusedUpdate calls it for each list, so that the per-tensor loop is this small
 * function (V8 compiles just it when it gets hot in a process's first steps; bench/README.md, "warm-up").
 */
function pushViews(list: KernelTensor[], entries: readonly FusedEntry[], which: number): void {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    list.push(kernelView(which === PARAM ? e.p : which === GRAD ? e.grad : which === BUFFER ? e.buf! : e.flag!));
  }
}

/** Adds `entry` to the batch of its backend, dtypes, `first` and flag presence (one kernel call each). */
function addToBatch(batches: FusedEntry[][], entry: FusedEntry): void {
  const { p, grad } = entry;
  for (let i = 0; i < batches.length; i++) {
    const e = batches[i]![0]!;
    if (e.p.backend === p.backend && e.p.dtype === p.dtype && e.grad.dtype === grad.dtype && e.first === entry.first && (e.flag === undefined) === (entry.flag === undefined)) {
      batches[i]!.push(entry);
      return;
    }
  }
  batches.push([entry]);
}

