/**
 * Autograd semantics (accumulation, broadcasting, casts, hooks, retainGraph, noGrad, detach),
 * type promotion, host reads per dtype, 16-bit accumulation, seeding and factories.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { queueBackwardCallback } from '../src/autograd/engine.js';

const F = mx.nn.functional;
const arr = async (t: Tensor) => Array.from(await t.data());
const f64 = (data: number[] | number[][], requiresGrad = false) => mx.tensor(data, { dtype: 'float64', requiresGrad });

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, msg = ''): void {
  assert.equal(actual.length, expected.length, `${msg} length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `${msg} [${i}]: ${a} vs ${e}`);
  }
}

/* ------------------------------------------------------------------ accumulation and broadcasting */

test('gradients accumulate into .grad of leaves across two backward calls', async () => {
  const x = mx.tensor([1, -2, 3], { requiresGrad: true });
  x.mul(x).sum().backward();
  assert.deepEqual(await arr(x.grad!), [2, -4, 6]);
  x.mul(x).sum().backward();
  assert.deepEqual(await arr(x.grad!), [4, -8, 12]);
  x.grad!.zero_();
  x.mul(3).sum().backward();
  assert.deepEqual(await arr(x.grad!), [3, 3, 3]);
});

test('a leaf used several times in one graph gets the sum of its gradients', async () => {
  const x = mx.tensor([2, 5], { requiresGrad: true });
  const y = x.mul(x).add(x.mul(4)).add(x.exp().log()); // d/dx = 2x + 4 + 1
  y.sum().backward();
  assertClose(await x.grad!.data(), [9, 15]);
});

test('broadcast gradients are summed back to each input shape', async () => {
  const a = mx.ones([2, 3], { requiresGrad: true });
  const b = mx.tensor([1, 2, 3], { requiresGrad: true });
  const c = mx.tensor([[10], [20]], { requiresGrad: true });
  const d = mx.tensor(0.5, { requiresGrad: true });
  a.mul(b).add(c).mul(d).sum().backward();
  assert.deepEqual(a.grad!.shape, [2, 3]);
  assert.deepEqual(await arr(a.grad!), [0.5, 1, 1.5, 0.5, 1, 1.5]);
  assert.deepEqual(b.grad!.shape, [3]);
  assert.deepEqual(await arr(b.grad!), [1, 1, 1]);
  assert.deepEqual(c.grad!.shape, [2, 1]);
  assert.deepEqual(await arr(c.grad!), [1.5, 1.5]);
  assert.deepEqual(d.grad!.shape, []);
  assert.equal(await d.grad!.item(), 2 * (1 + 2 + 3) + 3 * (10 + 20));
});

test('broadcast over a new leading dim and a size-1 middle dim', async () => {
  const a = mx.ones([4, 1, 3], { requiresGrad: true });
  const b = mx.ones([2, 1], { requiresGrad: true });
  const y = a.add(b); // [4,2,3]
  assert.deepEqual(y.shape, [4, 2, 3]);
  y.sum().backward();
  assert.deepEqual(a.grad!.shape, [4, 1, 3]);
  assert.deepEqual(await arr(a.grad!), new Array(12).fill(2));
  assert.deepEqual(b.grad!.shape, [2, 1]);
  assert.deepEqual(await arr(b.grad!), [12, 12]);
});

/* ------------------------------------------------------------------ dtypes of gradients */

test('backward of a cast casts the gradient back: float32 leaf through float16', async () => {
  const w = mx.tensor([1, 2, 3], { requiresGrad: true });
  const h = w.to('float16');
  assert.equal(h.dtype, 'float16');
  const loss = h.mul(h).sum(); // float16
  assert.equal(loss.dtype, 'float16');
  loss.backward();
  assert.equal(w.grad!.dtype, 'float32');
  assert.deepEqual(await arr(w.grad!), [2, 4, 6]);
});

test('backward of a cast casts the gradient back: float16 leaf through float32', async () => {
  const w = mx.tensor([0.5, -1, 2], { dtype: 'float16', requiresGrad: true });
  const loss = w.to('float32').mul(3).sum();
  assert.equal(loss.dtype, 'float32');
  loss.backward();
  assert.equal(w.grad!.dtype, 'float16');
  assert.deepEqual(await arr(w.grad!), [3, 3, 3]);
});

test('backward of a cast: bfloat16 leaf through float32 and float64 leaf through bfloat16', async () => {
  const a = mx.tensor([1, 2], { dtype: 'bfloat16', requiresGrad: true });
  a.float().mul(a.float()).sum().backward();
  assert.equal(a.grad!.dtype, 'bfloat16');
  assert.deepEqual(await arr(a.grad!), [2, 4]);
  const b = f64([1, 2], true);
  b.bfloat16().mul(0.5).sum().backward();
  assert.equal(b.grad!.dtype, 'float64');
  assert.deepEqual(await arr(b.grad!), [0.5, 0.5]);
});

test('a mixed-dtype op returns gradients in each input’s own dtype', async () => {
  const a = mx.tensor([1, 2, 3], { dtype: 'float16', requiresGrad: true });
  const b = mx.tensor([4, 5, 6], { dtype: 'float32', requiresGrad: true });
  const y = a.mul(b);
  assert.equal(y.dtype, 'float32');
  y.sum().backward();
  assert.equal(a.grad!.dtype, 'float16');
  assert.equal(b.grad!.dtype, 'float32');
  assert.deepEqual(await arr(a.grad!), [4, 5, 6]);
  assert.deepEqual(await arr(b.grad!), [1, 2, 3]);
});

test('float16 + bfloat16 computes in float32; gradients come back as float16 and bfloat16', async () => {
  const a = mx.tensor([1, 2], { dtype: 'float16', requiresGrad: true });
  const b = mx.tensor([3, 4], { dtype: 'bfloat16', requiresGrad: true });
  const y = a.add(b);
  assert.equal(y.dtype, 'float32');
  y.mul(mx.tensor([1, 2])).sum().backward();
  assert.equal(a.grad!.dtype, 'float16');
  assert.equal(b.grad!.dtype, 'bfloat16');
  assert.deepEqual(await arr(a.grad!), [1, 2]);
  assert.deepEqual(await arr(b.grad!), [1, 2]);
});

test('a 0-d float64 leaf next to a float32 tensor: float32 result, float64 scalar gradient', async () => {
  const s = mx.tensor(2, { dtype: 'float64', requiresGrad: true });
  const x = mx.tensor([1, 2, 3], { requiresGrad: true });
  const y = x.mul(s);
  assert.equal(y.dtype, 'float32');
  y.sum().backward();
  assert.equal(s.grad!.dtype, 'float64');
  assert.deepEqual(s.grad!.shape, []);
  assert.equal(await s.grad!.item(), 6);
  assert.deepEqual(await arr(x.grad!), [2, 2, 2]);
});

test('a float16 loss gives float16 gradients to float16 leaves (a whole float16 graph)', async () => {
  const x = mx.tensor([[1, 2], [3, 4]], { dtype: 'float16', requiresGrad: true });
  const w = mx.tensor([[0.5], [0.25]], { dtype: 'float16', requiresGrad: true });
  const loss = x.matmul(w).relu().sum();
  assert.equal(loss.dtype, 'float16');
  loss.backward();
  assert.equal(x.grad!.dtype, 'float16');
  assert.equal(w.grad!.dtype, 'float16');
  assert.deepEqual(await arr(x.grad!), [0.5, 0.25, 0.5, 0.25]);
  assert.deepEqual(await arr(w.grad!), [4, 6]);
});

/* ------------------------------------------------------------------ graph control */

test('retainGraph: a second backward without it throws a clear error; with it gradients double', async () => {
  const x = mx.tensor([1, 2], { requiresGrad: true });
  const y = x.mul(x).sum();
  y.backward();
  assert.throws(() => y.backward(), /backward through the graph a second time.*retainGraph: true/);

  const x2 = mx.tensor([1, 2], { requiresGrad: true });
  const y2 = x2.mul(x2).sum();
  y2.backward(null, { retainGraph: true });
  assert.deepEqual(await arr(x2.grad!), [2, 4]);
  y2.backward();
  assert.deepEqual(await arr(x2.grad!), [4, 8]);
});

test('noGrad: results have no gradFn and do not require grad; the mode is restored, even after a throw', () => {
  const x = mx.ones([2], { requiresGrad: true });
  assert.equal(mx.isGradEnabled(), true);
  const y = mx.noGrad(() => {
    assert.equal(mx.isGradEnabled(), false);
    return x.mul(2).exp();
  });
  assert.equal(y.gradFn, null);
  assert.equal(y.requiresGrad, false);
  assert.equal(y.isLeaf, true);
  assert.equal(mx.isGradEnabled(), true);
  assert.throws(() => mx.noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.equal(mx.isGradEnabled(), true);
  // enableGrad inside noGrad records again
  const z = mx.noGrad(() => mx.enableGrad(() => x.mul(2)));
  assert.ok(z.gradFn);
  assert.equal(z.requiresGrad, true);
  mx.setGradEnabled(false);
  try {
    assert.equal(x.add(1).requiresGrad, false);
  } finally {
    mx.setGradEnabled(true);
  }
  assert.throws(() => y.sum().backward(), /does not require grad/);
});

test('detach: shares data, has no history, and stops gradients', async () => {
  const x = mx.tensor([1, 2, 3], { requiresGrad: true });
  const y = x.mul(2);
  const d = y.detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.gradFn, null);
  assert.deepEqual(await arr(d), [2, 4, 6]);
  assert.equal(d.storage, y.storage, 'detach shares storage');
  // gradient flows only through the attached branch
  x.mul(d).sum().backward();
  assert.deepEqual(await arr(x.grad!), [2, 4, 6]);
});

test('registerHook on a leaf: sees the gradient, can replace it, and can be removed', async () => {
  const x = mx.tensor([1, 2, 3], { requiresGrad: true });
  const seen: Tensor[] = [];
  const h1 = x.registerHook((g) => {
    seen.push(g.clone());
  });
  x.mul(mx.tensor([4, 5, 6])).sum().backward();
  assert.deepEqual(await Promise.all(seen.map(arr)), [[4, 5, 6]]);
  assert.deepEqual(await arr(x.grad!), [4, 5, 6]);

  x.grad = null;
  const h2 = x.registerHook((g) => g.mul(10));
  x.sum().backward();
  assert.deepEqual(seen.length, 2);
  assert.deepEqual(await arr(x.grad!), [10, 10, 10]);

  h1.remove();
  h2.remove();
  x.grad = null;
  x.sum().backward();
  assert.equal(seen.length, 2, 'removed hook is not called');
  assert.deepEqual(await arr(x.grad!), [1, 1, 1]);
});

test('registerHook on a non-leaf: sees the gradient, replacement flows upstream, remove works', async () => {
  const x = mx.tensor([1, 2], { requiresGrad: true });
  const y = x.mul(2);
  const seen: Tensor[] = [];
  const h = y.registerHook((g) => {
    seen.push(g.clone());
    return g.mul(0.5);
  });
  y.mul(3).sum().backward(null, { retainGraph: true });
  assert.deepEqual(await Promise.all(seen.map(arr)), [[3, 3]]);
  assert.deepEqual(await arr(x.grad!), [3, 3]); // 3 * 0.5 * 2
  h.remove();
  x.grad = null;
  y.mul(3).sum().backward();
  assert.equal(seen.length, 1);
  assert.deepEqual(await arr(x.grad!), [6, 6]);
  assert.throws(() => mx.ones([2]).registerHook(() => undefined), /does not require grad/);
});

test('retainGrad keeps a non-leaf gradient; without it .grad stays null', async () => {
  const x = mx.tensor([1, 2], { requiresGrad: true });
  const y = x.mul(x).retainGrad();
  const z = x.add(1);
  y.mul(z).sum().backward();
  assert.ok(y.grad);
  assert.deepEqual(await arr(y.grad), [2, 3]);
  assert.equal(z.grad, null);
  assert.equal(y.isLeaf, false);
});

test('retained non-leaf gradients accumulate across backward calls, like leaf gradients (PyTorch)', async () => {
  const x = mx.tensor([1, 2], { requiresGrad: true });
  const y = x.mul(2).retainGrad();
  const loss = y.sum();
  loss.backward(null, { retainGraph: true });
  loss.backward();
  assert.deepEqual(await arr(x.grad!), [4, 4]);
  assert.deepEqual(await arr(y.grad!), [2, 2]);
});

test('backward on a non-scalar needs a gradient', async () => {
  const x = mx.tensor([1, 2], { requiresGrad: true });
  const y = x.mul(3);
  assert.throws(() => y.backward(), /implicitly created only for scalar outputs, got shape \[2\]/);
  assert.throws(() => y.backward(mx.ones([3])), /gradient \[3\] does not match tensor \[2\]/);
  y.backward(mx.tensor([1, 10]));
  assert.deepEqual(await arr(x.grad!), [3, 30]);
});

test('int and bool tensors cannot require grad', () => {
  assert.throws(() => mx.tensor([1, 2], { dtype: 'int32', requiresGrad: true }), /floating point.*int32/);
  assert.throws(() => mx.zeros([2], { dtype: 'int32', requiresGrad: true }), /floating point.*int32/);
  assert.throws(() => mx.arange(3, undefined, 1, { requiresGrad: true }), /floating point.*int32/);
  assert.throws(() => mx.tensor([true], { requiresGrad: true }), /floating point.*bool/);
  assert.throws(() => mx.randint(0, 3, [2]).requiresGrad_(), /floating point.*int32/);
  // integer results of float inputs do not join the graph
  const x = mx.tensor([1, 3, 2], { requiresGrad: true });
  const i = x.argmax();
  assert.equal(i.dtype, 'int32');
  assert.equal(i.requiresGrad, false);
  assert.equal(x.gt(1).requiresGrad, false);
  assert.equal(x.int().requiresGrad, false);
});

/* ------------------------------------------------------------------ type promotion */

test('type promotion rules', () => {
  const f16 = mx.ones([2], { dtype: 'float16' });
  const bf16 = mx.ones([2], { dtype: 'bfloat16' });
  const f32 = mx.ones([2]);
  const i32 = mx.tensor([1, 2], { dtype: 'int32' });
  const b = mx.tensor([true, false]);
  assert.equal(f16.add(bf16).dtype, 'float32');
  assert.equal(f16.mul(2.5).dtype, 'float16');
  assert.equal(f16.mul(3).dtype, 'float16');
  assert.equal(bf16.add(0.1).dtype, 'bfloat16');
  assert.equal(i32.add(2.5).dtype, 'float32');
  assert.equal(i32.add(2).dtype, 'int32');
  assert.equal(i32.div(mx.tensor([2, 2], { dtype: 'int32' })).dtype, 'float32');
  assert.equal(mx.tensor(2, { dtype: 'float64' }).add(f32).dtype, 'float32');
  assert.equal(mx.tensor(2, { dtype: 'float64' }).add(mx.tensor(1)).dtype, 'float64', 'two 0-d tensors promote normally');
  assert.equal(mx.tensor(2.5).add(i32).dtype, 'float32', '0-d float beats dimensioned int (higher kind)');
  assert.equal(b.add(b).dtype, 'bool');
  assert.equal(b.add(i32).dtype, 'int32');
  assert.equal(b.mul(1.5).dtype, 'float32');
  assert.equal(f16.add(f32).dtype, 'float32');
  assert.equal(f32.add(mx.ones([2], { dtype: 'float64' })).dtype, 'float64');
  assert.equal(i32.exp().dtype, 'float32');
  assert.equal(mx.where(b, f16, bf16).dtype, 'float32');
  assert.equal(mx.cat([f16, f32]).dtype, 'float32');
  assert.equal(mx.dtypes.promoteTypes(mx.dtypes.float16, mx.dtypes.bfloat16), mx.dtypes.float32);
});

test('promotion values: int32 + 2.5, int32 / int32, bool + bool', async () => {
  assert.deepEqual(await arr(mx.tensor([1, 2], { dtype: 'int32' }).add(2.5)), [3.5, 4.5]);
  assert.deepEqual(await arr(mx.tensor([1, 3], { dtype: 'int32' }).div(mx.tensor([2, 2], { dtype: 'int32' }))), [0.5, 1.5]);
  assert.deepEqual(await arr(mx.tensor([true, false, false]).add(mx.tensor([true, true, false]))), [1, 1, 0]);
});

/* ------------------------------------------------------------------ host reads */

test('await data() returns the array type of each dtype', async () => {
  const cases: [mx.DTypeName, Function][] = [
    ['float32', Float32Array],
    ['float16', Float32Array],
    ['bfloat16', Float32Array],
    ['float64', Float64Array],
    ['int32', Int32Array],
    ['bool', Uint8Array],
  ];
  for (const [dtype, ctor] of cases) {
    const t = mx.tensor([1, 0, 1], { dtype });
    const d = await t.data();
    assert.ok(d instanceof ctor, `${dtype}: got ${d.constructor.name}`);
    assert.deepEqual(Array.from(d), [1, 0, 1]);
    if (t.backend.readSync) assert.ok(t.dataSync() instanceof ctor); // asynchronous (GPU) backends have no dataSync
  }
  // 16-bit values are widened exactly
  assert.deepEqual(Array.from(await mx.tensor([0.1], { dtype: 'float16' }).data()), [0.0999755859375]);
  assert.deepEqual(Array.from(await mx.tensor([0.1], { dtype: 'bfloat16' }).data()), [0.10009765625]);
});

test('item and toArray', async () => {
  assert.equal(await mx.tensor(3.5).item(), 3.5);
  assert.equal(await mx.tensor([[7]], { dtype: 'int32' }).item(), 7);
  await assert.rejects(mx.tensor([1, 2]).item(), /item: tensor of shape \[2\] has 2 elements, expected 1/);
  assert.deepEqual(await mx.tensor([[1, 2], [3, 4]]).toArray(), [[1, 2], [3, 4]]);
  assert.deepEqual(await mx.tensor([[1, 2], [3, 4]]).t().toArray(), [[1, 3], [2, 4]]);
  assert.equal(await mx.tensor(5).toArray(), 5);
  assert.deepEqual(await mx.tensor([true, false]).toArray(), [1, 0]);
  assert.deepEqual(await mx.zeros([2, 0]).toArray(), [[], []]);
});

/* ------------------------------------------------------------------ 16-bit arithmetic */

test('16-bit reductions accumulate in float32 and round once', async () => {
  // A float16 running sum would stall at 2048 (2048 + 1 rounds to 2048).
  assert.equal(await mx.ones([4096], { dtype: 'float16' }).sum().item(), 4096);
  // bfloat16 would stall at 256.
  assert.equal(await mx.ones([4096], { dtype: 'bfloat16' }).sum().item(), 4096);
  // The mean of large float16 values does not overflow through the sum...
  const big = mx.tensor([60000, 60000], { dtype: 'float16' });
  const m = big.mean();
  assert.equal(m.dtype, 'float16');
  assert.equal(await m.item(), 60000);
  // ...but the sum itself is out of float16 range.
  assert.equal(await big.sum().item(), Infinity);
  // matmul accumulates in float32 too
  const dot = mx.ones([1, 4096], { dtype: 'float16' }).matmul(mx.ones([4096, 1], { dtype: 'float16' }));
  assert.equal(dot.dtype, 'float16');
  assert.equal(await dot.item(), 4096);
  // softmax over many equal float16 logits: 1/1024 exactly
  const p = mx.zeros([1024], { dtype: 'float16' }).softmax(0);
  assert.equal((await p.data())[0], 1 / 1024);
});

test('a float16 elementwise op rounds its float32 result once', async () => {
  // 1 + 2^-11 is not a float16; (1 + 2^-11) computed exactly, then rounded: ties-to-even gives 1.
  const a = mx.tensor([1, 1], { dtype: 'float16' });
  const b = mx.tensor([2 ** -11, 3 * 2 ** -12], { dtype: 'float16' });
  assert.deepEqual(await arr(a.add(b)), [1, 1 + 2 ** -10]);
  // 65504 * 2 overflows to Inf in float16, as in PyTorch
  assert.equal(await mx.tensor(65504, { dtype: 'float16' }).mul(2).item(), Infinity);
  // bfloat16 keeps float32's range
  assert.equal(await mx.tensor(65504, { dtype: 'bfloat16' }).mul(2).item(), 131072);
});

/* ------------------------------------------------------------------ randomness */

test('manualSeed makes rand, randn and randint reproducible', async () => {
  mx.manualSeed(123);
  const a = [await arr(mx.rand([5])), await arr(mx.randn([5])), await arr(mx.randint(0, 10, [5]))];
  mx.manualSeed(123);
  const b = [await arr(mx.rand([5])), await arr(mx.randn([5])), await arr(mx.randint(0, 10, [5]))];
  assert.deepEqual(a, b);
  mx.manualSeed(124);
  assert.notDeepEqual(await arr(mx.rand([5])), a[0]);
  // explicit generators are independent of the default one
  const g1 = new mx.Generator(7);
  const g2 = new mx.Generator(7);
  assert.deepEqual(await arr(mx.randn([4], { generator: g1 })), await arr(mx.randn([4], { generator: g2 })));
});

test('randn has mean ~0 and std ~1; rand is in [0,1); randint is in [low, high)', async () => {
  mx.manualSeed(0);
  const n = 20000;
  const x = await mx.randn([n], { dtype: 'float64' }).data();
  let s = 0;
  let s2 = 0;
  for (const v of x) {
    s += v;
    s2 += v * v;
  }
  const mean = s / n;
  const std = Math.sqrt(s2 / n - mean * mean);
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 0.05, `std ${std}`);
  const u = await mx.rand([n]).data();
  assert.ok(u.every((v) => v >= 0 && v < 1));
  const um = Array.from(u).reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(um - 0.5) < 0.02, `rand mean ${um}`);
  const r = await mx.randint(-3, 4, [n]).data();
  assert.ok(r instanceof Int32Array);
  assert.ok(r.every((v) => v >= -3 && v < 4));
  assert.equal(new Set(r).size, 7);
});

/* ------------------------------------------------------------------ factories */

test('zeros/ones/full/arange/linspace/eye/rand/randn/randint with dtypes and requiresGrad', async () => {
  const z = mx.zeros([2, 3], { dtype: 'float16', requiresGrad: true });
  assert.deepEqual([z.shape, z.dtype, z.requiresGrad, z.isLeaf], [[2, 3], 'float16', true, true]);
  assert.deepEqual(await arr(z), new Array(6).fill(0));
  const o = mx.ones([2], { dtype: 'bfloat16' });
  assert.deepEqual([o.dtype, o.requiresGrad, await arr(o)], ['bfloat16', false, [1, 1]]);
  const f = mx.full([2, 2], 7, { dtype: 'int32' });
  assert.deepEqual([f.dtype, await arr(f)], ['int32', [7, 7, 7, 7]]);
  assert.equal(mx.full([1], 1).dtype, 'float32');

  assert.deepEqual(await arr(mx.arange(4)), [0, 1, 2, 3]);
  assert.equal(mx.arange(4).dtype, 'int32');
  assert.equal(mx.arange(0, 1, 0.25).dtype, 'float32');
  assert.deepEqual(await arr(mx.arange(0, 1, 0.25)), [0, 0.25, 0.5, 0.75]);
  assert.deepEqual(await arr(mx.arange(5, 0, -2)), [5, 3, 1]);
  const ar = mx.arange(0, 3, 1, { dtype: 'float64', requiresGrad: true });
  assert.deepEqual([ar.dtype, ar.requiresGrad], ['float64', true]);

  const ls = mx.linspace(0, 1, 5, { dtype: 'float64' });
  assert.deepEqual(await arr(ls), [0, 0.25, 0.5, 0.75, 1]);
  assert.equal((await mx.linspace(-1, 0.3, 7).data())[6], Math.fround(0.3), 'last value is exactly end');

  const e = mx.eye(2, 3, { dtype: 'float16', requiresGrad: true });
  assert.deepEqual([e.shape, e.dtype, e.requiresGrad, await arr(e)], [[2, 3], 'float16', true, [1, 0, 0, 0, 1, 0]]);
  assert.deepEqual(mx.eye(3).shape, [3, 3]);

  const r = mx.rand([3], { dtype: 'bfloat16', requiresGrad: true });
  assert.deepEqual([r.dtype, r.requiresGrad], ['bfloat16', true]);
  const rn = mx.randn([2, 2], { dtype: 'float64' });
  assert.deepEqual([rn.dtype, rn.shape], ['float64', [2, 2]]);
  const ri = mx.randint(0, 5, [4], { dtype: 'float32', requiresGrad: true });
  assert.deepEqual([ri.dtype, ri.requiresGrad], ['float32', true]);
  assert.ok((await ri.data()).every((v) => Number.isInteger(v)));

  const zl = mx.zerosLike(o);
  assert.equal(zl.dtype, 'bfloat16');
  assert.deepEqual(await arr(mx.fullLike(f, 2)), [2, 2, 2, 2]);
  assert.equal(mx.onesLike(f, { dtype: 'float64' }).dtype, 'float64');

  // a leaf made by a factory receives gradients
  z.to('float32').mul(2).sum().backward();
  assert.equal(z.grad!.dtype, 'float16');
  assert.deepEqual(await arr(z.grad!), new Array(6).fill(2));
});

test('linspace with one step returns start (as PyTorch does)', async () => {
  assert.deepEqual(await arr(mx.linspace(2, 3, 1)), [2]);
  assert.deepEqual(await arr(mx.linspace(2, 3, 0)), []);
});

test('tensor() infers dtypes from its input', () => {
  assert.equal(mx.tensor([1, 2]).dtype, 'float32');
  assert.equal(mx.tensor([true]).dtype, 'bool');
  assert.equal(mx.tensor(new Float64Array([1])).dtype, 'float64');
  assert.equal(mx.tensor(new Int32Array([1])).dtype, 'int32');
  assert.deepEqual(mx.tensor(new Float32Array(6), { shape: [2, 3] }).shape, [2, 3]);
  assert.deepEqual(mx.tensor(3).shape, []);
});

/* ------------------------------------------------------------------ views */

test('non-contiguous views (transpose, permute, narrow, expand) give correct values', async () => {
  const x = mx.tensor([[1, 2, 3], [4, 5, 6]]);
  const xt = x.t();
  assert.equal(xt.isContiguous, false);
  assert.deepEqual(xt.shape, [3, 2]);
  assert.deepEqual(await arr(xt), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(await arr(xt.add(mx.tensor([10, 20]))), [11, 24, 12, 25, 13, 26]);
  assert.deepEqual(await arr(xt.exp().log()).then((v) => v.map((a) => Math.round(a * 1e5) / 1e5)), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(await arr(xt.sum(1)), [5, 7, 9]);
  assert.deepEqual(await arr(xt.sum(0)), [6, 15]);
  assert.deepEqual(await arr(xt.matmul(mx.tensor([[1], [1]]))), [5, 7, 9]);
  assert.deepEqual(await arr(x.matmul(xt)), [14, 32, 32, 77]);
  assert.deepEqual(await arr(xt.reshape(6)), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(await arr(xt.contiguous()), [1, 4, 2, 5, 3, 6]);
  assert.ok(xt.contiguous().isContiguous);
  // narrow of a transpose, then arithmetic
  const n = xt.narrow(0, 1, 2); // [[2,5],[3,6]]
  assert.deepEqual(await arr(n), [2, 5, 3, 6]);
  assert.deepEqual(await arr(n.mul(n)), [4, 25, 9, 36]);
  // permute of a 3-D tensor
  const y = mx.arange(0, 24, 1, { dtype: 'float32' }).reshape(2, 3, 4);
  const p = y.permute(2, 0, 1);
  assert.deepEqual(p.shape, [4, 2, 3]);
  assert.deepEqual(await arr(p.narrow(0, 1, 1).flatten()), [1, 5, 9, 13, 17, 21]);
  assert.deepEqual(await arr(p.max(0)), [3, 7, 11, 15, 19, 23]);
  // expanded (stride 0) operand
  const e = mx.tensor([[1], [2]]).expand(2, 3);
  assert.deepEqual(await arr(e.mul(mx.tensor([1, 2, 3]))), [1, 2, 3, 2, 4, 6]);
  // in-place copy into a view writes through to the base
  const base = mx.zeros([2, 3]);
  base.t().narrow(0, 2, 1).copy_(mx.tensor([[7, 8]]));
  assert.deepEqual(await arr(base), [0, 0, 7, 0, 0, 8]);
  // gradients through a transposed view land in the right places
  const w = mx.tensor([[1, 2, 3], [4, 5, 6]], { requiresGrad: true });
  w.t().mul(mx.tensor([[1, 10], [2, 20], [3, 30]])).sum().backward();
  assert.deepEqual(await arr(w.grad!), [1, 2, 3, 10, 20, 30]);
});

test('crossEntropy through a float16 model: float16 logits, float32 loss computation, float16 grad', async () => {
  const logits = mx.tensor([[2, 1, 0.5], [0.1, 0.2, 3]], { dtype: 'float16', requiresGrad: true });
  const loss = F.crossEntropy(logits, mx.tensor([0, 2], { dtype: 'int32' }));
  assert.equal(loss.dtype, 'float16');
  loss.backward();
  assert.equal(logits.grad!.dtype, 'float16');
  const ref = mx.tensor([[2, 1, 0.5], [0.1, 0.2, 3]], { dtype: 'float16' }).to('float64').requiresGrad_();
  F.crossEntropy(ref, mx.tensor([0, 2], { dtype: 'int32' })).backward();
  assertClose(await logits.grad!.data(), await ref.grad!.data(), 2e-3);
});

test('a leaf keeps a gradient the engine made for it alone, and copies any other', async () => {
  const backend = mx.getBackend();
  const originalRun = backend.run.bind(backend);
  let copies = 0;
  backend.run = (kernel, inputs, outputs, params) => {
    if (kernel === 'copy') copies++;
    return originalRun(kernel, inputs, outputs, params);
  };
  try {
    // The cast's backward makes a fresh float32 gradient: kept, so the only copy is the cast itself.
    const w = mx.tensor([1, 2, 3], { requiresGrad: true });
    const y = w.to('float16').mul(2).sum();
    copies = 0;
    y.backward();
    assert.equal(copies, 1, 'the float16 -> float32 cast only, no copy into .grad');
    assert.deepEqual(await arr(w.grad!), [2, 2, 2]);
    // Accumulating into the kept gradient touches nothing else.
    w.to('float16').mul(3).sum().backward();
    assert.deepEqual(await arr(w.grad!), [5, 5, 5]);
  } finally {
    backend.run = originalRun;
  }
  // add hands the same gradient to both inputs: neither may keep it as its own.
  const a = mx.tensor([1, 1], { requiresGrad: true });
  const b = mx.tensor([1, 1], { requiresGrad: true });
  a.add(b).mul(4).sum().backward();
  a.grad!.copy_(a.grad!.add(10));
  assert.deepEqual(await arr(b.grad!), [4, 4], "b's gradient is not a's");
  // A hook has seen the gradient (and keeps it): the leaf copies.
  const h = mx.tensor([1, 1], { requiresGrad: true });
  let seen: Tensor | null = null;
  h.registerHook((g) => {
    seen = g;
  });
  h.mul(2).sum().backward();
  h.grad!.copy_(h.grad!.add(100));
  assert.deepEqual(await arr(seen!), [2, 2], 'the tensor the hook kept is unchanged');
});

/* ------------------------------------------------------------------ post-accumulate-grad hooks */

test('post-accumulate-grad hooks fire once per backward, after the leaf has all of its gradient', async () => {
  const w = mx.tensor([1, 2, 3], { requiresGrad: true });
  // what the hook saw (a copy: read after backward, as asynchronous backends need)
  const seen: Tensor[] = [];
  const handle = w.registerPostAccumulateGradHook((leaf) => {
    assert.equal(leaf, w);
    seen.push(leaf.grad!.clone());
  });
  // used three times, once through slices: the hook sees the finished sum
  w.mul(2).add(w.mul(w)).sum().add(w.narrow(0, 1, 2).sum()).backward();
  assert.equal(seen.length, 1);
  assert.deepEqual(await arr(seen[0]!), [4, 7, 9]);
  w.mul(3).sum().backward();
  assert.equal(seen.length, 2);
  assert.deepEqual(await arr(seen[1]!), [7, 10, 12], 'the second pass accumulates, then fires again');
  handle.remove();
  w.sum().backward();
  assert.equal(seen.length, 2, 'removed');
  // a leaf that gets no gradient in a pass does not fire; one whose gradient a hook takes does
  const unused = mx.tensor([1], { requiresGrad: true });
  const taken = mx.tensor([1, 1], { requiresGrad: true });
  const fired: string[] = [];
  unused.registerPostAccumulateGradHook(() => fired.push('unused'));
  taken.registerHook(() => null);
  taken.registerPostAccumulateGradHook((t) => fired.push(`taken grad=${String(t.grad)}`));
  taken.mul(unused.detach()).sum().backward();
  assert.deepEqual(fired, ['taken grad=null']);
  assert.throws(() => w.mul(2).registerPostAccumulateGradHook(() => undefined), /only leaf tensors/);
});

test('queueBackwardCallback runs at the end of the backward pass that queued it, after every gradient', async () => {
  const a = mx.tensor([1, 2], { requiresGrad: true });
  const b = mx.tensor([3], { requiresGrad: true });
  const order: string[] = [];
  let bGradAtEnd: Tensor | null = null;
  a.registerPostAccumulateGradHook(() => {
    order.push('a');
    queueBackwardCallback(() => {
      order.push('end');
      bGradAtEnd = b.grad!.clone();
    });
  });
  b.registerPostAccumulateGradHook(() => order.push('b'));
  a.mul(b).sum().backward();
  assert.deepEqual([...order].sort(), ['a', 'b', 'end']);
  assert.equal(order.at(-1), 'end');
  assert.deepEqual(await arr(bGradAtEnd!), [3]);
  assert.throws(() => queueBackwardCallback(() => undefined), /no backward pass is running/);
});
