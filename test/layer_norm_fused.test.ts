/**
 * Fused layer normalisation (src/nn/layer_norm_ops.ts; F.layerNorm takes it where the backend runs
 * its kernels natively, wasm): forward and every gradient against the composite definition on the
 * reference backend, in float32, float16 and bfloat16; the four kernels themselves on 16-bit
 * operands (as a 16-bit model outside autocast would call them) against the reference kernels;
 * float64 gradcheck through the fused path; the bad-shape messages.
 * Runs on the suite's backend (MIXPREC_BACKEND); on wasm also that the kernels run natively
 * (assembly/kernels/layer_norm.ts) on GPT-like shapes (rows split between threads, a width that is
 * not a multiple of 8, no affine parameters).
 */
import { backendName } from './helpers/backend.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { onBackend as on } from './helpers/backends.js';
import { relError } from './helpers/compare.js';
import { apply } from '../src/ops/dispatch.js';

const F = mx.nn.functional;
type Dtype = 'float32' | 'float16' | 'bfloat16';

interface Outputs { y: Float32Array; gx: Float32Array; gw: Float32Array; gb: Float32Array }

async function run(dtype: Dtype, fused: boolean | undefined, shape = [4, 6, 20], affine = true): Promise<Outputs> {
  const g = new mx.Generator(3);
  const D = shape[shape.length - 1]!;
  const x = mx.randn(shape, { generator: g }).mul(3).add(1).to(dtype).requiresGrad_(true);
  const w = mx.randn([D], { generator: g }).requiresGrad_(true);
  const b = mx.randn([D], { generator: g }).requiresGrad_(true);
  const gy = mx.randn(shape, { generator: g }).to(dtype);
  const y = F.layerNorm(x, [D], affine ? { weight: w, bias: b, fused } : { fused });
  assert.equal(y.dtype, dtype, 'the output keeps the input dtype');
  y.mul(gy).sum().backward();
  const read = async (t: Tensor | null) => (t ? Float32Array.from(await t.to('float32').data()) : new Float32Array(0));
  return { y: await read(y), gx: await read(x.grad), gw: await read(affine ? w.grad : null), gb: await read(affine ? b.grad : null) };
}


const tolOf = (dtype: Dtype) => (dtype === 'float32' ? 1e-5 : dtype === 'float16' ? 2 ** -10 : 2 ** -7);

for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
  test(`fused layerNorm ${dtype} on ${backendName}: output and gradients equal the composite's`, async () => {
    const composite = await on('reference', () => run(dtype, false));
    const fused = await run(dtype, true);
    // 16-bit: outputs within one rounding of the same value; the float32 weight/bias gradients as in float32
    for (const k of ['y', 'gx'] as const) assert.ok(relError(fused[k], composite[k]) <= tolOf(dtype), `${k}: ${relError(fused[k], composite[k])}`);
    for (const k of ['gw', 'gb'] as const) assert.ok(relError(fused[k], composite[k]) <= 1e-5, `${k}: ${relError(fused[k], composite[k])}`);
  });

  test(`layerNorm kernels on ${dtype} operands on ${backendName} equal the reference kernels (row width 13 and 24)`, async () => {
    for (const D of [13, 24]) {
      const kernels = () => {
        const g = new mx.Generator(5);
        const x = mx.randn([9, D], { generator: g }).mul(2).add(-1).to(dtype);
        const w = mx.randn([D], { generator: g }).to(dtype);
        const b = mx.randn([D], { generator: g }).to(dtype);
        const gy = mx.randn([9, D], { generator: g }).to(dtype);
        const p = { size: D, eps: 1e-5, hasWeight: true, hasBias: true };
        const stats = apply('layerNormStats', [x], p);
        return [stats, apply('layerNormFused', [x, stats, w, b], p), apply('layerNormGradSums', [gy, x, stats], p), apply('layerNormBackwardInput', [gy, x, stats, w], p)];
      };
      const read = async (ts: Tensor[]) => Promise.all(ts.map(async (t) => Float32Array.from(await t.to('float32').data())));
      const want = await on('reference', async () => read(kernels()));
      const got = await read(kernels());
      ['stats', 'y', 'sums', 'dx'].forEach((name, i) => {
        const tol = name === 'y' || name === 'dx' ? tolOf(dtype) : 1e-5;
        assert.ok(relError(got[i]!, want[i]!) <= tol, `D ${D} ${name}: ${relError(got[i]!, want[i]!)}`);
      });
    }
  });
}

test('fused layerNorm: float64 gradcheck of the input, weight and bias gradients', async () => {
  const g = new mx.Generator(7);
  const x = mx.randn([3, 5], { generator: g, dtype: 'float64' }).requiresGrad_(true);
  const w = mx.randn([5], { generator: g, dtype: 'float64' }).requiresGrad_(true);
  const b = mx.randn([5], { generator: g, dtype: 'float64' }).requiresGrad_(true);
  const r = await mx.gradcheck((a, c, d) => F.layerNorm(a!, [5], { weight: c, bias: d, fused: true }), [x, w, b]);
  assert.ok(r.ok, r.message);
});

test('layerNormFused names the bad weight size and statistics', () => {
  const x = mx.zeros([2, 3, 4]);
  const p = { size: 4, eps: 1e-5, hasWeight: true, hasBias: false };
  const stats = apply('layerNormStats', [x], p);
  assert.throws(() => apply('layerNormFused', [x, stats, mx.ones([3])], p), /layerNormFused: weight\/bias \[3\] must have 4 elements/);
  assert.throws(() => apply('layerNormFused', [x, mx.zeros([2, 5]), mx.ones([4])], p), /layerNormFused: statistics \[2,5\] float32 must be layerNormStats of the input \(\[2,6\] float32\)/);
  assert.throws(() => apply('layerNormStats', [x], { ...p, size: 5 }), /layerNormStats: normalized size 5 does not divide input \[2,3,4\]/);
});

test('wasm: the fused kernels run natively (GPT-like rows split between threads, width 100, no affine parameters)', { skip: backendName === 'wasm' ? false : `runs in the wasm pass, not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number; fallback: number }>; resetKernelStats(): void };
  for (const [shape, dtype, affine] of [[[12, 64, 128], 'float16', true], [[7, 30, 100], 'bfloat16', true], [[768, 128], 'float32', false]] as const) {
    backend.resetKernelStats();
    const fused = await run(dtype, undefined, [...shape], affine);
    const stats = backend.kernelStats();
    const kernels = ['layerNormStats', 'layerNormFused', 'layerNormBackwardInput', ...(affine ? ['layerNormGradSums'] : [])];
    for (const k of kernels) assert.ok((stats[k]?.native ?? 0) >= 1 && (stats[k]?.fallback ?? 0) === 0, `${k} ran natively on ${shape} ${dtype}`);
    const composite = await on('reference', () => run(dtype, false, [...shape], affine));
    for (const k of ['y', 'gx'] as const) assert.ok(relError(fused[k], composite[k]) <= tolOf(dtype), `${shape} ${dtype} ${k}: ${relError(fused[k], composite[k])}`);
    for (const k of ['gw', 'gb'] as const) assert.ok(relError(fused[k], composite[k]) <= 1e-5, `${shape} ${dtype} ${k}: ${relError(fused[k], composite[k])}`);
  }
});
