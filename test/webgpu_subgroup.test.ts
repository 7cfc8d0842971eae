/**
 * The float16 GEMM path on the adapter's matrix units (Dawn's chromium-experimental-subgroup-matrix;
 * src/backend/webgpu/kernels/matmul_subgroup.ts) against the tiled float32 kernels and the reference.
 *
 * Inputs are small integers, so every product and partial sum is exact in float32 whatever the
 * order: the three results must be equal bit for bit, which checks every index of the staging,
 * the per-subgroup tiles, the edges and the split-K partials, not just a tolerance.
 *
 * Runs in the webgpu pass where the adapter offers f16 subgroup matrices: GPUs with tensor cores
 * (NVIDIA), Apple and Intel GPUs, or lavapipe from Mesa 26 (tools/webgpu-coopmat.sh runs the webgpu
 * suites in such an environment here). CI's lavapipe (Mesa 25.0) has no cooperative matrices, so
 * there it skips, saying so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { onBackend as on } from './helpers/backends.js';

let backend: WebGpuBackend | null = null;
let skip: string | false = false;
const suiteBackend = process.env['MIXPREC_BACKEND'];
if (suiteBackend && suiteBackend !== 'webgpu') skip = `runs in the webgpu pass of npm test (MIXPREC_BACKEND=webgpu), not the ${suiteBackend} one`;
else {
  try {
    const { createWebGpuBackend } = await import('../src/backend/webgpu/index.js');
    backend = await createWebGpuBackend();
    mx.registerBackend('webgpu-units', async () => backend!);
  } catch (e) {
    skip = `no WebGPU adapter here (${(e as Error).message.split('\n')[0]})`;
  }
  if (backend && !backend.matrixUnits) {
    skip = `the adapter (${backend.adapterDescription}) offers no f16 subgroup matrices (CI's lavapipe, Mesa 25.0, has none; tools/webgpu-coopmat.sh runs this file on Mesa 26's)`;
  }
}

type Case = () => Tensor[];

/** The case's outputs as float32 arrays, and how many GEMMs ran on the matrix units. */
async function runOn(name: string, units: boolean, fn: Case): Promise<{ values: Float32Array[]; matrixDispatches: number }> {
  const saved = backend?.matrixUnits ?? null;
  if (backend && !units) backend.matrixUnits = null;
  const before = backend?.schedulerStats().matrixDispatches ?? 0;
  try {
    const values = await on(name, async () => Promise.all(fn().map(async (t) => Float32Array.from(await t.to('float32').data()))));
    return { values, matrixDispatches: (backend?.schedulerStats().matrixDispatches ?? 0) - before };
  } finally {
    if (backend) backend.matrixUnits = saved;
  }
}

async function checkExact(fn: Case, minMatrixDispatches: number): Promise<void> {
  const units = await runOn('webgpu-units', true, fn);
  const tiled = await runOn('webgpu-units', false, fn);
  const ref = await runOn('reference', false, fn);
  assert.ok(units.matrixDispatches >= minMatrixDispatches, `${units.matrixDispatches} GEMMs ran on the matrix units, expected at least ${minMatrixDispatches}`);
  assert.equal(tiled.matrixDispatches, 0, 'with the units turned off, none did');
  units.values.forEach((v, i) => {
    assert.deepEqual(v, tiled.values[i], `output ${i}: matrix units vs tiled kernel`);
    assert.deepEqual(v, ref.values[i], `output ${i}: matrix units vs reference`);
  });
}

/** Integers in [-range, range] as float16. */
function ints(shape: readonly number[], g: mx.Generator, range = 4): Tensor {
  return mx.randint(-range, range + 1, [...shape], { generator: g }).to('float16');
}

describe('webgpu: float16 GEMMs on the matrix units equal the tiled kernels and the reference', { skip }, () => {
  it('reports the shape it uses', () => {
    assert.match(backend!.subgroupMatrix ?? '', /^f16 \d+x\d+x\d+ -> f32, subgroup \d+$/);
  });

  it('bmm: batched, B transposed through its strides, sizes off the tile grid', async () => {
    await checkExact(() => {
      const g = new mx.Generator(1);
      const a = ints([3, 70, 45], g);
      const b = ints([3, 67, 45], g).transpose(1, 2);
      return [a.matmul(b)];
    }, 1);
  });

  it('matmul: few rows, A transposed, one row and one column', async () => {
    await checkExact(() => {
      const g = new mx.Generator(2);
      const a = ints([300, 5], g).t();
      const b = ints([300, 33], g);
      const v = ints([1, 300], g);
      const c = ints([33, 1], g);
      return [a.matmul(b), v.matmul(b), b.matmul(c)];
    }, 3);
  });

  it('a long K over few output tiles takes the split-K path', async () => {
    await checkExact(() => {
      const g = new mx.Generator(3);
      return [ints([8, 5000], g, 2).matmul(ints([5000, 12], g, 2))];
    }, 1);
  });

  it('conv2d forward (bias, stride, padding, dilation, groups) and both gradients', async () => {
    await checkExact(() => {
      const g = new mx.Generator(4);
      const x = ints([2, 4, 11, 9], g).requiresGrad_(true);
      const w = ints([6, 2, 3, 2], g).requiresGrad_(true);
      const b = ints([6], g).requiresGrad_(true);
      const y = mx.nn.functional.conv2d(x, w, b, { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 });
      y.mul(ints(y.shape, g, 2)).sum().backward();
      return [y, x.grad!, w.grad!, b.grad!];
    }, 3);
  });

  it('the weight gradient over a large batch (split-K) and a wide convolution', async () => {
    await checkExact(() => {
      const g = new mx.Generator(5);
      const x = ints([16, 3, 16, 16], g, 2);
      const w = ints([40, 3, 3, 3], g, 2).requiresGrad_(true);
      const y = mx.nn.functional.conv2d(x, w, null, { padding: 1 });
      y.mul(ints(y.shape, g, 1)).sum().backward();
      return [y, w.grad!];
    }, 2);
  });

  it('operands that are not all float16 stay on the tiled kernels', async () => {
    const r = await runOn('webgpu-units', true, () => {
      const g = new mx.Generator(6);
      return [ints([20, 30], g).to('float32').matmul(ints([30, 10], g).to('float32')), ints([20, 30], g).to('bfloat16').matmul(ints([30, 10], g).to('bfloat16'))];
    });
    assert.equal(r.matrixDispatches, 0);
  });
});
