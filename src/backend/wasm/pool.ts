/**
 * A persistent pool of worker threads running the wasm kernels on the one shared memory.
 *
 * `run(kernel, parts)` calls `kernel(...parts[i])` for every part, part 0 on the calling (main)
 * thread and part i on worker i - 1, and returns when all are done: the backend stays synchronous
 * (readSync works, and a kernel's output is ready when `run` returns). Dispatch goes through a
 * shared Int32Array control block with Atomics (protocol.ts), not messages: a few microseconds.
 *
 * Without worker_threads or SharedArrayBuffer (or with one thread asked for) the pool is
 * single-threaded: every part runs on the calling thread, in order.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WasmMemory, WasmModule } from './api.js';
import { ARGC, ARGS_BYTE_OFFSET, DONE, EXIT_KERNEL, KERNEL, MAX_ARGS, SEQ, SLOT_BYTES, SLOT_INTS, STATUS, type WorkerInit } from './protocol.js';

type KernelFn = (...args: number[]) => unknown;

interface NodeWorker {
  readonly threadId: number;
  on(event: string, fn: (arg: any) => void): unknown;
  off(event: string, fn: (arg: any) => void): unknown;
  once(event: string, fn: (arg: any) => void): unknown;
  unref(): void;
  terminate(): Promise<number>;
}

interface WorkerThreadsModule {
  Worker: new (url: URL, options: { workerData: unknown; transferList: unknown[]; execArgv?: string[] }) => NodeWorker;
  MessageChannel: new () => { port1: MessagePort; port2: MessagePort };
  receiveMessageOnPort(port: MessagePort): { message: unknown } | undefined;
}

/**
 * The parent's Node options without preloads (--import, --require, --loader): a preload that
 * selects the wasm backend must not run again in every worker (each would start its own pool).
 */
function workerExecArgv(): string[] {
  const argv = typeof process !== 'undefined' ? process.execArgv : [];
  const out: string[] = [];
  const withValue = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (withValue.has(a)) i++;
    else if (![...withValue].some((f) => a.startsWith(`${f}=`))) out.push(a);
  }
  return out;
}

export interface PoolOptions {
  /** Threads in all, the calling thread included (1: no workers). */
  threads: number;
  /** Spin iterations before a waiting thread sleeps (Atomics.wait). */
  spin?: number;
}

export class KernelPool {
  /** Threads that run parts: the calling thread and the workers. */
  readonly threads: number;
  /** Why the pool is single-threaded though more threads were asked for (null otherwise). */
  readonly degraded: string | null;
  private readonly ids = new Map<string, number>();
  private readonly fns: KernelFn[];
  private seq = 0;
  private closed = false;

  private constructor(
    kernels: readonly string[],
    exports: Record<string, unknown>,
    private readonly workers: NodeWorker[],
    private readonly ports: MessagePort[],
    private readonly ctrl: Int32Array | null,
    private readonly argv: Float64Array | null,
    private readonly spin: number,
    private readonly wt: WorkerThreadsModule | null,
    degraded: string | null,
  ) {
    kernels.forEach((k, i) => this.ids.set(k, i));
    this.fns = kernels.map((k) => exports[k] as KernelFn);
    this.threads = workers.length + 1;
    this.degraded = degraded;
  }

  static async create(
    module: WasmModule,
    memory: WasmMemory,
    exports: Record<string, unknown>,
    kernels: readonly string[],
    options: PoolOptions,
  ): Promise<KernelPool> {
    const spin = options.spin ?? 2000;
    const want = Math.max(1, Math.floor(options.threads));
    const single = (why: string | null) => new KernelPool(kernels, exports, [], [], null, null, spin, null, why);
    if (want === 1) return single(null);
    if (typeof SharedArrayBuffer === 'undefined' || !(memory.buffer instanceof SharedArrayBuffer)) {
      return single('SharedArrayBuffer is not available');
    }
    let wt: WorkerThreadsModule;
    try {
      wt = (await import('node:worker_threads')) as unknown as WorkerThreadsModule;
    } catch {
      return single('worker_threads is not available');
    }
    const n = want - 1;
    const control = new SharedArrayBuffer(n * SLOT_BYTES);
    const workers: NodeWorker[] = [];
    const ports: MessagePort[] = [];
    try {
      await Promise.all(
        Array.from({ length: n }, (_, slot) => {
          const { port1, port2 } = new wt.MessageChannel();
          const init: WorkerInit = { module, memory, control, slot, kernels, spin, port: port2 };
          const worker = new wt.Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: [port2], execArgv: workerExecArgv() });
          workers.push(worker);
          ports.push(port1);
          return new Promise<void>((resolve, reject) => {
            const onMessage = (m: unknown) => {
              cleanup();
              if (m === 'ready') resolve();
              else reject(new Error(`wasm worker ${slot}: ${(m as { error?: string }).error ?? String(m)}`));
            };
            const onError = (e: Error) => {
              cleanup();
              reject(e);
            };
            const onExit = (code: number) => {
              cleanup();
              reject(new Error(`wasm worker ${slot} exited with code ${code} before it was ready`));
            };
            const cleanup = () => {
              worker.off('message', onMessage);
              worker.off('error', onError);
              worker.off('exit', onExit);
            };
            worker.on('message', onMessage);
            worker.on('error', onError);
            worker.on('exit', onExit);
          });
        }),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate().catch(() => 0)));
      for (const p of ports) p.close();
      return single(`workers failed to start: ${e instanceof Error ? e.message : String(e)}`);
    }
    for (const w of workers) w.unref(); // idle workers do not keep the process alive
    for (const p of ports) (p as unknown as { unref?: () => void }).unref?.();
    return new KernelPool(kernels, exports, workers, ports, new Int32Array(control), new Float64Array(control), spin, wt, null);
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
    this.run(kernel, Array.from({ length: n }, (_, p) => [...args, p, n]));
  }

  /** Run `kernel(...parts[i])` for every part across the threads; returns when all are done. */
  run(kernel: string, parts: readonly (readonly number[])[]): void {
    const id = this.ids.get(kernel);
    if (id === undefined) throw new Error(`wasm backend: the module has no kernel '${kernel}'`);
    const fn = this.fns[id]!;
    if (parts.length <= 1 || this.workers.length === 0 || this.closed) {
      for (const p of parts) fn.apply(null, p as number[]);
      return;
    }
    if (parts.length > this.threads) throw new Error(`wasm backend: ${parts.length} parts for ${this.threads} threads`);
    const ctrl = this.ctrl!;
    const argv = this.argv!;
    const seq = (this.seq = (this.seq + 1) | 0);
    const used = parts.length - 1;
    for (let w = 0; w < used; w++) {
      const args = parts[w + 1]!;
      if (args.length > MAX_ARGS) throw new Error(`wasm backend: ${kernel} takes ${args.length} arguments, the pool passes at most ${MAX_ARGS}`);
      const base = w * SLOT_INTS;
      const a0 = (w * SLOT_BYTES + ARGS_BYTE_OFFSET) / 8;
      for (let i = 0; i < args.length; i++) argv[a0 + i] = args[i]!;
      ctrl[base + KERNEL] = id;
      ctrl[base + ARGC] = args.length;
      Atomics.store(ctrl, base + SEQ, seq);
      Atomics.notify(ctrl, base + SEQ, 1);
    }
    let error: unknown = null;
    try {
      fn.apply(null, parts[0] as number[]);
    } catch (e) {
      error = e;
    }
    for (let w = 0; w < used; w++) this.waitFor(w, seq);
    for (let w = 0; w < used; w++) {
      if (ctrl[w * SLOT_INTS + STATUS] !== 0) {
        const msg = this.wt!.receiveMessageOnPort(this.ports[w]!)?.message;
        error ??= new Error(`wasm backend: ${String(msg ?? `${kernel} failed on worker ${w}`)}`);
      }
    }
    if (error) throw error;
  }

  private waitFor(w: number, seq: number): void {
    const ctrl = this.ctrl!;
    const idx = w * SLOT_INTS + DONE;
    let spins = 0;
    let d: number;
    while ((d = Atomics.load(ctrl, idx)) !== seq) {
      if (spins++ < this.spin) continue;
      if (Atomics.wait(ctrl, idx, d, 2000) === 'timed-out' && this.workers[w]!.threadId < 0) {
        throw new Error(`wasm backend: worker ${w} died while running a kernel`);
      }
    }
  }

  /** Stop the workers (the pool then runs everything on the calling thread). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ctrl = this.ctrl;
    if (!ctrl) return;
    this.workers.forEach((_, w) => {
      const base = w * SLOT_INTS;
      ctrl[base + KERNEL] = EXIT_KERNEL;
      Atomics.store(ctrl, base + SEQ, (this.seq + 1) | 0);
      Atomics.notify(ctrl, base + SEQ, 1);
    });
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      if (w.threadId < 0) resolve();
      else w.once('exit', () => resolve());
    })));
    for (const p of this.ports) p.close();
  }
}
