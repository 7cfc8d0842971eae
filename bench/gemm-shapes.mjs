#!/usr/bin/env node
// The GEMM calls of a training step, shape by shape, at 1 and N threads (run `npm run build` first):
//
//   node bench/gemm-shapes.mjs [--model gpt|resnet18] [--precision fp16] [--threads 2] [--steps 6] [--warmup 2] [--replays 20]
//
// Runs `benchTrain` (as bench/pool-profile.mjs does, through bench/pool_timing.mjs) on the wasm backend at 1 thread, then at --threads,
// timing every `gemm` call of the kernel pool by shape (batch x M x N x K, flags, dtypes): wall time per
// call, the calling thread's own part ("busy"), the parts it was split into. During the N-thread run
// each non-accumulating shape is also replayed on the calling thread alone (same operands, its output
// written again with the same values) to price its split: the whole call as one part ("1 part"), and
// each of the N parts of a static split one after the other ("parts": their CPU times; their sum
// against the one-part time is the work the split adds, their maximum against an even share its
// imbalance). Best of --replays each.
import { loadavg } from "node:os";
import { scriptArgs } from "./peer_common.mjs";
import { busy, interceptPoolRuns, timedTrainRun } from "./pool_timing.mjs";

const { opt } = scriptArgs(import.meta.url);
const model = opt("model", "gpt");
const precision = opt("precision", "fp16");
const threads = Number(opt("threads", "2"));
const steps = Number(opt("steps", "6"));
const warmup = Number(opt("warmup", "2"));
const replays = Number(opt("replays", "20"));

const GEMM_ACCUMULATE = 4;
let stats = new Map();
let timing = false;
let replay = false;
const shapeKey = (a) => `${a[2]}x${a[3]}x${a[4]}x${a[5]} f${a[0] & 255} d${(a[1] & 4095).toString(16)}`;
interceptPoolRuns((pool, kernel, parts, run) => {
  if (kernel !== "gemm" || !timing) return run();
  busy.ms = 0;
  const t0 = performance.now();
  run();
  const t1 = performance.now();
  const args = parts[0];
  const key = shapeKey(args);
  let s = stats.get(key);
  if (!s) stats.set(key, (s = { calls: 0, wall: 0, busy: 0, parts: parts.length, one: Infinity, part: [] }));
  s.calls++;
  s.wall += t1 - t0;
  s.busy += busy.ms;
  if (replay && parts.length > 1 && (args[0] & GEMM_ACCUMULATE) === 0 && s.replayed === undefined) {
    s.replayed = true;
    const fn = pool.fns[pool.ids.get("gemm")];
    const n = parts.length;
    const base = args.slice(0, -3); // without sync, part, parts
    s.part = new Array(n).fill(Infinity);
    for (let r = 0; r < replays; r++) {
      let t = performance.now();
      fn(...base, 0, 0, 1);
      s.one = Math.min(s.one, performance.now() - t);
      for (let p = 0; p < n; p++) {
        t = performance.now();
        fn(...base, 0, p, n);
        s.part[p] = Math.min(s.part[p], performance.now() - t);
      }
    }
  }
});

async function profile(n, withReplay) {
  stats = new Map();
  timing = false;
  replay = withReplay;
  const r = await timedTrainRun(n, { model, precision, steps, warmup }, () => { timing = true; });
  timing = false;
  return { step_ms: r.step_ms, stats };
}

const loadStart = loadavg()[0];
const one = await profile(1, false);
const many = await profile(threads, true);
const f = (x, w = 7, d = 1) => x.toFixed(d).padStart(w);
console.log(`${model} ${precision} gemm by shape, load ${loadStart.toFixed(2)} -> ${loadavg()[0].toFixed(2)}: 1 thread ${one.step_ms.toFixed(1)} ms/step, ${threads} threads ${many.step_ms.toFixed(1)}`);
console.log(`${"shape (BxMxNxK flags dtypes)".padEnd(32)} calls  1t ms ${threads}t ms  busy  loss | replay us: 1 part, parts (sum/1, max/even)`);
let lossSum = 0, t1 = 0, tn = 0;
for (const [k, a] of [...one.stats].sort((x, y) => y[1].wall - x[1].wall)) {
  const b = many.stats.get(k) ?? { calls: 0, wall: 0, busy: 0, parts: 0, one: Infinity, part: [] };
  const loss = (b.wall - a.wall / threads) / steps;
  lossSum += loss; t1 += a.wall / steps; tn += b.wall / steps;
  const rep = b.part.length ? `${f(b.one * 1000, 6, 0)}, ${b.part.map((x) => f(x * 1000, 0, 0)).join("/")} (${(b.part.reduce((s, x) => s + x, 0) / b.one).toFixed(2)}, ${(Math.max(...b.part) / (b.one / b.part.length)).toFixed(2)})` : "";
  console.log(`${k.padEnd(32)} ${f(a.calls / steps, 5)} ${f(a.wall / steps)} ${f(b.wall / steps, 6, 2)} ${f(b.busy / steps, 5)} ${f(loss, 5, 2)} p${b.parts} | ${rep}`);
}
console.log(`gemm: 1 thread ${t1.toFixed(1)} ms/step, ${threads} threads ${tn.toFixed(1)}, loss against a perfect split ${lossSum.toFixed(1)}`);
process.exit(0);
