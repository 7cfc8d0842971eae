/**
 * A persistent pool of worker threads running the wasm kernels on the one shared memory.
 *
 * `run(kernel, parts)` calls `kernel(...parts[i])` for every part, part 0 on the calling (main)
 * thread and part i on worker i - 1, and returns when all are done: the backend stays synchronous
 * (readSync works, and a kernel's output is ready when `run` returns). Dispatch goes through a
 * shared Int32Array control block with Atomics (protocol.ts), not messages: a few microseconds.
 *
 * Workers are worker_threads in Node and module Web Workers in browsers (threads.ts). Without
 * either, or without SharedArrayBuffer (a page that is not cross-origin isolated), or with one
 * thread asked for, the pool is single-threaded: every part runs on the calling thread, in order.
 *
 * A worker that dies while the pool waits for it (its thread ended: process.exit, an uncaught
 * error, a resource limit) fails the call within seconds, with an error naming the worker and the
 * kernel, instead of hanging: the worker reports its exit through the control block, and a thread
 * stopped without doing so is caught by a liveness check every 2 s. The pool then retires its
 * workers and runs every later kernel on the calling thread (`degraded` says why).
 */
import type { WasmMemory, WasmModule } from './api.js';
import {
  ARGC, ARGS_BYTE_OFFSET, CLAIM, DEFAULT_SPIN_MICROS, DONE, ERROR_UNITS, EXIT_CODE, EXITED, EXIT_KERNEL, KERNEL, LOADED_SPIN_MICROS, MAX_ARGS, SEQ, SLOT_BYTES, SLOT_INTS, spinWhile, spinWordIndex, STATUS, TAIL_BYTES, TAKEN, readError,
  type WorkerInit,
} from './protocol.js';
import { canBlock, loadPerCore, workerHost, type PoolWorker } from './threads.js';

type KernelFn = (...args: number[]) => unknown;

export interface PoolOptions {
  /** Threads in all, the calling thread included (1: no workers). */
  threads: number;
  /**
   * Microseconds a waiting thread spins before it sleeps (Atomics.wait), whatever the load. Default:
   * DEFAULT_SPIN_MICROS, and LOADED_SPIN_MICROS while the machine is oversubscribed.
   */
  spinMicros?: number;
}

export class KernelPool {
  /** Threads that run parts: the calling thread and the workers. */
  readonly threads: number;
  /** Why the pool is single-threaded though more threads were asked for (null otherwise). */
  get degraded(): string | null {
    return this.degradedReason;
  }
  private degradedReason: string | null;
  /** Set once a worker died: every kernel then runs on the calling thread. */
  private retired = false;
  /** How often a waiting thread checks that the worker it waits for is alive, ms. */
  private static readonly LIVENESS_MS = 2000;
  private readonly ids = new Map<string, number>();
  private readonly fns: KernelFn[];
  private seq = 0;
  private readonly taken: Uint8Array;
  private closed = false;
  /** The spin budget now in force (µs): spinMicros, or LOADED_SPIN_MICROS while the machine is oversubscribed. */
  private spinNow: number;
  /** When the load was last looked at (performance.now(), ms). */
  private loadCheckedAt = -Infinity;
  /** How often the load average is read, ms (it is a 1-minute average: nothing changes faster). */
  private static readonly LOAD_CHECK_MS = 500;
  /** Whether this thread may sleep in Atomics.wait (not a browser's main thread). */
  private readonly blocks = canBlock();

  private constructor(
    kernels: readonly string[],
    exports: Record<string, unknown>,
    private readonly workers: PoolWorker[],
    private readonly ctrl: Int32Array | null,
    private readonly argv: Float64Array | null,
    private readonly errors: SharedArrayBuffer | null,
    private readonly spinMicros: number,
    private readonly load: (() => number) | null,
    degraded: string | null,
  ) {
    kernels.forEach((k, i) => this.ids.set(k, i));
    this.fns = kernels.map((k) => exports[k] as KernelFn);
    this.threads = workers.length + 1;
    this.taken = new Uint8Array(workers.length);
    this.degradedReason = degraded;
    this.spinNow = spinMicros;
  }

  static async create(
    module: WasmModule,
    memory: WasmMemory,
    exports: Record<string, unknown>,
    kernels: readonly string[],
    options: PoolOptions,
  ): Promise<KernelPool> {
    const spinMicros = Math.max(0, options.spinMicros ?? DEFAULT_SPIN_MICROS);
    const want = Math.max(1, Math.floor(options.threads));
    const single = (why: string | null) => new KernelPool(kernels, exports, [], null, null, null, spinMicros, null, why);
    if (want === 1) return single(null);
    if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
      return single('SharedArrayBuffer is not available');
    }
    const host = await workerHost();
    if (typeof host === 'string') return single(host);
    const n = want - 1;
    const control = new SharedArrayBuffer(n * SLOT_BYTES + TAIL_BYTES);
    const errors = new SharedArrayBuffer(n * ERROR_UNITS * 2);
    const started = await Promise.allSettled(
      Array.from({ length: n }, (_, slot) => host({ module, memory, control, slot, kernels, errors } satisfies WorkerInit)),
    );
    const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      await Promise.all(workers.map((w) => w.terminate()));
      const e = failure.reason as unknown;
      return single(`workers failed to start: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const w of workers) w.unref(); // idle workers do not keep the process alive
    const ctrl = new Int32Array(control);
    Atomics.store(ctrl, spinWordIndex(ctrl), spinMicros);
    return new KernelPool(kernels, exports, workers, ctrl, new Float64Array(control), errors, spinMicros, options.spinMicros === undefined ? await loadPerCore() : null, null);
  }

  hasKernel(name: string): boolean {
    return this.ids.has(name) && typeof this.fns[this.ids.get(name)!] === 'function';
  }

  /** Call one kernel once on the calling thread. */
  call(kernel: string, ...args: number[]): unknown {
    const id = this.ids.get(kernel);
    if (id === undefined) throw new Error(`wasm backend: the module has no kernel '${kernel}'`);
    return this.fns[id]!.apply(null, args);
  }

  /**
   * Split `units` work units into at most `threads` ranges of at least `minUnits` units each, the
   * boundaries multiples of `align` (except the end).
   */
  split(units: number, minUnits: number, align = 1): [number, number][] {
    const parts = Math.max(1, Math.min(this.threads, Math.floor(units / Math.max(1, minUnits))));
    if (parts === 1) return [[0, units]];
    const chunk = Math.ceil(Math.ceil(units / parts) / align) * align;
    const out: [number, number][] = [];
    for (let u = 0; u < units; u += chunk) out.push([u, Math.min(units, u + chunk)]);
    return out;
  }

  /**
   * Run a kernel of the `(..., part, parts)` convention (docs/kernels.md): `kernel(...args, p, parts)`
   * for p = 0 .. parts - 1, one part per thread. `parts` defaults to every thread.
   */
  runParts(kernel: string, args: readonly number[], parts = this.threads): void {
    const n = Math.max(1, Math.min(parts, this.threads));
    const list: number[][] = []; // pushed: packed in every V8 tier (src/shape/packed.ts)
    for (let p = 0; p < n; p++) list.push([...args, p, n]);
    this.run(kernel, list);
  }

  /** Run `kernel(...parts[i])` for every part across the threads; returns when all are done. */
  run(kernel: string, parts: readonly (readonly number[])[]): void {
    const id = this.ids.get(kernel);
    if (id === undefined) throw new Error(`wasm backend: the module has no kernel '${kernel}'`);
    const fn = this.fns[id]!;
    if (!this.retired && this.workers.length > 0 && !this.closed) {
      // a loop, not findIndex: no closure allocated per kernel call
      for (let w = 0; w < this.workers.length; w++) {
        const exited = this.exitedWorker(w);
        if (exited) {
          this.retire(`worker ${w} ${exited} between kernels`);
          break;
        }
      }
    }
    if (parts.length <= 1 || this.workers.length === 0 || this.closed || this.retired) {
      for (let i = 0; i < parts.length; i++) fn.apply(null, parts[i] as number[]);
      return;
    }
    if (parts.length > this.threads) throw new Error(`wasm backend: ${parts.length} parts for ${this.threads} threads`);
    const ctrl = this.ctrl!;
    this.refreshSpin(ctrl);
    const argv = this.argv!;
    const seq = (this.seq = (this.seq + 1) | 0 || 1); // never TAKEN
    const used = parts.length - 1;
    for (let w = 0; w < used; w++) {
      const args = parts[w + 1]!;
      if (args.length > MAX_ARGS) throw new Error(`wasm backend: ${kernel} takes ${args.length} arguments, the pool passes at most ${MAX_ARGS}`);
      const base = w * SLOT_INTS;
      const a0 = (w * SLOT_BYTES + ARGS_BYTE_OFFSET) / 8;
      for (let i = 0; i < args.length; i++) argv[a0 + i] = args[i]!;
      ctrl[base + KERNEL] = id;
      ctrl[base + ARGC] = args.length;
      Atomics.store(ctrl, base + CLAIM, seq);
      Atomics.store(ctrl, base + SEQ, seq);
      Atomics.notify(ctrl, base + SEQ, 1);
    }
    let error: unknown = null;
    try {
      fn.apply(null, parts[0] as number[]);
    } catch (e) {
      error = e;
    }
    // Parts whose worker has not started them run here (protocol.ts): a worker whose core the OS
    // gave to another thread (V8 compiling the first steps' code, another process) would otherwise
    // hold the whole call up. Parts are independent ranges, so who runs one changes no result.
    const taken = this.taken; // taken[w]: worker w took its part of this call
    for (let w = 0; w < used; w++) {
      if (Atomics.compareExchange(ctrl, w * SLOT_INTS + CLAIM, seq, TAKEN) !== seq) {
        taken[w] = 1;
        continue;
      }
      taken[w] = 0;
      try {
        fn.apply(null, parts[w + 1] as number[]);
      } catch (e) {
        // named as a worker's error would be (worker.ts), with where it ran
        error ??= new Error(`wasm backend: ${kernel} part ${w + 2} of ${parts.length} on the calling thread (worker ${w} had not started it): ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // Wait for every worker that took its part, even after one died: the others are still writing this call's outputs.
    let deaths: string[] | null = null; // allocated only when a worker died
    for (let w = 0; w < used; w++) {
      if (!taken[w]) continue;
      const death = this.waitFor(w, seq);
      if (death) (deaths ??= []).push(`worker ${w} ${death} while running ${kernel} (part ${w + 2} of ${parts.length})`);
    }
    if (deaths) {
      this.retire(deaths.join('; '));
      throw new Error(`wasm backend: ${deaths.join('; ')}; the call failed, and the pool now runs every kernel on the calling thread`);
    }
    for (let w = 0; w < used; w++) {
      if (taken[w] && ctrl[w * SLOT_INTS + STATUS] !== 0) {
        error ??= new Error(`wasm backend: ${readError(this.errors!, w) || `${kernel} failed on worker ${w}`}`);
      }
    }
    if (error) throw error;
  }

  /** Wait until worker `w` has finished call `seq`; returns how it died instead, if it did. */
  private waitFor(w: number, seq: number): string | null {
    const ctrl = this.ctrl!;
    const idx = w * SLOT_INTS + DONE;
    // spin first, as a worker does: a sleeping main thread takes as long to wake as a sleeping worker
    let d = Atomics.load(ctrl, idx);
    if (d !== seq) d = spinWhile(ctrl, idx, d, this.spinNow);
    for (let spins = 1; d !== seq; spins++) {
      const exited = this.exitedWorker(w);
      if (exited) return exited;
      // A browser's main thread may not block: it keeps spinning, checking the worker now and then.
      const timedOut = this.blocks ? Atomics.wait(ctrl, idx, d, KernelPool.LIVENESS_MS) === 'timed-out' : (spins & 0xfffff) === 0;
      if (timedOut && !this.workers[w]!.alive()) return 'stopped (its thread is gone)';
      d = Atomics.load(ctrl, idx);
    }
    return null;
  }

  /**
   * Spin only while the machine has a core per runnable thread: above one runnable thread per core
   * (the load average, which counts our own spinning threads too) a spinning thread takes time
   * slices from threads with work, so the workers and the calling thread sleep almost at once.
   */
  private refreshSpin(ctrl: Int32Array): void {
    if (!this.load) return;
    const now = performance.now();
    if (now - this.loadCheckedAt < KernelPool.LOAD_CHECK_MS) return;
    this.loadCheckedAt = now;
    const spin = this.load() > KernelPool.OVERSUBSCRIBED ? Math.min(this.spinMicros, LOADED_SPIN_MICROS) : this.spinMicros;
    if (spin !== this.spinNow) Atomics.store(ctrl, spinWordIndex(ctrl), (this.spinNow = spin));
  }

  /** Load average per core above which the machine counts as oversubscribed (our own threads spinning give ~1). */
  private static readonly OVERSUBSCRIBED = 1.25;

  /** How worker `w`'s thread ended, if it reported ending (null while it runs). */
  private exitedWorker(w: number): string | null {
    const ctrl = this.ctrl!;
    return Atomics.load(ctrl, w * SLOT_INTS + EXITED) ? `exited (code ${ctrl[w * SLOT_INTS + EXIT_CODE]})` : null;
  }

  /** After a worker died: stop the others, and run every kernel on the calling thread from now on. */
  private retire(reason: string): void {
    this.retired = true;
    this.degradedReason = `a worker died: ${reason}`;
    this.signalExit(); // not awaited: the workers are unref'd, so the process can still exit
  }

  /** Stop the workers (the pool then runs everything on the calling thread). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ctrl) return;
    this.signalExit();
    // The workers are unref'd: hold the event loop open until they have exited, or a program whose
    // last work is this close (re-creating the backend) would end with the await pending.
    const hold = setInterval(() => undefined, 1 << 30);
    try {
      await Promise.all(this.workers.map((w) => (w.alive() ? w.exited() : undefined)));
    } finally {
      clearInterval(hold);
    }
  }

  private exitSignalled = false;

  /** Ask every worker to leave its loop once it is idle. */
  private signalExit(): void {
    const ctrl = this.ctrl;
    if (!ctrl || this.exitSignalled) return;
    this.exitSignalled = true;
    this.workers.forEach((_, w) => {
      const base = w * SLOT_INTS;
      const seq = (this.seq + 1) | 0 || 1;
      ctrl[base + KERNEL] = EXIT_KERNEL;
      Atomics.store(ctrl, base + CLAIM, seq);
      Atomics.store(ctrl, base + SEQ, seq);
      Atomics.notify(ctrl, base + SEQ, 1);
    });
  }
}
