#!/usr/bin/env node
/**
 * Products whose time is mostly the GEMM's packing of 16-bit operands (widening to float32):
 * B: [4 x 256] x [256 x 8192] (B row-major, and stored transposed as [8192 x 256]);
 * A: [8192 x 256] x [256 x 8] (A row-major, and stored transposed as [256 x 8192]).
 * Values N(0, std^2) rounded to the dtype (std 0.02: ~0.25% float16 subnormals, like the GPT's
 * weights; 0.002: ~2.4%), output in the same dtype; best ms of `reps` calls per product (each call
 * waits for its result), printed as one JSON line. Compare builds interleaved, one process each.
 *
 *   MIXPREC_BACKEND=wasm MIXPREC_THREADS=1 node bench/gemm-pack16.mjs [--dtype float16|bfloat16] [--reps 40] [--std 0.02]
 */
import { parseArgs } from 'node:util';
import * as mx from '../dist/index.js';

const { values: a } = parseArgs({ options: { dtype: { type: 'string', default: 'float16' }, reps: { type: 'string', default: '40' }, std: { type: 'string', default: '0.02' } } });
mx.manualSeed(1);
const shapes = [
  ['B', 4, 256, 8192, false, false],
  ['B^T', 4, 256, 8192, false, true],
  ['A', 8192, 256, 8, false, false],
  ['A^T', 8192, 256, 8, true, false],
];
const result = { dtype: a.dtype, std: Number(a.std), threads: mx.getBackend().threads ?? 1, load_avg_1m: (await import('node:os')).loadavg()[0] };
for (const [name, M, K, N, ta, tb] of shapes) {
  const a0 = mx.randn(ta ? [K, M] : [M, K]).mul(Number(a.std)).to(a.dtype);
  const b0 = mx.randn(tb ? [N, K] : [K, N]).mul(Number(a.std)).to(a.dtype);
  const lhs = ta ? a0.transpose(0, 1) : a0, rhs = tb ? b0.transpose(0, 1) : b0;
  let best = Infinity;
  for (let r = 0; r < Number(a.reps); r++) {
    const t0 = performance.now();
    const c = mx.matmul(lhs, rhs);
    await c.data();
    best = Math.min(best, performance.now() - t0);
    c.dispose();
  }
  result[name] = Math.round(best * 1000) / 1000;
}
console.log(JSON.stringify(result));
await mx.getBackend().close?.();
