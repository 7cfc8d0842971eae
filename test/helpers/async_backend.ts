/**
 * A test double of an asynchronous (GPU-like) backend: the reference backend's kernels and memory,
 * but no `readSync`, and a `read` that resolves later (a macrotask after the call), with the values
 * as they were when the read was issued (as a GPU copies into a staging buffer in queue order).
 * Registered as 'async-reference': `await mx.setBackend('async-reference')`.
 *
 * Instrumentation for the tests:
 * - `reads` counts device reads; inside `noReads(what, fn)` any read throws (synchronous paths
 *   already throw: `dataSync()` refuses a backend without `readSync`);
 * - `calls` counts kernel calls by name;
 * - `hide(...names)` makes kernels unavailable (hasKernel false, run throws), to exercise the
 *   composite fallbacks of fused kernels.
 */
import type { Backend, DeviceBuffer, KernelTensor, MemoryStats } from '../../src/backend/backend.js';
import type { KernelName, KernelParams } from '../../src/backend/kernels.js';
import type { StorageArray } from '../../src/dtype/dtype.js';
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import { getBackend, registerBackend, setBackend } from '../../src/backend/registry.js';

export const ASYNC_BACKEND = 'async-reference';

export class AsyncReferenceBackend implements Backend {
  readonly name = ASYNC_BACKEND;
  private readonly inner = new ReferenceBackend();
  private readonly hidden = new Set<KernelName>();
  private forbidden: string | null = null;
  /** Device reads so far. */
  reads = 0;
  /** Kernel calls by name. */
  readonly calls = new Map<string, number>();

  allocate(dtype: DeviceBuffer['dtype'], size: number): DeviceBuffer {
    return this.inner.allocate(dtype, size);
  }

  free(buffer: DeviceBuffer): void {
    this.inner.free(buffer);
  }

  write(buffer: DeviceBuffer, data: StorageArray): void {
    this.inner.write(buffer, data);
  }

  read(buffer: DeviceBuffer): Promise<StorageArray> {
    if (this.forbidden !== null) throw new Error(`async-reference: a device read inside ${this.forbidden}`);
    this.reads++;
    const snapshot = this.inner.readSync(buffer);
    return new Promise((resolve) => setTimeout(() => resolve(snapshot), 0));
  }

  hasKernel(kernel: KernelName): boolean {
    return !this.hidden.has(kernel) && this.inner.hasKernel(kernel);
  }

  run<K extends KernelName>(kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void {
    if (this.hidden.has(kernel)) throw new Error(`async-reference: kernel '${kernel}' is hidden, but was run`);
    this.calls.set(kernel, (this.calls.get(kernel) ?? 0) + 1);
    this.inner.run(kernel, inputs, outputs, params);
  }

  memory(): MemoryStats {
    return this.inner.memory();
  }

  resetPeak(): void {
    this.inner.resetPeak();
  }

  /** Make kernels unavailable (until `unhide`). */
  hide(...kernels: KernelName[]): void {
    for (const k of kernels) this.hidden.add(k);
  }

  unhide(): void {
    this.hidden.clear();
  }

  /** Run `fn`; any device read it makes throws. */
  noReads<T>(what: string, fn: () => T): T {
    const prev = this.forbidden;
    this.forbidden = what;
    try {
      return fn();
    } finally {
      this.forbidden = prev;
    }
  }

  callsOf(kernel: string): number {
    return this.calls.get(kernel) ?? 0;
  }
}

let instance: AsyncReferenceBackend | null = null;

/** The registered instance (one per process). */
export function asyncBackend(): AsyncReferenceBackend {
  return (instance ??= new AsyncReferenceBackend());
}

registerBackend(ASYNC_BACKEND, async () => asyncBackend());

/**
 * Replace the registered instance with a new one (the backend selected before stays selected). A
 * test whose loop asserts a constant live-buffer count starts here: tensors that earlier tests left
 * to the garbage collector live on the old instance, and their finalizers, which may run at any
 * await, no longer change the count it reads.
 */
export async function freshAsyncBackend(): Promise<AsyncReferenceBackend> {
  const before = getBackend().name;
  instance = null;
  await setBackend(ASYNC_BACKEND, {}); // options: the factory builds the instance anew
  await setBackend(before);
  return asyncBackend();
}
