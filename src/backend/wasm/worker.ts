/**
 * A pool worker (a Node worker_thread or a browser module Web Worker): instantiates the kernel
 * module on the shared memory, then loops on its control slot (protocol.ts) until told to exit.
 */
import { wasmApi } from './api.js';
import { ARGC, ARGS_BYTE_OFFSET, DONE, EXIT_KERNEL, KERNEL, SEQ, SLOT_BYTES, SLOT_INTS, STATUS, writeError, type WorkerInit } from './protocol.js';

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
  const args: number[] = [];
  // Read the sequence number before saying 'ready': the pool may post the first call (or the exit)
  // as soon as it hears 'ready', and a worker reading SEQ after that would take that call's number
  // as its baseline and wait forever (seen under load as a hung process).
  let seq = Atomics.load(ctrl, base + SEQ);
  channel.post('ready');

  for (;;) {
    let s = seq;
    for (let i = 0; i < init.spin && s === seq; i++) s = Atomics.load(ctrl, base + SEQ);
    while (s === seq) {
      Atomics.wait(ctrl, base + SEQ, seq);
      s = Atomics.load(ctrl, base + SEQ);
    }
    seq = s;
    const k = ctrl[base + KERNEL]!;
    if (k === EXIT_KERNEL) break;
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

const channel = await connect();
main(channel).catch((e) => {
  // Instantiation failed: report it; the pool waits for 'ready' and rejects on this.
  channel.post({ error: e instanceof Error ? e.message : String(e) });
});
