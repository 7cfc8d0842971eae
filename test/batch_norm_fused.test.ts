/**
 * Fused batch normalisation (src/nn/batch_norm_ops.ts; F.batchNorm takes it in training mode where
 * the backend runs its kernels natively, webgpu): forward, every gradient and the running
 * statistics against the composite definition on the reference backend, in float32, float16 and
 * bfloat16 (16-bit outputs rounded once from float32-or-wider arithmetic, as the composite's are);
 * on webgpu also that the default path is the fused one and what it saves.
 * Runs on the suite's backend (MIXPREC_BACKEND); on wasm also that the fused kernels run natively
 * (assembly/kernels/batch_norm.ts) on ResNet-like shapes: runs of 1 to 64 values, channels split
 * between threads, no affine parameters.
 */
import { backendName } from './helpers/backend.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { onBackend as on } from './helpers/backends.js';
import { relError } from './helpers/compare.js';
import { apply, kernelView } from '../src/ops/dispatch.js';

const F = mx.nn.functional;
type Dtype = 'float32' | 'float16' | 'bfloat16';

interface Outputs { y: Float32Array; gx: Float32Array; gw: Float32Array; gb: Float32Array; rm: Float32Array; rv: Float32Array }

async function run(dtype: Dtype, fused: boolean | undefined, shape = [4, 5, 6, 7]): Promise<Outputs> {
  const g = new mx.Generator(3);
  const C = shape[1]!;
  const x = mx.randn(shape, { generator: g }).mul(3).add(1).to(dtype).requiresGrad_(true);
  const w = mx.randn([C], { generator: g }).requiresGrad_(true);
  const b = mx.randn([C], { generator: g }).requiresGrad_(true);
  const rm = mx.zeros([C]);
  const rv = mx.ones([C]);
  const gy = mx.randn(shape, { generator: g }).to(dtype);
  const y = F.batchNorm(x, rm, rv, { training: true, weight: w, bias: b, fused });
  assert.equal(y.dtype, dtype, 'the output keeps the input dtype');
  y.mul(gy).sum().backward();
  const read = async (t: Tensor) => Float32Array.from(await t.to('float32').data());
  return { y: await read(y), gx: await read(x.grad!), gw: await read(w.grad!), gb: await read(b.grad!), rm: await read(rm), rv: await read(rv) };
}


for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
  test(`fused batchNorm ${dtype} on ${backendName}: output, gradients and running statistics equal the composite's`, async () => {
    const composite = await on('reference', () => run(dtype, false));
    const fused = await run(dtype, true);
    // float32: the same formula in another order (or float64); 16-bit: outputs within one rounding
    // of the same value, the float32 weight/bias gradients and statistics as in float32.
    const tol16 = dtype === 'float16' ? 2 ** -10 : 2 ** -7;
    for (const k of ['y', 'gx'] as const) assert.ok(relError(fused[k], composite[k]) <= (dtype === 'float32' ? 1e-5 : tol16), `${k}: ${relError(fused[k], composite[k])}`);
    for (const k of ['gw', 'gb', 'rm', 'rv'] as const) assert.ok(relError(fused[k], composite[k]) <= 1e-5, `${k}: ${relError(fused[k], composite[k])}`);
  });
}

test(`fused batchNorm on ${backendName}: the running statistics (one batchNormRunningUpdate kernel) are the composite's bit for bit, given the same batch statistics`, async () => {
  const C = 5;
  const g = new mx.Generator(9);
  const x = mx.randn([6, C, 3], { generator: g }).mul(2).add(0.5);
  const stats = apply('batchNormStats', [x]);
  const start = mx.randn([C], { generator: g });
  for (const momentum of [0.1, 0.37, 1]) {
    const [rm, rv] = [start.clone(), start.abs().add(0.5)];
    const [cm, cv] = [rm.clone(), rv.clone()];
    const count = 18;
    const state = [rm, rv].map(kernelView);
    mx.getBackend().run('batchNormRunningUpdate', [...state, kernelView(stats)], state, { momentum, unbiasFactor: count / (count - 1) });
    // the composite rule of F.batchNorm (src/nn/functional.ts, updateRunningStats)
    const [mean, biased] = [stats.narrow(0, 0, 1).squeeze(0), stats.narrow(0, 1, 1).squeeze(0)];
    const wantMean = cm.mul(1 - momentum).add(mean.mul(momentum));
    const wantVar = cv.mul(1 - momentum).add(biased.mul(count / (count - 1)).mul(momentum));
    const bits = async (t: Tensor) => Array.from(new Uint32Array((await t.data() as Float32Array).buffer));
    assert.deepEqual(await bits(rm), await bits(wantMean), `momentum ${momentum}: running mean`);
    assert.deepEqual(await bits(rv), await bits(wantVar), `momentum ${momentum}: running variance`);
  }
});

test(`fused batchNorm on ${backendName}: 2-D input [N,C] and a single spatial position`, async () => {
  for (const shape of [[9, 4], [3, 2, 1, 1]]) {
    const composite = await on('reference', () => run('float32', false, shape));
    const fused = await run('float32', true, shape);
    for (const k of ['y', 'gx', 'gw', 'gb', 'rm', 'rv'] as const) assert.ok(relError(fused[k], composite[k]) <= 1e-5, `${shape}: ${k}`);
  }
});

test('wasm: the fused kernels run natively (ResNet-like shapes: 8x8 .. 1x1 maps, many channels, 16-bit inputs, no affine parameters)', { skip: backendName === 'wasm' ? false : `runs in the wasm pass, not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number; fallback: number }>; resetKernelStats(): void };
  for (const [shape, dtype] of [[[5, 40, 8, 8], 'float16'], [[7, 64, 3, 3], 'bfloat16'], [[16, 130, 1, 1], 'float32'], [[3, 9, 2, 5], 'float16']] as const) {
    backend.resetKernelStats();
    const fused = await run(dtype, true, [...shape]);
    const stats = backend.kernelStats();
    for (const k of ['batchNormStats', 'batchNormTrain', 'batchNormGradSums', 'batchNormBackwardInput', 'batchNormRunningUpdate']) {
      assert.ok((stats[k]?.native ?? 0) >= 1 && (stats[k]?.fallback ?? 0) === 0, `${k} ran natively on ${shape} ${dtype}`);
    }
    const composite = await on('reference', () => run(dtype, false, [...shape]));
    const tol = dtype === 'float32' ? 1e-5 : dtype === 'float16' ? 2 ** -10 : 2 ** -7;
    for (const k of ['y', 'gx'] as const) assert.ok(relError(fused[k], composite[k]) <= tol, `${shape} ${dtype} ${k}: ${relError(fused[k], composite[k])}`);
    for (const k of ['gw', 'gb', 'rm', 'rv'] as const) assert.ok(relError(fused[k], composite[k]) <= 1e-5, `${shape} ${dtype} ${k}: ${relError(fused[k], composite[k])}`);
  }
  // without weight and bias
  const g = new mx.Generator(4);
  const x = mx.randn([4, 6, 5, 3], { generator: g }).to('float16').requiresGrad_(true);
  const y = F.batchNorm(x, null, null, { training: true, fused: true });
  const yRef = await on('reference', () => F.batchNorm(x.detach(), null, null, { training: true, fused: false }).to('float32').data());
  assert.ok(relError(Float32Array.from(await y.to('float32').data()), Float32Array.from(yRef as Float32Array)) <= 2 ** -10, 'no affine: y');
});

test('batchNormTrain names the bad weight shape and statistics (F.batchNorm checks the weight before)', () => {
  const x = mx.zeros([2, 3, 4]);
  const stats = apply('batchNormStats', [x]);
  const p = { eps: 1e-5, hasWeight: true, hasBias: false };
  assert.throws(() => F.batchNorm(x, null, null, { training: true, weight: mx.ones([4]), fused: true }), /batchNorm: weight \[4\] must have shape \[3\]/);
  assert.throws(() => apply('batchNormTrain', [x, stats, mx.ones([4])], p), /batchNormTrain: weight\/bias \[4\] must have shape \[3\]/);
  assert.throws(() => apply('batchNormTrain', [mx.zeros([3]), stats], { ...p, hasWeight: false }), /batchNormTrain: expected an input of at least 2 dims/);
  assert.throws(() => apply('batchNormTrain', [x, mx.zeros([2, 4]), mx.ones([3])], p), /batchNormTrain: statistics \[2,4\] float32 must be batchNormStats of the input \(\[2,3\] float32\)/);
  assert.throws(() => apply('batchNormGradSums', [x, x, stats.to('float16')], p), /batchNormGradSums: statistics \[2,3\] float16 must be/);
});

test('webgpu: training-mode batch norm is fused by default, in fewer dispatches and less activation memory', { skip: backendName === 'webgpu' ? false : `runs in the webgpu pass (MIXPREC_BACKEND=webgpu), not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number }>; resetKernelStats(): void; schedulerStats(): { dispatches: number } };
  const step = async (fused: boolean | undefined) => {
    const g = new mx.Generator(1);
    const x = mx.randn([8, 16, 12, 12], { generator: g }).to('float16').requiresGrad_(true);
    const w = mx.ones([16]).requiresGrad_(true);
    const before = backend.schedulerStats().dispatches;
    const live0 = mx.memory().liveBytes;
    const y = F.batchNorm(x, mx.zeros([16]), mx.ones([16]), { training: true, weight: w, fused });
    const saved = mx.memory().liveBytes - live0;
    y.sum().backward();
    await x.grad!.data();
    return { dispatches: backend.schedulerStats().dispatches - before, saved };
  };
  backend.resetKernelStats();
  const fused = await step(undefined);
  assert.ok((backend.kernelStats()['batchNormTrain']?.native ?? 0) >= 1, 'the default path ran batchNormTrain on the GPU');
  const composite = await step(false);
  assert.ok(fused.dispatches * 2 < composite.dispatches, `fused ${fused.dispatches} vs composite ${composite.dispatches} dispatches`);
  assert.ok(fused.saved < composite.saved, `memory held by the forward: fused ${fused.saved} vs composite ${composite.saved} bytes`);
});

test(`fused batchNorm on ${backendName}: with one spatial position every channel's results are the same bits wherever it sits (wasm: 4 channels per vector, the rest one by one)`, async () => {
  // C = 7 channels: on wasm channels 0-3 go through the 4-lane path and 4-6 through the per-channel
  // one (one thread); rolling the channels moves each channel between the two paths.
  const [N, C] = [9, 7];
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    for (const shape of [[N, C], [N, C, 1, 1]]) {
      const g = new mx.Generator(11);
      const x0 = mx.randn(shape, { generator: g }).mul(2).add(0.7).to(dtype);
      const gy0 = mx.randn(shape, { generator: g }).to(dtype);
      const w0 = mx.randn([C], { generator: g });
      const b0 = mx.randn([C], { generator: g });
      const bits = async (t: Tensor) => Array.from(new Uint16Array((await t.contiguous().data() as Float32Array | Uint16Array).buffer));
      const results: number[][][] = [];
      for (let shift = 0; shift < C; shift++) {
        const perm = mx.tensor(Array.from({ length: C }, (_, i) => (i + shift) % C), { dtype: 'int32' });
        const back = mx.tensor(Array.from({ length: C }, (_, i) => (i - shift + C) % C), { dtype: 'int32' });
        const x = x0.indexSelect(1, perm).requiresGrad_(true);
        const w = w0.indexSelect(0, perm).requiresGrad_(true);
        const b = b0.indexSelect(0, perm).requiresGrad_(true);
        const rm = mx.zeros([C]), rv = mx.ones([C]);
        const y = F.batchNorm(x, rm, rv, { training: true, weight: w, bias: b, fused: true });
        y.mul(gy0.indexSelect(1, perm)).sum().backward();
        results.push(await Promise.all([y.indexSelect(1, back), x.grad!.indexSelect(1, back), w.grad!.indexSelect(0, back), b.grad!.indexSelect(0, back), rm.indexSelect(0, back), rv.indexSelect(0, back)].map(bits)));
      }
      for (let shift = 1; shift < C; shift++) assert.deepEqual(results[shift], results[0], `${dtype} ${shape}: channels rolled by ${shift}`);
    }
  }
});
