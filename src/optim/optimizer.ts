/**
 * Optimizer base: parameter groups, per-parameter state, zeroGrad, stateDict. Subclasses implement
 * `updateGroup`; the arithmetic runs in float32 whatever the parameter's dtype, inside a scope so a
 * step leaves only the updated parameters and state behind.
 *
 * `step({ foundInf })` (GradScaler on backends without synchronous reads, PyTorch's fused optimizers'
 * `found_inf`): foundInf is a 0-d float32 device tensor, nonzero when this iteration's gradients
 * overflowed; the update is then skipped on the device (parameters and state keep their values)
 * without the host ever reading the flag. Step counts become 0-d float32 device tensors that count
 * only the steps taken (`countStep`), and the built-in optimizers mark `supportsFoundInf`.
 */
import { float32, type DType } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { Backend } from '../backend/backend.js';
import { noGrad } from '../autograd/mode.js';
import { scope, keep } from '../tensor/scope.js';
import { castTo } from '../ops/util.js';
import { add, ne, where } from '../ops/elementwise.js';

export type ParamGroup<O> = O & { params: Tensor[] };
export type ParamGroupInit<O> = Partial<O> & { params: Iterable<Tensor> };

/** Per-parameter state: tensors (kept alive across steps) and numbers (e.g. step counts). */
export type ParamState = Record<string, Tensor | number>;

export interface OptimizerStepOptions {
  /**
   * A 0-d float32 tensor on the parameters' backend (GradScaler.unscale_ makes it): nonzero means
   * the gradients of this iteration hold inf/NaN, and the step leaves every parameter and state
   * tensor unchanged, decided on the device.
   */
  foundInf?: Tensor | null;
}

export interface OptimizerLike {
  readonly paramGroups: readonly { params: readonly Tensor[] }[];
  step(options?: OptimizerStepOptions): unknown;
  /**
   * Whether `step({ foundInf })` skips on the device. GradScaler needs it on backends without
   * synchronous reads (it cannot look at the flag there and skip `step()` itself).
   */
  readonly supportsFoundInf?: boolean;
}

export abstract class Optimizer<O extends object> implements OptimizerLike {
  readonly paramGroups: ParamGroup<O>[];
  readonly state = new Map<Tensor, ParamState>();
  /** Whether `step({ foundInf })` is honoured (the built-in optimizers: true). A subclass that does not handle `stepFoundInf` keeps false. */
  readonly supportsFoundInf: boolean = false;
  /** The found-inf flag of the step in progress (null: no device skip). */
  protected stepFoundInf: Tensor | null = null;
  private stepSkipMask: Tensor | null = null;
  private stepSkipFactor: Tensor | null = null;

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInit<O>>, readonly defaults: O) {
    const list = [...(params as Iterable<Tensor | ParamGroupInit<O>>)];
    if (list.length === 0) throw new RangeError(`${this.constructor.name}: got an empty parameter list`);
    const groups: ParamGroupInit<O>[] = isGroupList(list) ? list : [{ params: list as Tensor[] } as unknown as ParamGroupInit<O>];
    this.paramGroups = [];
    for (const g of groups) this.addParamGroup(g);
  }

  addParamGroup(group: ParamGroupInit<O>): void {
    const params = [...group.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    for (const p of params) {
      if (!p.isLeaf) throw new TypeError(`${this.constructor.name}: can't optimize a non-leaf tensor ${p}`);
      if (seen.has(p)) throw new RangeError(`${this.constructor.name}: some parameters appear in more than one parameter group`);
      seen.add(p);
    }
    this.paramGroups.push({ ...this.defaults, ...group, params } as ParamGroup<O>);
  }

  /** Clear gradients; by default drop them (and free their memory), as PyTorch's set_to_none. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) {
          p.grad.dispose();
          p.grad = null;
        } else p.grad.zero_();
      }
    }
  }

  /**
   * One update of every parameter that has a gradient. With `foundInf` (see OptimizerStepOptions)
   * the update is skipped on the device when the flag is nonzero.
   */
  step(options: OptimizerStepOptions = {}): void {
    const foundInf = options.foundInf ?? null;
    if (foundInf) {
      if (!this.supportsFoundInf) throw new Error(`${this.constructor.name}.step: this optimizer cannot skip a step on the device (foundInf); it needs supportsFoundInf`);
      foundInf.assertAlive(`${this.constructor.name}.step`);
      if (foundInf.numel !== 1) throw new RangeError(`${this.constructor.name}.step: foundInf must hold one value, got shape ${JSON.stringify(foundInf.shape)}`);
    }
    noGrad(() =>
      scope(() => {
        this.stepFoundInf = foundInf;
        this.stepSkipMask = null;
        this.stepSkipFactor = null;
        try {
          for (const group of this.paramGroups) this.updateGroup(group);
        } finally {
          this.stepFoundInf = null;
          this.stepSkipMask = null;
        this.stepSkipFactor = null;
        }
      }),
    );
  }

  /** The bool mask of the step's foundInf (computed once per step), or null without one. */
  protected skipMask(): Tensor | null {
    if (!this.stepFoundInf) return null;
    return (this.stepSkipMask ??= ne(this.stepFoundInf, 0));
  }

  /** The skip mask as float32 (1: skipped, 0: stepped; computed once per step), or null without a foundInf. */
  protected skipFactor(): Tensor | null {
    const mask = this.skipMask();
    return mask ? (this.stepSkipFactor ??= castTo(mask, float32)) : null;
  }

  /** `updated`, or `old` where this step is skipped on the device (identity without a foundInf). */
  protected unlessSkipped(old: Tensor, updated: Tensor): Tensor {
    const mask = this.skipMask();
    return mask ? where(mask, old, updated) : updated;
  }

  /**
   * Count one more step in `state[key]` and return the count. Without a foundInf: a number (a device
   * counter left by earlier skipping steps is incremented on the device). With one: a 0-d float32
   * tensor on `backend`, incremented on the device only when the step is not skipped.
   */
  protected countStep(state: ParamState, key: string, backend: Backend): number | Tensor {
    const cur = state[key];
    const mask = this.skipMask();
    if (!mask) {
      if (cur === undefined || typeof cur === 'number') {
        const next = (cur ?? 0) + 1;
        state[key] = next;
        return next;
      }
      cur.copy_(add(cur, 1));
      return cur;
    }
    let t: Tensor;
    if (cur === undefined || typeof cur === 'number') {
      t = keep(filledTensor(backend, [], cur ?? 0));
      state[key] = t;
    } else t = cur;
    t.copy_(where(mask, t, add(t, 1)));
    return t;
  }

  protected abstract updateGroup(group: ParamGroup<O>): void;

  /** State entry of a parameter, created on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = {}));
    return s;
  }

  /** A state tensor that outlives the step's scope (first step), or an in-place update (later steps). */
  protected setState(state: ParamState, key: string, value: Tensor): Tensor {
    const prev = state[key];
    if (prev && typeof prev !== 'number' && !prev.storage.disposed) {
      prev.copy_(value);
      return prev;
    }
    const owned = keep(value.clone());
    state[key] = owned;
    return owned;
  }

  /** The gradient in float32 (optimizer arithmetic is float32 for every parameter dtype). */
  protected grad32(p: Tensor): Tensor | null {
    return p.grad ? castTo(p.grad, float32) : null;
  }

  /** Write the float32 result back into the parameter (rounded to its dtype). */
  protected writeParam(p: Tensor, value: Tensor): void {
    p.copy_(value);
  }

  stateDict(): { state: Record<number, Record<string, Tensor | number>>; paramGroups: Record<string, unknown>[] } {
    const index = new Map<Tensor, number>();
    this.paramGroups.flatMap((g) => g.params).forEach((p, i) => index.set(p, i));
    const state: Record<number, Record<string, Tensor | number>> = {};
    for (const [p, s] of this.state) state[index.get(p)!] = { ...s };
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...rest } = g as ParamGroup<O> & Record<string, unknown>;
      return { ...rest, params: params.map((p) => index.get(p)!) };
    });
    return { state, paramGroups };
  }

  loadStateDict(dict: { state: Record<number, Record<string, Tensor | number>>; paramGroups: Record<string, unknown>[] }): void {
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new RangeError(`loadStateDict: state has ${dict.paramGroups.length} parameter groups, optimizer has ${this.paramGroups.length}`);
    }
    const params = this.paramGroups.flatMap((g) => g.params);
    dict.paramGroups.forEach((saved, i) => {
      const group = this.paramGroups[i]!;
      const ids = saved['params'] as number[];
      if (ids.length !== group.params.length) {
        throw new RangeError(`loadStateDict: parameter group ${i} has ${ids.length} parameters in the state, ${group.params.length} in the optimizer`);
      }
      const { params: _ignored, ...hyper } = saved;
      Object.assign(group, hyper);
    });
    this.state.clear();
    for (const [k, s] of Object.entries(dict.state)) {
      const p = params[Number(k)];
      if (!p) throw new RangeError(`loadStateDict: state for parameter ${k}, but the optimizer has ${params.length} parameters`);
      const entry: ParamState = {};
      for (const [name, v] of Object.entries(s)) entry[name] = typeof v === 'number' ? v : keep(v.clone());
      this.state.set(p, entry);
    }
  }
}

/** A new float32 tensor on `backend` filled with `value` (a fill kernel: no host copy of the data). */
export function filledTensor(backend: Backend, shape: readonly number[], value: number, dtype: DType = float32): Tensor {
  return Tensor.empty(shape, dtype, backend).fill_(value);
}

function isGroupList<O>(list: readonly unknown[]): list is ParamGroupInit<O>[] {
  return list.every((x) => typeof x === 'object' && x !== null && 'params' in x);
}
