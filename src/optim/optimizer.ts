/**
 * Optimizer base: parameter groups, per-parameter state, zeroGrad, stateDict. Subclasses implement
 * `updateGroup`; the arithmetic runs in float32 whatever the parameter's dtype, inside a scope so a
 * step leaves only the updated parameters and state behind.
 */
import { float32 } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { scope, keep } from '../tensor/scope.js';
import { castTo } from '../ops/util.js';

export type ParamGroup<O> = O & { params: Tensor[] };
export type ParamGroupInit<O> = Partial<O> & { params: Iterable<Tensor> };

/** Per-parameter state: tensors (kept alive across steps) and numbers (e.g. step counts). */
export type ParamState = Record<string, Tensor | number>;

export interface OptimizerLike {
  readonly paramGroups: readonly { params: readonly Tensor[] }[];
  step(): unknown;
}

export abstract class Optimizer<O extends object> implements OptimizerLike {
  readonly paramGroups: ParamGroup<O>[];
  readonly state = new Map<Tensor, ParamState>();

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

  step(): void {
    noGrad(() =>
      scope(() => {
        for (const group of this.paramGroups) this.updateGroup(group);
      }),
    );
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

function isGroupList<O>(list: readonly unknown[]): list is ParamGroupInit<O>[] {
  return list.every((x) => typeof x === 'object' && x !== null && 'params' in x);
}
