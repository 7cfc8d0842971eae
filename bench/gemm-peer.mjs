// jax-js peer for the GEMM benchmark: C = A @ B on random float32 data with
// @jax-js/jax's wasm device; prints one JSON line per size.
//
//   node bench/gemm-peer.mjs [--threads N] [--sizes 256,512,1024] [--reps R]
//
// jax-js runs its wasm kernels on Web Workers when `Worker` and
// SharedArrayBuffer exist. Node 20 has no global Worker, so with --threads N
// (N > 1) we install a small shim on top of worker_threads that runs jax-js's
// own worker source (a blob: URL) so the peer gets the same number of threads
// as our kernels. --threads 1 leaves jax-js single-threaded (its default in Node).
import { Worker as NodeWorker } from "node:worker_threads";
import { resolveObjectURL } from "node:buffer";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const threads = Number(opt("threads", "1"));
const sizes = opt("sizes", "256,512,1024").split(",").map(Number);
const minTime = Number(opt("min-time", "1.5")); // seconds per size

if (threads > 1) {
  Object.defineProperty(globalThis, "navigator", {
    value: { hardwareConcurrency: threads },
    configurable: true,
  });
  // jax-js creates a blob: URL of its worker source right before `new Worker(url)`;
  // read it back and run it in a worker_thread with `self`/`postMessage` shims.
  globalThis.Worker = class ShimWorker {
    constructor(url) {
      this.onmessage = null;
      this.onerror = null;
      this._queue = [];
      this._w = null;
      const blob = resolveObjectURL(String(url));
      blob.text().then((src) => {
        const prelude = `
          const { parentPort } = require("node:worker_threads");
          globalThis.self = globalThis;
          globalThis.postMessage = (m) => parentPort.postMessage(m);
          parentPort.on("message", (data) => self.onmessage && self.onmessage({ data }));
        `;
        this._w = new NodeWorker(prelude + src, { eval: true });
        this._w.on("message", (data) => this.onmessage && this.onmessage({ data }));
        this._w.on("error", (e) => this.onerror && this.onerror(e));

        for (const m of this._queue) this._w.postMessage(m);
        this._queue = [];
      });
    }
    postMessage(m) {
      if (this._w) this._w.postMessage(m);
      else this._queue.push(m);
    }
    terminate() {
      this._w?.terminate();
    }
  };
}

const jax = await import("@jax-js/jax");
const { numpy: np, init, defaultDevice } = jax;
const devs = await init("wasm");
if (!devs.includes("wasm")) throw new Error("jax-js wasm device unavailable");
defaultDevice("wasm");

function randomArray(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

for (const n of sizes) {
  const a = np.array(randomArray(n * n, 1), { shape: [n, n], dtype: "float32" });
  const b = np.array(randomArray(n * n, 2), { shape: [n, n], dtype: "float32" });
  const run = async () => {
    const c = np.matmul(a.ref, b.ref);
    await c.blockUntilReady();
    return c;
  };
  // warm-up + check one element against a float64 dot product (c0.data() consumes c0)
  const c0 = await run();
  const cd = await c0.data();
  const A = randomArray(n * n, 1), B = randomArray(n * n, 2);
  let ref = 0;
  for (let k = 0; k < n; k++) ref += A[(n - 1) * n + k] * B[k * n + 3];
  const err = Math.abs(cd[(n - 1) * n + 3] - ref);

  let reps = 0;
  let best = Infinity;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < minTime * 1000 || reps < 3) {
    const t = performance.now();
    const c = await run();
    best = Math.min(best, performance.now() - t);
    c.dispose();
    reps++;
  }
  const total = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMsPerThread = (cpu.user + cpu.system) / 1000 / reps / threads;
  const flop = 2 * n * n * n;
  console.log(JSON.stringify({
    peer: "@jax-js/jax", backend: "wasm", threads, M: n, N: n, K: n, dtype: "float32",
    reps, best_ms: +best.toFixed(3), mean_ms: +(total / reps).toFixed(3),
    gflops_best: +(flop / best / 1e6).toFixed(2), gflops_mean: +(flop / (total / reps) / 1e6).toFixed(2),
    gflops_cpu: +(flop / cpuMsPerThread / 1e6).toFixed(2),
    check_abs_err: +err.toExponential(2),
  }));
  a.dispose();
  b.dispose();
}
process.exit(0);
