/**
 * Starting the pool's workers, one code path over two hosts:
 * - Node: worker_threads (the init record travels as workerData);
 * - browsers: module Web Workers (the init record is the first message). They need
 *   SharedArrayBuffer, which a page has only when cross-origin isolated (COOP/COEP headers).
 * Each worker posts 'ready' once it has instantiated the kernel module on the shared memory, or
 * `{ error }` if it could not. After that, all traffic goes through the shared control block.
 */
import type { WorkerInit } from './protocol.js';

/** A started worker, whatever its host. */
export interface PoolWorker {
  /** False once the worker exited or failed (a kernel waiting on it then reports it). */
  alive(): boolean;
  /** Idle workers do not keep a Node process alive (no-op in browsers). */
  unref(): void;
  /** Resolves when the worker has exited (after it was told to, or terminated). */
  exited(): Promise<void>;
  terminate(): Promise<void>;
}

export type WorkerHost = (init: WorkerInit) => Promise<PoolWorker>;

const workerUrl = (): URL => new URL('./worker.js', import.meta.url);

/** How long a worker may take to load and instantiate the module before the pool gives up on it. */
const READY_TIMEOUT_MS = 60_000;

/** Resolve on 'ready'; reject on an error report, or when the worker is not ready in time. */
function readiness(onMessage: (fn: (m: unknown) => void) => void, slot: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wasm worker ${slot} was not ready after ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    (timer as { unref?: () => void }).unref?.();
    onMessage((m) => {
      clearTimeout(timer);
      if (m === 'ready') resolve();
      else reject(new Error(`wasm worker ${slot}: ${(m as { error?: string }).error ?? String(m)}`));
    });
  });
}

interface NodeWorker {
  readonly threadId: number;
  readonly performance?: { eventLoopUtilization(): { idle: number; active: number } };
  on(event: string, fn: (arg: any) => void): unknown;
  once(event: string, fn: (arg: any) => void): unknown;
  unref(): void;
  terminate(): Promise<number>;
}

interface WorkerThreadsModule {
  Worker: new (url: URL, options: { workerData: unknown; execArgv?: string[] }) => NodeWorker;
}

/**
 * The parent's Node options without preloads (--import, --require, --loader): a preload that
 * selects the wasm backend must not run again in every worker (each would start its own pool); and
 * without --input-type, which concerns the parent's -e / stdin source (a worker refuses to start with it).
 */
function workerExecArgv(): string[] {
  const argv = typeof process !== 'undefined' ? process.execArgv : [];
  const out: string[] = [];
  const withValue = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader', '--input-type']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (withValue.has(a)) i++;
    else if (![...withValue].some((f) => a.startsWith(`${f}=`))) out.push(a);
  }
  return out;
}

/**
 * A kernel worker with the parent's options (workerExecArgv). Node refuses V8 and process-wide flags
 * in a worker's execArgv (--stack-size, --trace-gc, --max-semi-space-size, ...: the error names them);
 * those already hold for every thread of the process, so the worker starts without them (or, where
 * the error's list cannot be read, without any option).
 */
function startWorker(wt: WorkerThreadsModule, init: WorkerInit): NodeWorker {
  const execArgv = workerExecArgv();
  try {
    return new wt.Worker(workerUrl(), { workerData: init, execArgv });
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    // "Initiated Worker with invalid execArgv flags: --stack-size=984, --trace-gc"
    const refused = new Set(String((e as Error).message).replace(/^[^:]*:\s*/, '').split(', '));
    const kept = execArgv.filter((a) => !refused.has(a));
    try {
      return new wt.Worker(workerUrl(), { workerData: init, execArgv: kept });
    } catch {
      return new wt.Worker(workerUrl(), { workerData: init, execArgv: [] });
    }
  }
}

function nodeHost(wt: WorkerThreadsModule): WorkerHost {
  return async (init) => {
    const worker = startWorker(wt, init);
    let alive = true;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => {
      alive = false;
      resolve();
    }));
    const ready = Promise.race([
      readiness((fn) => worker.once('message', fn), init.slot),
      new Promise<never>((_, reject) => worker.once('error', (e: Error) => reject(e))),
      exited.then(() => {
        throw new Error(`wasm worker ${init.slot} exited before it was ready`);
      }),
    ]);
    try {
      await ready;
    } catch (e) {
      await worker.terminate().catch(() => 0);
      throw e;
    }
    threadStopped(worker); // caches the loop's start time while the thread surely runs
    return {
      alive: () => alive && worker.threadId >= 0 && !threadStopped(worker),
      unref: () => worker.unref(),
      exited: () => exited,
      terminate: async () => {
        await worker.terminate().catch(() => 0);
      },
    };
  };
}

/**
 * Whether a worker's thread has stopped, asked from a thread blocked in Atomics.wait (where the
 * worker's 'exit' event, and so `alive` and `threadId`, cannot change). Node answers a stopped
 * thread's event-loop idle time with -1 (Worker::LoopIdleTime), which eventLoopUtilization passes on
 * once the loop's start time was read while it ran. test/crash_safety.test.ts checks it still does.
 */
function threadStopped(worker: NodeWorker): boolean {
  try {
    return (worker.performance?.eventLoopUtilization().idle ?? 0) < 0;
  } catch {
    return false;
  }
}

interface WebWorker {
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message?: string }) => void) | null;
  postMessage(message: unknown): void;
  terminate(): void;
}

function webHost(WorkerCtor: new (url: URL, options: { type: 'module' }) => WebWorker): WorkerHost {
  return async (init) => {
    const worker = new WorkerCtor(workerUrl(), { type: 'module' });
    let alive = true;
    let signalExit: () => void = () => undefined;
    const exited = new Promise<void>((resolve) => (signalExit = resolve));
    const failed = new Promise<never>((_, reject) => {
      worker.onerror = (e) => {
        alive = false;
        signalExit();
        reject(new Error(`wasm worker ${init.slot}: ${e.message ?? 'failed to load'}`));
      };
    });
    failed.catch(() => undefined);
    const ready = readiness((fn) => (worker.onmessage = (e) => {
      worker.onmessage = (m) => {
        if (m.data === 'exit') {
          alive = false;
          signalExit();
        }
      };
      fn(e.data);
    }), init.slot);
    worker.postMessage(init);
    try {
      await Promise.race([ready, failed]);
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return {
      alive: () => alive,
      unref: () => undefined,
      exited: () => exited,
      terminate: async () => {
        worker.terminate();
        alive = false;
        signalExit();
      },
    };
  };
}

/** The host this environment offers, or why there is none (the pool then runs on one thread). */
export async function workerHost(): Promise<WorkerHost | string> {
  const g = globalThis as { process?: { versions?: { node?: string } }; Worker?: unknown; crossOriginIsolated?: boolean };
  if (g.process?.versions?.node) {
    try {
      return nodeHost((await import('node:worker_threads')) as unknown as WorkerThreadsModule);
    } catch {
      return 'worker_threads is not available';
    }
  }
  if (typeof g.Worker !== 'function') return 'Web Workers are not available';
  if (g.crossOriginIsolated === false) return 'the page is not cross-origin isolated (serve it with COOP/COEP headers to share memory with workers)';
  return webHost(g.Worker as new (url: URL, options: { type: 'module' }) => WebWorker);
}

/**
 * Whether this thread may block in Atomics.wait (workers and Node's main thread may; a browser's
 * main thread may not, and then waits by spinning).
 */
export function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * How oversubscribed the machine is: the 1-minute load average per core (Node), or null where the
 * host has no such figure (browsers). The pool spins less while it is above 1 (pool.ts).
 */
export async function loadPerCore(): Promise<(() => number) | null> {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!isNode) return null;
  const os = await import('node:os');
  const cores = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  return () => os.loadavg()[0]! / cores;
}
