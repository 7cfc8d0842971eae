/**
 * Tensor: a strided view of a Storage, plus autograd bookkeeping.
 * Ops live in src/ops and are attached as methods in ./methods.ts.
 */
import { dtypeOf, type DType, type DTypeName, type StorageArray } from '../dtype/dtype.js';
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/registry.js';
import { contiguousStrides, isContiguous, numel } from '../shape/strides.js';
import { Storage } from './storage.js';
import { gatherView, nest, storageToUser, type DataArray } from './host.js';
import type { GradNode, GradHook } from '../autograd/node.js';

export interface TensorInit {
  requiresGrad?: boolean;
  wrappedNumber?: boolean;
}

export class Tensor {
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf (or of a non-leaf after retainGrad). */
  grad: Tensor | null = null;
  /** The op that produced this tensor; null for leaves. */
  gradFn: GradNode | null = null;
  /** A JS number wrapped as a 0-d tensor: lowest priority in type promotion, as in PyTorch. */
  readonly wrappedNumber: boolean;

  constructor(
    readonly storage: Storage,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    init: TensorInit = {},
  ) {
    this.requiresGrad = init.requiresGrad ?? false;
    this.wrappedNumber = init.wrappedNumber ?? false;
    if (this.requiresGrad && !this.dt.isFloating) {
      throw new TypeError(`only floating point tensors can require gradients, got ${this.dtype}`);
    }
  }

  /** A fresh contiguous tensor on `backend` (uninitialised until a kernel or write fills it). */
  static empty(shape: readonly number[], dtype: DType, backend: Backend = getBackend()): Tensor {
    const size = numel(shape);
    const storage = new Storage(backend, backend.allocate(dtype, size), dtype);
    return new Tensor(storage, [...shape], contiguousStrides(shape), 0);
  }

  /** A tensor holding `data` (already in `dtype`'s storage format). */
  static fromStorage(data: StorageArray, shape: readonly number[], dtype: DType, init: TensorInit = {}, backend = getBackend()): Tensor {
    const t = Tensor.empty(shape, dtype, backend);
    backend.write(t.storage.buffer, data);
    if (init.requiresGrad || init.wrappedNumber) return new Tensor(t.storage, t.shape, t.strides, 0, init);
    return t;
  }

  get dtype(): DTypeName {
    return this.storage.dtype.name;
  }
  /** The dtype as a value object (bits, kind, finfo). */
  get dt(): DType {
    return this.storage.dtype;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return numel(this.shape);
  }
  get backend(): Backend {
    return this.storage.backend;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  size(dim?: number): number | readonly number[] {
    if (dim === undefined) return this.shape;
    return this.shape[normalizeDim(dim, this.ndim, 'size')]!;
  }

  /** Throws a clear error if this tensor's memory was reclaimed by a closed scope. */
  assertAlive(op: string): void {
    if (this.storage.disposed) {
      throw new Error(
        `${op}: tensor ${JSON.stringify(this.shape)} ${this.dtype} was disposed (its scope closed); return it from the scope or mx.keep() it`,
      );
    }
  }

  /** Storage-format values of this view, contiguous (no widening). */
  async storageData(): Promise<StorageArray> {
    this.assertAlive('data');
    const all = await this.backend.read(this.storage.buffer);
    return gatherView(all, this.dt, this.shape, this.strides, this.offset);
  }

  /** Storage-format values, synchronously; only CPU backends offer this. */
  storageDataSync(): StorageArray {
    this.assertAlive('dataSync');
    const read = this.backend.readSync;
    if (!read) throw new Error(`dataSync: backend '${this.backend.name}' is asynchronous; use await t.data()`);
    return gatherView(read.call(this.backend, this.storage.buffer), this.dt, this.shape, this.strides, this.offset);
  }

  /**
   * The values, row-major: Float32Array for float32/float16/bfloat16 (16-bit values widened exactly),
   * Float64Array for float64, Int32Array for int32, Uint8Array for bool.
   */
  async data(): Promise<DataArray> {
    return storageToUser(await this.storageData(), this.dt);
  }

  dataSync(): DataArray {
    return storageToUser(this.storageDataSync(), this.dt);
  }

  async item(): Promise<number> {
    if (this.numel !== 1) throw new Error(`item: tensor of shape ${JSON.stringify(this.shape)} has ${this.numel} elements, expected 1`);
    return (await this.data())[0]!;
  }

  /** Nested arrays of numbers (bool as 0/1). */
  async toArray(): Promise<unknown> {
    return nest(await this.data(), this.shape);
  }

  registerHook(hook: GradHook): { remove(): void } {
    if (!this.requiresGrad) throw new Error('registerHook: cannot register a hook on a tensor that does not require grad');
    const list = this.gradFn ? this.gradFn.hooks : leafHookList(this);
    list.push(hook);
    return {
      remove: () => {
        const i = list.indexOf(hook);
        if (i >= 0) list.splice(i, 1);
      },
    };
  }

  /**
   * On a leaf: `hook(leaf)` runs once per backward pass, after the leaf's gradient of that pass is
   * complete (accumulated into `.grad`, or taken by a gradient hook) — PyTorch's
   * register_post_accumulate_grad_hook. DistributedDataParallel starts its all-reduces from here.
   */
  registerPostAccumulateGradHook(hook: PostAccumulateGradHook): { remove(): void } {
    if (this.gradFn) throw new Error('registerPostAccumulateGradHook: only leaf tensors have post-accumulate-grad hooks');
    if (!this.requiresGrad) throw new Error('registerPostAccumulateGradHook: cannot register a hook on a tensor that does not require grad');
    let list = postAccumulateHooks.get(this);
    if (!list) postAccumulateHooks.set(this, (list = []));
    const hooks = list;
    hooks.push(hook);
    return {
      remove: () => {
        const i = hooks.indexOf(hook);
        if (i >= 0) hooks.splice(i, 1);
      },
    };
  }

  /** Keep this non-leaf's gradient in `.grad` after backward. */
  retainGrad(): this {
    if (this.gradFn) this.gradFn.retainGradOf = this;
    return this;
  }

  /** A tensor sharing this one's data with no autograd history. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.strides, this.offset);
  }

  /** Mark a leaf as requiring grad (in place), like PyTorch's requires_grad_(). */
  requiresGrad_(value = true): this {
    if (!this.isLeaf) throw new Error('requiresGrad_: only leaf tensors can change requiresGrad; use detach() first');
    if (value && !this.dt.isFloating) throw new TypeError(`only floating point tensors can require gradients, got ${this.dtype}`);
    this.requiresGrad = value;
    return this;
  }

  /** Free this tensor's memory now (shared with its views). */
  dispose(): void {
    this.storage.dispose();
  }

  toString(): string {
    return `Tensor(shape=${JSON.stringify(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad=true' : ''})`;
  }
}

import { leafHooks, postAccumulateHooks, type PostAccumulateGradHook } from '../autograd/engine.js';
function leafHookList(t: Tensor): GradHook[] {
  let list = leafHooks.get(t);
  if (!list) leafHooks.set(t, (list = []));
  return list;
}

/** A dim in [-ndim, ndim) to [0, ndim), with an error naming the op. */
export function normalizeDim(dim: number, ndim: number, op: string): number {
  const lo = ndim === 0 ? -1 : -ndim;
  const hi = ndim === 0 ? 0 : ndim - 1;
  if (!Number.isInteger(dim) || dim < lo || dim > hi) {
    throw new RangeError(`${op}: dimension out of range (expected to be in range of [${lo}, ${hi}], but got ${dim})`);
  }
  return dim < 0 ? dim + Math.max(ndim, 1) : dim;
}

export { dtypeOf };
