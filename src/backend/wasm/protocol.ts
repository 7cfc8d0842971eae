/**
 * The control block shared by the pool (main thread) and its workers: one SharedArrayBuffer with a
 * 256-byte slot per worker (its own cache lines), each slot an Int32 header followed by float64
 * kernel arguments (exact for every int32 address/count and every float32/float64 scalar).
 *
 *   main:   write KERNEL, ARGC and the arguments; Atomics.store(CLAIM, seq); Atomics.store(SEQ, seq);
 *           Atomics.notify(SEQ)
 *   worker: spin up to spinMicros, then Atomics.wait(SEQ, lastSeq); take the part: compareExchange(CLAIM, seq,
 *           TAKEN) (the main thread may have taken it: then skip this call); run exports[KERNEL](...args);
 *           STATUS = 0 | 1 (error, its message written to the slot's error text); Atomics.store(DONE, seq);
 *           Atomics.notify(DONE)
 *   main:   runs its own part meanwhile, then takes every part whose worker has not taken it yet (the
 *           same compareExchange) and runs it itself, then waits until every slot whose worker took its
 *           part has DONE equal to seq. A worker that is not running (the OS gave its core to V8's
 *           compiler threads or to another process) thus never holds a call up. seq is never TAKEN (0).
 * KERNEL = -1 asks the worker to exit. A Node worker whose thread ends (process.exit, an uncaught
 * error) sets EXITED = 1 and EXIT_CODE from its 'exit' handler and notifies DONE, so the main
 * thread stops waiting for it at once (pool.ts; a thread killed without running handlers is found
 * by a liveness check every 2 s instead).
 */
import type { WasmMemory, WasmModule } from './api.js';

export const SLOT_BYTES = 256;
export const SLOT_INTS = SLOT_BYTES / 4;
export const SEQ = 0;
export const DONE = 1;
export const STATUS = 2;
export const KERNEL = 3;
export const ARGC = 4;
export const EXITED = 5;
export const EXIT_CODE = 6;
/** The call number while the slot's part is not taken yet; TAKEN once the worker or the main thread took it. */
export const CLAIM = 7;
export const TAKEN = 0;
/** Arguments start 32 bytes into a slot. */
export const ARGS_BYTE_OFFSET = 32;
export const MAX_ARGS = (SLOT_BYTES - ARGS_BYTE_OFFSET) / 8;
export const EXIT_KERNEL = -1;
/** UTF-16 code units of error text per worker (in WorkerInit.errors): length first, then the text. */
export const ERROR_UNITS = 512;

/** Write a worker's error message into its slot of the shared error text. */
export function writeError(errors: SharedArrayBuffer, slot: number, message: string): void {
  const units = new Uint16Array(errors, slot * ERROR_UNITS * 2, ERROR_UNITS);
  const n = Math.min(message.length, ERROR_UNITS - 1);
  units[0] = n;
  for (let i = 0; i < n; i++) units[i + 1] = message.charCodeAt(i);
}

/** Read it back on the main thread. */
export function readError(errors: SharedArrayBuffer, slot: number): string {
  const units = new Uint16Array(errors, slot * ERROR_UNITS * 2, ERROR_UNITS);
  return String.fromCharCode(...units.subarray(1, 1 + units[0]!));
}

/**
 * After the slots, one 64-byte block (its own cache line) holding the spin budget in µs that
 * waiting workers read before each wait (the pool lowers it while the machine is oversubscribed).
 */
export const TAIL_BYTES = 64;
/** Index of the spin budget in the control block's Int32Array. */
export const spinWordIndex = (ctrl: Int32Array): number => ctrl.length - TAIL_BYTES / 4;

/** What a worker receives first (workerData in Node, its first message in a browser). */
export interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  control: SharedArrayBuffer;
  /** Slot index of this worker. */
  slot: number;
  /** Kernel names by id (KERNEL values index this list). */
  kernels: readonly string[];
  /** ERROR_UNITS UTF-16 units per worker: why a kernel failed (STATUS 1). */
  errors: SharedArrayBuffer;
}

/**
 * How long a waiting thread spins before it sleeps, µs. A worker asleep in Atomics.wait takes
 * 40-60 µs to start its next part on this project's 2-core VM (the notify is a futex wake of an
 * idle vCPU), a spinning one 1-2 µs. A training step's kernels are mostly 5-200 µs apart
 * (ResNet-18 fp16: 584 of 594 gaps per step under 200 µs, bench/README.md), so the spin covers
 * those gaps; a thread idle for longer (between steps, or the process doing something else)
 * sleeps and costs no CPU.
 */
export const DEFAULT_SPIN_MICROS = 300;
/**
 * The spin while the machine is oversubscribed (more runnable threads than cores): a spinning
 * thread then takes time slices from threads with work, ours included, so it sleeps almost at
 * once, as the pool did before it spun by time (~2000 loads).
 */
export const LOADED_SPIN_MICROS = 10;

/**
 * Spin while `ctrl[idx]` equals `old`, for at most `micros` µs; returns the last value read (still
 * `old` when the time ran out). The clock is read every 64 loads: a load is a few ns, a clock read
 * tens of ns.
 */
export function spinWhile(ctrl: Int32Array, idx: number, old: number, micros: number): number {
  let v = Atomics.load(ctrl, idx);
  if (v !== old || micros <= 0) return v;
  const deadline = performance.now() + micros / 1000;
  for (let i = 1; ; i++) {
    v = Atomics.load(ctrl, idx);
    if (v !== old) return v;
    if ((i & 63) === 0 && performance.now() >= deadline) return v;
  }
}
