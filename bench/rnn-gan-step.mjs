#!/usr/bin/env node
/**
 * mixprec's side of bench/torch_rnn_gan.py: one training step of the README's recipes, timed.
 *
 *   node bench/rnn-gan-step.mjs [--model lstm|dcgan] [--steps 20] [--warmup 10] [--precisions fp32,fp16,bf16] [--profile]
 *
 * lstm: the `mixprec train-lm` model and step (CharLSTM 65/64/256/2 layers on random ids [64, 32],
 * autocast, GradScaler for fp16, unscale_, clipping at 1, AdamW lr 0.002 wd 0.01); dcgan: the
 * `mixprec train-gan` iteration (ganStep, width 32, batch 64 of random images). Default backend
 * (wasm, all cores). Each step reads its loss, as the CLI does. Prints one JSON object.
 * --profile (with MIXPREC_WASM_PROFILE=1 on the wasm backend): each precision's result also lists
 * `kernels`, the ms and calls per timed step of every kernel, slowest first (the calls are timed one
 * by one, so the step itself runs a little slower than without it).
 */
import { parseArgs } from 'node:util';
import * as mx from '../dist/index.js';
import { ganStep } from '../dist/cli/train_gan.js';
import { trainStep } from '../dist/train/classifier.js';
import { lmLoss } from '../dist/train/language_model.js';

const { values: a } = parseArgs({ options: { model: { type: 'string', default: 'lstm' }, steps: { type: 'string', default: '20' }, warmup: { type: 'string', default: '10' }, precisions: { type: 'string', default: 'fp32,fp16,bf16' }, profile: { type: 'boolean', default: false } } });
const dtypeOf = (p) => (p === 'fp16' ? 'float16' : p === 'bf16' ? 'bfloat16' : null);

function lstmStep(precision) {
  mx.manualSeed(0);
  const model = new mx.models.CharLSTM({ vocabSize: 65, embedDim: 64, hidden: 256, layers: 2 });
  const params = model.parameters();
  const opt = new mx.optim.AdamW(params, { lr: 0.002, weightDecay: 0.01 });
  const scaler = new mx.amp.GradScaler({ enabled: precision === 'fp16' });
  const ids = mx.randint(0, 65, [65, 32], { dtype: 'int32' });
  const [x, y] = [ids.narrow(0, 0, 64), ids.narrow(0, 1, 64)];
  const ctx = { model, optimizer: opt, scaler, precision, clipGradNorm: 1, loss: (x, y) => lmLoss(model, x, y) };
  const step = async () => {
    const { loss } = trainStep(ctx, x, y);
    await loss.item();
    loss.dispose();
  };
  return { step, units: 64 * 32, unit: 'chars' };
}

function dcganStep(precision) {
  mx.manualSeed(0);
  const G = new mx.models.DCGANGenerator({ width: 32 });
  const D = new mx.models.DCGANDiscriminator({ width: 32 });
  const adam = { lr: 2e-4, betas: [0.5, 0.999] };
  const ctx = { generator: G, discriminator: D, optG: new mx.optim.Adam(G.parameters(), adam), optD: new mx.optim.Adam(D.parameters(), adam), scaler: new mx.amp.GradScaler({ enabled: precision === 'fp16' }), precision };
  const real = mx.rand([64, 3, 32, 32]).mul(2).sub(1).to(dtypeOf(precision) ?? 'float32');
  const step = async () => {
    const r = ganStep(ctx, real);
    await r.lossD.item();
    await r.lossG.item();
    r.lossD.dispose();
    r.lossG.dispose();
  };
  return { step, units: 1, unit: 'iterations' };
}

const backend = mx.getBackend();
if (a.profile && (typeof backend.kernelStats !== 'function' || process.env.MIXPREC_WASM_PROFILE !== '1')) {
  console.error(`rnn-gan-step: --profile needs the wasm backend with MIXPREC_WASM_PROFILE=1 (backend ${backend.name}, MIXPREC_WASM_PROFILE=${process.env.MIXPREC_WASM_PROFILE ?? 'unset'})`);
  process.exit(2);
}

/** ms and calls per step of each kernel between two kernelStats() snapshots, slowest first. */
function kernelsPerStep(before, after, steps) {
  const rows = Object.entries(after).map(([name, v]) => {
    const b = before[name] ?? {};
    const ms = (v.nativeMs ?? 0) - (b.nativeMs ?? 0) + (v.fallbackMs ?? 0) - (b.fallbackMs ?? 0);
    const calls = v.native - (b.native ?? 0) + v.fallback - (b.fallback ?? 0);
    return { kernel: name, ms: Math.round((ms / steps) * 100) / 100, calls: calls / steps };
  });
  return rows.filter((r) => r.calls > 0).sort((x, y) => y.ms - x.ms);
}

const results = [];
for (const precision of a.precisions.split(',')) {
  const { step, units, unit } = (a.model === 'lstm' ? lstmStep : dcganStep)(precision);
  for (let i = 0; i < Number(a.warmup); i++) await step();
  const before = a.profile ? backend.kernelStats() : null;
  const t0 = performance.now();
  for (let i = 0; i < Number(a.steps); i++) await step();
  const seconds = (performance.now() - t0) / 1000 / Number(a.steps);
  const result = { precision, ms_per_step: Math.round(seconds * 1e5) / 100, [`${unit}_per_s`]: Math.round((units / seconds) * 10) / 10 };
  if (before) result.kernels = kernelsPerStep(before, backend.kernelStats(), Number(a.steps));
  results.push(result);
}
console.log(JSON.stringify({ peer: 'mixprec', backend: mx.getBackend().name, threads: mx.getBackend().threads ?? 1, model: a.model, results }));
await mx.getBackend().close?.();
