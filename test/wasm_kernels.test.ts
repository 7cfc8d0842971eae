/**
 * The wasm backend's native GEMM / convolution / max-pool handlers (src/backend/wasm/native_linalg.ts)
 * and the fused SGD step, against the reference backend.
 *
 * Each kernel runs on the same inputs on the reference backend (float64 accumulation, one rounding)
 * and on wasm backends with 1 and 4 threads (float32 accumulation, one rounding):
 *   - bmm, conv2d, conv2dBackwardInput, conv2dBackwardWeight: every element within the float32
 *     accumulation bound |native - ref| <= (terms + 2) * 2^-24 * sum|products| (+ one ulp of a 16-bit
 *     output), sum|products| being the reference kernel run on the absolute values;
 *   - max-pool forward, and backward without overlapping windows: identical values;
 *   - 1 and 4 threads: identical bits (the kernels' results do not depend on the split);
 *   - the cases the kernels cover run natively (no fallback), the others fall back with the
 *     reference's result.
 * Shapes are random (odd sizes, K past the GEMM's 256 block, transposed and broadcast views, row
 * strides past the row length, offsets, groups, stride / padding / dilation), in float32, float16 and
 * bfloat16. Then a LeNet step end to end (native kernels only), constant memory over training
 * steps, and mx.optim.SGD's fused path bit for bit against the op-by-op optimizer.
 *
 * Makes its own backends (wk-t4, wk-t1) and switches to them explicitly, whatever MIXPREC_BACKEND says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { KernelTensor, Tensor } from '../src/index.js';
import { matrixLayout } from '../src/backend/wasm/native_linalg.js';
import { kernelView } from '../src/ops/dispatch.js';
import type { Conv2dParams, KernelName, KernelParams } from '../src/backend/kernels.js';
import { withinAccumulationBound } from './helpers/compare.js';
import { rng } from './helpers/rng.js';
import { contiguousStrides, numel } from '../src/shape/strides.js';
import { wasmBackends } from './helpers/backends.js';

const [t4, t1] = await wasmBackends({ 'wk-t4': { threads: 4, native: true }, 'wk-t1': { threads: 1, native: true } });

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;
type Float = (typeof FLOATS)[number];
const BACKENDS = { 'wk-t4': t4, 'wk-t1': t1 } as const;
type WasmName = keyof typeof BACKENDS;

/** Run `fn` with `name` as the current backend (then back to the reference backend). */
function on<T>(name: string, fn: () => T): T {
  // setBackend settles synchronously for a backend that is already initialised (all of these are)
  void mx.setBackend(name);
  assert.equal(mx.getBackend(), name === 'reference' ? mx.getBackend('reference') : BACKENDS[name as WasmName]);
  try {
    return fn();
  } finally {
    void mx.setBackend('reference');
  }
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
const randomValues = (r: () => number, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * scale);

/** A strided view over a storage of float values (rounded to `dtype` when stored). */
interface Spec {
  data: Float32Array;
  dtype: Float;
  shape: number[];
  strides: number[];
  offset: number;
}


function dense(r: () => number, shape: number[], dtype: Float, scale = 1): Spec {
  return { data: randomValues(r, numel(shape), scale), dtype, shape, strides: contiguousStrides(shape), offset: 0 };
}

const absSpec = (s: Spec): Spec => ({ ...s, data: s.data.map(Math.abs) });

interface Out {
  shape: number[];
  dtype: Float;
}

interface RunResult {
  values: Float32Array;
  native: number;
  fallback: number;
}

/** Run `kernel` on `backend` over the specs; the output's values (widened) and the call's stats. */
function runKernel<K extends KernelName>(backend: string, kernel: K, inputs: readonly Spec[], out: Out, params: KernelParams<K>): RunResult {
  return on(backend, () =>
    mx.scope(() => {
      const b = mx.getBackend();
      const held: Tensor[] = [];
      const views: KernelTensor[] = inputs.map((s) => {
        const t = mx.tensor(s.data, { dtype: s.dtype, shape: [s.data.length] });
        held.push(t);
        return { buffer: t.storage.buffer, dtype: t.dt, shape: s.shape, strides: s.strides, offset: s.offset };
      });
      const o = mx.full(out.shape, NaN, { dtype: out.dtype });
      const wasm = backend === 'reference' ? null : BACKENDS[backend as WasmName];
      const before = wasm?.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
      b.run(kernel, views, [kernelView(o)], params);
      const now = wasm?.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
      const values = Float32Array.from(o.dataSync());
      assert.ok(held.length === inputs.length);
      return { values, native: now.native - before.native, fallback: now.fallback - before.fallback };
    }),
  );
}

function sameValues(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) continue;
    assert.fail(`${what}: element ${i} is ${a}, the reference gives ${e}`);
  }
}

function sameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: element ${i} is ${actual[i]} with one thread count, ${expected[i]} with another`);
  }
}

/**
 * Run a product kernel on the reference and both wasm backends: check the bound, the 1/4-thread
 * identity and whether it ran natively.
 */
function checkProduct<K extends KernelName>(kernel: K, inputs: Spec[], out: Out, params: KernelParams<K>, terms: number, what: string, expectNative = true): void {
  const ref = runKernel('reference', kernel, inputs, out, params);
  // the bound is computed in float32 output so that 16-bit formats do not overflow it
  const bound = runKernel('reference', kernel, inputs.map(absSpec), { ...out, dtype: 'float32' }, params);
  const r4 = runKernel('wk-t4', kernel, inputs, out, params);
  const r1 = runKernel('wk-t1', kernel, inputs, out, params);
  withinAccumulationBound(r4.values, ref.values, bound.values, terms, out.dtype, `${what} (4 threads)`);
  sameBits(r1.values, r4.values, `${what} (1 vs 4 threads)`);
  if (expectNative) {
    assert.deepEqual([r4.native, r4.fallback, r1.native, r1.fallback], [1, 0, 1, 0], `${what}: runs natively`);
  } else {
    assert.deepEqual([r4.native, r4.fallback], [0, 1], `${what}: falls back`);
    sameValues(r4.values, ref.values, `${what} (fallback)`);
  }
}

/* ================================================================== bmm */

/** A [B, rows, cols] operand: row-major or stored transposed, padded rows, broadcast batch, offset. */
function matrixSpec(r: () => number, B: number, rows: number, cols: number, dtype: Float, o: { trans: boolean; pad: number; broadcast: boolean; offset: number }): Spec {
  const ld = (o.trans ? rows : cols) + o.pad;
  const stored = (o.trans ? cols : rows) * ld;
  const batches = o.broadcast ? 1 : B;
  const data = randomValues(r, o.offset + batches * stored + 3);
  const strides = o.trans ? [o.broadcast ? 0 : stored, 1, ld] : [o.broadcast ? 0 : stored, ld, 1];
  return { data, dtype, shape: [B, rows, cols], strides, offset: o.offset };
}

describe('native bmm against the reference backend', () => {
  it('matrixLayout: row-major, transposed, degenerate and unsupported views', () => {
    assert.deepEqual(matrixLayout(3, 4, 4, 1), { trans: false, ld: 4 });
    assert.deepEqual(matrixLayout(3, 4, 1, 3), { trans: true, ld: 3 });
    assert.deepEqual(matrixLayout(3, 4, 9, 1), { trans: false, ld: 9 });
    assert.deepEqual(matrixLayout(1, 4, 99, 7), { trans: true, ld: 7 });
    assert.deepEqual(matrixLayout(3, 1, 5, 99), { trans: false, ld: 5 });
    assert.deepEqual(matrixLayout(3, 4, 0, 1), { trans: false, ld: 0 }, 'an expanded row repeats');
    assert.equal(matrixLayout(3, 4, 8, 2), null);
  });

  it('random shapes, transposed and padded operands, broadcast batches, all dtypes', () => {
    const r = rng(11);
    for (const dtype of FLOATS) {
      for (let c = 0; c < 24; c++) {
        const B = pick(r, [1, 2, 3]);
        const M = pick(r, [1, 2, 5, 13, 37]);
        const K = pick(r, [1, 3, 8, 31, 100, 257]);
        const N = pick(r, [1, 7, 9, 40]);
        const oa = { trans: r() < 0.5, pad: pick(r, [0, 0, 3]), broadcast: B > 1 && r() < 0.3, offset: pick(r, [0, 5]) };
        const ob = { trans: r() < 0.5, pad: pick(r, [0, 0, 1]), broadcast: B > 1 && r() < 0.3, offset: pick(r, [0, 2]) };
        const a = matrixSpec(r, B, M, K, dtype, oa);
        const b = matrixSpec(r, B, K, N, dtype, ob);
        checkProduct('bmm', [a, b], { shape: [B, M, N], dtype }, {}, K, `bmm ${dtype} [${B},${M},${K}]x[${B},${K},${N}] A ${JSON.stringify(oa)} B ${JSON.stringify(ob)}`);
      }
    }
  });

  it('large enough to use every thread (K past the 256 block, M past the 128 block)', () => {
    const r = rng(12);
    for (const dtype of FLOATS) {
      const a = matrixSpec(r, 2, 150, 300, dtype, { trans: true, pad: 0, broadcast: false, offset: 0 });
      const b = matrixSpec(r, 2, 300, 70, dtype, { trans: false, pad: 0, broadcast: true, offset: 0 });
      checkProduct('bmm', [a, b], { shape: [2, 150, 70], dtype }, {}, 300, `bmm ${dtype} large`);
      // few rows, many columns: the kernel splits columns
      const c = matrixSpec(r, 1, 3, 200, dtype, { trans: false, pad: 0, broadcast: false, offset: 0 });
      const d = matrixSpec(r, 1, 200, 900, dtype, { trans: true, pad: 2, broadcast: false, offset: 1 });
      checkProduct('bmm', [c, d], { shape: [1, 3, 900], dtype }, {}, 200, `bmm ${dtype} wide`);
    }
  });

  it('mixed dtypes (16-bit inputs, float32 output) and K = 0', () => {
    const r = rng(13);
    const a = dense(r, [2, 9, 33], 'float16');
    const b = dense(r, [2, 33, 10], 'bfloat16');
    checkProduct('bmm', [a, b], { shape: [2, 9, 10], dtype: 'float32' }, {}, 33, 'bmm f16 x bf16 -> f32');
    checkProduct('bmm', [dense(r, [2, 3, 0], 'float32'), dense(r, [2, 0, 4], 'float32')], { shape: [2, 3, 4], dtype: 'float32' }, {}, 0, 'bmm K = 0');
  });

  it('views the GEMM cannot read (no unit stride) fall back with the reference result', () => {
    const r = rng(14);
    const a: Spec = { data: randomValues(r, 2 * 5 * 12), dtype: 'float32', shape: [2, 5, 6], strides: [60, 12, 2], offset: 0 };
    const b = dense(r, [2, 6, 4], 'float32');
    checkProduct('bmm', [a, b], { shape: [2, 5, 4], dtype: 'float32' }, {}, 6, 'bmm strided', false);
    // integer matrices: the reference kernel
    const out = on('wk-t4', () => {
      const before = t4.kernelStats()['bmm']!;
      const x = mx.tensor([[[1, 2], [3, 4]]], { dtype: 'int32' });
      const y = mx.bmm(x, x);
      const now = t4.kernelStats()['bmm']!;
      assert.equal(now.fallback - before.fallback, 1);
      return [...y.dataSync()];
    });
    assert.deepEqual(out, [7, 10, 15, 22]);
  });

  it('autograd: linear layers forward and backward run natively, transposes passed as flags', () => {
    for (const dtype of FLOATS) {
      const run = (name: string) =>
        on(name, () =>
          mx.scope(() => {
            const g = new mx.Generator(4);
            const x = mx.randn([17, 30], { generator: g }).to(dtype).requiresGrad_();
            const w = mx.randn([23, 30], { generator: g }).to(dtype).requiresGrad_();
            const v = mx.randn([5, 23], { generator: g }).to(dtype).requiresGrad_();
            const y = mx.nn.functional.linear(mx.nn.functional.linear(x, w).relu(), v);
            y.float().square().sum().backward();
            return [y, x.grad!, w.grad!, v.grad!].map((t) => Float32Array.from(t.dataSync()));
          }),
        );
      const ref = run('reference');
      const before = t4.kernelStats();
      const got = run('wk-t4');
      const now = t4.kernelStats();
      const delta = (k: string) => (now[k]?.native ?? 0) - (before[k]?.native ?? 0);
      const fallbacks = Object.keys(now).reduce((s, k) => s + (now[k]!.fallback - (before[k]?.fallback ?? 0)), 0);
      assert.equal(delta('bmm'), 6, 'two forward and four backward products, all native');
      assert.equal(fallbacks, 0, 'no kernel fell back');
      const tol = dtype === 'float32' ? 1e-5 : 2e-2;
      ref.forEach((e, i) => {
        const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        e.forEach((v, j) => assert.ok(Math.abs(got[i]![j]! - v) <= tol * scale, `${dtype} output ${i}[${j}]: ${got[i]![j]} vs ${v}`));
      });
    }
  });
});

/* ================================================================== convolution */

interface ConvCase {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number;
}

function convOut(c: ConvCase): [number, number] | null {
  const oh = Math.floor((c.H + 2 * c.padding[0] - c.dilation[0] * (c.KH - 1) - 1) / c.stride[0]) + 1;
  const ow = Math.floor((c.W + 2 * c.padding[1] - c.dilation[1] * (c.KW - 1) - 1) / c.stride[1]) + 1;
  return oh >= 1 && ow >= 1 ? [oh, ow] : null;
}

function randomConv(r: () => number): ConvCase {
  for (;;) {
    const groups = pick(r, [1, 1, 2, 3]);
    const depthwise = r() < 0.2;
    const Cg = depthwise ? 1 : int(r, 1, 3);
    const Og = int(r, 1, 3);
    const c: ConvCase = {
      N: int(r, 1, 3), C: Cg * (depthwise ? int(r, 2, 4) : groups), H: int(r, 1, 12), W: int(r, 1, 12), O: 0,
      KH: pick(r, [1, 2, 3, 5]), KW: pick(r, [1, 2, 3, 5]),
      stride: [int(r, 1, 3), int(r, 1, 3)], padding: [int(r, 0, 2), int(r, 0, 2)], dilation: [int(r, 1, 2), int(r, 1, 2)],
      groups: 0,
    };
    c.groups = depthwise ? c.C : groups;
    c.O = Og * c.groups;
    if (convOut(c)) return c;
  }
}

const convParams = (c: ConvCase) => ({ stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups });

function checkConv(r: () => number, c: ConvCase, dtype: Float, withBias: boolean, label: string): void {
  const [OH, OW] = convOut(c)!;
  const x = dense(r, [c.N, c.C, c.H, c.W], dtype);
  const w = dense(r, [c.O, c.C / c.groups, c.KH, c.KW], dtype);
  const b = dense(r, [c.O], dtype);
  const gy = dense(r, [c.N, c.O, OH, OW], dtype);
  const p = convParams(c);
  const what = `${label} ${dtype} ${JSON.stringify(c)}`;
  checkProduct('conv2d', withBias ? [x, w, b] : [x, w], { shape: gy.shape, dtype }, p, (c.C / c.groups) * c.KH * c.KW + 1, `conv2d ${what}`);
  checkProduct('conv2dBackwardInput', [gy, w], { shape: x.shape, dtype }, p, (c.O / c.groups) * c.KH * c.KW, `conv2dBackwardInput ${what}`);
  checkProduct('conv2dBackwardWeight', [x, gy], { shape: w.shape, dtype }, p, c.N * OH * OW, `conv2dBackwardWeight ${what}`);
}

describe('native convolutions against the reference backend', () => {
  it('random geometries: groups, depthwise, stride, padding, dilation, odd sizes, bias, all dtypes', () => {
    const r = rng(21);
    for (const dtype of FLOATS) {
      for (let i = 0; i < 20; i++) checkConv(r, randomConv(r), dtype, r() < 0.5, `random #${i}`);
    }
  });

  it('LeNet shapes, a reduction past the GEMM block, many output channels (every thread used)', () => {
    const r = rng(22);
    const one: Pick<ConvCase, 'stride' | 'padding' | 'dilation' | 'groups'> = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 };
    const cases: [string, ConvCase][] = [
      ['LeNet conv1', { N: 8, C: 3, H: 32, W: 32, O: 6, KH: 5, KW: 5, ...one }],
      ['LeNet conv2', { N: 8, C: 6, H: 14, W: 14, O: 16, KH: 5, KW: 5, ...one }],
      ['K 288', { N: 2, C: 32, H: 9, W: 7, O: 20, KH: 3, KW: 3, ...one, padding: [1, 1] }],
      ['Cout 140, stride 2', { N: 1, C: 8, H: 11, W: 10, O: 140, KH: 3, KW: 3, ...one, stride: [2, 2], padding: [1, 1] }],
    ];
    for (const dtype of FLOATS) for (const [label, c] of cases) checkConv(r, c, dtype, true, label);
  });

  it('convTranspose2d (conv2dBackwardInput as a forward), through the op', () => {
    for (const dtype of FLOATS) {
      for (const [stride, outputPadding] of [[2, 1], [3, 2], [1, 0]] as const) {
        const run = (name: string) =>
          on(name, () =>
            mx.scope(() => {
              const g = new mx.Generator(8);
              const x = mx.randn([2, 4, 5, 6], { generator: g }).to(dtype);
              const w = mx.randn([4, 3, 3, 3], { generator: g }).to(dtype);
              return Float32Array.from(mx.nn.functional.convTranspose2d(x, w, null, { stride, padding: 1, outputPadding }).dataSync());
            }),
          );
        const ref = run('reference');
        const before = t4.kernelStats()['conv2dBackwardInput']?.native ?? 0;
        const got = run('wk-t4');
        assert.equal((t4.kernelStats()['conv2dBackwardInput']?.native ?? 0) - before, 1, 'native');
        const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const tol = dtype === 'float32' ? 1e-5 : 1e-2;
        ref.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= tol * scale, `${dtype} stride ${stride}: [${i}] ${got[i]} vs ${v}`));
      }
    }
  });

  it('non-contiguous operands fall back with the reference result', () => {
    const r = rng(23);
    const c: ConvCase = { N: 2, C: 3, H: 6, W: 5, O: 4, KH: 3, KW: 3, stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    // x stored as [N, H, W, C] (channels last) and viewed as NCHW
    const x: Spec = { data: randomValues(r, 2 * 6 * 5 * 3), dtype: 'float32', shape: [2, 3, 6, 5], strides: [90, 1, 15, 3], offset: 0 };
    const w = dense(r, [4, 3, 3, 3], 'float32');
    checkProduct('conv2d', [x, w], { shape: [2, 4, 6, 5], dtype: 'float32' }, convParams(c), 27, 'conv2d channels-last', false);
  });
});

/* ================================================================== max-pool */

interface PoolCase {
  shape: number[];
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  ceilMode: boolean;
}

function poolOut(p: PoolCase): [number, number] | null {
  const H = p.shape[p.shape.length - 2]!;
  const W = p.shape[p.shape.length - 1]!;
  const size = (n: number, i: 0 | 1) => {
    const span = n + 2 * p.padding[i] - p.dilation[i] * (p.kernel[i] - 1) - 1;
    let out = Math.floor((span + (p.ceilMode ? p.stride[i] - 1 : 0)) / p.stride[i]) + 1;
    if (p.ceilMode && (out - 1) * p.stride[i] >= n + p.padding[i]) out--;
    return out;
  };
  const oh = size(H, 0);
  const ow = size(W, 1);
  return oh >= 1 && ow >= 1 ? [oh, ow] : null;
}

/** Values on a coarse grid (many ties: the first maximum must win on both backends), a few infinities. */
function poolValues(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = r();
    if (u < 0.01) return -Infinity;
    if (u < 0.02) return Infinity;
    return Math.round((r() - 0.5) * 16) / 4 + 0.25; // never -0
  });
}

/** poolValues with signed zeros among the ties (the first of -0 / +0 must win, bits and gradient) and one NaN. */
function poolValuesZerosNaN(r: () => number, n: number): Float32Array {
  const v = poolValues(r, n).map((x) => (r() < 0.3 ? (r() < 0.5 ? -0 : 0) : x));
  v[Math.floor(r() * n)] = NaN;
  return v;
}

function checkPool(r: () => number, p: PoolCase, dtype: Float, what: string, expectNative: boolean, values = poolValues): void {
  const [OH, OW] = poolOut(p)!;
  const outShape = [...p.shape.slice(0, -2), OH, OW];
  const x: Spec = { data: values(r, numel(p.shape)), dtype, shape: p.shape, strides: contiguousStrides(p.shape), offset: 0 };
  const gy = dense(r, outShape, dtype);
  const params = { kernel: p.kernel, stride: p.stride, padding: p.padding, dilation: p.dilation, ceilMode: p.ceilMode, countIncludePad: true, divisorOverride: null };
  const label = `${what} ${dtype} ${JSON.stringify(p)}`;
  const fwdRef = runKernel('reference', 'maxPool2d', [x], { shape: outShape, dtype }, params);
  const bwdRef = runKernel('reference', 'maxPool2dBackward', [x, gy], { shape: p.shape, dtype }, params);
  const bound = runKernel('reference', 'maxPool2dBackward', [x, absSpec(gy)], { shape: p.shape, dtype: 'float32' }, params);
  const overlap = p.stride[0] < p.kernel[0] || p.stride[1] < p.kernel[1];
  for (const name of ['wk-t4', 'wk-t1'] as const) {
    const fwd = runKernel(name, 'maxPool2d', [x], { shape: outShape, dtype }, params);
    const bwd = runKernel(name, 'maxPool2dBackward', [x, gy], { shape: p.shape, dtype }, params);
    sameValues(fwd.values, fwdRef.values, `maxPool2d ${label} on ${name}`);
    fwd.values.forEach((v, i) => { if (!Number.isNaN(v) && !Object.is(v, fwdRef.values[i])) assert.fail(`maxPool2d ${label} on ${name}: element ${i} is ${v}, the reference gives ${fwdRef.values[i]} (sign of zero)`); });
    // overlapping windows sum gradients: float32 there, float64 in the reference
    if (overlap) withinAccumulationBound(bwd.values, bwdRef.values, bound.values, p.kernel[0] * p.kernel[1], dtype, `maxPool2dBackward ${label} on ${name}`);
    else sameValues(bwd.values, bwdRef.values, `maxPool2dBackward ${label} on ${name}`);
    const calls = [fwd.native, fwd.fallback, bwd.native, bwd.fallback];
    assert.deepEqual(calls, expectNative ? [1, 0, 1, 0] : [0, 1, 0, 1], `${label}: ${expectNative ? 'native' : 'falls back'} on ${name}`);
  }
}

describe('native max-pool against the reference backend', () => {
  it('random windows, strides, paddings, 3-D and 4-D inputs, all dtypes (ties, infinities)', () => {
    const r = rng(31);
    for (const dtype of FLOATS) {
      let done = 0;
      while (done < 25) {
        const kernel: [number, number] = [int(r, 1, 3), int(r, 1, 3)];
        const p: PoolCase = {
          shape: r() < 0.3 ? [int(r, 1, 3), int(r, 1, 11), int(r, 1, 11)] : [int(r, 1, 3), int(r, 1, 4), int(r, 1, 11), int(r, 1, 11)],
          kernel,
          stride: [int(r, 1, 3), int(r, 1, 3)],
          padding: [int(r, 0, Math.floor(kernel[0] / 2)), int(r, 0, Math.floor(kernel[1] / 2))],
          dilation: [1, 1],
          ceilMode: false,
        };
        if (!poolOut(p)) continue;
        checkPool(r, p, dtype, `random #${done}`, true);
        done++;
      }
    }
  });

  it('2x2 stride 2 (the SIMD path), LeNet sizes, odd edges, many planes (threads)', () => {
    const r = rng(32);
    for (const dtype of FLOATS) {
      for (const shape of [[8, 6, 28, 28], [8, 16, 10, 10], [3, 5, 9, 13], [64, 6, 28, 28]]) {
        checkPool(r, { shape, kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1], ceilMode: false }, dtype, 'pool 2x2', true);
      }
      checkPool(r, { shape: [4, 6, 28, 28], kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ceilMode: false }, dtype, 'pool 3x3 s2 p1', true);
    }
  });

  it("3x3 stride 2 padding 1 on even maps (ResNet's stem pool: the SIMD path), signed zeros, a NaN plane", () => {
    const r = rng(34);
    const p3 = (shape: number[]): PoolCase => ({ shape, kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1], ceilMode: false });
    for (const dtype of FLOATS) {
      for (const shape of [[4, 5, 16, 16], [2, 3, 32, 16], [3, 2, 8, 8], [2, 3, 12, 24], [7, 8, 16]]) {
        checkPool(r, p3(shape), dtype, 'pool 3x3 s2 p1 (SIMD)', true);
        checkPool(r, p3(shape), dtype, 'pool 3x3 s2 p1 (SIMD), zeros and NaN', true, poolValuesZerosNaN);
      }
    }
  });

  it('ceil mode: native when it adds no window, fallback when it does; dilation falls back', () => {
    const r = rng(33);
    const base = { kernel: [2, 2] as [number, number], stride: [2, 2] as [number, number], padding: [0, 0] as [number, number], dilation: [1, 1] as [number, number] };
    checkPool(r, { ...base, shape: [2, 3, 8, 8], ceilMode: true }, 'float32', 'ceil, even', true);
    checkPool(r, { ...base, shape: [2, 3, 9, 8], ceilMode: true }, 'float16', 'ceil, odd', false);
    checkPool(r, { ...base, shape: [2, 3, 9, 9], dilation: [2, 2], ceilMode: false }, 'bfloat16', 'dilation 2', false);
  });
});

/* ================================================================== end to end */

describe('training on the wasm backend', () => {
  /** Loss and gradients of one LeNet step (forward under autocast, backward), on `name`. */
  function lenetStep(name: string, precision: 'fp32' | 'fp16' | 'bf16'): Float32Array[] {
    return on(name, () =>
      mx.scope(() => {
        mx.manualSeed(3);
        const model = new mx.models.LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
        const g = new mx.Generator(9);
        const x = mx.randn([6, 3, 32, 32], { generator: g });
        const y = mx.randint(0, 10, [6], { generator: g });
        const dtype = precision === 'fp16' ? 'float16' : precision === 'bf16' ? 'bfloat16' : null;
        const forward = () => mx.nn.functional.crossEntropy(model.call(x) as Tensor, y);
        const loss = dtype ? mx.amp.autocast({ dtype }, forward) : forward();
        loss.backward();
        return [loss, ...model.parameters().map((p) => p.grad!)].map((t) => Float32Array.from(t.dataSync()));
      }),
    );
  }

  it('a LeNet step: every product native, loss and gradients close to the reference', () => {
    for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
      const ref = lenetStep('reference', precision);
      const before = t4.kernelStats();
      const got = lenetStep('wk-t4', precision);
      const now = t4.kernelStats();
      for (const k of ['bmm', 'conv2d', 'conv2dBackwardWeight', 'maxPool2d', 'maxPool2dBackward']) {
        assert.ok((now[k]?.native ?? 0) > (before[k]?.native ?? 0), `${precision}: ${k} ran natively`);
        assert.equal(now[k]?.fallback ?? 0, before[k]?.fallback ?? 0, `${precision}: ${k} never fell back`);
      }
      assert.ok((now['conv2dBackwardInput']?.native ?? 0) > (before['conv2dBackwardInput']?.native ?? 0), 'conv2 backward input (conv1 needs none)');
      // relative L2 distance per tensor: 16-bit rounding differences may move a max-pool arg-max
      const tol = precision === 'fp32' ? 1e-5 : 3e-2;
      ref.forEach((e, i) => {
        let num = 0;
        let den = 0;
        e.forEach((v, j) => {
          num += (got[i]![j]! - v) ** 2;
          den += v * v;
        });
        assert.ok(Math.sqrt(num) <= tol * Math.sqrt(den) + 1e-30, `${precision} tensor ${i}: relative L2 distance ${Math.sqrt(num / den)}`);
      });
    }
  });

  it('training steps run in constant wasm memory (the kernel scratch is allocated once)', () => {
    on('wk-t4', () => {
      mx.manualSeed(1);
      const model = new mx.models.LeNet();
      const opt = new mx.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
      const g = new mx.Generator(2);
      const x = mx.randn([16, 3, 32, 32], { generator: g });
      const y = mx.randint(0, 10, [16], { generator: g });
      const snapshots: string[] = [];
      for (let step = 0; step < 6; step++) {
        mx.scope(() => {
          opt.zeroGrad();
          mx.amp.autocast({ dtype: 'bfloat16' }, () => mx.nn.functional.crossEntropy(model.call(x) as Tensor, y)).backward();
          opt.step();
        });
        const h = t4.heapStats();
        snapshots.push(JSON.stringify({ heap: h.heapBytes, reserved: h.reservedBytes, blocks: h.liveBlocks, bytes: h.liveBlockBytes }));
      }
      for (let i = 2; i < snapshots.length; i++) assert.equal(snapshots[i], snapshots[1], `footprint changed at step ${i}`);
      assert.ok(t4.heap.cachedBlockBytes >= 4 * 500000, 'one scratch block for four threads');
      const live = t4.heapStats().liveBlocks;
      t4.heap.releaseCachedBlocks();
      // the multi-tensor SGD's table of tensors (sgdUpdateMulti) is the third
      assert.equal(t4.heapStats().liveBlocks, live - 3, 'scratch, descriptor and SGD table blocks released');
      for (const p of model.parameters()) p.dispose();
      x.dispose();
      y.dispose();
    });
  });
});

/* ================================================================== casts */

describe('strided casts (copy between float formats from a view)', () => {
  it('transposed and sliced views cast natively, bit for bit the reference', () => {
    const r = rng(51);
    for (const from of FLOATS) {
      for (const to of FLOATS) {
        if (from === to) continue;
        // [7, 9] transposed (a linear layer's weight gradient), and a [2, 3, 4] slice with an offset
        const data = randomValues(r, 200, 70000); // overflows float16 now and then
        const views: Spec[] = [
          { data, dtype: from, shape: [9, 7], strides: [1, 9], offset: 0 },
          { data, dtype: from, shape: [2, 3, 4], strides: [60, 10, 2], offset: 3 },
        ];
        for (const v of views) {
          const ref = runKernel('reference', 'copy', [v], { shape: v.shape, dtype: to }, {});
          for (const name of ['wk-t4', 'wk-t1'] as const) {
            const got = runKernel(name, 'copy', [v], { shape: v.shape, dtype: to }, {});
            sameBits(got.values, ref.values, `copy ${from} -> ${to} [${v.shape}] strides [${v.strides}] on ${name}`);
            assert.deepEqual([got.native, got.fallback], [1, 0], 'native');
          }
        }
      }
    }
  });
});

/* ================================================================== SGD */

describe('fused SGD (sgdUpdate) in mx.optim.SGD', () => {
  it('wasm: one native kernel per parameter, bit for bit the op-by-op optimizer of the reference backend', () => {
    const n = 517;
    const r = rng(41);
    const W = randomValues(r, n, 1);
    const grads = [0, 1, 2].map(() => randomValues(r, n, 0.1));
    const configs = [
      { lr: 0.1 },
      { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 },
      { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
      { lr: 0.01, momentum: 0.8, dampening: 0.1, maximize: true },
    ];
    const pairs = [['float32', 'float32'], ['float32', 'float16'], ['float16', 'float16'], ['bfloat16', 'bfloat16'], ['bfloat16', 'float32'], ['bfloat16', 'float16']] as const;
    for (const cfg of configs) {
      for (const [wdt, gdt] of pairs) {
        const run = (name: string) =>
          on(name, () => {
            const p = mx.tensor(W, { dtype: wdt, requiresGrad: true });
            const opt = new mx.optim.SGD([p], cfg);
            grads.forEach((G, step) => {
              p.grad = mx.tensor(G, { dtype: gdt });
              // a freed NaN block of the momentum buffer's size (the next one handed out): the fused
              // first step must ignore the new buffer's contents
              if (step === 0) mx.full([n], NaN).dispose();
              opt.step();
            });
            const buf = opt.state.get(p)?.['momentumBuffer'] as Tensor | undefined;
            if (cfg.momentum) assert.equal(buf?.dtype, 'float32', 'the momentum buffer is float32');
            return [p, ...(buf ? [buf] : [])].map((t) => Float32Array.from(t.dataSync()));
          });
        const ref = run('reference');
        const before = t4.kernelStats();
        const got = run('wk-t4');
        const now = t4.kernelStats();
        const label = `SGD ${JSON.stringify(cfg)} param ${wdt} grad ${gdt}`;
        const calls = (k: string) => ((now[k]?.native ?? 0) + (now[k]?.fallback ?? 0)) - ((before[k]?.native ?? 0) + (before[k]?.fallback ?? 0));
        assert.equal(calls('sgdUpdate'), 3, `${label}: one sgdUpdate per step`);
        assert.equal(calls('mul') + calls('add') + calls('sub'), 0, `${label}: no op-by-op arithmetic`);
        got.forEach((v, i) => sameBits(v, ref[i]!, `${label} (${i === 0 ? 'parameter' : 'momentum buffer'})`));
      }
    }
  });

  it('a momentum buffer from loadStateDict continues the same sequence', () => {
    const run = (name: string) =>
      on(name, () => {
        const make = () => mx.tensor([0.5, -1.25, 2, 3.5], { requiresGrad: true });
        const a = make();
        const optA = new mx.optim.SGD([a], { lr: 0.1, momentum: 0.9 });
        a.grad = mx.tensor([0.1, 0.2, -0.3, 0.4]);
        optA.step();
        const b = mx.tensor([...a.dataSync()], { requiresGrad: true });
        const optB = new mx.optim.SGD([b], { lr: 0.1, momentum: 0.9 });
        optB.loadStateDict(optA.stateDict());
        for (const [p, o] of [[a, optA], [b, optB]] as const) {
          p.grad = mx.tensor([0.3, -0.1, 0.2, 0.05]);
          o.step();
        }
        return [Float32Array.from(a.dataSync()), Float32Array.from(b.dataSync())];
      });
    const [refA, refB] = run('reference');
    const [gotA, gotB] = run('wk-t4');
    sameBits(refB!, refA!, 'reference: resumed = continued');
    sameBits(gotA!, refA!, 'wasm = reference');
    sameBits(gotB!, refA!, 'wasm resumed = reference continued');
  });
});
