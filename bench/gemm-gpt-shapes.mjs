#!/usr/bin/env node
/**
 * The GPT bench's linear-layer products (nanoGPT's CPU recipe: 12 x 64 tokens, width 128, the MLP
 * 4x wider, a 65-token vocabulary), float16 in and out as under autocast, each in the three forms a
 * training step runs: forward y = x W^T (B transposed), grad-input dx = dy W, grad-weight dW = dy^T x
 * (A transposed). Values N(0, 0.02^2). Per product: min and median ms of `reps` calls (the wasm
 * backend runs a kernel synchronously: its output is written when the op returns; it is not read
 * back, whose float16 decoding in JavaScript would cost more than the small products), and the sum of the mins over the step's products (each shape runs once per layer; the
 * head once). One JSON line; compare builds interleaved, one process each.
 *
 *   MIXPREC_BACKEND=wasm MIXPREC_THREADS=1 node bench/gemm-gpt-shapes.mjs [--reps 60] [--only fwd,dx,dw]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import * as mx from '../dist/index.js';

const { values: a } = parseArgs({ options: { reps: { type: 'string', default: '60' }, only: { type: 'string', default: 'fwd,dx,dw' } } });
const forms = a.only.split(',');
mx.manualSeed(1);
const T = 768, C = 128;
// [out, in, per-step count]
const layers = [['qkv', 3 * C, C, 4], ['proj', C, C, 4], ['fc', 4 * C, C, 4], ['fcproj', C, 4 * C, 4], ['head', 65, C, 1]];
const result = { threads: mx.getBackend().threads ?? 1, load_avg_1m: loadavg()[0], shapes: {} };
const median = (v) => [...v].sort((x, y) => x - y)[v.length >> 1];
let stepSum = 0;
for (const [name, out, inp, count] of layers) {
  const x = mx.randn([T, inp]).mul(0.02).to('float16');
  const w = mx.randn([out, inp]).mul(0.02).to('float16');
  const dy = mx.randn([T, out]).mul(0.02).to('float16');
  const products = { fwd: () => mx.matmul(x, w.transpose(0, 1)), dx: () => mx.matmul(dy, w), dw: () => mx.matmul(dy.transpose(0, 1), x) };
  for (const form of forms) {
    const times = [];
    for (let r = 0; r < Number(a.reps); r++) {
      const t0 = performance.now();
      const c = products[form]();
      times.push(performance.now() - t0);
      c.dispose();
    }
    const min = Math.min(...times);
    stepSum += min * count;
    result.shapes[`${name}.${form}`] = [Math.round(min * 1000) / 1000, Math.round(median(times) * 1000) / 1000];
  }
}
result.step_sum_of_mins_ms = Math.round(stepSum * 1000) / 1000;
console.log(JSON.stringify(result));
await mx.getBackend().close?.();
