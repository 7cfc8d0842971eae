/**
 * The fused LSTM layer (op 'lstmLayerFused': kernels lstmForward / lstmBackward, src/nn/lstm_layer.ts)
 * against the op-by-op definition ('lstmLayer'), on the suite's backend: outputs, final states and
 * the gradients of every input, float32 / float16 / bfloat16, forward and reverse, with and without
 * biases, batches that are not a multiple of the kernels' 4-row groups, hidden sizes a multiple of 4
 * (the wasm kernels) and not (the reference kernels there). The two round alike step by step; only
 * the bias gradient sums in another order, and backends whose composite kernels order float32 sums
 * differently (webgpu) may differ in the last bits, which the recurrence carries along.
 *
 * Then the wasm kernels against the reference kernels directly (own backends, 4 threads and 1: the
 * split of the batch over threads must not change a bit), and their use in a CharLSTM training step.
 */
import { backendName } from './helpers/backend.js';
import { after, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { applyOutputs } from '../src/ops/dispatch.js';
import { onBackend } from './helpers/backends.js';
import { dtypeOf } from '../src/dtype/dtype.js';
import { lmLoss } from '../src/train/language_model.js';

const F = mx.nn.functional;
type Float = 'float32' | 'float16' | 'bfloat16';
const FLOATS: Float[] = ['float32', 'float16', 'bfloat16'];

/** Relative tolerance per format: a few units in the last place, carried through a short recurrence. */
const TOL: Record<Float, number> = { float32: 2e-5, float16: 4e-3, bfloat16: 3e-2 };

interface Case {
  T: number;
  B: number;
  H: number;
  bias: boolean;
  reverse: boolean;
}

const CASES: Case[] = [
  { T: 5, B: 6, H: 8, bias: true, reverse: false },
  { T: 4, B: 9, H: 12, bias: true, reverse: true },
  { T: 3, B: 4, H: 4, bias: false, reverse: false },
  { T: 3, B: 2, H: 6, bias: true, reverse: true }, // H not a multiple of 4: the reference kernels on wasm
];

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.float().data());
}

function close(label: string, got: number[], want: number[], tol: number): void {
  assert.equal(got.length, want.length, label);
  const scale = Math.max(1, ...want.map(Math.abs));
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= tol * scale, `${label}[${i}]: ${v} vs ${want[i]}`));
}

/** The layer's outputs and every input's gradient under a fixed upstream gradient. */
async function runLayer(c: Case, dtype: Float, fused: boolean): Promise<number[][]> {
  const g = new mx.Generator(11);
  const leaf = (shape: number[], scale: number) => mx.randn(shape, { generator: g }).mul(scale).to(dtype).requiresGrad_(true);
  const gx = leaf([c.T, c.B, 4 * c.H], 1);
  const h0 = leaf([c.B, c.H], 0.5);
  const c0 = leaf([c.B, c.H], 0.5);
  const w = leaf([4 * c.H, c.H], 0.4);
  const bi = c.bias ? leaf([4 * c.H], 0.2) : null;
  const bh = c.bias ? leaf([4 * c.H], 0.2) : null;
  const [y, hN, cN] = F.lstmLayer(gx, [h0, c0], w, bi, bh, { reverse: c.reverse, fused });
  const gy = mx.randn(y.shape, { generator: g }).to(dtype);
  const gc = mx.randn(cN.shape, { generator: g }).to(dtype);
  const loss = y.float().mul(gy.float()).sum().add(cN.float().mul(gc.float()).sum()).add(hN.float().sum());
  loss.backward();
  const leaves = [gx, h0, c0, w, ...(bi && bh ? [bi, bh] : [])];
  return [await values(y), await values(hN), await values(cN), ...(await Promise.all(leaves.map((t) => values(t.grad!))))];
}

const NAMES = ['y', 'hN', 'cN', 'd gx', 'd h0', 'd c0', 'd w', 'd b_ih', 'd b_hh'];

for (const c of CASES) {
  test(`fused lstmLayer equals the op-by-op definition on ${backendName}: T ${c.T}, B ${c.B}, H ${c.H}${c.bias ? '' : ', no biases'}${c.reverse ? ', reverse' : ''}`, async () => {
    for (const dtype of FLOATS) {
      const fused = await runLayer(c, dtype, true);
      const composite = await runLayer(c, dtype, false);
      fused.forEach((v, i) => close(`${dtype} ${NAMES[i]}`, v, composite[i]!, TOL[dtype]));
    }
  });
}

test('lstmLayer checks its shapes', () => {
  const gx = mx.zeros([3, 2, 16]);
  const s = mx.zeros([2, 4]);
  assert.throws(() => F.lstmLayer(gx, [s, s], mx.zeros([16, 5]), null, null, { fused: true }), /lstmLayer: gates \[3,2,16\] must be \[T, B, 4H\] with wHh \[16,5\]/);
  assert.throws(() => F.lstmLayer(gx, [mx.zeros([3, 4]), s], mx.zeros([16, 4]), null, null, { fused: true }), /lstmLayer: h0 \[3,4\] must have shape \[2, 4\]/);
});

/* ------------------------------------------------------------------ the wasm kernels */

describe('the wasm lstmForward / lstmBackward kernels against the reference kernels', async () => {
  const t4 = await WasmBackend.create({ threads: 4, native: true });
  const t1 = await WasmBackend.create({ threads: 1, native: true });
  mx.registerBackend('lstm-t4', async () => t4);
  mx.registerBackend('lstm-t1', async () => t1);
  after(async () => {
    await t4.close();
    await t1.close();
  });

  /** Forward then backward kernels on backend `name` from host data; every output's values. */
  const kernels = (name: string, c: Case, dtype: Float, data: Record<string, number[]>) =>
    onBackend(name, async () => {
      const make = (k: string, shape: number[], dt: Float = dtype) => mx.tensor(data[k]!, { shape }).to(dt);
      const { T, B, H } = c;
      const p = { reverse: c.reverse, hasBias: c.bias };
      const ins = [make('gx', [T, B, 4 * H]), make('h0', [B, H]), make('c0', [B, H]), make('w', [4 * H, H]), ...(c.bias ? [make('bias', [4 * H], 'float32')] : [])];
      const [out, acts] = applyOutputs('lstmForward', ins, [{ shape: [T, B, 2 * H], dtype: dtypeOf(dtype) }, { shape: [T, B, 5 * H], dtype: dtypeOf('float32') }], p);
      const outs = [{ shape: [T, B, 4 * H], dtype: dtypeOf(dtype) }, { shape: [B, H], dtype: dtypeOf('float32') }, { shape: [B, H], dtype: dtypeOf('float32') }];
      if (c.bias) outs.push({ shape: [B, 4 * H], dtype: dtypeOf('float32') });
      const grads = applyOutputs('lstmBackward', [make('g', [T, B, 2 * H]), out!, ins[2]!, ins[3]!, acts!], outs, p);
      return Promise.all([out!, acts!, ...grads].map(values));
    });

  for (const c of CASES.slice(0, 3).concat([{ T: 6, B: 37, H: 20, bias: true, reverse: false }])) {
    it(`T ${c.T}, B ${c.B}, H ${c.H}${c.bias ? '' : ', no biases'}${c.reverse ? ', reverse' : ''}: every format, natively, the same bits on 4 threads and 1`, async () => {
      for (const dtype of FLOATS) {
        const g = new mx.Generator(3);
        const draw = (n: number, scale: number) => Array.from({ length: n }, () => scale * g.nextNormal());
        const { T, B, H } = c;
        const data = { gx: draw(T * B * 4 * H, 1), h0: draw(B * H, 0.5), c0: draw(B * H, 0.5), w: draw(4 * H * H, 0.3), bias: draw(4 * H, 0.2), g: draw(T * B * 2 * H, 1) };
        const before = t4.kernelStats();
        const want = await kernels('reference', c, dtype, data);
        const got4 = await kernels('lstm-t4', c, dtype, data);
        const got1 = await kernels('lstm-t1', c, dtype, data);
        const after4 = t4.kernelStats();
        for (const k of ['lstmForward', 'lstmBackward']) {
          assert.equal((after4[k]?.native ?? 0) - (before[k]?.native ?? 0), 1, `${dtype} ${k} ran natively`);
          assert.equal((after4[k]?.fallback ?? 0) - (before[k]?.fallback ?? 0), 0, `${dtype} ${k} fell back`);
        }
        const names = ['out', 'acts', 'dGates', 'dh0', 'dc0', 'dBias'];
        got4.forEach((v, i) => {
          assert.deepEqual(v, got1[i], `${dtype} ${names[i]}: 4 threads and 1 differ`);
          close(`${dtype} ${names[i]}`, v, want[i]!, TOL[dtype]);
        });
      }
    });
  }
});

test('a CharLSTM training step on wasm runs the fused layer natively', { skip: backendName !== 'wasm' }, async () => {
  const be = mx.getBackend() as WasmBackend;
  const before = be.kernelStats();
  mx.manualSeed(1);
  const model = new mx.models.CharLSTM({ vocabSize: 11, embedDim: 8, hidden: 16, layers: 2 });
  const ids = mx.randint(0, 11, [9, 4], { dtype: 'int32' });
  const loss = mx.amp.autocast({ dtype: 'float16' }, () => lmLoss(model, ids.narrow(0, 0, 8), ids.narrow(0, 1, 8)));
  loss.backward();
  const now = be.kernelStats();
  for (const k of ['lstmForward', 'lstmBackward']) assert.equal((now[k]?.native ?? 0) - (before[k]?.native ?? 0), 2, `${k}: one call per layer`);
});
