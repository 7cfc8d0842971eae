#!/usr/bin/env node
// Soak: a long fp16 LeNet training run, sampling memory every N steps, to show that nothing grows.
//
//   npm run build && node bench/soak.mjs [--backend wasm] [--steps 20000] [--every 500] [--batch 64]
//        [--precision fp16] [--data PATH|random] [--warmup 0.1] [--json out.json]
//   node bench/soak.mjs --backend webgpu --steps 2000 --every 100 --batch 8
//
// The step is the CLI's (src/train/classifier.ts trainStep: zeroGrad, forward under autocast,
// GradScaler-scaled backward, SGD momentum step, inside mx.scope) on CIFAR-10 batches from a
// DataLoader (float16 batches, as `mixprec train` feeds them; epochs repeat until the step count;
// --data random: one fixed random batch), and every step reads its loss. Every `every` steps it
// samples the process's resident set (rss), V8's heap and ArrayBuffer bytes, the wasm memory's size,
// the backend's live buffers and bytes (mx.memory()) and, on webgpu, the GPUBuffers that exist
// (pooled ones included). After the warm-up (the first `warmup` fraction of the steps) the samples
// are cut in two halves: the second half's peak of each measure must be within 5% of the first
// half's (the garbage collector's sawtooth is fine, growth is not) for rss, the wasm memory and the
// live (and GPU) bytes, and the live buffer counts must not change at all; V8's heap and ArrayBuffer
// bytes are shown, not checked (sawtooth). Exits 1 when a check fails. Figures: docs/reliability.md.
import os from 'node:os';
import { existsSync, writeFileSync } from 'node:fs';
import * as mx from '../dist/index.js';
import { trainStep, scalerFor, autocastDtype } from '../dist/train/classifier.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const backendName = opt('backend', 'wasm');
const steps = Number(opt('steps', backendName === 'webgpu' ? '2000' : '20000'));
const every = Number(opt('every', backendName === 'webgpu' ? '100' : '500'));
const batch = Number(opt('batch', backendName === 'webgpu' ? '8' : '64'));
const precision = opt('precision', 'fp16');
const warmup = Number(opt('warmup', '0.1'));
const defaultData = new URL('../../shared/datasets/cifar-10-binary.tar.gz', import.meta.url).pathname;
const data = opt('data', existsSync(defaultData) ? defaultData : 'random');
const jsonOut = opt('json', null);

const backend = await mx.setBackend(backendName);
const MiB = (b) => b / 2 ** 20;
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(
  `# soak: LeNet ${precision}, backend ${backendName}${backend.threads ? ` (${backend.threads} threads)` : ''}, batch ${batch}, ${steps} steps, ` +
    `sample every ${every}, data ${data === 'random' ? 'one random batch' : data}; node ${process.version}, load ${load()}`,
);

mx.manualSeed(0);
let batches;
let channels = 3;
if (data === 'random') {
  const g = new mx.Generator(1);
  const dtype = autocastDtype(precision) ?? 'float32';
  const x = mx.randn([batch, 3, 32, 32], { generator: g }).to(dtype);
  const y = mx.randint(0, 10, [batch], { generator: g });
  batches = async function* () {
    for (;;) yield [x, y];
  };
} else {
  const T = mx.data.transforms;
  const train = await mx.data.CIFAR10.load(data, {
    train: true,
    transform: new T.Compose([new T.ToTensor(), new T.Normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616])]),
  });
  const loader = new mx.data.DataLoader(train, { batchSize: batch, shuffle: true, seed: 0, dtype: autocastDtype(precision) ?? undefined, dropLast: true });
  batches = async function* () {
    for (;;) yield* loader;
  };
}
const model = new mx.models.LeNet({ inChannels: channels, imageSize: 32, numClasses: 10 });
const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const ctx = { model, optimizer, scaler: scalerFor(precision), precision };

const sample = (step, ms) => {
  const m = process.memoryUsage();
  const live = mx.memory();
  const s = {
    step,
    rss: m.rss,
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    liveBuffers: live.liveBuffers,
    liveBytes: live.liveBytes,
    msPerStep: ms,
  };
  if (backend.heapStats) s.wasmMemory = backend.heapStats().heapBytes;
  if (backend.poolStats) {
    const p = backend.poolStats();
    s.gpuBuffers = p.gpuBuffers;
    s.gpuBytes = p.gpuBytes;
  }
  // bind groups created so far (the scheduler caches up to 8,192, then starts over)
  if (backend.schedulerStats) s.bindGroups = backend.schedulerStats().bindGroups;
  return s;
};

const samples = [];
const header = ['step', 'rss MiB', 'heap MiB', 'arrayBuf MiB', 'wasm MiB', 'live buffers', 'live MiB', 'GPU buffers', 'GPU MiB', 'bind groups', 'ms/step'];
console.log(header.join('\t'));
const print = (s) =>
  console.log(
    [s.step, MiB(s.rss).toFixed(1), MiB(s.heapUsed).toFixed(1), MiB(s.arrayBuffers).toFixed(1), s.wasmMemory === undefined ? '-' : MiB(s.wasmMemory).toFixed(1),
      s.liveBuffers, MiB(s.liveBytes).toFixed(2), s.gpuBuffers ?? '-', s.gpuBytes === undefined ? '-' : MiB(s.gpuBytes).toFixed(1), s.bindGroups ?? '-', s.msPerStep.toFixed(2)].join('\t'),
  );
let step = 0;
let last = performance.now();
let lastLoss = NaN;
const started = performance.now();
for await (const [x, y] of batches()) {
  const { loss } = trainStep(ctx, x, y);
  lastLoss = await loss.item();
  loss.dispose();
  step++;
  if (step % every === 0 || step === 1) {
    const now = performance.now();
    const s = sample(step, (now - last) / (step === 1 ? 1 : every));
    last = now;
    samples.push(s);
    print(s);
  }
  if (step >= steps) break;
}
const seconds = (performance.now() - started) / 1000;

// The checks: after the warm-up, second half's peaks within 5% of the first half's; live buffers flat.
const kept = samples.filter((s) => s.step > warmup * steps);
const half = Math.floor(kept.length / 2);
const first = kept.slice(0, half);
const second = kept.slice(half);
const peak = (list, key) => Math.max(...list.map((s) => s[key]));
const checks = [];
// V8's heap and ArrayBuffer bytes are reported, not checked: sampled at arbitrary points of the
// collector's sawtooth, their peaks vary by tens of percent without any growth (rss includes them).
for (const key of ['rss', 'wasmMemory', 'liveBytes', 'gpuBytes', 'heapUsed', 'arrayBuffers']) {
  if (kept[0][key] === undefined) continue;
  const a = peak(first, key);
  const b = peak(second, key);
  const info = key === 'heapUsed' || key === 'arrayBuffers';
  checks.push({ measure: key, firstHalfPeak: a, secondHalfPeak: b, ratio: b / a, ok: info || b <= a * 1.05, info });
}
for (const key of ['liveBuffers', 'gpuBuffers']) {
  if (kept[0][key] === undefined) continue;
  const values = kept.map((s) => s[key]);
  checks.push({ measure: key, min: Math.min(...values), max: Math.max(...values), ok: Math.min(...values) === Math.max(...values) });
}
console.log(`# ${step} steps in ${seconds.toFixed(0)} s (${((step * batch) / seconds).toFixed(0)} img/s), last loss ${lastLoss.toFixed(4)}, load ${load()}`);
console.log(`# after the warm-up (steps > ${Math.round(warmup * steps)}): ${first.length} samples up to step ${first.at(-1)?.step}, ${second.length} after`);
for (const c of checks) {
  const text = 'ratio' in c
    ? `peak ${MiB(c.firstHalfPeak).toFixed(2)} -> ${MiB(c.secondHalfPeak).toFixed(2)} MiB (x${c.ratio.toFixed(4)}, bound 1.05)`
    : `${c.min} .. ${c.max} (must not change)`;
  console.log(`# ${c.info ? 'info' : c.ok ? 'ok  ' : 'FAIL'} ${c.measure}: ${c.info ? text.replace(', bound 1.05', ', not checked') : text}`);
}
if (jsonOut) {
  writeFileSync(jsonOut, JSON.stringify({ backend: backendName, threads: backend.threads ?? 1, precision, batch, steps: step, every, data, seconds, lastLoss, samples, checks }, null, 1));
}
process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
