// The kernel pool's calls timed from outside, for the diagnostics bench/pool-profile.mjs and
// bench/gemm-shapes.mjs (they read the built dist/: run `npm run build` first).
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { root } from "./peer_common.mjs";

const dist = (p) => pathToFileURL(join(root, "dist", p)).href;
await import(dist("index.js"));
const { selectBackend } = await import(dist("bench/common.js"));
const { benchTrain } = await import(dist("bench/train.js"));
const { KernelPool } = await import(dist("backend/wasm/pool.js"));

/** ms the calling thread has spent in kernel functions (its own parts and any it took over) since `busy.ms` was last zeroed. */
export const busy = { ms: 0 };

/**
 * Routes every KernelPool.run through `onCall(pool, kernel, parts, run)` (`run()` makes the call);
 * each pool's kernel functions are wrapped on its first call so that `busy` counts the calling
 * thread's time in them.
 */
export function interceptPoolRuns(onCall) {
  const wrapped = new WeakSet();
  const run = KernelPool.prototype.run;
  KernelPool.prototype.run = function (kernel, parts) {
    if (!wrapped.has(this)) {
      wrapped.add(this);
      this.fns = this.fns.map((f) => (typeof f === "function" ? (...a) => { const t = performance.now(); try { return f(...a); } finally { busy.ms += performance.now() - t; } } : f));
    }
    return onCall(this, kernel, parts, () => run.call(this, kernel, parts));
  };
}

/**
 * One `benchTrain` run (the `mixprec bench train` step) of `model` on the wasm backend at `threads`
 * threads; `onTimed()` is called when its timed steps start (benchTrain resets the kernel counters
 * just before them). The GPT takes token blocks (nanoGPT's CPU recipe, as bench/gpt-peers.mjs),
 * the other models 32x32 images in batches of 64.
 */
export async function timedTrainRun(threads, { model, precision, steps, warmup }, onTimed) {
  const { backend } = await selectBackend("wasm", threads);
  const reset = backend.resetKernelStats.bind(backend);
  backend.resetKernelStats = () => { reset(); onTimed(); };
  try {
    const shape = model === "gpt" ? { batchSize: 12 } : { batchSize: 64, imageSize: 32 };
    return await benchTrain({ model, ...shape, precision, steps, warmup });
  } finally {
    backend.resetKernelStats = reset;
  }
}
