/**
 * Fused attention (op 'flashAttention': FlashAttention's kernels) against the composite definition
 * (op 'scaledDotProductAttention'), on the suite's backend: outputs and the gradients of q, k and v
 * in float32, float16 and bfloat16, causal, with a bool mask, a float mask, dropout and broadcast
 * batch dims; then that the fused forward at T = 1024 keeps no T x T buffer (device bytes).
 *
 * Tolerances: the composite rounds the scores, the weights and the product to the 16-bit dtype one
 * op after the other while the fused kernels compute in float32 and round once, so they differ by a
 * few 16-bit rounding errors: |fused - composite| <= tol * max(|composite|, M), M the largest
 * magnitude in the tensor, with tol 2e-5 (float32), 5e-3 (float16), 4e-2 (bfloat16) (measured on the
 * reference backend: 1.4e-7, 1.3e-3 and 1.2e-2).
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default wasm)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';

const F = mx.nn.functional;
type Dtype = 'float32' | 'float16' | 'bfloat16';
const TOL: Record<Dtype, number> = { float32: 2e-5, float16: 5e-3, bfloat16: 4e-2 };

interface Case {
  name: string;
  q: number[];
  k: number[];
  v: number[];
  mask?: 'bool' | 'float';
  maskShape?: number[];
  isCausal?: boolean;
  dropoutP?: number;
  /** q, k, v as heads of one [B, L, 3 * H * D] projection (strided views, as the GPT's): q gives [B, H, L, D] */
  packed?: boolean;
}

const CASES: Case[] = [
  { name: 'no mask', q: [2, 3, 5, 8], k: [2, 3, 7, 8], v: [2, 3, 7, 4] },
  { name: 'causal', q: [2, 2, 9, 8], k: [2, 2, 9, 8], v: [2, 2, 9, 8], isCausal: true },
  { name: 'causal, L < S', q: [1, 2, 4, 6], k: [1, 2, 7, 6], v: [1, 2, 7, 6], isCausal: true },
  { name: 'bool mask [L, S]', q: [2, 2, 6, 4], k: [2, 2, 5, 4], v: [2, 2, 5, 3], mask: 'bool', maskShape: [6, 5] },
  { name: 'float mask [B, 1, L, S]', q: [2, 2, 6, 4], k: [2, 2, 5, 4], v: [2, 2, 5, 3], mask: 'float', maskShape: [2, 1, 6, 5] },
  { name: 'broadcast batch dims', q: [2, 1, 5, 4], k: [1, 3, 6, 4], v: [2, 3, 6, 4] },
  { name: 'causal with dropout 0.2', q: [2, 2, 8, 8], k: [2, 2, 8, 8], v: [2, 2, 8, 8], isCausal: true, dropoutP: 0.2 },
  { name: 'bool mask with dropout 0.5, unbatched', q: [6, 4], k: [5, 4], v: [5, 4], mask: 'bool', maskShape: [6, 5], dropoutP: 0.5 },
  { name: 'causal, heads of one packed projection (strided views)', q: [3, 4, 37, 8], k: [3, 4, 37, 8], v: [3, 4, 37, 8], isCausal: true, packed: true },
  // the GPT's head size and block: whole 4x8 register blocks, two key tiles, four query tiles
  { name: 'causal, packed heads of size 32, 64 tokens', q: [2, 2, 64, 32], k: [2, 2, 64, 32], v: [2, 2, 64, 32], isCausal: true, packed: true },
  { name: 'float mask [L, S], 40 keys, dropout 0.1, packed heads', q: [2, 2, 40, 16], k: [2, 2, 40, 16], v: [2, 2, 40, 16], mask: 'float', maskShape: [40, 40], dropoutP: 0.1, packed: true },
  // wasm's key strips (head sizes multiples of 4, at most 256 keys): query blocks of 64, padding
  // rows and columns, the causal triangle with L < S and L > S, keys no query reaches
  { name: 'causal, 100 tokens (two query blocks), packed heads', q: [1, 2, 100, 16], k: [1, 2, 100, 16], v: [1, 2, 100, 16], isCausal: true, packed: true },
  { name: 'causal, L < S (keys no query reaches), head size 8', q: [2, 1, 5, 8], k: [2, 1, 11, 8], v: [2, 1, 11, 12], isCausal: true },
  { name: 'causal, L > S', q: [1, 2, 70, 8], k: [1, 2, 9, 8], v: [1, 2, 9, 4], isCausal: true },
  { name: 'no mask, 70 queries, 45 keys', q: [1, 2, 70, 8], k: [1, 2, 45, 8], v: [1, 2, 45, 12] },
  // beyond the strips: the online-softmax tiles
  { name: 'causal, 300 tokens (the tiles)', q: [1, 1, 300, 8], k: [1, 1, 300, 8], v: [1, 1, 300, 8], isCausal: true },
];

interface Result {
  out: Float32Array;
  grads: Float32Array[];
}

async function run(c: Case, dtype: Dtype, fused: boolean): Promise<Result> {
  const g = new mx.Generator(11);
  const leaf = (shape: number[]) => mx.randn(shape, { generator: g }).to(dtype).requiresGrad_(true);
  let [q, k, v] = [c.q, c.k, c.v].map((shape) => (c.packed ? null : leaf(shape))) as (Tensor | null)[];
  let packed: Tensor | null = null;
  if (c.packed) {
    const [B, H, L, D] = c.q as [number, number, number, number];
    packed = leaf([B, L, 3 * H * D]);
    const head = (i: number) => packed!.narrow(2, i * H * D, H * D).reshape([B, L, H, D]).transpose(1, 2);
    [q, k, v] = [head(0), head(1), head(2)];
  }
  let attnMask: Tensor | undefined;
  if (c.mask === 'bool') {
    // every row keeps at least one key (a fully masked row is NaN in both forms)
    attnMask = mx.logicalOr(mx.rand(c.maskShape!, { generator: g }).gt(0.4), mx.eye(c.maskShape!.at(-2)!, c.maskShape!.at(-1)!).gt(0));
  } else if (c.mask === 'float') attnMask = mx.randn(c.maskShape!, { generator: g }).mul(2).to(dtype);
  const out = F.scaledDotProductAttention(q!, k!, v!, { attnMask, isCausal: c.isCausal, dropoutP: c.dropoutP, generator: new mx.Generator(3), fused });
  const upstream = mx.randn(out.shape, { generator: g }).to(dtype);
  out.backward(upstream);
  const f32 = async (t: Tensor) => Float32Array.from(await t.float().data());
  const grads = packed ? [packed.grad!] : [q!, k!, v!].map((t) => t.grad!);
  return { out: await f32(out), grads: await Promise.all(grads.map(f32)) };
}

function close(label: string, got: Float32Array, want: Float32Array, tol: number): void {
  assert.equal(got.length, want.length, label);
  let M = 0;
  for (const w of want) M = Math.max(M, Math.abs(w));
  for (let i = 0; i < want.length; i++) {
    const [a, b] = [got[i]!, want[i]!];
    assert.ok(Number.isFinite(a) && Math.abs(a - b) <= tol * Math.max(Math.abs(b), M), `${label}[${i}]: fused ${a} vs composite ${b} (max |composite| ${M})`);
  }
}

for (const c of CASES) {
  test(`fused attention equals the composite: ${c.name}`, async () => {
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
      const fused = await run(c, dtype, true);
      const composite = await run(c, dtype, false);
      close(`${dtype} output`, fused.out, composite.out, TOL[dtype]);
      fused.grads.forEach((grad, i) => close(`${dtype} d${c.packed ? 'qkv' : 'qkv'[i]}`, grad, composite.grads[i]!, TOL[dtype]));
    }
  });
}

test('fused attention under float16 autocast: float32 inputs are cast once, the output is float16', async () => {
  const g = new mx.Generator(2);
  const [q, k, v] = [0, 1, 2].map(() => mx.randn([2, 6, 8], { generator: g }).requiresGrad_(true)) as [Tensor, Tensor, Tensor];
  const out = mx.amp.autocast({ dtype: 'float16' }, () => F.scaledDotProductAttention(q, k, v, { isCausal: true, fused: true }));
  assert.equal(out.dtype, 'float16');
  out.float().sum().backward();
  assert.equal(q.grad!.dtype, 'float32');
  const want = F.scaledDotProductAttention(q, k, v, { isCausal: true, fused: false });
  close('autocast output', Float32Array.from(await out.float().data()), Float32Array.from(await want.data()), TOL.float16);
});

test('dropout: the fused form drops the weights the composite drops (same generator), the rate is p', async () => {
  // v = identity: the output is the dropped-out weights themselves
  const g = new mx.Generator(4);
  const q = mx.randn([3, 40, 8], { generator: g });
  const k = mx.randn([3, 40, 8], { generator: g });
  const v = mx.eye(40).unsqueeze(0).expand(3, 40, 40);
  const a = await F.scaledDotProductAttention(q, k, v, { dropoutP: 0.25, generator: new mx.Generator(8), fused: true }).data();
  const b = await F.scaledDotProductAttention(q, k, v, { dropoutP: 0.25, generator: new mx.Generator(8), fused: false }).data();
  let dropped = 0;
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i] === 0, b[i] === 0, `weight ${i}: dropped in one form only`);
    if (b[i] === 0) dropped++;
  }
  const rate = dropped / a.length;
  assert.ok(Math.abs(rate - 0.25) < 0.03, `dropped ${rate} of the weights, expected 0.25`);
  const other = await F.scaledDotProductAttention(q, k, v, { dropoutP: 0.25, generator: new mx.Generator(9), fused: true }).data();
  assert.notDeepEqual(Array.from(other), Array.from(a), 'another seed drops other weights');
});

test('the fused forward at T = 1024 keeps no T x T buffer (device bytes), the composite does', async () => {
  const T = 1024;
  const [B, H, D] = [1, 2, 16];
  const g = new mx.Generator(1);
  const [q, k, v] = [0, 1, 2].map(() => mx.randn([B, H, T, D], { generator: g }).requiresGrad_(true)) as [Tensor, Tensor, Tensor];
  const scoreBytes = B * H * T * T * 4;
  const measure = (fused: boolean): number => {
    mx.getBackend().resetPeak?.();
    const before = mx.memory().liveBytes;
    const out = mx.scope(() => {
      const y = F.scaledDotProductAttention(q, k, v, { isCausal: true, fused });
      // what the forward holds for the backward, measured while the graph is alive
      return y;
    });
    const held = mx.memory().liveBytes - before;
    const peak = mx.memory().peakBytes - before;
    out.dispose();
    if (fused) {
      // output [B,H,T,D] float32 and the logsumexp [B,H,T]: no buffer of T x T
      assert.ok(held <= B * H * T * (D + 1) * 4, `fused forward holds ${held} bytes`);
      assert.ok(peak < scoreBytes / 8, `fused forward peaked at ${peak} bytes, a T x T score matrix is ${scoreBytes}`);
    }
    return peak;
  };
  measure(true);
  // the composite materialises the scores (and more): the same measurement sees a T x T buffer
  assert.ok(measure(false) >= scoreBytes, 'the composite holds the score matrix');
  // and the backward recomputes the tiles: gradients come out finite
  const y = F.scaledDotProductAttention(q, k, v, { isCausal: true, fused: true });
  y.sum().backward();
  for (const t of [q, k, v]) assert.ok((await t.grad!.data()).every(Number.isFinite));
});

test('scaledDotProductAttention: argument errors', () => {
  const q = mx.randn([2, 4, 3]);
  const k = mx.randn([2, 5, 3]);
  const v = mx.randn([2, 5, 3]);
  assert.throws(() => F.scaledDotProductAttention(q, k, v, { attnMask: mx.ones([3, 5]) }), /attnMask \[3,5\] does not broadcast to the scores' shape \[2,4,5\]/);
  assert.throws(() => F.scaledDotProductAttention(q, k, v, { attnMask: mx.ones([4, 5], { dtype: 'int32' }) }), /bool or floating point/);
  const m = mx.zeros([4, 5]).requiresGrad_(true);
  assert.throws(() => F.scaledDotProductAttention(q, k, v, { attnMask: m, fused: true }), /fused form gives attnMask no gradient/);
});
