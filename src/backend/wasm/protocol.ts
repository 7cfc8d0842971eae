/**
 * The control block shared by the pool (main thread) and its workers: one SharedArrayBuffer with a
 * 256-byte slot per worker (its own cache lines), each slot an Int32 header followed by float64
 * kernel arguments (exact for every int32 address/count and every float32/float64 scalar).
 *
 *   main:   write KERNEL, ARGC and the arguments; Atomics.store(SEQ, seq); Atomics.notify(SEQ)
 *   worker: spin briefly, then Atomics.wait(SEQ, lastSeq); run exports[KERNEL](...args);
 *           STATUS = 0 | 1 (error, its message posted on the worker's port); Atomics.store(DONE, seq);
 *           Atomics.notify(DONE)
 *   main:   runs its own part meanwhile, then waits until every used slot's DONE equals seq.
 * KERNEL = -1 asks the worker to exit.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WasmMemory, WasmModule } from './api.js';

export const SLOT_BYTES = 256;
export const SLOT_INTS = SLOT_BYTES / 4;
export const SEQ = 0;
export const DONE = 1;
export const STATUS = 2;
export const KERNEL = 3;
export const ARGC = 4;
/** Arguments start 32 bytes into a slot. */
export const ARGS_BYTE_OFFSET = 32;
export const MAX_ARGS = (SLOT_BYTES - ARGS_BYTE_OFFSET) / 8;
export const EXIT_KERNEL = -1;

/** What a worker receives as workerData. */
export interface WorkerInit {
  module: WasmModule;
  memory: WasmMemory;
  control: SharedArrayBuffer;
  /** Slot index of this worker. */
  slot: number;
  /** Kernel names by id (KERNEL values index this list). */
  kernels: readonly string[];
  /** Spin iterations before sleeping in Atomics.wait. */
  spin: number;
  port: MessagePort;
}
