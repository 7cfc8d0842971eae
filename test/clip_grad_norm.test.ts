/**
 * mx.nn.utils.clipGradNorm_ on the suite's backend against the reference backend's op path, with
 * gradients of every float dtype (float32 masters, 16-bit parameters), one of them empty; on wasm
 * the multi-tensor path (one `sumSquares` call for the norm, one in-place scale), and the
 * `sumSquares` kernel itself against its reference definition.
 */
import { backendName } from './helpers/backend.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { onBackend as on } from './helpers/backends.js';
import { apply } from '../src/ops/dispatch.js';

const SHAPES = [[40, 33], [7], [0, 3], [128, 130]] as const;
const DTYPES = ['float32', 'float16', 'bfloat16', 'float32'] as const;

/** Parameters with gradients of the given scale; returns the total norm and the clipped gradients. */
async function clip(scale: number, maxNorm: number, before?: () => void): Promise<{ norm: number; grads: Float32Array[] }> {
  const g = new mx.Generator(11);
  const params: Tensor[] = SHAPES.map((s, i) => {
    const p = mx.zeros([...s], { dtype: DTYPES[i] }).requiresGrad_(true);
    p.grad = mx.randn([...s], { generator: g }).mul(scale).to(DTYPES[i]!);
    return p;
  });
  before?.();
  const norm = await mx.nn.utils.clipGradNorm_(params, maxNorm).item();
  const grads = await Promise.all(params.map(async (p) => Float32Array.from(await p.grad!.to('float32').data())));
  return { norm, grads };
}

for (const [scale, maxNorm] of [[1, 5], [0.01, 5], [3, 1e9]] as const) {
  test(`clipGradNorm_ on ${backendName} (gradients x${scale}, max ${maxNorm}): the reference's norm and clipped gradients`, async () => {
    const want = await on('reference', () => clip(scale, maxNorm));
    const got = await clip(scale, maxNorm);
    assert.ok(Math.abs(got.norm - want.norm) <= 1e-5 * want.norm, `norm ${got.norm} vs ${want.norm}`);
    got.grads.forEach((gr, i) => {
      const tol = DTYPES[i] === 'float32' ? 1e-5 : DTYPES[i] === 'float16' ? 2 ** -10 : 2 ** -7;
      gr.forEach((v, j) => assert.ok(Math.abs(v - want.grads[i]![j]!) <= tol * Math.max(1, Math.abs(want.grads[i]![j]!)), `grad ${i}[${j}]: ${v} vs ${want.grads[i]![j]}`));
    });
  });
}

test(`sumSquares on ${backendName}: each input's sum of squares (float32, float16, bfloat16, empty, a long tail)`, async () => {
  const inputs = () => {
    const g = new mx.Generator(2);
    return [mx.randn([1000], { generator: g }), mx.randn([37], { generator: g }).to('float16'), mx.randn([3, 5], { generator: g }).to('bfloat16'), mx.zeros([0]), mx.randn([517], { generator: g }).mul(100)];
  };
  const want = await on('reference', async () => Array.from(await apply('sumSquares', inputs()).data()));
  const got = Array.from(await apply('sumSquares', inputs()).data());
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-6 * Math.abs(want[i]!), `input ${i}: ${v} vs ${want[i]}`));
});

test('wasm: clipGradNorm_ runs the multi-tensor kernels natively', { skip: backendName === 'wasm' ? false : `runs in the wasm pass, not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number; fallback: number }>; resetKernelStats(): void };
  await clip(1, 5, () => backend.resetKernelStats());
  const stats = backend.kernelStats();
  for (const k of ['sumSquares', 'ampUnscale']) assert.ok((stats[k]?.native ?? 0) === 1 && (stats[k]?.fallback ?? 0) === 0, `${k}: ${JSON.stringify(stats[k])}`);
  assert.equal(stats['mul']?.native ?? 0, 1, 'no per-gradient products (one for the coefficient)');
});
