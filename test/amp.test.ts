import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';

const F = mx.nn.functional;

/**
 * What scaler.step() returns: whether it stepped, on a backend with synchronous reads; undefined on
 * one without (WebGPU), where the skip happens on the device and is not known without a read.
 */
const hostSteps = Boolean(mx.getBackend().readSync);
const stepResult = (stepped: boolean): boolean | undefined => (hostSteps ? stepped : undefined);

/**
 * PyTorch's scale update (aten/src/ATen/native/cuda/AmpKernels.cu, _amp_update_scale_cuda_kernel),
 * transcribed as the oracle: on inf, scale *= backoff and the tracker resets; otherwise the tracker
 * counts up and at growthInterval the scale grows (if the result is finite) and the tracker resets.
 */
function torchRule(scale: number, tracker: number, foundInf: boolean, growth: number, backoff: number, interval: number): [number, number] {
  if (foundInf) return [Math.fround(scale * backoff), 0];
  const successful = tracker + 1;
  if (successful === interval) {
    const grown = Math.fround(scale * growth);
    return [Number.isFinite(grown) ? grown : scale, 0];
  }
  return [scale, successful];
}

/** One parameter whose gradient we set by hand, and an SGD optimizer over it. */
function setup(values: number[] = [1, 2, 3]) {
  const p = mx.tensor(values, { requiresGrad: true });
  const opt = new mx.optim.SGD([p], { lr: 0.1 });
  return { p, opt };
}

function setGrad(p: mx.Tensor, values: number[]): void {
  p.grad = mx.tensor(values, { dtype: p.dtype });
}

describe('GradScaler scale trajectory', () => {
  it('follows PyTorch\'s update rule on a scripted sequence, growing exactly at growthInterval', async () => {
    const growthInterval = 3;
    const scaler = new mx.amp.GradScaler({ initScale: 1024, growthInterval });
    const { p, opt } = setup();
    // clean x3 (grow), inf, clean x2, inf, inf, clean x5 (grow once, tracker 2)
    const script = [0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0].map(Boolean);
    let [scale, tracker, skipped] = [1024, 0, 0];
    for (const overflow of script) {
      setGrad(p, overflow ? [1, Infinity, 1] : [1, 1, 1]);
      const stepped = scaler.step(opt);
      assert.equal(stepped, stepResult(!overflow));
      scaler.update();
      [scale, tracker] = torchRule(scale, tracker, overflow, 2, 0.5, growthInterval);
      skipped += overflow ? 1 : 0;
      assert.equal(await scaler.getScaleAsync(), scale);
      assert.equal(((await scaler.stateDictAsync()) as mx.amp.GradScalerState).growthTracker, tracker);
      assert.equal(await scaler.getSkippedStepsAsync(), skipped, 'the overflowing iterations were skipped');
    }
    assert.equal(scale, 512); // 1024 -> 2048 -> 1024 -> 512 -> 256 -> 512
  });

  it('matches the rule over a long random sequence with NaN and Inf', async () => {
    const gen = new mx.Generator(7);
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 16, growthInterval: 5, growthFactor: 4, backoffFactor: 0.25 });
    const { p, opt } = setup();
    let [scale, tracker] = [2 ** 16, 0];
    for (let i = 0; i < 200; i++) {
      const r = gen.nextDouble();
      const overflow = r < 0.15;
      setGrad(p, overflow ? [r < 0.07 ? NaN : -Infinity, 0, 1] : [0.5, 0.25, 1]);
      scaler.step(opt);
      scaler.update();
      [scale, tracker] = torchRule(scale, tracker, overflow, 4, 0.25, 5);
      assert.equal(await scaler.getScaleAsync(), scale, `iteration ${i}`);
    }
  });

  it('hysteresis backs off only after N consecutive overflows; min and max bound the scale', async () => {
    const scaler = new mx.amp.GradScaler({ initScale: 8, growthInterval: 1, hysteresis: 2, minScale: 2, maxScale: 32 });
    const { p, opt } = setup();
    const expect = async (overflow: boolean, scale: number) => {
      setGrad(p, overflow ? [Infinity, 0, 0] : [1, 1, 1]);
      scaler.step(opt);
      scaler.update();
      assert.equal(await scaler.getScaleAsync(), scale);
    };
    await expect(true, 8); // first overflow: held by hysteresis
    await expect(false, 16); // clean step resets the streak, grows (interval 1)
    await expect(true, 16);
    await expect(true, 8); // second consecutive overflow: back off
    await expect(false, 16);
    await expect(false, 32);
    await expect(false, 32); // maxScale
    // pairs of overflows halve it: 32 -> 16 -> 8 -> 4 -> 2, then minScale holds
    for (const s of [32, 16, 16, 8, 8, 4, 4, 2, 2, 2, 2]) await expect(true, s);
  });

  it('update(newScale) sets the scale; stateDict round-trips with PyTorch\'s keys', async () => {
    const scaler = new mx.amp.GradScaler({ initScale: 256, growthInterval: 10 });
    const { p, opt } = setup();
    setGrad(p, [1, 1, 1]);
    scaler.step(opt);
    scaler.update(4096);
    assert.equal(await scaler.getScaleAsync(), 4096);
    setGrad(p, [1, 1, 1]);
    scaler.step(opt);
    scaler.update();
    const state = await scaler.stateDictAsync();
    assert.deepEqual(Object.keys(state).sort(), ['backoffFactor', 'growthFactor', 'growthInterval', 'growthTracker', 'scale']);
    assert.deepEqual(state, { scale: 4096, growthFactor: 2, backoffFactor: 0.5, growthInterval: 10, growthTracker: 1 });
    const other = new mx.amp.GradScaler();
    other.loadStateDict(state);
    assert.deepEqual(await other.stateDictAsync(), state);
    assert.throws(() => other.loadStateDict({}), /source state dict is empty/);
  });
});

describe('GradScaler steps', () => {
  /** A float16 autocast iteration (SGD with momentum) whose gradient gets `bad` injected: the scaler skips its step. */
  const injectedStep = async (bad: number) => {
    const w1 = mx.tensor([[0.5, -0.25], [0.125, 1]], { requiresGrad: true });
    const w2 = mx.tensor([0.3, 0.7], { requiresGrad: true });
    const opt = new mx.optim.SGD([w1, w2], { lr: 0.5, momentum: 0.9 });
    const scaler = new mx.amp.GradScaler({ initScale: 1024 });
    const before = [await w1.storageData(), await w2.storageData()];
    const loss = mx.amp.autocast({ dtype: 'float16' }, () => mx.matmul(w2.unsqueeze(0), w1).sum());
    scaler.scale(loss).backward();
    w1.grad!.copy_(mx.where(mx.tensor([[true, false], [false, false]]), bad, w1.grad!));
    assert.equal(scaler.step(opt), stepResult(false));
    scaler.update();
    return { w1, w2, opt, scaler, before };
  };

  it('an injected Inf or NaN skips the step, leaves parameters bit-identical and halves the scale', async () => {
    for (const bad of [Infinity, NaN]) {
      const { w1, w2, scaler, before } = await injectedStep(bad);
      assert.deepEqual(await w1.storageData(), before[0]);
      assert.deepEqual(await w2.storageData(), before[1]);
      assert.equal(await scaler.getScaleAsync(), 512);
    }
  });

  it(
    'a step skipped on the host creates no optimizer state',
    {
      skip:
        !mx.getBackend().readSync &&
        'without synchronous reads the skip is decided on the device inside opt.step({ foundInf }), which creates the state (SGD: a momentum buffer flagged momentumBufferEmpty) without starting it',
    },
    async () => {
      for (const bad of [Infinity, NaN]) {
        const { opt } = await injectedStep(bad);
        assert.equal(opt.state.size, 0, 'no optimizer state was created by a skipped step');
      }
    },
  );

  it('unscales gradients by exactly 1/scale and steps when clean', async () => {
    const { p, opt } = setup([1, 1, 1]);
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 10 });
    const loss = scaler.scale(p.mul(mx.tensor([0.5, 0.25, 3])).sum());
    loss.backward();
    scaler.unscale_(opt);
    assert.deepEqual([...(await p.grad!.data())], [0.5, 0.25, 3]);
    assert.equal(scaler.step(opt), stepResult(true));
    scaler.update();
    assert.deepEqual([...(await p.data())].map((v) => Math.round(v * 1e6) / 1e6), [0.95, 0.975, 0.7]);
  });

  it('raises on misuse, as PyTorch\'s state machine does', () => {
    const { p, opt } = setup();
    const scaler = new mx.amp.GradScaler();
    setGrad(p, [1, 1, 1]);
    scaler.unscale_(opt);
    assert.throws(() => scaler.unscale_(opt), /unscale_\(\) has already been called on this optimizer since the last update\(\)/);
    scaler.step(opt);
    assert.throws(() => scaler.unscale_(opt), /unscale_\(\) is being called after step\(\)/);
    assert.throws(() => scaler.step(opt), /step\(\) has already been called since the last update\(\)/);
    scaler.update();
    assert.throws(() => scaler.update(), /No inf checks were recorded prior to update\(\)/);
    p.grad = null;
    assert.throws(() => scaler.step(opt), /No inf checks were recorded for this optimizer/);
  });

  it('refuses float16 gradients: no float32 master weights', () => {
    const p = mx.tensor([1, 2], { dtype: 'float16', requiresGrad: true });
    const opt = new mx.optim.SGD([p], { lr: 0.1 });
    const scaler = new mx.amp.GradScaler();
    scaler.scale(p.sum()).backward();
    assert.throws(() => scaler.unscale_(opt), /Attempting to unscale FP16 gradients/);
    assert.throws(() => scaler.step(opt), /Attempting to unscale FP16 gradients/);
  });

  it('disabled: every method is a no-op and scale(loss) returns the loss itself', async () => {
    const { p, opt } = setup([1, 1, 1]);
    const scaler = new mx.amp.GradScaler({ enabled: false });
    const loss = p.sum();
    assert.equal(scaler.scale(loss), loss);
    loss.backward();
    scaler.unscale_(opt);
    scaler.unscale_(opt);
    assert.equal(scaler.step(opt), true);
    scaler.update();
    scaler.update();
    assert.equal(scaler.getScale(), 1);
    assert.deepEqual(scaler.stateDict(), {});
    assert.deepEqual([...(await p.data())].map((v) => Math.round(v * 1e6) / 1e6), [0.9, 0.9, 0.9]);
  });

  it('one scaler serves two optimizers: the overflowing one skips, the other steps, the scale backs off once', async () => {
    const a = mx.tensor([1, 1], { requiresGrad: true });
    const b = mx.tensor([2, 2], { requiresGrad: true });
    const optA = new mx.optim.SGD([a], { lr: 0.1 });
    const optB = new mx.optim.SGD([b], { lr: 0.1 });
    const events: mx.amp.ScalerStepEvent[] = [];
    const scaler = new mx.amp.GradScaler({ initScale: 64, onStep: (e) => events.push(e) });
    setGrad(a, [1, 1]);
    setGrad(b, [Infinity, 1]);
    assert.equal(scaler.step(optA), stepResult(true), 'optimizer A has clean gradients of its own');
    assert.equal(scaler.step(optB), stepResult(false));
    scaler.update();
    assert.equal(await scaler.getScaleAsync(), 32, 'backed off exactly once');
    await scaler.flush(); // onStep events arrive once their values are read (at once with synchronous reads)
    assert.deepEqual(events, [{ scale: 32, foundInf: true, skipped: true }]);
    assert.deepEqual([...(await b.data())], [2, 2]);
  });

  it('gradient accumulation over micro-batches equals one big batch; clipping after unscale_', async () => {
    mx.manualSeed(3);
    const w0 = mx.randn([3, 4]);
    const x = mx.randn([8, 4]);
    const y = mx.randint(0, 3, [8]);
    const grads: Float32Array[] = [];
    for (const micro of [1, 4]) {
      const w = w0.clone().requiresGrad_();
      const opt = new mx.optim.SGD([w], { lr: 0.1 });
      const scaler = new mx.amp.GradScaler({ initScale: 256 });
      const size = 8 / micro;
      for (let i = 0; i < micro; i++) {
        const loss = F.crossEntropy(F.linear(x.narrow(0, i * size, size), w), y.narrow(0, i * size, size)).div(micro);
        scaler.scale(loss).backward();
      }
      scaler.unscale_(opt);
      const norm = await mx.nn.utils.clipGradNorm_([w], 0.1).item();
      assert.ok(norm > 0.1, 'the test gradient is large enough to be clipped');
      const clippedNorm = await w.grad!.square().sum().sqrt().item();
      assert.ok(Math.abs(clippedNorm - 0.1) < 1e-5, `clipped norm ${clippedNorm}`);
      grads.push(await w.grad!.data() as Float32Array);
      scaler.step(opt);
      scaler.update();
    }
    for (let i = 0; i < grads[0]!.length; i++) assert.ok(Math.abs(grads[0]![i]! - grads[1]![i]!) < 1e-6);
  });

  it('bfloat16 autocast with a GradScaler works and hints once that it needs no scaling', async () => {
    const { p, opt } = setup([1, 2, 3]);
    const scaler = new mx.amp.GradScaler();
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (msg: string) => void warnings.push(msg);
    let loss: mx.Tensor;
    try {
      loss = scaler.scale(mx.amp.autocast({ dtype: 'bfloat16' }, () => mx.matmul(p, p)));
      scaler.scale(mx.amp.autocast({ dtype: 'bfloat16' }, () => mx.matmul(p, p)));
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /bfloat16 .*not needed/);
    loss.backward();
    assert.equal(scaler.step(opt), stepResult(true));
    scaler.update();
    assert.equal(p.grad!.dtype, 'float32');
  });
});

describe('loss scaling prevents float16 gradient underflow', () => {
  it('gradients of about 1e-8 vanish in float16 without scaling and match float32 with it', async () => {
    mx.manualSeed(11);
    const w = mx.randn([16, 32]).mul(0.5).requiresGrad_();
    const x = mx.randn([64, 32]);
    const target = mx.randn([64, 16]).mul(1e-3);
    // loss = tiny * mean((xW^T - t)^2): true gradients are around 1e-8, far below float16's 2^-24.
    const lossFn = () => F.mseLoss(F.linear(x, w), target).mul(2e-8);

    const ref = lossFn();
    ref.backward();
    const g32 = Float32Array.from(await w.grad!.data());
    const median = [...g32].map(Math.abs).sort((a, b) => a - b)[g32.length >> 1]!;
    assert.ok(median > 1e-9 && median < 1e-7, `true gradients are ~1e-8 (median ${median})`);
    w.grad = null;

    mx.amp.autocast({ dtype: 'float16' }, lossFn).backward();
    const unscaled = await w.grad!.data();
    assert.ok(unscaled.every((v) => v === 0), 'every float16 gradient underflowed to zero');
    w.grad = null;

    const opt = new mx.optim.SGD([w], { lr: 0 });
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 24 });
    scaler.scale(mx.amp.autocast({ dtype: 'float16' }, lossFn)).backward();
    scaler.unscale_(opt);
    const scaled = await w.grad!.data();
    let worst = 0;
    const maxRef = Math.max(...[...g32].map(Math.abs));
    for (let i = 0; i < g32.length; i++) worst = Math.max(worst, Math.abs(scaled[i]! - g32[i]!) / maxRef);
    assert.ok(worst < 1e-3, `scaled float16 gradients match float32 within 1e-3 relative (worst ${worst})`);
  });
});

describe('autocast', () => {
  const x32 = () => mx.randn([4, 8]);
  const w32 = () => mx.randn([6, 8], { requiresGrad: true });

  for (const dtype of ['float16', 'bfloat16'] as const) {
    it(`${dtype}: each op gets the dtype its policy category says`, () => {
      mx.manualSeed(0);
      const x = x32();
      const w = w32();
      const img = mx.randn([2, 3, 8, 8]);
      const k = mx.randn([4, 3, 3, 3], { requiresGrad: true });
      const y = mx.tensor([0, 1, 2, 3], { dtype: 'int32' });
      mx.amp.autocast({ dtype }, () => {
        const h = mx.matmul(x, w.t());
        assert.equal(h.dtype, dtype, 'matmul: lower');
        assert.equal(F.linear(x, w).dtype, dtype, 'linear: lower');
        assert.equal(F.conv2d(img, k, null, { padding: 1 }).dtype, dtype, 'conv2d: lower');
        assert.equal(F.softmax(h, 1).dtype, 'float32', 'softmax: float32');
        assert.equal(mx.sum(h).dtype, 'float32', 'sum: float32');
        assert.equal(mx.exp(h).dtype, 'float32', 'exp: float32');
        assert.equal(F.crossEntropy(h, y).dtype, 'float32', 'crossEntropy: float32');
        assert.equal(F.layerNorm(h, [6]).dtype, 'float32', 'layerNorm: float32');
        assert.equal(mx.cat([h, x.narrow(1, 0, 6)], 0).dtype, 'float32', 'cat: promote to the widest input');
        assert.equal(mx.cat([h, h], 0).dtype, dtype, 'cat of two lower tensors stays lower');
        assert.equal(mx.relu(h).dtype, dtype, 'relu: none, runs in its input dtype');
        assert.equal(mx.add(h, x.narrow(1, 0, 6)).dtype, 'float32', 'add: none, normal promotion');
        const d = mx.tensor([1, 2], { dtype: 'float64' });
        assert.equal(mx.matmul(d, d).dtype, 'float64', 'float64 is never cast');
      });
    });
  }

  it('the policy table follows PyTorch\'s CUDA lists', () => {
    const p = mx.amp.policy;
    for (const op of ['matmul', 'bmm', 'linear', 'conv2d', 'convTranspose2d']) assert.equal(p[op], 'lower', op);
    for (const op of ['exp', 'log', 'log1p', 'pow', 'rsqrt', 'softmax', 'logSoftmax', 'sum', 'logsumexp', 'layerNorm', 'mseLoss', 'l1Loss', 'nllLoss', 'crossEntropy', 'binaryCrossEntropyWithLogits']) {
      assert.equal(p[op], 'float32', op);
    }
    for (const op of ['cat', 'stack']) assert.equal(p[op], 'promote', op);
    for (const op of ['add', 'relu', 'mean', 'max', 'tanh']) assert.equal(p[op], 'none', op);
    assert.ok(Object.keys(p).length > 50);
  });

  it('refuses binaryCrossEntropy inside float16 autocast and points to the logits form', () => {
    const p = mx.tensor([0.2, 0.9]);
    const t = mx.tensor([0, 1]);
    assert.throws(() => mx.amp.autocast({ dtype: 'float16' }, () => F.binaryCrossEntropy(p, t)), /binaryCrossEntropyWithLogits/);
    assert.equal(mx.amp.autocast({ dtype: 'float16' }, () => F.binaryCrossEntropyWithLogits(p, t)).dtype, 'float32');
    assert.equal(F.binaryCrossEntropy(p, t).dtype, 'float32', 'allowed outside autocast');
  });

  it('caches the cast of a weight once per outermost region', () => {
    const w = w32();
    const x = x32();
    const seen = new Set<mx.Tensor>();
    mx.amp.autocast({ dtype: 'float16' }, () => {
      const y1 = F.linear(x, w);
      const y2 = F.linear(x, w);
      // both ops cast the leaf w: the second use hits the cache
      for (const y of [y1, y2]) seen.add(castOf(y, w));
    });
    assert.equal(seen.size, 1, 'one float16 copy of w per region');
    const again = mx.amp.autocast({ dtype: 'float16' }, () => castOf(F.linear(x, w), w));
    assert.ok(!seen.has(again), 'a new outermost region casts afresh');
    const uncached = new Set<mx.Tensor>();
    mx.amp.autocast({ dtype: 'float16', cacheEnabled: false }, () => {
      uncached.add(castOf(F.linear(x, w), w));
      uncached.add(castOf(F.linear(x, w), w));
    });
    assert.equal(uncached.size, 2, 'cacheEnabled: false casts every time');
  });

  it("frees conv2d's float16 weight cast once the op has run and makes it again in the backward (same gradients, fewer bytes held)", async () => {
    for (const cacheEnabled of [true, false]) {
      mx.manualSeed(3);
      const w = mx.randn([6, 4, 3, 3]).requiresGrad_();
      const b = mx.randn([6]).requiresGrad_();
      const x = mx.randn([2, 4, 5, 5]).to('float16').requiresGrad_();
      const gy = mx.randn([2, 6, 5, 5]).to('float16');
      // the oracle: the same casts, made by hand and kept (no autocast)
      const yRef = F.conv2d(x, w.to('float16'), b.to('float16'), { padding: 1 });
      mx.sum(mx.mul(yRef, gy)).backward();
      const [gwRef, gbRef, gxRef] = [await w.grad!.data(), await b.grad!.data(), await x.grad!.data()];
      w.grad = null;
      b.grad = null;
      x.grad = null;
      const before = mx.memory().liveBytes;
      const y = mx.amp.autocast({ dtype: 'float16', cacheEnabled }, () => F.conv2d(x, w, b, { padding: 1 }));
      // only y is held: the float16 copies of w and b were freed after the op
      assert.equal(mx.memory().liveBytes - before, y.numel * 2, `cacheEnabled ${cacheEnabled}: live bytes after the forward`);
      assert.deepEqual(await y.data(), await yRef.data());
      mx.sum(mx.mul(y, gy)).backward();
      assert.deepEqual(await w.grad!.data(), gwRef, 'weight gradient');
      assert.deepEqual(await b.grad!.data(), gbRef, 'bias gradient');
      assert.deepEqual(await x.grad!.data(), gxRef, 'input gradient');
    }
  });

  it('nested disabled regions turn autocast off inside and restore it after', () => {
    const x = x32();
    const w = w32();
    mx.amp.autocast({ dtype: 'float16' }, () => {
      assert.equal(mx.matmul(x, w.t()).dtype, 'float16');
      mx.amp.autocast({ enabled: false }, () => {
        assert.equal(mx.amp.isAutocastEnabled(), false);
        assert.equal(mx.matmul(x, w.t()).dtype, 'float32');
      });
      assert.equal(mx.matmul(x, w.t()).dtype, 'float16');
      mx.amp.autocast({ dtype: 'bfloat16' }, () => assert.equal(mx.matmul(x, w.t()).dtype, 'bfloat16'));
    });
    assert.equal(mx.amp.isAutocastEnabled(), false);
    assert.equal(mx.matmul(x, w.t()).dtype, 'float32');
  });

  it('restores the previous state when the function throws, and supports async functions and `using`', async () => {
    assert.throws(() => mx.amp.autocast({ dtype: 'float16' }, () => { throw new Error('boom'); }), /boom/);
    assert.equal(mx.amp.isAutocastEnabled(), false);
    const x = x32();
    const w = w32();
    const dt = await mx.amp.autocast({ dtype: 'bfloat16' }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return mx.matmul(x, w.t()).dtype;
    });
    assert.equal(dt, 'bfloat16');
    assert.equal(mx.amp.isAutocastEnabled(), false);
    {
      const region = mx.amp.autocast({ dtype: 'float16' });
      try {
        assert.equal(mx.matmul(x, w.t()).dtype, 'float16');
      } finally {
        region[Symbol.dispose]();
      }
    }
    assert.equal(mx.amp.isAutocastEnabled(), false);
    assert.throws(() => mx.amp.autocast({ dtype: 'float32' as 'float16' }, () => 0), /dtype must be 'float16' or 'bfloat16'/);
  });

  it('backward runs in the forward ops\' dtypes and returns float32 gradients to float32 weights', () => {
    const x = x32();
    const w = w32();
    const loss = mx.amp.autocast({ dtype: 'float16' }, () => {
      const h = F.linear(x, w);
      h.retainGrad();
      const l = F.crossEntropy(h, mx.tensor([0, 1, 2, 3], { dtype: 'int32' }));
      l.backward();
      assert.equal(h.grad!.dtype, 'float16', 'the gradient of a float16 activation is float16');
      return l;
    });
    assert.equal(loss.dtype, 'float32');
    assert.equal(w.grad!.dtype, 'float32');
  });

  for (const half of ['float16', 'bfloat16'] as const) {
    it(`${half}: a residual add of the float32 stream and a ${half} branch is float32 with the bits and gradients of casting the branch first`, async () => {
      const run = (castFirst: boolean) => {
        const x = mx.tensor([0.1, -2.5, 3.25, 1e-3, 7, -0.75, 0.3, 11], { shape: [2, 4], requiresGrad: true });
        const w = mx.tensor([0.5, -1.25, 0.2, 2, 0.1, 0.7, -0.3, 1.5, -0.4, 0.05, 0.9, -2, 1, 0.25, -0.6, 0.33], { shape: [4, 4], requiresGrad: true });
        const y = mx.amp.autocast({ dtype: half }, () => {
          const branch = F.linear(x, w);
          assert.equal(branch.dtype, half);
          const h = castFirst ? mx.add(x, branch.to('float32')) : mx.add(x, branch);
          assert.equal(h.dtype, 'float32');
          return mx.mul(h, h).sum();
        });
        y.backward();
        return { y, gx: x.grad!, gw: w.grad! };
      };
      const mixed = run(false);
      const cast = run(true);
      assert.deepEqual(await mixed.y.data(), await cast.y.data());
      assert.equal(mixed.gx.dtype, 'float32');
      assert.equal(mixed.gw.dtype, 'float32');
      assert.deepEqual(await mixed.gx.data(), await cast.gx.data());
      assert.deepEqual(await mixed.gw.data(), await cast.gw.data());
      // the 16-bit operand's gradient comes back in its own dtype
      const a = mx.tensor([1, 2, 3], { requiresGrad: true });
      const b = mx.tensor([0.5, 0.25, -1], { dtype: half, requiresGrad: true });
      const s = mx.add(b, a);
      assert.equal(s.dtype, 'float32');
      mx.mul(s, 3).sum().backward();
      assert.equal(b.grad!.dtype, half);
      assert.equal(a.grad!.dtype, 'float32');
      assert.deepEqual(Array.from(await b.grad!.data()), [3, 3, 3]);
    });
  }
});

function castOf(y: mx.Tensor, w: mx.Tensor): mx.Tensor {
  // Walk back from the output to the tensor produced by the cast of `w`.
  const stack = [y];
  while (stack.length) {
    const t = stack.pop()!;
    const node = t.gradFn;
    if (!node) continue;
    if (node.op === 'cast' && node.inputs[0] === w) return t;
    stack.push(...node.inputs);
  }
  throw new Error('no cast of w found');
}

/**
 * precisionReport reads as things happen (each op's output in its overflow search, the gradients'
 * statistics and the scale in gradient hooks): it needs synchronous reads.
 */
const precisionReportSkip =
  !mx.getBackend().readSync &&
  'precisionReport reads its statistics, the scale and every op output as they happen: it needs synchronous reads and refuses backends without them (tested below)';

describe('precision report', () => {
  it('refuses a backend without synchronous reads, naming it', { skip: !!mx.getBackend().readSync && 'this backend reads synchronously' }, () => {
    const w = mx.randn([4]).requiresGrad_();
    assert.throws(() => mx.amp.precisionReport({ parameters: [['w', w]] }), new RegExp(`needs a backend with synchronous reads \\(reference, wasm\\); '${mx.getBackend().name}' has none`));
  });

  it('measures float16 underflow at scale 1 and at the loss scale, autocast dtypes, and the first overflowing op', { skip: precisionReportSkip }, async () => {
    mx.manualSeed(11);
    const w = mx.randn([16, 32]).mul(0.5).requiresGrad_();
    const x = mx.randn([64, 32]);
    const target = mx.randn([64, 16]).mul(1e-3);
    const opt = new mx.optim.SGD([w], { lr: 0 });
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 24 });
    const rec = mx.amp.precisionReport({ parameters: [['w', w]], scaler });
    try {
      opt.zeroGrad();
      const loss = mx.amp.autocast({ dtype: 'float16' }, () => F.mseLoss(F.linear(x, w), target).mul(2e-8));
      scaler.scale(loss).backward();
      await rec.step();
      assert.equal(scaler.step(opt), stepResult(true));
      scaler.update();
      let r = rec.report();
      const p = r.parameters['w']!;
      assert.equal(p.observations, 1);
      assert.ok(p.atScale1.underflow > 0.9, `most true gradients are below 2^-24 (${p.atScale1.underflow})`);
      assert.equal(p.atCurrentScale.underflow, 0, 'none underflow at scale 2^24');
      const hist = Object.entries(p.log2Histogram);
      assert.equal(hist.reduce((a, [, n]) => a + n, 0), 512);
      assert.ok(hist.every(([k]) => Number(k) < -24));
      const linear = r.ops.find((o) => o.op === 'linear')!;
      assert.deepEqual([linear.received, linear.ran], [['float32', 'float32'], ['float16', 'float16']]);
      const mse = r.ops.find((o) => o.op === 'mseLoss')!;
      assert.deepEqual(mse.ran, ['float32', 'float32']);
      assert.equal(r.overflows.length, 0);

      // An oversized loss overflows float16 in the backward pass: the report names where.
      opt.zeroGrad();
      const big = mx.amp.autocast({ dtype: 'float16' }, () => F.mseLoss(F.linear(x, w), target).mul(1e3));
      scaler.scale(big).backward();
      await rec.step();
      assert.equal(scaler.step(opt), stepResult(false));
      scaler.update();
      r = rec.report();
      assert.equal(r.overflows.length, 1);
      assert.deepEqual({ ...r.overflows[0]!, modulePath: null }, { step: 1, phase: 'backward', op: 'cast', forwardOp: 'cast', modulePath: null, dtype: 'float16' });
      assert.equal(r.steps, 2);
    } finally {
      rec.close();
    }
  });
});

describe('float32 master weights (O2)', () => {
  const nn = mx.nn;
  const net = () =>
    new nn.Sequential(
      new nn.Conv2d(3, 4, 3, { padding: 1 }),
      new nn.BatchNorm2d(4),
      new nn.ReLU(),
      new nn.Flatten(),
      new nn.Linear(4 * 6 * 6, 5),
    );

  it('a float16 model with float32 masters trains: masters get float32 gradients, batch norm stays float32', async () => {
    mx.manualSeed(5);
    const model = net();
    const opt = new mx.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const mw = mx.amp.masterWeights(model, opt, { dtype: 'float16' });
    const scaler = new mx.amp.GradScaler();
    const dtypes = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, p.dtype]));
    assert.deepEqual(dtypes, {
      '0.weight': 'float16', '0.bias': 'float16', '1.weight': 'float32', '1.bias': 'float32', '4.weight': 'float16', '4.bias': 'float16',
    });
    assert.equal(mw.masters.size, 4);
    const x = mx.randn([8, 3, 6, 6]);
    const y = mx.randint(0, 5, [8]);
    const losses: number[] = [];
    for (let i = 0; i < 12; i++) {
      opt.zeroGrad();
      const loss = F.crossEntropy(model.forward(x.half()).float(), y);
      losses.push(await loss.item());
      scaler.scale(loss).backward();
      for (const [, half] of mw.halves) assert.equal(half.grad, null, 'no gradient accumulates in 16 bits');
      for (const [, master] of mw.masters) assert.equal(master.grad!.dtype, 'float32');
      scaler.step(opt);
      scaler.update();
      for (const [name, half] of mw.halves) {
        const expected = await mw.masters.get(name)!.to('float16').storageData();
        assert.deepEqual(await half.storageData(), expected, `${name} is the rounded master after the step`);
      }
    }
    assert.ok(losses[losses.length - 1]! < losses[0]! * 0.5, `loss falls: ${losses[0]} -> ${losses[losses.length - 1]}`);
    mw.detach();
  });

  it('updates smaller than half a float16 ulp are lost without masters and kept with them', async () => {
    const run = async (withMasters: boolean) => {
      const model = new nn.Linear(1, 1, { bias: false });
      model.weight.copy_(1);
      if (!withMasters) model.half();
      const opt = new mx.optim.SGD(model.parameters(), { lr: 1e-4 });
      if (withMasters) mx.amp.masterWeights(model, opt);
      for (let i = 0; i < 20; i++) {
        opt.zeroGrad();
        model.forward(mx.ones([1, 1], { dtype: 'float16' })).float().sum().backward(); // gradient 1
        opt.step();
      }
      assert.equal(model.weight.dtype, 'float16');
      return model.weight.item();
    };
    assert.equal(await run(false), 1, 'each 1e-4 step rounds back to 1.0 in float16');
    const kept = await run(true);
    assert.ok(Math.abs(kept - (1 - 20 * 1e-4)) < 5e-4, `the float32 master moved by 20 x 1e-4: weight ${kept}`);
  });
});

describe('precision report with a model', () => {
  it('names the module whose op overflowed first, forward or backward', { skip: precisionReportSkip }, async () => {
    mx.manualSeed(2);
    const model = new mx.nn.Sequential({ hidden: new mx.nn.Linear(8, 16), act: new mx.nn.ReLU(), head: new mx.nn.Linear(16, 4) });
    const opt = new mx.optim.SGD(model.parameters(), { lr: 0 });
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 30 });
    const rec = mx.amp.precisionReport({ model, scaler });
    const y = mx.tensor([0, 1, 2, 3], { dtype: 'int32' });
    const iteration = async (x: mx.Tensor) => {
      opt.zeroGrad();
      const loss = mx.amp.autocast({ dtype: 'float16' }, () => F.crossEntropy(model.call(x), y));
      scaler.scale(loss).backward();
      await rec.step();
      assert.equal(scaler.step(opt), stepResult(false));
      scaler.update();
    };
    try {
      // A huge scale: the loss gradient overflows when it is cast back to float16 at the logits.
      await iteration(mx.randn([4, 8]));
      // Huge inputs: float16 overflows in the first layer's forward.
      await iteration(mx.randn([4, 8]).mul(1e6));
      const [backward, forward] = rec.report().overflows;
      assert.deepEqual([backward!.step, backward!.phase, backward!.op, backward!.dtype], [0, 'backward', 'cast', 'float16']);
      assert.deepEqual([forward!.step, forward!.phase, forward!.modulePath, forward!.dtype], [1, 'forward', 'hidden', 'float16']);
      assert.deepEqual(Object.keys(rec.report().parameters).sort(), ['head.bias', 'head.weight', 'hidden.bias', 'hidden.weight']);
    } finally {
      rec.close();
    }
  });
});
