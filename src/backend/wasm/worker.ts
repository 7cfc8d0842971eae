/**
 * A pool worker (a Node worker_thread or a browser module Web Worker): instantiates the kernel
 * module on the shared memory, then loops on its control slot (protocol.ts) until told to exit.
 */
import { wasmApi } from './api.js';
import {
  ARGC, ARGS_BYTE_OFFSET, CLAIM, DONE, EXIT_CODE, EXITED, EXIT_KERNEL, KERNEL, SEQ, SLOT_BYTES, SLOT_INTS, STATUS, TAKEN, spinWhile, spinWordIndex, writeError, type WorkerInit,
} from './protocol.js';

interface Channel {
  init: WorkerInit;
  post(message: unknown): void;
}

/** The init record and a way to talk back, from whichever host started this worker (threads.ts). */
async function connect(): Promise<Channel> {
  const g = globalThis as { process?: { versions?: { node?: string } }; onmessage?: unknown; postMessage?: (m: unknown) => void };
  if (g.process?.versions?.node) {
    const { parentPort, workerData } = await import('node:worker_threads');
    return { init: workerData as WorkerInit, post: (m) => parentPort!.postMessage(m) };
  }
  return new Promise<Channel>((resolve) => {
    g.onmessage = (e: { data: unknown }) => {
      g.onmessage = null;
      resolve({ init: e.data as WorkerInit, post: (m) => g.postMessage!(m) });
    };
  });
}

async function main(channel: Channel): Promise<void> {
  const { init } = channel;
  const instance = await wasmApi().instantiate(init.module, {
    env: {
      memory: init.memory,
      abort: () => {
        throw new Error('wasm kernel aborted');
      },
    },
  });
  const exports = instance.exports as Record<string, unknown>;
  const fns = init.kernels.map((name) => exports[name] as (...args: number[]) => void);
  const ctrl = new Int32Array(init.control);
  const argv = new Float64Array(init.control, init.slot * SLOT_BYTES + ARGS_BYTE_OFFSET);
  const base = init.slot * SLOT_INTS;
  const spinWord = spinWordIndex(ctrl);
  const args: number[] = [];
  // Read the sequence number before saying 'ready': the pool may post the first call (or the exit)
  // as soon as it hears 'ready', and a worker reading SEQ after that would take that call's number
  // as its baseline and wait forever (seen under load as a hung process).
  let seq = Atomics.load(ctrl, base + SEQ);
  const nodeProcess = (globalThis as { process?: NodeJS.Process }).process;
  // A thread that ends says so, so that a kernel waiting for it fails at once instead of hanging.
  const onExit = (code: number): void => {
    ctrl[base + EXIT_CODE] = code;
    Atomics.store(ctrl, base + EXITED, 1);
    Atomics.notify(ctrl, base + DONE);
  };
  if (nodeProcess?.versions?.node) nodeProcess.on('exit', onExit);
  const fault = injectedFault(init.slot);
  let calls = 0;
  channel.post('ready');

  for (;;) {
    let s = spinWhile(ctrl, base + SEQ, seq, Atomics.load(ctrl, spinWord));
    while (s === seq) {
      Atomics.wait(ctrl, base + SEQ, seq);
      s = Atomics.load(ctrl, base + SEQ);
    }
    seq = s;
    // The main thread runs a part itself when it finished its own before this worker took it.
    if (Atomics.compareExchange(ctrl, base + CLAIM, s, TAKEN) !== s) continue;
    const k = ctrl[base + KERNEL]!;
    if (k === EXIT_KERNEL) break;
    if (fault && ++calls === fault.call) {
      // The crash-safety test's dying worker: its thread ends while the pool waits for this part.
      if (fault.silent) nodeProcess!.off('exit', onExit);
      nodeProcess!.exit(3);
    }
    const argc = ctrl[base + ARGC]!;
    args.length = argc;
    for (let i = 0; i < argc; i++) args[i] = argv[i]!;
    let status = 0;
    try {
      fns[k]!.apply(null, args);
    } catch (e) {
      status = 1;
      writeError(init.errors, init.slot, `${init.kernels[k]} on worker ${init.slot}: ${e instanceof Error ? e.message : String(e)}`);
    }
    ctrl[base + STATUS] = status;
    Atomics.store(ctrl, base + DONE, seq);
    Atomics.notify(ctrl, base + DONE);
  }
  channel.post('exit');
  // A Web Worker stays alive after its last task; close it (Node's ends with its event loop).
  (globalThis as { close?: () => void }).close?.();
}

/**
 * Fault injection for test/crash_safety.test.ts (MIXPREC_TEST_FAULTS, Node only, worker 0 only):
 * `wasm-worker-exit=N` ends the thread at its N-th kernel call; `wasm-worker-vanish=N` does so
 * without its exit handler, as a thread killed from outside (a resource limit) would.
 */
function injectedFault(slot: number): { call: number; silent: boolean } | null {
  const spec = (globalThis as { process?: NodeJS.Process }).process?.env?.['MIXPREC_TEST_FAULTS'];
  if (!spec || slot !== 0) return null;
  const m = /wasm-worker-(exit|vanish)=(\d+)/.exec(spec);
  return m ? { call: Number(m[2]), silent: m[1] === 'vanish' } : null;
}

const channel = await connect();
main(channel).catch((e) => {
  // Instantiation failed: report it; the pool waits for 'ready' and rejects on this.
  channel.post({ error: e instanceof Error ? e.message : String(e) });
});
