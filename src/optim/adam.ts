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
 * is float32 and `step` a number, per parameter (a 0-d float32 device tensor once a step is given a
 * device foundInf: see Optimizer.step).
 *
 * Where the backend has the `adamUpdate` kernel (reference, wasm; src/backend/reference/kernels/optim.ts)
 * each parameter is updated by one call: parameter, gradient (float32, float16 or bfloat16) and state
 * in one pass, bit for bit the op-by-op update below (`fused: false` keeps that one). Where the
 * backend runs `adamUpdateMulti` natively (wasm), the parameters of a group with one step count and
 * dtype pair are updated by one call for them all (PyTorch's foreach path; the same bits).
 */
import { Optimizer, filledTensor, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { kernelView } from '../ops/dispatch.js';
import { div, maximum, pow, sub } from '../ops/elementwise.js';
import { addcdiv, addcmul } from '../ops/math.js';
import type { AdamUpdateMultiParams, AdamUpdateParams } from '../backend/kernels.js';
import type { KernelTensor } from '../backend/backend.js';
import { adamBiasCorrections } from '../backend/optim_math.js';
import { sameShape } from '../shape/strides.js';

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

/** Constructor-only options (not parameter-group hyperparameters). */
export interface AdamExtraOptions {
  /**
   * Use the fused `adamUpdate` kernel where the backend has it (default true): one pass reading the
   * gradient (float32, float16 or bfloat16) and the float32 master weight and state, bit for bit the
   * op-by-op update. false: always op by op.
   */
  fused?: boolean;
}

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

/** Parameter and gradient dtypes the fused kernel takes. */
const FUSED_DTYPES = new Set(['float32', 'float16', 'bfloat16']);

/*
 * The step's host code loops by index and creates no closures: it runs a few times per step, too
 * rarely for V8 to optimise it in a fresh process's first few hundred steps (bench/README.md, "warm-up").
 */

/** Whether a state entry is a live float32 tensor of `shape` on `p`'s backend (what the fused kernels update). */
function liveFloat32(t: Tensor | number | undefined, p: Tensor, shape: readonly number[]): boolean {
  return t instanceof Tensor && !t.storage.disposed && t.backend === p.backend && t.dtype === 'float32' && sameShape(t.shape, shape);
}

/** A parameter waiting for its group's multi-tensor update. */
interface FusedEntry {
  p: Tensor;
  grad: Tensor;
  state: ParamState;
}

/** The parameters of one adamUpdateMulti call: one step count, parameter dtype, gradient dtype and backend. */
interface FusedBatch {
  step: number;
  pDtype: string;
  gDtype: string;
  entries: FusedEntry[];
}

function batchFor(batches: readonly FusedBatch[], step: number, p: Tensor, grad: Tensor): FusedBatch | undefined {
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i]!;
    if (b.step === step && b.pDtype === p.dtype && b.gDtype === grad.dtype) return b;
  }
  return undefined;
}

/** Whether `p`'s backend runs the multi-tensor update natively (a backend that only emulates it updates tensor by tensor). */
const multiTensor = (p: Tensor): boolean => p.backend.hasKernel('adamUpdateMulti') && (p.backend.nativeKernel?.('adamUpdateMulti') ?? true);

abstract class AdamBase extends Optimizer<AdamOptions> {
  override readonly supportsFoundInf = true;
  /** AdamW: weight decay shrinks the parameter instead of adding to the gradient. */
  protected abstract readonly decoupled: boolean;
  /** Whether the fused `adamUpdate` kernel is used where the backend has it. */
  fused = true;

  override addParamGroup(group: ParamGroupInit<AdamOptions>): void {
    super.addParamGroup(group);
    checkAdamOptions(this.constructor.name, this.paramGroups[this.paramGroups.length - 1]!);
  }

  protected updateGroup(group: ParamGroup<AdamOptions>): void {
    const batches: FusedBatch[] = [];
    const params = group.params;
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      const grad = p.grad;
      if (!grad) continue;
      const state = this.stateOf(p);
      if (state['step'] === undefined) {
        state['step'] = 0; // counted below (a device counter when this step may be skipped on the device)
        state['expAvg'] = keep(filledTensor(p.backend, p.shape, 0));
        state['expAvgSq'] = keep(filledTensor(p.backend, p.shape, 0));
        if (group.amsgrad) state['maxExpAvgSq'] = keep(filledTensor(p.backend, p.shape, 0));
      }
      const step = this.countStep(state, 'step', p.backend);
      if (!this.canFuse(p, grad, state, group)) this.opByOp(p, state, step, group);
      else if (typeof step !== 'number' || !multiTensor(p)) this.fusedUpdate(p, grad, state, step, group);
      else {
        // one adamUpdateMulti call per (step, dtypes, backend): PyTorch's foreach path
        const batch = batchFor(batches, step, p, grad);
        if (batch && batch.entries[0]!.p.backend !== p.backend) this.fusedUpdate(p, grad, state, step, group);
        else if (batch) batch.entries.push({ p, grad, state });
        else batches.push({ step, pDtype: p.dtype, gDtype: grad.dtype, entries: [{ p, grad, state }] });
      }
    }
    for (let i = 0; i < batches.length; i++) this.fusedUpdateMulti(batches[i]!.entries, batches[i]!.step, group);
  }

  /** The update op by op (any backend, any dtype); with a device foundInf every new value goes through where(). */
  private opByOp(p: Tensor, state: ParamState, step: number | Tensor, group: ParamGroup<AdamOptions>): void {
    const [beta1, beta2] = group.betas;
    const { lr, eps, weightDecay, amsgrad } = group;
    let g = this.grad32(p)!;
    if (group.maximize) g = g.neg();
    let p32 = p.float();
    const p0 = p32;
    if (weightDecay !== 0) {
      if (this.decoupled) p32 = p32.mul(1 - lr * weightDecay);
      else g = g.add(p32.mul(weightDecay));
    }
    const mOld = state['expAvg'] as Tensor;
    const vOld = state['expAvgSq'] as Tensor;
    const m = mOld.mul(beta1).add(g.mul(1 - beta1));
    const v = addcmul(vOld.mul(beta2), g, g, { value: f32(1 - beta2) });
    this.setState(state, 'expAvg', this.unlessSkipped(mOld, m));
    this.setState(state, 'expAvgSq', this.unlessSkipped(vOld, v));

    let second = v;
    if (amsgrad) {
      // absent when amsgrad was switched on later: it starts at zero (max(0, v) is v, bit for bit: v >= +0 or NaN)
      let prev = state['maxExpAvgSq'] as Tensor | undefined;
      if (!prev) state['maxExpAvgSq'] = prev = keep(filledTensor(p.backend, p.shape, 0));
      second = maximum(prev, v);
      this.setState(state, 'maxExpAvgSq', this.unlessSkipped(prev, second));
    }
    let updated: Tensor;
    if (typeof step === 'number') {
      const [biasCorrection1, biasCorrection2Sqrt] = adamBiasCorrections(beta1, beta2, step);
      const stepSize = lr / biasCorrection1;
      const denom = second.sqrt().div(biasCorrection2Sqrt).add(eps);
      updated = addcdiv(p32, m, denom, { value: f32(-stepSize) });
    } else {
      // a device step count (steps skipped on the device): the bias corrections in float32 on the device
      const bc1 = sub(1, pow(beta1, step));
      const bc2Sqrt = sub(1, pow(beta2, step)).sqrt();
      const denom = second.sqrt().div(bc2Sqrt).add(eps);
      updated = addcdiv(p32, m.mul(div(-lr, bc1)), denom);
    }
    this.writeParam(p, this.unlessSkipped(p0, updated));
  }

  /**
   * Whether the fused kernel applies: the backend has it, parameter and gradient are float32 /
   * float16 / bfloat16 of one shape on one backend, and the state is live float32 tensors of that
   * shape there (a state loaded from elsewhere takes the op-by-op path, which handles or reports it).
   */
  private canFuse(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<AdamOptions>): boolean {
    if (!this.fused || !p.backend.hasKernel('adamUpdate') || !FUSED_DTYPES.has(p.dtype) || !FUSED_DTYPES.has(grad.dtype)) return false;
    if (grad.backend !== p.backend || !sameShape(grad.shape, p.shape)) return false;
    if (this.stepFoundInf && this.stepFoundInf.backend !== p.backend) return false;
    if (!liveFloat32(state['expAvg'], p, p.shape) || !liveFloat32(state['expAvgSq'], p, p.shape)) return false;
    const vmax = state['maxExpAvgSq'];
    if (group.amsgrad && vmax !== undefined && !liveFloat32(vmax, p, p.shape)) return false;
    const step = state['step'];
    return typeof step === 'number' || liveFloat32(step, p, []);
  }

  /** The fused kernels' parameters for this group and step. */
  private fusedParams(step: number | Tensor, group: ParamGroup<AdamOptions>): AdamUpdateParams {
    const [beta1, beta2] = group.betas;
    const params: AdamUpdateParams = {
      lr: group.lr,
      beta1,
      beta2,
      eps: group.eps,
      weightDecay: group.weightDecay,
      decoupled: this.decoupled,
      amsgrad: group.amsgrad,
      maximize: group.maximize,
      stepInput: typeof step !== 'number',
      foundInfInput: this.stepFoundInf !== null,
    };
    if (typeof step === 'number') [params.biasCorrection1, params.biasCorrection2Sqrt] = adamBiasCorrections(beta1, beta2, step);
    return params;
  }

  /** The state tensors the fused kernels update (creating AMSGrad's maximum if it was switched on later). */
  private fusedStates(p: Tensor, grad: Tensor, state: ParamState, group: ParamGroup<AdamOptions>): Tensor[] {
    // amsgrad switched on later: its maximum starts at zero (max(0, v) = v, what the op-by-op path stores)
    if (group.amsgrad && state['maxExpAvgSq'] === undefined) state['maxExpAvgSq'] = keep(filledTensor(p.backend, p.shape, 0));
    p.assertAlive(`${this.constructor.name}.step`);
    grad.assertAlive(`${this.constructor.name}.step`);
    const states = [state['expAvg'] as Tensor, state['expAvgSq'] as Tensor];
    if (group.amsgrad) states.push(state['maxExpAvgSq'] as Tensor);
    return states;
  }

  /** The same update as one `adamUpdate` kernel call: parameter and state in place, bit for bit the op-by-op update. */
  private fusedUpdate(p: Tensor, grad: Tensor, state: ParamState, step: number | Tensor, group: ParamGroup<AdamOptions>): void {
    const found = this.stepFoundInf;
    const states = this.fusedStates(p, grad, state, group);
    const inputs = [p, grad, ...states, ...(typeof step === 'number' ? [] : [step]), ...(found ? [found] : [])].map(kernelView);
    const outputs = [p, ...states].map(kernelView);
    p.backend.run('adamUpdate', inputs, outputs, this.fusedParams(step, group));
  }

  /** Parameters of one step count and dtype pair on one backend in one `adamUpdateMulti` call (each as fusedUpdate updates it). */
  private fusedUpdateMulti(entries: readonly FusedEntry[], step: number, group: ParamGroup<AdamOptions>): void {
    if (entries.length === 1) {
      const { p, grad, state } = entries[0]!;
      this.fusedUpdate(p, grad, state, step, group);
      return;
    }
    const found = this.stepFoundInf;
    const k = entries.length;
    const states: Tensor[][] = [];
    for (let i = 0; i < k; i++) states.push(this.fusedStates(entries[i]!.p, entries[i]!.grad, entries[i]!.state, group));
    // inputs: params, grads, then each state list (k apiece), [foundInf]; outputs: params, then the state lists
    const inputs: KernelTensor[] = [];
    const outputs: KernelTensor[] = [];
    for (let i = 0; i < k; i++) {
      inputs.push(kernelView(entries[i]!.p));
      outputs.push(kernelView(entries[i]!.p));
    }
    for (let i = 0; i < k; i++) inputs.push(kernelView(entries[i]!.grad));
    for (let s = 0; s < states[0]!.length; s++) {
      for (let i = 0; i < k; i++) {
        inputs.push(kernelView(states[i]![s]!));
        outputs.push(kernelView(states[i]![s]!));
      }
    }
    if (found) inputs.push(kernelView(found));
    const params = this.fusedParams(step, group) as AdamUpdateMultiParams;
    params.count = k;
    entries[0]!.p.backend.run('adamUpdateMulti', inputs, outputs, params);
  }
}

/** Adam (Kingma & Ba), with L2 weight decay, AMSGrad and maximize options. */
export class Adam extends AdamBase {
  protected readonly decoupled = false;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<AdamOptions>>, options: Partial<AdamOptions> & AdamExtraOptions = {}) {
    const { fused, ...rest } = options;
    const defaults: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...rest };
    checkAdamOptions('Adam', defaults);
    super(params, defaults);
    this.fused = fused ?? true;
  }
}

/** AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 1e-2). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<AdamWOptions>>, options: Partial<AdamWOptions> & AdamExtraOptions = {}) {
    const { fused, ...rest } = options;
    const defaults: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, ...rest };
    checkAdamOptions('AdamW', defaults);
    super(params, defaults);
    this.fused = fused ?? true;
  }
}
