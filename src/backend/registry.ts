/** Which backend new tensors go to. Backends register by name; 'reference' is always there. */
import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference/index.js';

const backends = new Map<string, Backend>();
const factories = new Map<string, () => Promise<Backend>>();
let current: Backend = new ReferenceBackend();
backends.set(current.name, current);

export function registerBackend(name: string, factory: () => Promise<Backend>): void {
  factories.set(name, factory);
}

/** WebAssembly SIMD kernels on a worker pool over shared memory (src/backend/wasm), loaded on first use. */
registerBackend('wasm', async () => (await import('./wasm/index.js')).createWasmBackend());

export function getBackend(name?: string): Backend {
  if (name === undefined) return current;
  const b = backends.get(name);
  if (!b) throw new Error(`backend '${name}' is not initialised: call await mx.setBackend('${name}') first (available: ${listBackends().join(', ')})`);
  return b;
}

export function listBackends(): string[] {
  return [...new Set([...backends.keys(), ...factories.keys()])];
}

/** Select the backend for new tensors, initialising it on first use. */
export async function setBackend(name: string): Promise<Backend> {
  let b = backends.get(name);
  if (!b) {
    const factory = factories.get(name);
    if (!factory) throw new Error(`unknown backend '${name}': available are ${listBackends().join(', ')}`);
    b = await factory();
    backends.set(name, b);
  }
  current = b;
  return b;
}
