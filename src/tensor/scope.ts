/** The public face of deterministic memory: scope, keep, memory (see storage.ts for the rules). */
import { Tensor } from './tensor.js';
import { closeScope, openScope } from './storage.js';
import { getBackend } from '../backend/registry.js';
import type { MemoryStats } from '../backend/backend.js';

function escapeTensors(value: unknown, depth = 0): void {
  if (value instanceof Tensor) value.storage.escapeToParent();
  else if (depth < 3 && Array.isArray(value)) for (const v of value) escapeTensors(v, depth + 1);
  else if (depth < 3 && value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) escapeTensors(v, depth + 1);
  }
}

/**
 * Run `fn` and free every tensor it created, except those it returns (in arrays or plain objects
 * too), those passed to `keep`, and gradients stored in leaves' `.grad`. Wrap each training step
 * in a scope and device memory stays constant however long the loop runs. `fn` must be synchronous.
 */
export function scope<T>(fn: () => T): T {
  openScope();
  try {
    const result = fn();
    if (result instanceof Promise) throw new TypeError('scope: fn must be synchronous (await outside the scope, on tensors it returns)');
    escapeTensors(result);
    return result;
  } finally {
    closeScope();
  }
}

/** Exempt a tensor from the enclosing scopes; it lives until dispose() or garbage collection. */
export function keep<T extends Tensor>(t: T): T {
  t.storage.escape();
  return t;
}

/** Live and peak device memory of a backend (the current one by default). */
export function memory(backend?: string): MemoryStats {
  return getBackend(backend).memory();
}
