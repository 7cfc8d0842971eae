/**
 * A pool worker (worker_threads): instantiates the kernel module on the shared memory, then loops
 * on its control slot (protocol.ts) until told to exit.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { wasmApi } from './api.js';
import { ARGC, ARGS_BYTE_OFFSET, DONE, EXIT_KERNEL, KERNEL, SEQ, SLOT_BYTES, SLOT_INTS, STATUS, type WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;

async function main(): Promise<void> {
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
  parentPort!.postMessage('ready');

  let seq = Atomics.load(ctrl, base + SEQ);
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
      init.port.postMessage(`${init.kernels[k]} on worker ${init.slot}: ${e instanceof Error ? e.message : String(e)}`);
    }
    ctrl[base + STATUS] = status;
    Atomics.store(ctrl, base + DONE, seq);
    Atomics.notify(ctrl, base + DONE);
  }
  init.port.close();
}

main().catch((e) => {
  // Instantiation failed: report it; the pool waits for 'ready' and rejects on this.
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
});
