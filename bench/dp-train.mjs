#!/usr/bin/env node
// Data-parallel training throughput: LeNet training steps (src/train/classifier.ts trainStep:
// zeroGrad, forward under autocast, scaled backward, scaler step and update, in mx.scope) on random
// CIFAR-shaped batches, global batch --batch (default 64). Alone it is one process; under a
// launcher it is DistributedDataParallel with --batch / WORLD_SIZE images per rank.
//
//   npm run build
//   MIXPREC_THREADS=2 node bench/dp-train.mjs                                   # 1 process x 2 threads
//   node dist/cli/main.js run --nproc-per-node 2 -- bench/dp-train.mjs          # 2 processes x 1 thread
//   bench/dp-interleaved.sh 3                                                   # both, and PyTorch's, alternating
//
// Flags: --precision fp32|fp16|bf16 (default fp16), --compression fp16|bf16 (DDP), --steps N (60),
// --warmup N (10), --batch N (64), --json. Rank 0 prints the global images per second over the
// timed steps (every rank steps in lockstep: the all-reduces pair them up).
import os from 'node:os';
import * as mx from '../dist/index.js';
import { trainStep, scalerFor } from '../dist/train/classifier.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const precision = opt('precision', 'fp16');
const compression = opt('compression', null);
const steps = Number(opt('steps', '60'));
const warmup = Number(opt('warmup', '10'));
const globalBatch = Number(opt('batch', '64'));
const json = args.includes('--json');

const world = Number(process.env.WORLD_SIZE ?? '1');
const backend = await mx.setBackend('wasm');
if (world > 1) await mx.distributed.initProcessGroup({ backend: 'gloo' });
const rank = world > 1 ? mx.distributed.getRank() : 0;
if (globalBatch % world !== 0) throw new Error(`--batch ${globalBatch} is not a multiple of the ${world} ranks`);
const batch = globalBatch / world;

mx.manualSeed(0);
const lenet = new mx.models.LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
const model = world > 1 ? new mx.nn.parallel.DistributedDataParallel(lenet, { gradientCompression: compression }) : lenet;
const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const ctx = { model, optimizer, scaler: scalerFor(precision), precision };
const g = new mx.Generator(1 + rank);
const dtype = precision === 'fp16' ? 'float16' : precision === 'bf16' ? 'bfloat16' : 'float32';
const x = mx.randn([batch, 3, 32, 32], { generator: g }).to(dtype);
const y = mx.randint(0, 10, [batch], { generator: g });

let started = 0;
for (let s = 0; s < warmup + steps; s++) {
  if (s === warmup) started = performance.now();
  const r = trainStep(ctx, x, y);
  r.loss.dataSync();
  r.loss.dispose();
}
const seconds = (performance.now() - started) / 1000;
const result = {
  processes: world,
  threads: backend.threads ?? 1,
  precision,
  compression: world > 1 ? compression ?? 'none' : null,
  global_batch: globalBatch,
  img_per_s: Math.round((steps * globalBatch) / seconds),
  step_ms: Number(((seconds / steps) * 1000).toFixed(2)),
  load_avg_1m: os.loadavg()[0],
};
if (rank === 0) console.log(json ? JSON.stringify(result) : `mixprec ${world} process(es) x ${result.threads} thread(s), ${precision}${world > 1 ? `, compression ${result.compression}` : ''}: ${result.img_per_s} img/s (${result.step_ms} ms per step of ${globalBatch}), load ${result.load_avg_1m.toFixed(2)}`);
if (world > 1) mx.distributed.destroyProcessGroup();
