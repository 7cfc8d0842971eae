/**
 * The wasm backend's runtime: the heap allocator (reuse, alignment, growth, constant footprint of a
 * training loop), the worker pool (same bits on 1 and 4 threads, errors from workers), every native
 * kernel against the reference backend bit for bit (16-bit rounding ties, NaN, Inf, subnormals,
 * broadcast layouts, tails), and the reference fallback for the kernels and cases without one.
 *
 * Runs whatever MIXPREC_BACKEND says: it makes its own wasm backends (registered as wasm-t1,
 * wasm-t4, wasm-fallback) and switches between them and 'reference' explicitly.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { WasmBackend, NATIVE_KERNELS } from '../src/backend/wasm/index.js';
import { WasmHeap, blockSize, BLOCK_ALIGN, PAGE_BYTES } from '../src/backend/wasm/memory.js';
import { sgdUpdateReference, collapse } from '../src/backend/wasm/native.js';
import { REFERENCE_KERNELS } from '../src/backend/reference/index.js';
import { apply, kernelView, applyInto } from '../src/ops/dispatch.js';
import type { KernelName } from '../src/backend/kernels.js';
import { F16_TO_F32 } from '../src/dtype/convert.js';
import { float32 } from '../src/dtype/dtype.js';
import { wasmApi } from '../src/backend/wasm/api.js';
import { rng } from './helpers/rng.js';
import { isNaNBits, onBackend, storageBits as bits } from './helpers/backends.js';

/** Run `fn` with `name` as the current backend (then back to the reference backend). */
const on = <T>(name: string, fn: () => T): Promise<T> => onBackend(name, fn, 'reference');

const t4 = await WasmBackend.create({ threads: 4, native: true });
const t1 = await WasmBackend.create({ threads: 1, native: true });
const fb = await WasmBackend.create({ threads: 2, native: false });
mx.registerBackend('wasm-t4', async () => t4);
mx.registerBackend('wasm-t1', async () => t1);
mx.registerBackend('wasm-fallback', async () => fb);
after(async () => {
  await Promise.all([t4.close(), t1.close(), fb.close()]);
});

const sharedMemory = (initial: number, maximum: number) => new (wasmApi().Memory)({ initial, maximum, shared: true });

/** Bit-for-bit equality, except that any NaN equals any NaN (payloads are not specified). */
function assertSameBits(actual: Tensor, expected: Tensor, what: string): void {
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = bits(actual);
  const e = bits(expected);
  const dt = actual.dtype;
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (Object.is(x, y) || (isNaNBits(dt, x) && isNaNBits(dt, y))) continue;
    const show = (v: number) => (dt === 'float16' || dt === 'bfloat16' ? `0x${v.toString(16)}` : String(v));
    assert.fail(`${what}: element ${i} is ${show(x)}, the reference gives ${show(y)}`);
  }
}


function randomValues(n: number, seed: number, scale = 4): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * scale);
}

/** Random 16-bit patterns: every kind of value, NaN and Inf included. */
function randomBits(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  return Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
}

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;
type Float = (typeof FLOATS)[number];

/** The same tensor on a backend: from float values, or from raw 16-bit patterns. */
function make(values: Float32Array | Uint16Array, shape: readonly number[], dtype: string): Tensor {
  return mx.tensor(values, { dtype: dtype as Float, shape });
}

/** Evaluate `fn` on the reference backend and on each wasm backend, compare bits, return the wasm stats delta. */
async function agree(what: string, fn: () => Tensor | Tensor[], backends: readonly string[] = ['wasm-t4', 'wasm-t1', 'wasm-fallback']): Promise<void> {
  const ref = [await on('reference', fn)].flat();
  for (const name of backends) {
    const out = [await on(name, fn)].flat();
    out.forEach((t, i) => assertSameBits(t, ref[i]!, `${what} on ${name}${out.length > 1 ? ` (output ${i})` : ''}`));
  }
}

/** Native calls of `kernel` on the 4-thread backend while `fn` runs. */
async function nativeCalls(kernel: string, fn: () => unknown): Promise<{ native: number; fallback: number }> {
  const before = t4.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
  await on('wasm-t4', fn);
  const now = t4.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
  return { native: now.native - before.native, fallback: now.fallback - before.fallback };
}

/* ================================================================== allocator */

describe('wasm heap allocator', () => {
  it('size classes: 64-byte multiples, monotonic, at most 12.5% slack above 4 KiB', () => {
    let prev = 0;
    for (let b = 1; b < 1 << 22; b = Math.ceil(b * 1.37) + 1) {
      const s = blockSize(b);
      assert.ok(s >= b && s % BLOCK_ALIGN === 0, `blockSize(${b}) = ${s}`);
      assert.ok(s >= prev);
      if (b > 4096) assert.ok(s <= b * 1.125 + BLOCK_ALIGN, `blockSize(${b}) = ${s} wastes too much`);
      prev = s;
    }
  });

  it('blocks are 64-byte aligned, never overlap, and freed blocks are reused', () => {
    const heap = new WasmHeap(sharedMemory(1, 1024), 1000, 1024);
    const r = rng(7);
    const sizes = Array.from({ length: 300 }, () => 1 + Math.floor(r() ** 3 * 100000));
    const step = () => {
      const blocks = sizes.map((s) => ({ addr: heap.alloc(s), s }));
      for (const b of blocks) assert.equal(b.addr % BLOCK_ALIGN, 0);
      const sorted = [...blocks].sort((a, b) => a.addr - b.addr);
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i - 1]!.addr + sorted[i - 1]!.s <= sorted[i]!.addr, 'blocks overlap');
      assert.ok(sorted[0]!.addr >= 1000);
      for (const b of blocks) heap.release(b.addr, b.s);
    };
    step();
    const after1 = heap.stats();
    for (let i = 0; i < 10; i++) step();
    const after11 = heap.stats();
    assert.equal(after11.reservedBytes, after1.reservedBytes, 'the same requests reuse the same blocks');
    assert.equal(after11.heapBytes, after1.heapBytes);
    assert.equal(after11.fresh, after1.fresh, 'no new blocks after the first round');
    assert.equal(after11.liveBlocks, 0);
  });

  it('grows the memory and keeps buffer contents (views are re-created after growth)', async () => {
    const b = t4;
    const small = b.allocate(float32, 1000);
    const data = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
    b.write(small, data);
    const grows = b.heapStats().grows;
    const before = b.heapStats().heapBytes;
    const big = b.allocate(float32, 24 * 1024 * 1024); // 96 MiB
    assert.ok(b.heapStats().heapBytes > before && b.heapStats().grows > grows, 'the memory grew');
    assert.deepEqual(b.readSync(small), data, 'contents survive growth');
    const tail = new Float32Array(24 * 1024 * 1024);
    tail[tail.length - 1] = 42;
    b.write(big, tail);
    assert.equal((b.readSync(big) as Float32Array)[tail.length - 1], 42);
    b.free(big);
    b.free(small);
  });

  it('merges free blocks when the memory cannot grow, and says so when it is really full', () => {
    const heap = new WasmHeap(sharedMemory(1, 8), 0, 8);
    const blocks: number[] = [];
    assert.throws(
      () => {
        for (;;) blocks.push(heap.alloc(PAGE_BYTES / 2));
      },
      (e: Error) => e instanceof RangeError && /out of memory allocating 32768 bytes/.test(e.message),
    );
    assert.equal(blocks.length, 16);
    for (const a of blocks) heap.release(a, PAGE_BYTES / 2);
    const big = heap.alloc(6 * PAGE_BYTES); // no class list holds it: merged from the free halves
    assert.equal(big % BLOCK_ALIGN, 0);
    heap.release(big, 6 * PAGE_BYTES);
  });

  it('a mixed-precision training loop runs in constant wasm memory', async () => {
    await on('wasm-t4', () => {
      const g = new mx.Generator(3);
      const X = mx.randn([64, 32], { generator: g });
      const y = mx.randint(0, 10, [64], { generator: g });
      const W1 = mx.randn([32, 48], { generator: g }).mul(0.2).requiresGrad_();
      const b1 = mx.zeros([48]).requiresGrad_();
      const W2 = mx.randn([48, 10], { generator: g }).mul(0.2).requiresGrad_();
      const b2 = mx.zeros([10]).requiresGrad_();
      const params = [W1, b1, W2, b2];
      const opt = new mx.optim.SGD(params, { lr: 0.1, momentum: 0.9 });
      const snapshots: string[] = [];
      const losses: number[] = [];
      for (let step = 0; step < 12; step++) {
        const loss = mx.scope(() => {
          opt.zeroGrad();
          const h = X.half().matmul(W1.half()).add(b1.half()).relu();
          const logits = h.matmul(W2.half()).add(b2.half()).float();
          const l = mx.nn.functional.crossEntropy(logits, y);
          l.backward();
          opt.step();
          return l;
        });
        losses.push(loss.dataSync()[0]!);
        loss.dispose();
        const h = t4.heapStats();
        const m = t4.memory();
        snapshots.push(JSON.stringify({ heap: h.heapBytes, reserved: h.reservedBytes, blocks: h.liveBlocks, buffers: m.liveBuffers, bytes: m.liveBytes }));
      }
      for (let i = 3; i < snapshots.length; i++) assert.equal(snapshots[i], snapshots[2], `footprint changed at step ${i}`);
      assert.ok(losses[losses.length - 1]! < losses[0]!, 'the loss went down');
      for (const p of params) p.dispose();
      for (const t of [X, y]) t.dispose();
    });
  });
});

/* ================================================================== pool */

describe('worker pool', () => {
  it('has the threads asked for', () => {
    assert.equal(t4.threads, 4);
    assert.equal(t4.pool.degraded, null);
    assert.equal(t1.threads, 1);
  });

  it('runs single-threaded on an ordinary (unshared) memory', async () => {
    const plain = await WasmBackend.create({ threads: 4, shared: false });
    assert.equal(plain.threads, 1);
    assert.match(plain.pool.degraded ?? '', /SharedArrayBuffer/);
    assert.ok(!(plain.heap.views().buffer instanceof SharedArrayBuffer));
    mx.registerBackend('wasm-unshared', async () => plain);
    const A = randomValues(100000, 77);
    await agree('unshared memory', () => {
      const a = make(A, [100, 1000], 'float16');
      const big = mx.zeros([4, 1 << 20]); // grows the memory: an ordinary memory detaches its old buffer
      return [a.add(a.sum([0])), a.float().relu(), a.sum([1]), big.sum()];
    }, ['wasm-unshared']);
    assert.ok((plain.kernelStats()['add']?.native ?? 0) > 0);
  });

  it('split covers the units in aligned ranges', () => {
    for (const [units, min, align] of [[100, 10, 1], [100003, 32768, 16], [5, 1, 4], [0, 1, 1], [1, 1, 1]] as const) {
      const parts = t4.pool.split(units, min, align);
      assert.ok(parts.length <= 4);
      let next = 0;
      for (const [a, b] of parts) {
        assert.equal(a, next);
        assert.ok(b > a || units === 0);
        if (b !== units) assert.equal(b % align, 0);
        next = b;
      }
      assert.equal(next, units);
    }
  });

  it('a kernel error in a part run by a worker (or taken back by the caller) becomes an exception on the caller, and the pool keeps working', () => {
    const buf = t4.allocate(float32, 64);
    const addr = (buf as unknown as { addr: number }).addr;
    const outside = t4.heap.byteLength + 1024;
    assert.throws(() => t4.pool.run('fill32', [[addr, 16, 1], [outside, 1 << 20, 1]]), /fill32 (on worker 0|part 2 of 2 on the calling thread \(worker 0 had not started it\)): .*out of bounds/);
    assert.throws(() => t4.pool.run('fill32', [[outside, 1 << 20, 1], [addr, 16, 1]]), /out of bounds/);
    t4.pool.run('fill32', [[addr, 16, 0x3f800000], [addr + 64, 16, 0x40000000], [addr + 128, 16, 0x40400000], [addr + 192, 16, 0x40800000]]);
    const v = t4.readSync(buf) as Float32Array;
    assert.deepEqual([v[0], v[16], v[32], v[48], v[63]], [1, 2, 3, 4, 4]);
    t4.free(buf);
  });

  it('1 and 4 threads give the same bits (sums included: the split never changes the order)', async () => {
    const shapes: [number[], number[]][] = [[[300001], [300001]], [[512, 300], [300]], [[8, 16, 40, 40], [1, 16, 1, 1]]];
    for (const dtype of FLOATS) {
      for (const [sa, sb] of shapes) {
        const na = sa.reduce((a, b) => a * b, 1);
        const nb = sb.reduce((a, b) => a * b, 1);
        const A = randomValues(na, 11);
        const B = randomValues(nb, 12);
        const run = () => {
          const a = make(A, sa, dtype);
          const b = make(B, sb, dtype);
          return [a.add(b), a.mul(b), a.sub(b), a.div(b), a.relu(), a.sum(), a.sum([sa.length - 1]), a.sum([0]), a.mean(), a.float(), a.mul(0.37)];
        };
        const one = await on('wasm-t1', run);
        const four = await on('wasm-t4', run);
        four.forEach((t, i) => assertSameBits(t, one[i]!, `${dtype} ${JSON.stringify(sa)} result ${i}`));
      }
    }
  });
});

/* ================================================================== native kernels vs reference */

describe('native kernels, bit for bit against the reference backend', () => {
  it('casts float32 -> float16 / bfloat16: every tie, subnormal, overflow edge and NaN', async () => {
    // for every 16-bit pattern: its value, the midpoints to its neighbours (exact ties) and one float32 ulp around them
    const f16: number[] = [];
    const bf: number[] = [];
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const fromBits = (b: number) => {
      u32[0] = b >>> 0;
      return f32[0]!;
    };
    for (let h = 0; h < 65536; h++) {
      const v = F16_TO_F32[h]!;
      const next = F16_TO_F32[(h + 1) & 0xffff]!;
      f16.push(v);
      if ((h & 0x7fff) < 0x7c00 && (h & 0x7fff) !== 0x7bff) {
        const mid = (v + next) / 2; // exact in float32
        u32[0] = 0;
        f32[0] = mid;
        const m = u32[0];
        f16.push(mid, fromBits(m + 1), fromBits(m - 1));
      }
      const w = h << 16;
      bf.push(fromBits(w), fromBits(w | 0x8000), fromBits(w | 0x8001), fromBits(w | 0x7fff), fromBits(w | 0x1234));
    }
    // float16 overflow edges and tiny values
    f16.push(65504, 65519.996, 65520, 65535, 65536, 1e6, -65520, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -26, -(2 ** -25), 0, -0, Infinity, -Infinity, NaN);
    for (const [name, values] of [['float16', f16], ['bfloat16', bf]] as const) {
      const src = Float32Array.from(values);
      const calls = await nativeCalls('copy', () => make(src, [src.length], 'float32').to(name));
      assert.equal(calls.native, 1, `float32 -> ${name} ran natively`);
      await agree(`float32 -> ${name} (${src.length} values)`, () => make(src, [src.length], 'float32').to(name));
    }
  });

  it('casts between the 16-bit formats and to float32: every pattern', async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const from of ['float16', 'bfloat16'] as const) {
      for (const to of ['float32', 'float16', 'bfloat16'] as const) {
        if (to === from) continue;
        await agree(`${from} -> ${to}`, () => make(all, [65536], from).to(to));
      }
    }
  });

  it('add, sub, mul, div on random patterns of every format (NaN, Inf, subnormals, tails)', async () => {
    for (const dtype of FLOATS) {
      for (const n of [1, 7, 8, 9, 31, 1000, 70001]) {
        const A = dtype === 'float32' ? randomValues(n, n, 1e3) : randomBits(n, n);
        const B = dtype === 'float32' ? randomValues(n, n + 1, 1e-3) : randomBits(n, n + 1);
        if (dtype === 'float32' && n > 8) {
          A.set([NaN, Infinity, -Infinity, 0, -0, 1e-45, 3.4e38, -3.4e38]);
          B.set([1, Infinity, Infinity, -0, 0, 1e-45, 10, 0.1]);
        }
        for (const op of ['add', 'sub', 'mul', 'div'] as const) {
          const f = () => mx[op](make(A, [n], dtype), make(B, [n], dtype));
          if (n >= 8) assert.ok((await nativeCalls(op, f)).native >= 1, `${op} ${dtype} ran natively`);
          await agree(`${op} ${dtype} n=${n}`, f);
        }
      }
    }
  });

  it('scalar operands, either side (PyTorch float32 opmath scalars for 16-bit tensors)', async () => {
    for (const dtype of FLOATS) {
      const A = dtype === 'float32' ? randomValues(1037, 5) : randomBits(1037, 5);
      for (const s of [0.1, -3.5, 1e-6, 65504, 3, 0]) {
        await agree(`${dtype} ops with ${s}`, () => {
          const a = make(A, [1037], dtype);
          return [a.add(s), a.sub(s), a.mul(s), a.div(s), mx.sub(s, a), mx.div(s, a), mx.add(s, a), mx.mul(s, a)];
        });
      }
      const calls = await nativeCalls('mul', () => make(A, [1037], dtype).mul(0.1));
      assert.equal(calls.native, 1, `${dtype} * scalar ran natively`);
    }
  });

  it('broadcast layouts: rows, columns, channels, and views that fall back', async () => {
    const cases: [number[], number[]][] = [
      [[64, 37], [37]], // bias over rows
      [[64, 37], [64, 1]], // one value per row
      [[4, 6, 5, 7], [1, 6, 1, 1]], // per channel
      [[4, 6, 5, 7], [6, 5, 1]],
      [[3, 1, 9], [3, 4, 1]], // both broadcast
      [[2, 3, 4, 5, 6], [2, 1, 4, 1, 6]], // too many dimensions after collapsing: fallback
    ];
    for (const dtype of FLOATS) {
      for (const [sa, sb] of cases) {
        const na = sa.reduce((a, b) => a * b, 1);
        const nb = sb.reduce((a, b) => a * b, 1);
        const A = randomValues(na, na);
        const B = randomValues(nb, nb);
        await agree(`${dtype} ${JSON.stringify(sa)} op ${JSON.stringify(sb)}`, () => {
          const a = make(A, sa, dtype);
          const b = make(B, sb, dtype);
          return [a.add(b), b.sub(a), a.mul(b), a.div(b)];
        });
      }
      // a transposed operand (inner stride not 0 or 1): gathered into contiguous scratch, then native
      const A = randomValues(48 * 40, 3);
      const calls = await nativeCalls('add', () => make(A, [48, 40], dtype).t().add(make(A, [40, 48], dtype)));
      assert.deepEqual(calls, { native: 1, fallback: 0 });
      await agree(`${dtype} transposed + contiguous`, () => make(A, [48, 40], dtype).t().add(make(A, [40, 48], dtype)));
      const rowCalls = await nativeCalls('add', () => make(A, [48, 40], dtype).add(make(A.subarray(0, 40), [40], dtype)));
      assert.deepEqual(rowCalls, { native: 1, fallback: 0 });
    }
  });

  it('in place and overlapping outputs', async () => {
    for (const dtype of FLOATS) {
      const A = randomValues(4099, 1);
      const B = randomValues(4099, 2);
      await agree(`${dtype} a += b in place`, () => {
        const a = make(A, [4099], dtype);
        applyInto('add', [a, make(B, [4099], dtype)], a, {});
        return a;
      });
      await agree(`${dtype} shifted overlap (falls back)`, () => {
        const a = make(A, [4099], dtype);
        applyInto('add', [a.narrow(0, 1, 4098), make(B.subarray(0, 4098), [4098], dtype)], a.narrow(0, 0, 4098), {});
        return a;
      });
    }
  });

  it('relu and reluBackward on every 16-bit pattern and float32 specials', async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const grads = randomBits(65536, 9);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      await agree(`relu ${dtype}`, () => make(all, [65536], dtype).relu());
      await agree(`reluBackward ${dtype}`, () => applyKernel('reluBackward', [make(all, [65536], dtype), make(grads, [65536], dtype)]));
    }
    const f = Float32Array.from([NaN, -NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 1, -1, 3.4e38, -3.4e38, 0.5]);
    const g = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    await agree('relu float32', () => make(f, [13], 'float32').relu());
    await agree('reluBackward float32', () => applyKernel('reluBackward', [make(f, [13], 'float32'), make(g, [13], 'float32')]));
    assert.equal((await nativeCalls('relu', () => make(f, [13], 'float32').relu())).native, 1);
  });

  it('fill: every dtype, rounding once (ties, overflow, NaN, -0, integer truncation)', async () => {
    const values = [0, -0, 0.1, 1 / 3, 1e-8, 2 ** -25, 65519, 65520, 70000, -1e40, NaN, Infinity, -Infinity, 3.7, -2.5, 2 ** 31 + 5];
    for (const dtype of ['float32', 'float16', 'bfloat16', 'float64', 'int32', 'bool'] as const) {
      for (const v of values) await agree(`fill ${dtype} ${v}`, () => mx.full([37], v, { dtype }));
    }
    assert.equal((await nativeCalls('fill', () => mx.zeros([5], { dtype: 'float16' }))).native, 1);
  });

  it('copy of strided views (gather) for every dtype, and scalars broadcast into casts', async () => {
    const X = randomValues(2 * 3 * 4 * 5, 4);
    for (const dtype of ['float32', 'float16', 'bfloat16', 'float64', 'int32', 'bool'] as const) {
      await agree(`permuted ${dtype}`, () => {
        const x = mx.tensor(X, { shape: [2, 3, 4, 5] }).to(dtype);
        return [x.permute([3, 1, 0, 2]).contiguous(), x.transpose(1, 2).contiguous(), x.narrow(3, 1, 3).contiguous(), x.narrow(0, 1, 1).contiguous(), x.permute([1, 0, 3, 2]).reshape([3, 2, 5, 2, 2]).permute([4, 0, 3, 1, 2]).contiguous()];
      });
    }
    const calls = await nativeCalls('copy', () => mx.tensor(X, { shape: [2, 3, 4, 5] }).permute([3, 1, 0, 2]).contiguous());
    assert.equal(calls.native, 1, 'the permuted copy');
    await agree('scalar into casts', () => [mx.tensor(2.5, { dtype: 'float64' }).expand([9]).to('float16'), mx.tensor(7).expand([3, 3]).to('bfloat16'), mx.tensor(true).expand([4]).to('float32')]);
  });

  it('sum and mean: last axes, leading axes, all but a middle axis, everything; fallbacks for the rest', async () => {
    const shape = [6, 10, 37, 3];
    const n = shape.reduce((a, b) => a * b, 1);
    const X = randomValues(n, 21);
    const dimsList: number[][] = [[3], [2, 3], [0], [0, 1], [0, 2, 3], [0, 3], [0, 1, 2, 3], [], [1], [1, 3]];
    for (const dtype of FLOATS) {
      for (const dims of dimsList) {
        await agree(`sum ${dtype} dims ${JSON.stringify(dims)}`, () => {
          const x = make(X, shape, dtype);
          return [x.sum(dims), x.sum(dims, true), x.mean(dims.length ? dims : [0, 1, 2, 3])];
        });
      }
      const big = randomValues(200003, 8);
      await agree(`sum ${dtype} of 200003`, () => [make(big, [200003], dtype).sum(), make(big, [200003], dtype).mean()]);
      const calls = await nativeCalls('sum', () => make(X, shape, dtype).sum([0, 2, 3]));
      assert.deepEqual(calls, { native: 1, fallback: 0 });
    }
    // 16-bit sums that overflow only if rounded before scaling: the mean still fits
    const ones = new Float32Array(100000).fill(60000);
    await agree('float16 mean of large values', () => make(ones, [100000], 'float16').mean());
  });

  it('sgdUpdate: fused SGD (momentum, dampening, Nesterov, weight decay, maximize) equals the op-by-op optimizer', async () => {
    const n = 1003;
    const W = randomValues(n, 31, 1);
    const grads = [randomValues(n, 32, 0.1), randomValues(n, 33, 0.1), randomValues(n, 34, 0.1)];
    const configs = [
      { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
      { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, maximize: false },
      { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true, maximize: false },
      { lr: 0.01, momentum: 0.8, dampening: 0.1, weightDecay: 0, nesterov: false, maximize: true },
    ];
    for (const cfg of configs) {
      for (const [wdt, gdt] of [['float32', 'float32'], ['float32', 'float16'], ['float32', 'bfloat16'], ['float16', 'float16'], ['bfloat16', 'bfloat16'], ['float16', 'float32']] as const) {
        // op by op, on the reference backend, with the gradient widened exactly to float32
        const expected = await on('reference', () => {
          const p = make(W, [n], wdt).requiresGrad_();
          const opt = new mx.optim.SGD([p], cfg);
          for (const G of grads) {
            p.grad = make(G, [n], gdt); // the optimizer widens it to float32 exactly, as the fused kernel does
            opt.step();
          }
          return p;
        });
        for (const [name, b] of [['wasm-t4', t4], ['wasm-fallback', fb]] as const) {
          const got = await on(name, () => {
            const p = make(W, [n], wdt);
            const buf = mx.zeros([n]);
            grads.forEach((G, step) => {
              const g = make(G, [n], gdt);
              const views = cfg.momentum !== 0 ? [kernelView(p), kernelView(g), kernelView(buf)] : [kernelView(p), kernelView(g)];
              const outs = cfg.momentum !== 0 ? [kernelView(p), kernelView(buf)] : [kernelView(p)];
              b.run('sgdUpdate', views, outs, { ...cfg, first: step === 0 });
            });
            return p;
          });
          assertSameBits(got, expected, `sgdUpdate ${JSON.stringify(cfg)} param ${wdt} grad ${gdt} on ${name}`);
        }
      }
    }
    assert.ok((t4.kernelStats()['sgdUpdate']?.native ?? 0) > 0, 'sgdUpdate ran natively');
    assert.equal(typeof sgdUpdateReference, 'function');
  });
});

/** Run a primitive kernel by name on new output (same shape/dtype as the last input). */
function applyKernel(kernel: KernelName, inputs: Tensor[]): Tensor {
  const last = inputs[inputs.length - 1]!;
  const out = mx.zeros(last.shape, { dtype: last.dtype as Float });
  out.backend.run(kernel, inputs.map(kernelView), [kernelView(out)], {});
  return out;
}

/* ================================================================== fallback */

describe('reference fallback', () => {
  it('offers every reference kernel (and sgdUpdate)', () => {
    for (const k of Object.keys(REFERENCE_KERNELS) as KernelName[]) assert.ok(t4.hasKernel(k), k);
    assert.ok(t4.hasKernel('sgdUpdate'));
    for (const k of Object.keys(NATIVE_KERNELS) as KernelName[]) assert.ok(t4.hasKernel(k), `native ${k} has a fallback`);
  });

  it('collapse merges contiguous dimensions and drops ones', () => {
    assert.deepEqual(collapse([2, 3, 4], [[12, 4, 1]]), { dims: [24], strides: [[1]] });
    assert.deepEqual(collapse([2, 1, 3, 4], [[12, 99, 4, 1], [0, 0, 1, 0]]), { dims: [2, 3, 4], strides: [[12, 4, 1], [0, 1, 0]] });
  });

  it('a network forward and backward gives the reference bits with native kernels on and off', async () => {
    const fbBefore = fb.kernelStats();
    const run = () => {
      const g = new mx.Generator(5);
      const x = mx.randn([2, 3, 12, 12], { generator: g });
      const w = mx.randn([4, 3, 3, 3], { generator: g }).mul(0.3).requiresGrad_();
      const bias = mx.randn([4], { generator: g }).requiresGrad_();
      const W = mx.randn([4 * 5 * 5, 6], { generator: g }).mul(0.1).requiresGrad_();
      const F = mx.nn.functional;
      const outs: Tensor[] = [];
      for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
        const c = (t: Tensor) => t.to(dtype);
        let h = F.conv2d(c(x), c(w), c(bias), { padding: 1 });
        h = F.maxPool2d(h.relu(), 2);
        h = F.avgPool2d(h.gelu(), 1).tanh().sigmoid().add(mx.softplus(h));
        const pooled = F.adaptiveAvgPool2d(h, [5, 5]);
        const flat = pooled.reshape([2, 100]);
        const logits = flat.matmul(c(W));
        const probs = logits.float().softmax(1).log().exp();
        const loss = F.crossEntropy(logits.float(), mx.tensor([1, 4], { dtype: 'int32' })).add(probs.max().mul(0.1)).add(mx.norm(flat.float()).mul(1e-3));
        loss.backward();
        outs.push(loss, w.grad!.clone(), bias.grad!.clone(), W.grad!.clone(), mx.cumsum(logits, 1), logits.argmax(1), flat.var(1));
        for (const p of [w, bias, W]) p.grad = null;
      }
      return outs;
    };
    // The fallback-only backend runs the reference kernels: bit-identical. The native kernels sum in
    // float32 (GEMM, convolutions) where the reference sums in float64: equal within rounding.
    await agree('network', run, ['wasm-fallback']);
    const ref = await on('reference', run);
    const native = await on('wasm-t4', run);
    for (let i = 0; i < ref.length; i++) {
      const [a, b] = [await native[i]!.data(), await ref[i]!.data()];
      const half = ref[i]!.dt.isHalf;
      for (let j = 0; j < b.length; j++) {
        const tol = ref[i]!.dt.isFloating ? (half ? 1e-2 : 1e-4) * Math.max(1, Math.abs(b[j]!)) : 0;
        assert.ok(Math.abs(a[j]! - b[j]!) <= tol || (Number.isNaN(a[j]!) && Number.isNaN(b[j]!)), `network output ${i}[${j}]: native ${a[j]} vs reference ${b[j]}`);
      }
    }
    const used = fb.kernelStats();
    const kernels = Object.keys(used).filter((k) => used[k]!.fallback > (fbBefore[k]?.fallback ?? 0));
    for (const k of kernels) assert.equal(used[k]!.native, 0, `${k} ran natively on the fallback-only backend`);
    assert.ok(kernels.length >= 25, `the network exercised ${kernels.length} kernels through the fallback: ${kernels.join(', ')}`);
  });
});

/* ================================================================== negative log-likelihood */

describe('nllLossFused / nllLossBackward natively (assembly/kernels/nll.ts), bit for bit against the reference backend', () => {
  // logp with the values that decide signs: zeros (a loss of -0, a gradient of 0 + -0 = +0), -Inf, NaN
  const specials = [0, -0, -Infinity, NaN, 1e-30, -3.5, 2.25];
  const logpOf = (n: number, seed: number) => {
    const v = randomValues(n, seed);
    for (let i = 0; i < v.length; i += 3) v[i] = specials[(i / 3) % specials.length]!;
    return v;
  };
  const CASES = [
    { what: '[9,5]', shape: [9, 5], classDim: 1, targets: [0, 4, 2, 2, 3, 1, 3, 0, 1], weight: undefined as number[] | undefined, ignoreIndex: -100 },
    { what: '[9,5], ignored targets and class weights (one 0, one -0)', shape: [9, 5], classDim: 1, targets: [0, -100, 2, 2, 3, 1, -100, 4, 1], weight: [0.5, 0, 1, -0, 3], ignoreIndex: -100 },
    { what: '[2,3,2,3] (spatial targets), ignoreIndex 1', shape: [2, 3, 2, 3], classDim: 1, targets: [0, 1, 2, 2, 1, 0, 1, 1, 0, 2, 2, 0], weight: undefined, ignoreIndex: 1 },
    { what: '[6] (0-d target)', shape: [6], classDim: 0, targets: [3], weight: undefined, ignoreIndex: -100 },
  ];
  for (const c of CASES) {
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      it(`${c.what}, reduction ${reduction}`, async () => {
        const params = { ignoreIndex: c.ignoreIndex, reduction, classDim: c.classDim };
        const targetShape = c.classDim === 0 ? [] : [c.shape[0]!, ...c.shape.slice(2)];
        const inputs = () => {
          const logp = make(logpOf(c.shape.reduce((a, b) => a * b, 1), c.shape.length), c.shape, 'float32');
          const target = mx.tensor(c.targets, { dtype: 'int32', shape: targetShape });
          const w = c.weight && mx.tensor(c.weight);
          return { logp, target, w };
        };
        const loss = () => {
          const { logp, target, w } = inputs();
          return apply('nllLossFused', w ? [logp, target, w] : [logp, target], params);
        };
        const gradient = () => {
          const { logp, target, w } = inputs();
          const g = reduction === 'none' ? make(Float32Array.from(c.targets, (_, i) => [1.5, 0, -0, NaN, -2][i % 5]!), targetShape, 'float32') : mx.tensor(0.75);
          return apply('nllLossBackward', w ? [g, logp, target, w] : [g, logp, target], params);
        };
        await agree(`${c.what} ${reduction}: loss`, loss);
        await agree(`${c.what} ${reduction}: gradient`, gradient);
        assert.deepEqual(await nativeCalls('nllLossFused', loss), { native: 1, fallback: 0 });
        assert.deepEqual(await nativeCalls('nllLossBackward', gradient), { native: 1, fallback: 0 });
      });
    }
  }

  it('a target outside [0, C) (not ignoreIndex) goes to the reference kernel', async () => {
    const run = () => {
      const logp = make(randomValues(12, 3), [4, 3], 'float32');
      const target = mx.tensor([0, 3, 1, 2], { dtype: 'int32', shape: [4] });
      return apply('nllLossFused', [logp, target], { ignoreIndex: -100, reduction: 'sum', classDim: 1 });
    };
    await agree('out-of-range target', run);
    assert.deepEqual(await nativeCalls('nllLossFused', run), { native: 0, fallback: 1 });
  });
});
