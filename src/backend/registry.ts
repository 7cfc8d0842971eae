/** Which backend new tensors go to. Backends register by name; 'reference' is always there. */
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference/index.js';

const backends = new Map<string, Backend>();
/** Creates a backend; `options` are backend-specific (wasm: { threads }). */
export type BackendFactory = (options?: BackendOptions) => Promise<Backend>;
export type BackendOptions = Readonly<Record<string, unknown>>;
const factories = new Map<string, BackendFactory>();
let current: Backend = new ReferenceBackend();
backends.set(current.name, current);

export function registerBackend(name: string, factory: BackendFactory): void {
  factories.set(name, factory);
}

/** WebAssembly SIMD kernels on a worker pool over shared memory (src/backend/wasm), loaded on first use. */
registerBackend('wasm', async (options) => (await import('./wasm/index.js')).createWasmBackend(options));
/** WGSL compute shaders through WebGPU (src/backend/webgpu): navigator.gpu, or the npm package `webgpu` in Node. */
registerBackend('webgpu', async (options) => (await import('./webgpu/index.js')).createWebGpuBackend(options));

export function getBackend(name?: string): Backend {
  if (name === undefined) return current;
  const b = backends.get(name);
  if (!b) throw new Error(`backend '${name}' is not initialised: call await mx.setBackend('${name}') first (available: ${listBackends().join(', ')})`);
  return b;
}

export function listBackends(): string[] {
  return [...new Set([...backends.keys(), ...factories.keys()])];
}

/**
 * Select the backend for new tensors, initialising it on first use. With `options` the backend is
 * created anew with them (e.g. `await mx.setBackend('wasm', { threads: 1 })`); the instance it
 * replaces is closed, and tensors that still live on it must not be used any more.
 */
export async function setBackend(name: string, options?: BackendOptions): Promise<Backend> {
  let b = backends.get(name);
  if (b && options !== undefined) {
    backends.delete(name);
    if (current === b) current = backends.get('reference')!;
    await (b as { close?: () => Promise<void> }).close?.();
    b = undefined;
  }
  if (!b) {
    const factory = factories.get(name);
    if (!factory) throw new Error(`unknown backend '${name}': available are ${listBackends().join(', ')}`);
    b = await factory(options);
    backends.set(name, b);
  }
  current = b;
  return b;
}

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

/**
 * The backend a program starts on: MIXPREC_BACKEND when set, else 'wasm' (WebAssembly SIMD on
 * every core) wherever WebAssembly runs, else 'reference'. `import 'mixprec'` selects it.
 */
export function defaultBackendName(): string {
  const requested = env('MIXPREC_BACKEND');
  if (requested) return requested;
  return typeof (globalThis as { WebAssembly?: unknown }).WebAssembly === 'object' ? 'wasm' : 'reference';
}

/**
 * Select the default backend. A wasm backend that cannot start (an engine without WebAssembly SIMD)
 * leaves the reference backend selected, with one warning; a backend named by MIXPREC_BACKEND must start.
 */
export async function initDefaultBackend(): Promise<Backend> {
  const name = defaultBackendName();
  if (env('MIXPREC_BACKEND')) return setBackend(name);
  try {
    return await setBackend(name);
  } catch (e) {
    console.warn(`mixprec: the ${name} backend could not start (${(e as Error).message}); using the reference backend`);
    return setBackend('reference');
  }
}
