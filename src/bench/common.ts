/** Shared by the benchmarks: picking the backend (and the wasm thread count), memory, the environment. */
import { loadavg } from 'node:os';
import type { Backend } from '../backend/backend.js';
import { getBackend, listBackends, setBackend } from '../backend/registry.js';

/** Threads that run a backend's kernels (1 for single-threaded backends such as 'reference'). */
export function backendThreads(backend: Backend): number {
  const t = (backend as { threads?: unknown }).threads;
  return typeof t === 'number' && t >= 1 ? t : 1;
}

export interface BackendChoice {
  backend: Backend;
  /** Set when `threads` was asked for but the backend has a fixed thread count (e.g. 'reference'). */
  threadsIgnored?: string;
}

/**
 * Make `name` (default: the current backend) the current backend. `threads` applies to the wasm
 * backend (re-created with that many threads when its pool has another size); single-threaded backends ignore
 * it, which is reported in `threadsIgnored`.
 */
export async function selectBackend(name?: string, threads?: number): Promise<BackendChoice> {
  const target = name ?? getBackend().name;
  if (!listBackends().includes(target)) throw new Error(`unknown backend '${target}': available are ${listBackends().join(', ')}`);
  let backend: Backend | undefined;
  if (threads !== undefined && target === 'wasm') {
    let existing: Backend | undefined;
    try {
      existing = getBackend('wasm');
    } catch {
      existing = undefined;
    }
    // (Re)create the wasm backend with the thread count asked for.
    if (!existing || backendThreads(existing) !== threads) backend = await setBackend('wasm', { threads });
  }
  backend ??= await setBackend(target);
  if (threads !== undefined) {
    const have = backendThreads(backend);
    if (target === 'wasm' && have !== threads) {
      // Fewer threads than asked for: the pool could not start workers (no worker_threads / SharedArrayBuffer),
      // or the backend was initialised earlier with another count.
      return { backend, threadsIgnored: `the wasm backend runs ${have} thread(s), not ${threads}` };
    }
    if (target !== 'wasm' && threads !== 1) return { backend, threadsIgnored: `the ${target} backend is single-threaded` };
  }
  return { backend };
}

/** Restart the backend's peak-memory tracking (no-op for a backend without it). */
export function resetPeak(backend: Backend): void {
  backend.resetPeak?.();
}

/** The 1-minute load average (0 where the OS does not report one): benchmark numbers depend on it. */
export function load1(): number {
  return Number(loadavg()[0]!.toFixed(2));
}

/** Native / fallback kernel calls, for backends that count them (wasm), restricted to `names`. */
export function kernelCalls(backend: Backend, names?: readonly string[]): Record<string, { native: number; fallback: number }> | undefined {
  const stats = (backend as { kernelStats?: () => Record<string, { native: number; fallback: number }> }).kernelStats?.();
  if (!stats) return undefined;
  const out: Record<string, { native: number; fallback: number }> = {};
  for (const [k, v] of Object.entries(stats)) if (!names || names.includes(k)) out[k] = { native: v.native, fallback: v.fallback };
  return out;
}

/** Reset the per-kernel call counters of backends that keep them. */
export function resetKernelCalls(backend: Backend): void {
  (backend as { resetKernelStats?: () => void }).resetKernelStats?.();
}

/** `x` to `digits` significant digits (JSON-friendly numbers). */
export function sig(x: number, digits = 6): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(digits)) : x;
}

/** Uncaptured device errors a GPU backend has seen (0 for backends that cannot have any). */
export function deviceErrors(backend: Backend): number {
  const n = (backend as { deviceErrors?: unknown }).deviceErrors;
  return typeof n === 'number' ? n : 0;
}

/**
 * A GPU submit that failed validation leaves its results unwritten while the clock still runs, so a
 * figure measured across one means nothing: refuse it.
 */
export function assertNoDeviceErrors(backend: Backend, before: number, what: string): void {
  const n = deviceErrors(backend) - before;
  if (n > 0) throw new Error(`${what}: ${n} device error${n === 1 ? '' : 's'} on ${backend.name} during the run (printed above): no figure`);
}

/** The GPU adapter a backend runs on ("vendor architecture device description"), for GPU backends (webgpu). */
export function adapterDescription(backend: Backend): string | undefined {
  const d = (backend as { adapterDescription?: unknown }).adapterDescription;
  return typeof d === 'string' ? d : undefined;
}

/**
 * The subgroup-matrix (tensor core) path a GPU backend uses, from its `subgroupMatrix` property:
 * a description such as "f16 16x16x16 -> f32", null when the backend does not use one, undefined
 * when the backend does not say (CPU backends; the bench JSON then has no `subgroup_matrix`).
 */
export function subgroupMatrixDescription(backend: Backend): string | null | undefined {
  const d = (backend as { subgroupMatrix?: unknown }).subgroupMatrix;
  return typeof d === 'string' || d === null ? d : undefined;
}
