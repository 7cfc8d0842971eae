/** Running test code on a named backend, and reading what a synchronous backend stores. */
import { after } from 'node:test';
import * as mx from '../../src/index.js';
import type { Tensor } from '../../src/index.js';
import { gatherView } from '../../src/tensor/host.js';
import { WasmBackend, type WasmBackendOptions } from '../../src/backend/wasm/index.js';

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

/**
 * A test file's own wasm backends: one per entry of `specs` (name -> options), created in order,
 * registered under its name and selected once, then `reference` selected; closed when the file's
 * tests end. The backends, in the order of `specs`.
 */
export async function wasmBackends(specs: Readonly<Record<string, WasmBackendOptions>>): Promise<WasmBackend[]> {
  const made: WasmBackend[] = [];
  for (const [name, options] of Object.entries(specs)) {
    const backend = await WasmBackend.create(options);
    made.push(backend);
    mx.registerBackend(name, async () => backend);
    await mx.setBackend(name);
  }
  await mx.setBackend('reference');
  after(async () => {
    await Promise.all(made.map((b) => b.close()));
  });
  return made;
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
