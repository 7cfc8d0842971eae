/**
 * Deterministic memory reclamation: mx.scope frees what it created except returned tensors,
 * mx.keep-ed tensors and leaves' .grad; a training loop wrapped in scopes runs in constant memory.
 *
 * Counts come from mx.memory() of the reference backend and are read inside synchronous blocks:
 * storages made outside any scope are freed by a FinalizationRegistry, whose callbacks only run
 * between tasks, so no garbage collection can move the counters within a block without an await.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { scopeDepth } from '../src/tensor/storage.js';

const F = mx.nn.functional;
const live = () => mx.memory().liveBuffers;
const bytes = () => mx.memory().liveBytes;

test('scope frees every tensor created inside except returned and kept ones', async () => {
  const before = live();
  const beforeBytes = bytes();
  let inner: Tensor[] = [];
  let kept: Tensor | undefined;
  const result = mx.scope(() => {
    const a = mx.ones([10]);
    const b = mx.full([10], 2);
    const c = a.add(b).mul(3).exp(); // 3 more buffers
    const d = mx.zeros([4, 4], { dtype: 'float16' });
    kept = mx.keep(mx.ones([3], { dtype: 'float64' }));
    inner = [a, b, d];
    return { out: c, list: [d.t()] }; // plain objects and arrays are searched; a view keeps its storage
  });
  assert.equal(live(), before + 3, 'returned c, returned view of d, kept');
  assert.equal(bytes(), beforeBytes + 10 * 4 + 16 * 2 + 3 * 8);
  assert.equal(inner[0]!.storage.disposed, true);
  assert.equal(inner[1]!.storage.disposed, true);
  assert.equal(inner[2]!.storage.disposed, false, 'storage of a returned view survives');
  // exp within 1 float32 ulp: GPU drivers differ in the last bit (docs/webgpu.md); the point here is the memory.
  const e9 = Math.fround(Math.exp(9));
  assert.ok(Math.abs((await result.out.data())[0]! - e9) <= e9 * 2 ** -23, 'exp(9) of the returned tensor');
  assert.deepEqual(result.list[0]!.shape, [4, 4]);
  assert.equal((await kept!.data())[0], 1);
  // explicit disposal returns everything
  result.out.dispose();
  result.list[0]!.dispose();
  kept!.dispose();
  assert.equal(live(), before);
  assert.equal(bytes(), beforeBytes);
});

test('nested scopes: a tensor returned from an inner scope belongs to the outer one', () => {
  const before = live();
  let fromInner: Tensor | undefined;
  const out = mx.scope(() => {
    fromInner = mx.scope(() => {
      mx.ones([5]); // freed with the inner scope
      return mx.zeros([5]);
    });
    assert.equal(live(), before + 1);
    assert.equal(fromInner.storage.disposed, false);
    return fromInner.add(1);
  });
  assert.equal(fromInner!.storage.disposed, true, 'not returned from the outer scope: freed there');
  assert.equal(live(), before + 1);
  out.dispose();
  assert.equal(live(), before);
});

test('leaf gradients survive the scope of the backward pass; intermediates do not', async () => {
  const w = mx.tensor([1, 2, 3], { requiresGrad: true });
  const before = live();
  let hidden: Tensor | undefined;
  mx.scope(() => {
    hidden = w.mul(w);
    hidden.sum().backward();
  });
  assert.equal(live(), before + 1, 'only w.grad was added');
  assert.ok(w.grad);
  assert.equal(w.grad.storage.disposed, false);
  assert.equal(hidden!.storage.disposed, true);
  assert.deepEqual(Array.from(await w.grad.data()), [2, 4, 6]);
  // accumulation in a later scope writes into the same buffer
  const g = w.grad;
  mx.scope(() => w.mul(w).sum().backward());
  assert.equal(w.grad, g);
  assert.equal(live(), before + 1);
  assert.deepEqual(Array.from(await w.grad.data()), [4, 8, 12]);
  w.grad.dispose();
  w.grad = null;
  assert.equal(live(), before);
});

function makeMlp(dtype: 'float32' | 'float16' = 'float32') {
  const g = new mx.Generator(42);
  const p = (shape: number[], scale: number) => mx.randn(shape, { generator: g }).mul(scale).to(dtype).requiresGrad_();
  const params = [p([4, 16], 0.5), p([16], 0.1), p([16, 3], 0.5), p([3], 0.1)];
  const X = mx.randn([8, 4], { generator: g });
  const y = mx.tensor([0, 1, 2, 0, 1, 2, 0, 1], { dtype: 'int32' });
  return { params, X, y };
}

type StepEnd = 'zero_' | 'dispose-and-null';

function runTraining(steps: number, end: StepEnd, mixed = false) {
  const { params, X, y } = makeMlp();
  const [W1, b1, W2, b2] = params as [Tensor, Tensor, Tensor, Tensor];
  const lr = 0.5;
  const counts: { buffers: number; bytes: number; peak: number }[] = [];
  // Losses are copied into one kept tensor and read after the loop (no synchronous reads: GPU backends have none).
  const losses = mx.zeros([steps]);
  // The reference backend can restart its peak counter, so the peak below is this loop's own.
  mx.getBackend().resetPeak?.();
  const start = { buffers: live(), bytes: bytes() };
  for (let step = 0; step < steps; step++) {
    const loss = mx.scope(() => {
      // mixed: float32 master weights, float16 compute
      const c = (t: Tensor) => (mixed ? t.to('float16') : t);
      const h = c(X).matmul(c(W1)).add(c(b1)).relu();
      const logits = h.matmul(c(W2)).add(c(b2));
      const l = F.crossEntropy(logits, y);
      l.backward();
      for (const p of params) {
        assert.equal(p.grad!.dtype, p.dtype);
        p.copy_(p.sub(p.grad!.mul(lr)));
        if (end === 'zero_') p.grad!.zero_();
        else {
          p.grad!.dispose();
          p.grad = null;
        }
      }
      losses.narrow(0, step, 1).copy_(l.reshape([1])); // in place, inside the scope (a float16 loss casts)
      return l;
    });
    loss.dispose();
    const m = mx.memory();
    counts.push({ buffers: m.liveBuffers, bytes: m.liveBytes, peak: m.peakBytes });
  }
  return { counts, losses, start, params };
}

for (const [end, mixed] of [['zero_', false], ['dispose-and-null', false], ['zero_', true]] as [StepEnd, boolean][]) {
  test(`50 training steps in scopes keep liveBuffers and liveBytes constant (${end}${mixed ? ', float16 compute' : ''})`, async () => {
    // The training loop is synchronous on purpose (see the header comment); the losses are read after it.
    const { counts, losses: lossTensor, start, params } = runTraining(50, end, mixed);
    const losses = [...(await lossTensor.data())];
    const first = counts[0]!;
    for (let i = 1; i < counts.length; i++) {
      assert.equal(counts[i]!.buffers, first.buffers, `liveBuffers changed at step ${i}`);
      assert.equal(counts[i]!.bytes, first.bytes, `liveBytes changed at step ${i}`);
    }
    assert.equal(counts[counts.length - 1]!.peak, counts[1]!.peak, 'peak memory stops growing after the first steps');
    const gradBytes = params.reduce((s, p) => s + p.numel * 4, 0);
    if (end === 'zero_') {
      assert.equal(first.buffers, start.buffers + params.length, 'exactly one gradient buffer per parameter');
      assert.equal(first.bytes, start.bytes + gradBytes);
    } else {
      assert.equal(first.buffers, start.buffers);
      assert.equal(first.bytes, start.bytes);
    }
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[losses.length - 1]! < losses[0]! * 0.7, `loss did not go down: ${losses[0]} -> ${losses[losses.length - 1]}`);
    for (const p of params) p.grad?.dispose();
  });
}

test('scope restores the scope stack and frees its tensors even if fn throws', () => {
  const depth = scopeDepth();
  const before = live();
  let made: Tensor | undefined;
  assert.throws(
    () =>
      mx.scope(() => {
        made = mx.ones([8]);
        mx.zeros([8]).add(1);
        throw new Error('step failed');
      }),
    /step failed/,
  );
  assert.equal(scopeDepth(), depth);
  assert.equal(live(), before);
  assert.equal(made!.storage.disposed, true);
  // an error inside a nested scope, caught in the outer one
  const out = mx.scope(() => {
    try {
      mx.scope(() => {
        mx.ones([3]);
        throw new RangeError('inner');
      });
    } catch (e) {
      assert.ok(e instanceof RangeError);
    }
    assert.equal(scopeDepth(), depth + 1);
    return mx.ones([2]);
  });
  assert.equal(scopeDepth(), depth);
  assert.equal(live(), before + 1);
  out.dispose();
  // a tensor created afterwards is not captured by a stale scope
  const t = mx.ones([2]);
  mx.scope(() => undefined);
  assert.equal(t.storage.disposed, false);
  t.dispose();
});

test('scope rejects async functions and cleans up', async () => {
  const depth = scopeDepth();
  const before = live();
  assert.throws(
    () =>
      mx.scope(async () => {
        mx.ones([4]);
        return 1;
      }),
    (e: Error) => e instanceof TypeError && /scope: fn must be synchronous/.test(e.message),
  );
  assert.equal(scopeDepth(), depth);
  assert.equal(live(), before);
  // a promise-returning (non-async) function too
  assert.throws(() => mx.scope(() => Promise.resolve(mx.ones([1]))), /synchronous/);
  assert.equal(scopeDepth(), depth);
});

test('float16 and bfloat16 tensors use half the bytes of float32', () => {
  const sizes: Record<string, number> = {};
  mx.scope(() => {
    for (const dtype of ['float32', 'float16', 'bfloat16', 'float64', 'int32', 'bool'] as const) {
      const b0 = bytes();
      const n0 = live();
      mx.zeros([1000], { dtype });
      assert.equal(live(), n0 + 1, `${dtype}: one buffer`);
      sizes[dtype] = bytes() - b0;
    }
    // tensor() from data and casts allocate at the same width
    const b0 = bytes();
    const h = mx.tensor(new Float32Array(1000)).to('float16');
    assert.equal(h.dtype, 'float16');
    assert.equal(bytes() - b0, 4000 + 2000);
  });
  assert.deepEqual(sizes, { float32: 4000, float16: 2000, bfloat16: 2000, float64: 8000, int32: 4000, bool: 1000 });
  assert.equal(sizes['float16']! * 2, sizes['float32']);
});

test('views share storage: no new buffer, and disposing the base frees it for all views', async () => {
  const before = live();
  const base = mx.ones([4, 4]);
  const views = [base.t(), base.reshape(16), base.narrow(0, 1, 2), base.unsqueeze(0), base.expand(2, 4, 4), base.detach()];
  assert.equal(live(), before + 1);
  for (const v of views) assert.equal(v.storage, base.storage);
  views[0]!.dispose();
  assert.equal(live(), before);
  await assert.rejects(base.data(), /disposed/);
  await assert.rejects(views[2]!.data(), /disposed/);
});

test('keep exempts a tensor from every enclosing scope', () => {
  const before = live();
  let k: Tensor | undefined;
  mx.scope(() => {
    mx.scope(() => {
      k = mx.keep(mx.ones([2]));
    });
    assert.equal(k!.storage.disposed, false);
  });
  assert.equal(k!.storage.disposed, false);
  assert.equal(live(), before + 1);
  k!.dispose();
  assert.equal(live(), before);
});
