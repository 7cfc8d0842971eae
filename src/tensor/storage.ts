/**
 * Device memory ownership. A Storage owns one backend buffer; tensors (and views) share it.
 *
 * Deterministic reclamation: while a `scope` is open, every Storage created is recorded in it,
 * and closing the scope frees all of them except the storages of the tensors it returns, of
 * tensors passed to `keep`, and of gradients written into a leaf's `.grad`. A training step run
 * inside a scope therefore ends with exactly the memory it started with, plus what it kept.
 * Storages created outside any scope are freed when the garbage collector finalizes them.
 */
import type { Backend, DeviceBuffer } from '../backend/backend.js';
import type { DType } from '../dtype/dtype.js';

const finalizer = new FinalizationRegistry<{ backend: Backend; buffer: DeviceBuffer }>(({ backend, buffer }) =>
  backend.free(buffer),
);

let nextSerial = 0;

/** The serial number the next Storage will get: storages created after this call have serial >= it. */
export function storageSerial(): number {
  return nextSerial;
}

/** Open scopes, innermost last. */
const scopeStack: Set<Storage>[] = [];

export class Storage {
  private disposedFlag = false;
  /** Creation order (the autograd engine tells gradients it just made from ones held elsewhere). */
  readonly serial = nextSerial++;

  constructor(
    readonly backend: Backend,
    readonly buffer: DeviceBuffer,
    readonly dtype: DType,
  ) {
    const top = scopeStack[scopeStack.length - 1];
    if (top) top.add(this);
    else finalizer.register(this, { backend, buffer }, this); // (the storage is its own unregister token: no object per storage)
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  get size(): number {
    return this.buffer.size;
  }

  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    finalizer.unregister(this);
    for (let i = 0; i < scopeStack.length; i++) scopeStack[i]!.delete(this);
    this.backend.free(this.buffer);
  }

  /** Take this storage out of every open scope; it then lives until `dispose` or garbage collection. */
  escape(): void {
    let tracked = false;
    for (let i = 0; i < scopeStack.length; i++) tracked = scopeStack[i]!.delete(this) || tracked;
    if (tracked && !this.disposedFlag) finalizer.register(this, { backend: this.backend, buffer: this.buffer }, this);
  }

  /** Move this storage from inner scopes to the scope just outside the innermost one. */
  escapeToParent(): void {
    const inner = scopeStack[scopeStack.length - 1];
    if (!inner || !inner.delete(this)) return;
    const parent = scopeStack[scopeStack.length - 2];
    if (parent) parent.add(this);
    else finalizer.register(this, { backend: this.backend, buffer: this.buffer }, this);
  }
}

export function openScope(): void {
  scopeStack.push(new Set());
}

/** Close the innermost scope, freeing what it still owns. */
export function closeScope(): void {
  const owned = scopeStack.pop();
  if (!owned) throw new Error('closeScope: no scope is open');
  owned.forEach(disposeStorage); // (no iterator objects, in any tier)
}

function disposeStorage(s: Storage): void {
  s.dispose();
}

export function scopeDepth(): number {
  return scopeStack.length;
}
