#!/usr/bin/env node
/**
 * The float32 <-> float16 casts alone (the autocast's parameter casts and their gradients' casts back):
 * `x.to('float16')` of a float32 vector and `y.to('float32')` of a float16 one, values N(0, std^2)
 * (std 0.02: ~0.25% float16 subnormals, like the GPT's weights). Kernel milliseconds of the `copy`
 * kernel per call (the backend's kernelStats, so MIXPREC_WASM_PROFILE=1), best of `reps`, per size,
 * printed as one JSON line. Compare builds interleaved, one process each.
 *
 *   MIXPREC_WASM_PROFILE=1 MIXPREC_BACKEND=wasm MIXPREC_THREADS=1 node bench/cast16.mjs [--sizes 262144,4194304] [--reps 40] [--std 0.02]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import * as mx from '../dist/index.js';

const { values: a } = parseArgs({ options: { sizes: { type: 'string', default: '262144,4194304' }, reps: { type: 'string', default: '40' }, std: { type: 'string', default: '0.02' } } });
const backend = mx.getBackend();
if (typeof backend.kernelStats !== 'function') throw new Error('cast16: needs the wasm backend (MIXPREC_BACKEND=wasm)');
const copyMs = () => backend.kernelStats().copy?.nativeMs ?? NaN;
mx.manualSeed(1);
const result = { std: Number(a.std), threads: backend.threads ?? 1, load_avg_1m: loadavg()[0] };
for (const n of a.sizes.split(',').map(Number)) {
  const x32 = mx.randn([n]).mul(Number(a.std));
  const x16 = x32.to('float16');
  await x16.data();
  for (const [name, src, dtype] of [['f32_to_f16', x32, 'float16'], ['f16_to_f32', x16, 'float32']]) {
    let best = Infinity;
    for (let r = 0; r < Number(a.reps); r++) {
      const before = copyMs();
      const y = src.to(dtype);
      await y.data();
      best = Math.min(best, copyMs() - before);
      y.dispose();
    }
    if (Number.isNaN(best)) throw new Error('cast16: no kernel times: run with MIXPREC_WASM_PROFILE=1');
    result[`${name}_${n}`] = Math.round(best * 1000) / 1000;
  }
  x32.dispose();
  x16.dispose();
}
console.log(JSON.stringify(result));
await backend.close?.();
