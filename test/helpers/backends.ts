/** Running test code on a named backend, and reading what a synchronous backend stores. */
import * as mx from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { gatherView } from '../../src/tensor/host.js';

/** Run `fn` with backend `name` selected, then select `restore` (default: the backend selected before). */
export async function onBackend<T>(name: string, fn: () => T | Promise<T>, restore?: string): Promise<T> {
  const before = mx.getBackend().name;
  await mx.setBackend(name);
  try {
    return await fn();
  } finally {
    await mx.setBackend(restore ?? before);
  }
}

/** Storage-format contents of a tensor on a backend with synchronous reads (16-bit floats as their bits). */
export function storageBits(t: Tensor): ArrayLike<number> {
  return gatherView(t.backend.readSync!(t.storage.buffer), t.dt, t.shape, t.strides, t.offset);
}

/** Whether a storage value (16-bit floats as bits) is a NaN. */
export function isNaNBits(dtype: string, v: number): boolean {
  if (dtype === 'float16') return (v & 0x7fff) > 0x7c00;
  if (dtype === 'bfloat16') return (v & 0x7fff) > 0x7f80;
  return Number.isNaN(v);
}
