#!/usr/bin/env node
// Where a multi-threaded training step loses against the single-threaded one, pool call by pool call
// (run `npm run build` first):
//
//   node bench/pool-profile.mjs [--model resnet18|gpt|...] [--precision fp16] [--threads 2] [--steps 6] [--warmup 2] [--json-out FILE]
//
// Runs `benchTrain` (the `mixprec bench train` step: batch 64, 32x32, SGD momentum) on the wasm
// backend at 1 thread, then at --threads, timing every call of the kernel pool (KernelPool.run, the
// unit the pool splits): its wall time, the calling thread's busy time inside it (its own part and
// any part it ran for a worker that had not started it), so wait = wall - busy is the time it
// waited for a worker; the wall of calls left in one part ("unsplit"); and the host time between
// calls (step time outside the pool: autograd, dispatch, JavaScript). The table gives, per kernel,
// ms per timed step at 1 thread, at N threads, and the loss against a perfect split
// (N-thread wall - 1-thread wall / N), then the host gaps between calls as a histogram.
// A diagnostic: it wraps the pool's methods from outside, so it reads the built dist/.
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { scriptArgs } from "./peer_common.mjs";
import { busy, interceptPoolRuns, timedTrainRun } from "./pool_timing.mjs";

const { opt } = scriptArgs(import.meta.url);
const model = opt("model", "resnet18");
const precision = opt("precision", "fp16");
const threads = Number(opt("threads", "2"));
const steps = Number(opt("steps", "6"));
const warmup = Number(opt("warmup", "2"));
const jsonOut = opt("json-out", null);

// One profile at a time: the counters below belong to the run in progress.
let stats = new Map();
let timing = false;
let inPool = 0;
let lastEnd = 0;
let gaps = [];
interceptPoolRuns((pool, kernel, parts, run) => {
  busy.ms = 0;
  const t0 = performance.now();
  if (timing && lastEnd) gaps.push(t0 - lastEnd);
  run();
  const t1 = performance.now();
  lastEnd = t1;
  if (!timing) return;
  inPool += t1 - t0;
  let s = stats.get(kernel);
  if (!s) stats.set(kernel, (s = { calls: 0, wall: 0, busy: 0, unsplit: 0 }));
  s.calls++;
  s.wall += t1 - t0;
  s.busy += busy.ms;
  if (parts.length <= 1) s.unsplit += t1 - t0;
});

async function profile(n) {
  stats = new Map();
  gaps = [];
  inPool = 0;
  lastEnd = 0;
  timing = false;
  let start = 0;
  const r = await timedTrainRun(n, { model, precision, steps, warmup }, () => { timing = true; start = performance.now(); });
  const total = performance.now() - start;
  timing = false;
  const per = (x) => x / steps;
  return {
    threads: n, step_ms: r.step_ms, host_ms: per(total - inPool), load_avg_1m: r.load_avg_1m,
    kernels: Object.fromEntries([...stats].map(([k, s]) => [k, { calls: per(s.calls), wall_ms: per(s.wall), busy_ms: per(s.busy), unsplit_ms: per(s.unsplit) }])),
    gaps_us: gaps.map((g) => g * 1000),
  };
}

const loadStart = loadavg()[0];
const one = await profile(1);
const many = await profile(threads);
const f = (x, w = 7) => x.toFixed(1).padStart(w);
console.log(`${model} ${precision}, load ${loadStart.toFixed(2)} -> ${loadavg()[0].toFixed(2)}: 1 thread ${one.step_ms.toFixed(1)} ms/step (host ${one.host_ms.toFixed(1)}), ${threads} threads ${many.step_ms.toFixed(1)} ms/step (host ${many.host_ms.toFixed(1)})`);
console.log(`${"kernel".padEnd(30)} calls  1t ms  ${threads}t ms   busy   wait  loss  unsplit`);
let lossSum = 0;
for (const [k, a] of Object.entries(one.kernels).sort((x, y) => y[1].wall_ms - x[1].wall_ms)) {
  const b = many.kernels[k] ?? { wall_ms: 0, busy_ms: 0, unsplit_ms: 0 };
  const loss = b.wall_ms - a.wall_ms / threads;
  lossSum += loss;
  if (a.wall_ms < 0.05 && b.wall_ms < 0.05) continue;
  console.log(`${k.padEnd(30)} ${f(a.calls, 5)} ${f(a.wall_ms)} ${f(b.wall_ms)} ${f(b.busy_ms)} ${f(b.wall_ms - b.busy_ms, 6)} ${f(loss, 5)} ${f(b.unsplit_ms, 8)}`);
}
console.log(`kernels' loss ${lossSum.toFixed(1)} ms/step, host's ${(many.host_ms - one.host_ms / threads).toFixed(1)}`);
const edges = [5, 10, 20, 50, 100, 200, 500, 1000, Infinity];
const hist = edges.map(() => 0);
for (const g of many.gaps_us) hist[edges.findIndex((e) => g < e)]++;
console.log(`host gaps between pool calls at ${threads} threads, per step: ${edges.map((e, i) => `<${e === Infinity ? "inf" : e} us: ${(hist[i] / steps).toFixed(0)}`).join(", ")}`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ model, precision, steps, warmup, one, many }, null, 1));
process.exit(0);
