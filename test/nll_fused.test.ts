/**
 * The fused negative log-likelihood (src/nn/nll_ops.ts; F.nllLoss / F.crossEntropy take it where
 * the backend runs it natively: webgpu, wasm) against the composite definition, on the suite's backend:
 * loss and input gradient for 2-D, 4-D and [C] inputs, every reduction, ignored targets, class
 * weights, every target ignored (a NaN mean with zero gradients), and float32/float16/bfloat16
 * logits. On the reference and wasm backends the two agree bit for bit (wasm's fused kernels sum
 * through the composite's own sum kernel); on webgpu the WGSL sums may order float32 sums
 * differently: within 2e-6.
 */
import { backendName } from './helpers/backend.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';

const F = mx.nn.functional;
type Reduction = 'mean' | 'sum' | 'none';

interface Case {
  name: string;
  shape: number[];
  targets: number[];
  targetShape: number[];
  weight?: number[];
  ignoreIndex?: number;
}

const CASES: Case[] = [
  { name: '[7,5], one target ignored', shape: [7, 5], targets: [0, 4, -100, 2, 2, 1, 3], targetShape: [7] },
  { name: '[7,5], class weights, ignoreIndex 2', shape: [7, 5], targets: [0, 4, 2, 2, 3, 1, 3], targetShape: [7], weight: [0.5, 2, 1, 3, 0.25], ignoreIndex: 2 },
  { name: '[2,3,4,5] (spatial targets)', shape: [2, 3, 4, 5], targets: Array.from({ length: 40 }, (_, i) => (i * 7) % 4 === 3 ? -100 : (i * 5) % 3), targetShape: [2, 4, 5] },
  { name: '[6] input, 0-d target', shape: [6], targets: [4], targetShape: [] },
  { name: 'every target ignored', shape: [3, 4], targets: [-100, -100, -100], targetShape: [3] },
];

async function run(c: Case, reduction: Reduction, dtype: 'float32' | 'float16' | 'bfloat16', fused: boolean): Promise<{ loss: number[]; grad: number[] }> {
  const g = new mx.Generator(5);
  const x = mx.randn(c.shape, { generator: g }).mul(2).to(dtype).requiresGrad_(true);
  const target = mx.tensor(c.targets, { dtype: 'int32', shape: c.targetShape });
  const weight = c.weight ? mx.tensor(c.weight) : undefined;
  const loss = F.crossEntropy(x, target, { reduction, weight, ignoreIndex: c.ignoreIndex, fused });
  const upstream = reduction === 'none' ? mx.randn(loss.shape, { generator: g }).to(loss.dtype) : mx.tensor(1.5).to(loss.dtype);
  loss.backward(upstream);
  return { loss: Array.from(await loss.float().data()), grad: Array.from(await x.grad!.float().data()) };
}

function same(label: string, got: number[], want: number[], tol: number): void {
  assert.equal(got.length, want.length, label);
  got.forEach((v, i) => {
    const w = want[i]!;
    if (Number.isNaN(w)) return assert.ok(Number.isNaN(v), `${label}[${i}]: ${v}, expected NaN`);
    if (tol === 0) assert.ok(v === w, `${label}[${i}]: ${v} vs ${w}`);
    else assert.ok(Math.abs(v - w) <= tol * Math.max(1, Math.abs(w)), `${label}[${i}]: ${v} vs ${w}`);
  });
}

for (const c of CASES) {
  test(`fused nllLoss equals the composite: ${c.name}`, async () => {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const fused = await run(c, reduction, dtype, true);
        const composite = await run(c, reduction, dtype, false);
        // 16-bit results round once from float32: equal, or one 16-bit ulp apart where float32 sums differ
        // (wasm's fused kernels sum through the composite's own sum kernel: bit for bit too)
        const tol = backendName === 'reference' || backendName === 'wasm' ? 0 : dtype === 'float32' ? 2e-6 : dtype === 'float16' ? 1e-3 : 8e-3;
        same(`${reduction} ${dtype} loss`, fused.loss, composite.loss, tol);
        same(`${reduction} ${dtype} grad`, fused.grad, composite.grad, tol);
        if (c.name === 'every target ignored' && reduction === 'mean') {
          assert.ok(Number.isNaN(fused.loss[0]!), 'the mean over no targets is NaN');
          assert.ok(fused.grad.every((v) => v === 0), 'with zero gradients');
        }
      }
    }
  });
}

test('a mean over a -Inf log-probability is Inf (as in PyTorch) on the fused and the composite path, with a finite gradient', async () => {
  for (const fused of [true, false]) {
    const logp = mx.tensor([[-Infinity, -0.1], [-0.5, -1.0]]).requiresGrad_(true);
    const loss = F.nllLoss(logp, mx.tensor([0, 1], { dtype: 'int32' }), { fused });
    loss.backward();
    assert.equal(await loss.item(), Infinity, `fused ${fused}: the loss`);
    assert.deepEqual(Array.from(await logp.grad!.data()), [-0.5, 0, 0, -0.5], `fused ${fused}: its gradient`);
  }
});

test('the fused loss refuses a class weight that wants a gradient (as PyTorch gives none); the default keeps the composite then', async () => {
  const x = mx.randn([3, 4]).requiresGrad_(true);
  const t = mx.tensor([0, 1, 3], { dtype: 'int32' });
  const w = mx.ones([4]).requiresGrad_(true);
  assert.throws(() => F.crossEntropy(x, t, { weight: w, fused: true }), /fused loss gives the class weight no gradient/);
  F.crossEntropy(x, t, { weight: w }).backward();
  assert.ok(w.grad, 'the composite path gives the weight its gradient');
  assert.throws(() => F.nllLoss(x, t, { reduction: 'avg' as Reduction, fused: true }), /nllLoss: reduction must be 'mean', 'sum' or 'none', got 'avg'/);
});

test('webgpu: the default cross-entropy is the fused loss, run as WGSL', { skip: backendName === 'webgpu' ? false : `runs in the webgpu pass (MIXPREC_BACKEND=webgpu), not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number; fallback: number }>; resetKernelStats(): void };
  backend.resetKernelStats();
  const x: Tensor = mx.randn([8, 10]).requiresGrad_(true);
  const loss = F.crossEntropy(x, mx.tensor([0, 1, 2, 3, 4, 5, 6, 7], { dtype: 'int32' }));
  loss.backward();
  await x.grad!.data();
  const stats = backend.kernelStats();
  assert.equal(stats['nllLossFused']?.native, 1);
  assert.equal(stats['nllLossBackward']?.native, 1);
  assert.equal(stats['gather'], undefined, 'no composite gather');
});

test('wasm: the default cross-entropy is the fused loss, run natively (float32 logits, class weights, spatial targets)', { skip: backendName === 'wasm' ? false : `runs in the wasm pass (MIXPREC_BACKEND=wasm), not ${backendName}` }, async () => {
  const backend = mx.getBackend() as unknown as { kernelStats(): Record<string, { native: number; fallback: number }>; resetKernelStats(): void };
  for (const [shape, targets, weight] of [
    [[8, 10], [0, 1, 2, 3, 4, 5, 6, 7], undefined],
    [[5, 3], [2, -100, 0, 1, 1], [0.5, 2, 0.25]],
    [[2, 3, 2, 2], [0, 1, 2, 1, -100, 0, 2, 2], undefined],
  ] as [number[], number[], number[] | undefined][]) {
    backend.resetKernelStats();
    const x: Tensor = mx.randn(shape).requiresGrad_(true);
    const t = mx.tensor(targets, { dtype: 'int32', shape: [shape[0]!, ...shape.slice(2)] });
    const loss = F.crossEntropy(x, t, { weight: weight && mx.tensor(weight) });
    loss.backward();
    await x.grad!.data();
    const stats = backend.kernelStats();
    assert.deepEqual(stats['nllLossFused'], { ...stats['nllLossFused'], native: 1, fallback: 0 }, `${shape}: the loss`);
    assert.deepEqual(stats['nllLossBackward'], { ...stats['nllLossBackward'], native: 1, fallback: 0 }, `${shape}: its gradient`);
    assert.equal(stats['gather'], undefined, 'no composite gather');
  }
});
