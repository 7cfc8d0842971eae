#!/usr/bin/env node
// Training-step throughput of LeNet on CIFAR-shaped data, per backend and precision.
//
//   npm run build && node bench/train-step.mjs [--backends reference,wasm] [--precisions fp32,fp16,bf16]
//                                              [--steps 30] [--warmup 3] [--batch 64] [--json]
//
// Each (backend, precision) runs `steps` timed steps (after `warmup` untimed ones) of
// mx.models.LeNet on one random [batch, 3, 32, 32] batch with SGD (lr 0.01, momentum 0.9), the step
// being src/train/classifier.ts `trainStep` (zeroGrad, forward under the precision's autocast,
// scaled backward, scaler step/update, all inside mx.scope), and prints images per second.
// The wasm backend uses MIXPREC_THREADS threads (default: every core); its per-kernel native /
// fallback counts are printed with --stats (and timings with MIXPREC_WASM_PROFILE=1).
// The load average is printed: the numbers mean little on a machine busy with other jobs.
import os from 'node:os';
import * as mx from '../dist/index.js';
import { trainStep, scalerFor } from '../dist/train/classifier.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const backends = opt('backends', 'reference,wasm').split(',');
const precisions = opt('precisions', 'fp32,fp16,bf16').split(',');
const steps = Number(opt('steps', '30'));
const warmup = Number(opt('warmup', '3'));
const batch = Number(opt('batch', '64'));
const json = args.includes('--json');
const stats = args.includes('--stats');

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`# LeNet train step, batch ${batch}, ${steps} steps (+${warmup} warm-up), node ${process.version}, ${os.availableParallelism?.() ?? os.cpus().length} cores, load ${load()}`);

const results = [];
for (const backendName of backends) {
  const backend = await mx.setBackend(backendName);
  for (const precision of precisions) {
    mx.manualSeed(0);
    const model = new mx.models.LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
    const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const ctx = { model, optimizer, scaler: scalerFor(precision), precision };
    const g = new mx.Generator(1);
    const x = mx.randn([batch, 3, 32, 32], { generator: g });
    const y = mx.randint(0, 10, [batch], { generator: g });
    backend.resetKernelStats?.();
    let loss = 0;
    const times = [];
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      const r = trainStep(ctx, x, y);
      loss = r.loss.dataSync()[0]; // waits for the step (synchronous CPU backends anyway)
      r.loss.dispose();
      if (s >= warmup) times.push(performance.now() - t0);
    }
    const total = times.reduce((a, b) => a + b, 0) / 1000;
    const sorted = [...times].sort((a, b) => a - b);
    const row = {
      backend: backendName,
      threads: backend.threads ?? 1,
      precision,
      imgPerS: (steps * batch) / total,
      msPerStep: (total * 1000) / steps,
      medianMs: sorted[Math.floor(sorted.length / 2)],
      loss,
      load: load(),
    };
    results.push(row);
    if (json) console.log(JSON.stringify(row));
    else {
      console.log(
        `${backendName.padEnd(9)} threads ${String(row.threads).padStart(2)}  ${precision}  ${row.imgPerS.toFixed(0).padStart(6)} img/s  ` +
          `${row.msPerStep.toFixed(1).padStart(7)} ms/step (median ${row.medianMs.toFixed(1)})  loss ${loss.toFixed(4)}  load ${row.load}`,
      );
    }
    if (stats && backend.kernelStats) {
      const ks = backend.kernelStats();
      const fmt = (k) => `${k} ${ks[k].native}/${ks[k].fallback}${ks[k].nativeMs !== undefined || ks[k].fallbackMs !== undefined ? ` (${(ks[k].nativeMs ?? 0).toFixed(0)}+${(ks[k].fallbackMs ?? 0).toFixed(0)} ms)` : ''}`;
      console.log(`  native/fallback: ${Object.keys(ks).sort().map(fmt).join(', ')}`);
    }
    for (const p of model.parameters()) p.dispose();
    x.dispose();
    y.dispose();
  }
  await backend.close?.();
}
