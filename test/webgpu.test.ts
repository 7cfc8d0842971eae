/**
 * The webgpu backend's own checks (on lavapipe in CI): 16-bit storage and conversions bit for bit
 * against the reference for every pattern, the packed float16 fallback (no shader-f16), the tiled
 * matmul and implicit-GEMM convolutions (split-K included) against the reference, the pipeline
 * cache, command batching (submits per training step), buffer reuse over a loop, and the ordering
 * of host (float64) kernels between GPU kernels.
 *
 * Makes its own backends ('webgpu-test', and 'webgpu-packed' with shader-f16 disabled); runs when
 * MIXPREC_BACKEND is webgpu or unset; skips everything, saying why, where no WebGPU adapter can be had.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { Tensor as TensorClass } from '../src/tensor/tensor.js';
import { float16, bfloat16, float32 } from '../src/dtype/dtype.js';
import { F16_TO_F32 } from '../src/dtype/convert.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { rng } from './helpers/rng.js';
import { onBackend as on } from './helpers/backends.js';

let native: WebGpuBackend | null = null;
let packed: WebGpuBackend | null = null;
/** A backend of its own for the training-loop test, so that no other test's garbage is freed on it mid-loop. */
let loop: WebGpuBackend | null = null;
/** A backend that pools no freed buffers: every free retires its buffer. */
let unpooled: WebGpuBackend | null = null;
let skip: string | false = false;
// `npm test` runs every suite once per backend: these backend-independent checks belong to the webgpu pass.
const suiteBackend = process.env['MIXPREC_BACKEND'];
if (suiteBackend && suiteBackend !== 'webgpu') skip = `runs in the webgpu pass of npm test (MIXPREC_BACKEND=webgpu), not the ${suiteBackend} one`;
else try {
  const { createWebGpuBackend } = await import('../src/backend/webgpu/index.js');
  native = await createWebGpuBackend();
  packed = await createWebGpuBackend({ f16: false });
  loop = await createWebGpuBackend();
  unpooled = await createWebGpuBackend({ poolBytes: 0 });
  mx.registerBackend('webgpu-unpooled', async () => unpooled!);
  mx.registerBackend('webgpu-test', async () => native!);
  mx.registerBackend('webgpu-loop', async () => loop!);
  mx.registerBackend('webgpu-packed', async () => packed!);
} catch (e) {
  skip = `no WebGPU adapter here (${(e as Error).message.split('\n')[0]}): on Linux install Mesa's lavapipe (see .ci/run)`;
}

const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

async function bitsOf(t: Tensor): Promise<number[]> {
  const s = await t.storageData();
  return Array.from(s instanceof Float32Array ? new Uint32Array(s.buffer, s.byteOffset, s.length) : s);
}

/** float32 values that exercise 16-bit rounding: every 16-bit value, the midpoints (ties) and neighbours, random values. */
function roundingCases(dtype: 'float16' | 'bfloat16'): Float32Array {
  const decode = dtype === 'float16' ? (h: number) => F16_TO_F32[h]! : (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
  const out: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h += dtype === 'float16' ? 1 : 3) {
    const a = decode(h);
    const b = decode(h + 1);
    out.push(a);
    if (Number.isFinite(a) && Number.isFinite(b) && Math.sign(a) === Math.sign(b)) {
      f[0] = (a + b) / 2; // the tie (exact in float32 for both formats)
      out.push(f[0]);
      const tie = u[0]!;
      u[0] = tie + 1;
      out.push(f[0]);
      u[0] = tie - 1;
      out.push(f[0]);
    }
  }
  const r = rng(7);
  for (let i = 0; i < 20000; i++) out.push(Math.fround((r() - 0.5) * 2 ** Math.floor(r() * 60 - 30)));
  out.push(65519.99, 65520, 70000, -65520, 1e-8, -1e-8, 2 ** -25, 2 ** -24 * 1.5, Infinity, -Infinity, NaN, -0, 0);
  return Float32Array.from(out);
}

describe('webgpu: 16-bit storage and conversions', { skip }, () => {
  for (const backend of ['webgpu-test', 'webgpu-packed']) {
    for (const dtype of [float16, bfloat16]) {
      it(`${backend}: all 65536 ${dtype.name} patterns round-trip through a buffer and the raw copy kernel`, async () => {
        await on(backend, async () => {
          const t = TensorClass.fromStorage(ALL16, [65536], dtype);
          assert.deepEqual(await bitsOf(t), Array.from(ALL16));
          assert.deepEqual(await bitsOf(t.clone()), Array.from(ALL16));
          // a strided (reversed-parity) copy exercises the sub-word writes
          const evens = t.reshape([32768, 2]).narrow(1, 0, 1).contiguous();
          assert.deepEqual(await bitsOf(evens), Array.from(ALL16).filter((_, i) => i % 2 === 0));
        });
      });

      it(`${backend}: ${dtype.name} -> float32 widening is exact for every pattern (NaN payloads kept)`, async () => {
        const ref = await on('reference', async () => bitsOf(TensorClass.fromStorage(ALL16, [65536], dtype).to('float32')));
        const gpu = await on(backend, async () => bitsOf(TensorClass.fromStorage(ALL16, [65536], dtype).to('float32')));
        assert.deepEqual(gpu, ref);
      });

      it(`${backend}: float32 -> ${dtype.name} rounds to nearest even like the reference (ties, subnormals, overflow, NaN)`, async () => {
        const values = roundingCases(dtype.name as 'float16' | 'bfloat16');
        const ref = await on('reference', async () => bitsOf(mx.tensor(values).to(dtype.name)));
        const gpu = await on(backend, async () => bitsOf(mx.tensor(values).to(dtype.name)));
        const bad = gpu.findIndex((b, i) => b !== ref[i]);
        assert.equal(bad, -1, bad < 0 ? '' : `value ${values[bad]}: gpu bits ${gpu[bad]!.toString(16)}, reference ${ref[bad]!.toString(16)}`);
      });
    }
  }

  it('the packed float16 fallback computes what shader-f16 storage computes, bit for bit', async () => {
    const run = () => {
      const g = new mx.Generator(3);
      const a = mx.randn([37, 29], { generator: g }).to('float16');
      const b = mx.randn([29, 13], { generator: g }).to('float16');
      const y = a.matmul(b).relu().add(a.sum(1, true)).softmax(1);
      return bitsOf(y);
    };
    const n = await on('webgpu-test', run);
    const p = await on('webgpu-packed', run);
    assert.ok(native!.nativeF16 || !native!.gpu.adapter.features.has('shader-f16'));
    assert.equal(packed!.nativeF16, false);
    assert.deepEqual(p, n);
  });
});

/** Max relative error of `a` against `e` on the scale of e's largest magnitude. */
function scaledError(a: ArrayLike<number>, e: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(e[i]!));
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i]! - e[i]!) / Math.max(m, 1e-30));
  return worst;
}

describe('webgpu: matmul and convolutions against the reference', { skip }, () => {
  async function both<T extends Tensor | Tensor[]>(fn: () => T): Promise<[Float32Array[], Float32Array[]]> {
    const read = async (r: T) => Promise.all((Array.isArray(r) ? r : [r]).map(async (t) => Float32Array.from(await t.data())));
    const ref = await on('reference', async () => read(fn()));
    const gpu = await on('webgpu-test', async () => read(fn()));
    return [gpu, ref];
  }

  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    it(`bmm ${dtype}: transposed and batched operands, ragged sizes`, async () => {
      const [gpu, ref] = await both(() => {
        const g = new mx.Generator(11);
        const a = mx.randn([3, 70, 45], { generator: g }).to(dtype);
        const b = mx.randn([3, 67, 45], { generator: g }).to(dtype).transpose(1, 2);
        return a.matmul(b);
      });
      assert.ok(scaledError(gpu[0]!, ref[0]!) < (dtype === 'float32' ? 1e-5 : 1e-2));
    });

    it(`conv2d forward and both gradients ${dtype} (stride, padding, dilation, groups, bias)`, async () => {
      const [gpu, ref] = await both(() => {
        const g = new mx.Generator(5);
        const x = mx.randn([2, 4, 11, 9], { generator: g }).to(dtype).requiresGrad_(true);
        const w = mx.randn([6, 2, 3, 2], { generator: g }).to(dtype).requiresGrad_(true);
        const b = mx.randn([6], { generator: g }).to(dtype).requiresGrad_(true);
        const y = mx.nn.functional.conv2d(x, w, b, { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 });
        y.mul(y).sum().backward();
        return [y, x.grad!, w.grad!, b.grad!];
      });
      for (let i = 0; i < 4; i++) assert.ok(scaledError(gpu[i]!, ref[i]!) < (dtype === 'float32' ? 1e-5 : 2e-2), `output ${i}`);
    });
  }

  it('the weight gradient of a convolution over a large batch uses split-K and stays exact to float32', async () => {
    const [gpu, ref] = await both(() => {
      const g = new mx.Generator(9);
      const x = mx.randn([16, 3, 16, 16], { generator: g });
      const w = mx.randn([4, 3, 3, 3], { generator: g }).requiresGrad_(true);
      mx.nn.functional.conv2d(x, w, null, { padding: 1 }).sum().backward();
      return w.grad!;
    });
    assert.ok(scaledError(gpu[0]!, ref[0]!) < 1e-5);
  });
});

describe('webgpu: pipelines, batching, memory, ordering', { skip }, () => {
  it('pipelines are cached by kernel, dtypes and rank: new shapes of a rank reuse them', async () => {
    await on('webgpu-test', async () => {
      const run = async (n: number) => (await mx.ones([n, 3]).mul(2).add(1).sum(1).data())[0];
      await run(5);
      const before = native!.schedulerStats();
      for (const n of [7, 100, 1000]) assert.equal(await run(n), 9);
      const after = native!.schedulerStats();
      assert.equal(after.pipelines, before.pipelines, 'no new pipeline for new shapes');
      assert.ok(after.pipelineHits >= before.pipelineHits + 9);
    });
  });

  it('a training step is a few submits, with constant live memory and no new GPU buffers or bind groups after warm-up', async () => {
    // On its own backend: the live-buffer count must not see tensors of earlier tests that the garbage
    // collector happens to finalize during the loop (seen in CI: 136 live buffers, then 14).
    await on('webgpu-loop', async () => {
      mx.manualSeed(0);
      const net = new mx.nn.Sequential(
        new mx.nn.Conv2d(3, 4, 3, { padding: 1 }),
        new mx.nn.ReLU(),
        new mx.nn.MaxPool2d(2),
        new mx.nn.Flatten(),
        new mx.nn.Linear(4 * 4 * 4, 10),
      );
      const opt = new mx.optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
      const g = new mx.Generator(1);
      const x = mx.keep(mx.randn([8, 3, 8, 8], { generator: g }));
      const y = mx.keep(mx.tensor(Int32Array.from({ length: 8 }, (_, i) => i % 10), { dtype: 'int32' }));
      const perStep: { submits: number; dispatches: number; bindGroups: number; live: number; created: number }[] = [];
      const losses: number[] = [];
      for (let step = 0; step < 8; step++) {
        const s0 = loop!.schedulerStats();
        const loss = mx.scope(() => {
          opt.zeroGrad();
          const l = mx.nn.functional.crossEntropy(net.call(x), y);
          l.backward();
          opt.step();
          return l;
        });
        losses.push(await loss.item());
        loss.dispose();
        const s1 = loop!.schedulerStats();
        perStep.push({ submits: s1.submits - s0.submits, dispatches: s1.dispatches - s0.dispatches, bindGroups: s1.bindGroups - s0.bindGroups, live: mx.memory().liveBuffers, created: loop!.poolStats().created });
      }
      for (const s of perStep.slice(2)) {
        assert.ok(s.submits <= 4, `a step took ${s.submits} submits (${s.dispatches} dispatches)`);
        assert.ok(s.dispatches >= 20, `only ${s.dispatches} dispatches: the step ran elsewhere?`);
        assert.equal(s.live, perStep[2]!.live, 'live buffers constant');
        assert.equal(s.created, perStep[2]!.created, 'no new GPU buffers: the pool serves every allocation');
        assert.equal(s.bindGroups, 0, `${s.bindGroups} bind groups created in a step after warm-up (the cache serves them)`);
      }
      assert.ok(losses[7]! < losses[0]!, `loss went down: ${losses[0]} -> ${losses[7]}`);
      const host = Object.entries(loop!.kernelStats()).filter(([, v]) => v.fallback > 0).map(([k]) => k);
      assert.deepEqual(host.filter((k) => ['conv2d', 'bmm', 'maxPool2d', 'sgdUpdate', 'logSoftmax', 'gather'].includes(k)), [], 'training kernels ran on the GPU');
    });
  });

  it('a buffer freed while commands that use it are still unsubmitted is destroyed only after the submit', async () => {
    // With no pooling every free retires its buffer; destroying it at once made Dawn reject the
    // whole batch (zeros read back, an uncaptured error), as a network whose freed bytes exceed the
    // pool's limit saw.
    const errors = unpooled!.deviceErrors;
    const values = await on('webgpu-unpooled', async () => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) {
        const s = mx.scope(() => {
          const x = mx.arange(0, 1000).reshape([10, 100]);
          const y = x.mul(2).add(1).matmul(mx.ones([100, 4]));
          return y.sum();
        });
        out.push(await s.item());
        s.dispose();
      }
      return out;
    });
    // sum over rows and 4 columns of (2x + 1), x = 0..999: 4 * (999000 + 1000)
    assert.deepEqual(values, [4_000_000, 4_000_000, 4_000_000]);
    assert.equal(unpooled!.deviceErrors - errors, 0, 'no device errors');
    assert.equal(unpooled!.poolStats().pooledBuffers, 0, 'nothing pooled');
  });

  it('a tensor larger than the adapter\'s storage-binding limit is refused with a clear error, not computed as zeros', async (t) => {
    const limit = native!.gpu.device.limits.maxStorageBufferBindingSize;
    if (limit > 2 ** 30) return t.skip(`this adapter binds up to ${limit} bytes: the test would allocate over 1 GiB`);
    const errors = native!.deviceErrors;
    await on('webgpu-test', async () => {
      const n = limit / 4 + 1;
      assert.throws(() => mx.zeros([n]), (e: Error) => e instanceof RangeError && /float32 tensor of \d+ elements \(\d+ bytes\).*maxStorageBufferBindingSize \d+ bytes/.test(e.message));
      // a float16 tensor of the same count takes half the bytes and is fine
      const h = mx.zeros([n], { dtype: 'float16' });
      assert.equal((await h.sum().data())[0], 0);
      h.dispose();
    });
    assert.equal(native!.deviceErrors - errors, 0, 'no device errors');
  });

  it('host (float64) kernels between GPU kernels run in command order', async () => {
    await on('webgpu-test', async () => {
      const a = mx.tensor([1, 2, 3, 4]);
      const b = a.mul(2); // GPU
      const c = b.to('float64').mul(1 / 3); // host, waits for b
      const d = c.to('float32').add(b); // GPU after host
      b.copy_(mx.tensor([0, 0, 0, 0])); // later GPU write to b must not leak into c
      assert.deepEqual(Array.from(await d.data()), [2 / 3 + 2, 4 / 3 + 4, 2 + 6, 8 / 3 + 8].map(Math.fround));
      assert.deepEqual(Array.from(await c.data()), [2 / 3, 4 / 3, 2, 8 / 3]);
      assert.deepEqual(Array.from(await b.data()), [0, 0, 0, 0]);
    });
  });

  it('reports its adapter', () => {
    assert.ok(native!.adapterDescription.length > 0);
    assert.equal(float32.itemsize, 4);
  });
});
