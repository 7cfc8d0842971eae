/**
 * The wasm backend's two kernel builds (tools/build-wasm.mjs): plain SIMD128 and relaxed SIMD
 * (f32x4.relaxed_madd, a fused multiply-add on CPUs that have one), and the GEMM / convolution
 * kernels' work split (docs/kernels.md: the sync block).
 *
 * - Variant selection: `simd: 'plain' | 'relaxed'` on WasmBackend.create, MIXPREC_WASM_SIMD in a
 *   child process (plain, auto, a bad value), relaxed chosen by default where the engine runs it.
 * - Each build, on 1 and 3 threads, against the reference backend (float64 accumulation, one
 *   rounding) for bmm, conv2d, conv2dBackwardInput and conv2dBackwardWeight in float32, float16 and
 *   bfloat16: every element within the float32 accumulation bound (terms + 2) 2^-24 sum|products|
 *   (+ one ulp of a 16-bit output) — a bound that holds whether relaxed_madd fuses or not — and
 *   1 vs 3 threads bit for bit. Edge sizes: 1-row and 1-column products, 6-row outputs (the 3-row
 *   panels), K past the 256 block, row counts past the 128 / 126 blocks, batches cut into several
 *   grad-weight chunks, LeNet's layers.
 * - The kernels called directly through the pool: a dynamic split (sync block), the static split
 *   (sync = 0) and one part give identical bits.
 *
 * Makes its own backends and switches to them explicitly, whatever MIXPREC_BACKEND says.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as mx from '../src/index.js';
import type { KernelTensor, Tensor } from '../src/index.js';
import { relaxedSimdAvailable, selectSimd, WasmBackend, type WasmSimd } from '../src/backend/wasm/index.js';
import { kernelView } from '../src/ops/dispatch.js';
import type { Conv2dParams, KernelName, KernelParams } from '../src/backend/kernels.js';
import { withinAccumulationBound } from './helpers/compare.js';
import { rng } from './helpers/rng.js';
import { cropTaps, pixelWindows } from '../src/backend/wasm/native_conv_gemm.js';
import { contiguousStrides, numel } from '../src/shape/strides.js';
import { f32BitsToBf16Bits, f32BitsToF16Bits } from '../src/dtype/convert.js';

const FLOATS = ['float32', 'float16', 'bfloat16'] as const;
type Float = (typeof FLOATS)[number];

const relaxedOk = await relaxedSimdAvailable();
const VARIANTS: WasmSimd[] = relaxedOk ? ['plain', 'relaxed'] : ['plain'];

interface Pair {
  t3: WasmBackend;
  t1: WasmBackend;
}
const backends = new Map<WasmSimd, Pair>();
for (const simd of VARIANTS) {
  const t3 = await WasmBackend.create({ threads: 3, native: true, simd });
  const t1 = await WasmBackend.create({ threads: 1, native: true, simd });
  backends.set(simd, { t3, t1 });
  mx.registerBackend(`wgc-${simd}-t3`, async () => t3);
  mx.registerBackend(`wgc-${simd}-t1`, async () => t1);
  await mx.setBackend(`wgc-${simd}-t3`);
  await mx.setBackend(`wgc-${simd}-t1`);
}
await mx.setBackend('reference');
after(async () => {
  for (const { t3, t1 } of backends.values()) await Promise.all([t3.close(), t1.close()]);
});

/** Run `fn` with backend `name` current (then back to the reference backend). */
function on<T>(name: string, fn: () => T): T {
  void mx.setBackend(name); // settles synchronously: every backend here is initialised
  try {
    return fn();
  } finally {
    void mx.setBackend('reference');
  }
}

const randomValues = (r: () => number, n: number): Float32Array => Float32Array.from({ length: n }, () => (r() - 0.5) * 2);

interface Spec {
  data: Float32Array;
  dtype: Float;
  shape: number[];
  strides: number[];
  offset: number;
}

const dense = (r: () => number, shape: number[], dtype: Float): Spec => ({
  data: randomValues(r, numel(shape)),
  dtype,
  shape,
  strides: contiguousStrides(shape),
  offset: 0,
});
const absSpec = (s: Spec): Spec => ({ ...s, data: s.data.map(Math.abs) });

/** A [B, rows, cols] operand, row-major or stored transposed. */
function matrix(r: () => number, B: number, rows: number, cols: number, dtype: Float, trans: boolean): Spec {
  const stored = rows * cols;
  return { data: randomValues(r, B * stored), dtype, shape: [B, rows, cols], strides: trans ? [stored, 1, rows] : [stored, cols, 1], offset: 0 };
}

interface RunResult {
  values: Float32Array;
  native: number;
  fallback: number;
}

/** Run `kernel` on backend `name` over the specs: the output (widened) and the call's native / fallback counts. */
function runKernel<K extends KernelName>(name: string, kernel: K, inputs: readonly Spec[], out: { shape: number[]; dtype: Float }, params: KernelParams<K>): RunResult {
  return on(name, () =>
    mx.scope(() => {
      const b = mx.getBackend();
      const views: KernelTensor[] = inputs.map((s) => {
        const t = mx.tensor(s.data, { dtype: s.dtype, shape: [s.data.length] });
        return { buffer: t.storage.buffer, dtype: t.dt, shape: s.shape, strides: s.strides, offset: s.offset };
      });
      const o = mx.full(out.shape, NaN, { dtype: out.dtype });
      const wasm = b instanceof WasmBackend ? b : null;
      const before = wasm?.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
      b.run(kernel, views, [kernelView(o)], params);
      const now = wasm?.kernelStats()[kernel] ?? { native: 0, fallback: 0 };
      return { values: Float32Array.from(o.dataSync()), native: now.native - before.native, fallback: now.fallback - before.fallback };
    }),
  );
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i} is ${a[i]} vs ${b[i]}`);
}

/** One product on the reference backend and on both builds (1 and 3 threads each). */
function checkProduct<K extends KernelName>(kernel: K, inputs: Spec[], out: { shape: number[]; dtype: Float }, params: KernelParams<K>, terms: number, what: string): void {
  const ref = runKernel('reference', kernel, inputs, out, params);
  const bound = runKernel('reference', kernel, inputs.map(absSpec), { ...out, dtype: 'float32' }, params);
  for (const simd of VARIANTS) {
    const r3 = runKernel(`wgc-${simd}-t3`, kernel, inputs, out, params);
    const r1 = runKernel(`wgc-${simd}-t1`, kernel, inputs, out, params);
    assert.deepEqual([r3.native, r3.fallback, r1.native, r1.fallback], [1, 0, 1, 0], `${what} (${simd}): runs natively`);
    withinAccumulationBound(r3.values, ref.values, bound.values, terms, out.dtype, `${what} (${simd}, 3 threads)`);
    sameBits(r1.values, r3.values, `${what} (${simd}, 1 vs 3 threads)`);
  }
}

describe('kernel builds: plain and relaxed SIMD', () => {
  it('WasmBackend.create({ simd }) runs the build asked for; the default is relaxed where the engine runs it', async () => {
    for (const simd of VARIANTS) {
      assert.equal(backends.get(simd)!.t3.simd, simd);
      assert.equal(backends.get(simd)!.t1.simd, simd);
    }
    assert.equal(await selectSimd('plain'), 'plain');
    assert.equal(await selectSimd('auto'), relaxedOk ? 'relaxed' : 'plain');
    if (relaxedOk) assert.equal(await selectSimd('relaxed'), 'relaxed');
    else await assert.rejects(selectSimd('relaxed'), /relaxed SIMD/);
    // In Node 20 the engine needs --experimental-wasm-relaxed-simd, which the backend sets itself.
    if (process.versions.node.startsWith('20.')) assert.ok(relaxedOk, 'Node 20: relaxed SIMD enabled through v8.setFlagsFromString');
  });

  it('MIXPREC_WASM_SIMD picks the build in a fresh process (plain, auto; a bad value is an error)', () => {
    const entry = new URL('../src/backend/wasm/index.js', import.meta.url).href;
    const script = `const m = await import(${JSON.stringify(entry)}); const b = await m.createWasmBackend({ threads: 2 }); console.log(b.simd); await b.close();`;
    const run = (value: string | undefined) => {
      const env = { ...process.env };
      delete env['MIXPREC_WASM_SIMD'];
      if (value !== undefined) env['MIXPREC_WASM_SIMD'] = value;
      return execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) }).trim();
    };
    assert.equal(run('plain'), 'plain');
    assert.equal(run(undefined), relaxedOk ? 'relaxed' : 'plain');
    assert.equal(run('auto'), relaxedOk ? 'relaxed' : 'plain');
    assert.throws(() => execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, MIXPREC_WASM_SIMD: 'fast' }, stdio: 'pipe' }), /MIXPREC_WASM_SIMD/);
  });
});

describe('bmm on both builds against the reference backend', () => {
  it('edge sizes: 1 x 1, one row, one column, 6 rows, K past 256, rows past 128, batches; all dtypes', () => {
    const r = rng(101);
    const shapes: [number, number, number, number][] = [
      // B, M, K, N
      [1, 1, 1, 1],
      [1, 1, 300, 9],
      [1, 13, 40, 1],
      [2, 6, 75, 33],
      [1, 131, 257, 70],
      [3, 5, 17, 260],
      [1, 64, 400, 120], // LeNet fc1
      [1, 64, 84, 10], // LeNet fc3
    ];
    for (const dtype of FLOATS) {
      for (const [B, M, K, N] of shapes) {
        const ta = r() < 0.5;
        const tb = r() < 0.5;
        const a = matrix(r, B, M, K, dtype, ta);
        const b = matrix(r, B, K, N, dtype, tb);
        checkProduct('bmm', [a, b], { shape: [B, M, N], dtype }, {}, K, `bmm ${dtype} [${B},${M},${K}]x[${B},${K},${N}]${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`);
      }
    }
  });

  it('16-bit inputs into a float32 output (the master-gradient case)', () => {
    const r = rng(102);
    const a = matrix(r, 1, 30, 64, 'float16', true);
    const b = matrix(r, 1, 64, 21, 'float16', false);
    checkProduct('bmm', [a, b], { shape: [1, 30, 21], dtype: 'float32' }, {}, 64, 'bmm f16 x f16 -> f32');
    const c = matrix(r, 1, 7, 300, 'bfloat16', false);
    const d = matrix(r, 1, 300, 12, 'bfloat16', true);
    checkProduct('bmm', [c, d], { shape: [1, 7, 12], dtype: 'float32' }, {}, 300, 'bmm bf16 x bf16 -> f32');
  });
});

interface Conv {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  stride: number; padding: number; groups: number; dilation?: number;
}

function checkConv(r: () => number, c: Conv, dtype: Float, label: string): void {
  const d = c.dilation ?? 1;
  const OH = Math.floor((c.H + 2 * c.padding - d * (c.KH - 1) - 1) / c.stride) + 1;
  const OW = Math.floor((c.W + 2 * c.padding - d * (c.KW - 1) - 1) / c.stride) + 1;
  const x = dense(r, [c.N, c.C, c.H, c.W], dtype);
  const w = dense(r, [c.O, c.C / c.groups, c.KH, c.KW], dtype);
  const b = dense(r, [c.O], dtype);
  const gy = dense(r, [c.N, c.O, OH, OW], dtype);
  const p: Conv2dParams = { stride: [c.stride, c.stride], padding: [c.padding, c.padding], dilation: [d, d], groups: c.groups };
  const what = `${label} ${dtype} ${JSON.stringify(c)}`;
  checkProduct('conv2d', [x, w, b], { shape: gy.shape, dtype }, p, (c.C / c.groups) * c.KH * c.KW + 1, `conv2d ${what}`);
  checkProduct('conv2dBackwardInput', [gy, w], { shape: x.shape, dtype }, p, (c.O / c.groups) * c.KH * c.KW, `conv2dBackwardInput ${what}`);
  checkProduct('conv2dBackwardWeight', [x, gy], { shape: w.shape, dtype }, p, c.N * OH * OW, `conv2dBackwardWeight ${what}`);
}

describe('convolutions on both builds against the reference backend', () => {
  it("LeNet's layers (6 output channels: 3-row panels; 16: 4-row), batches of several grad-weight chunks", () => {
    const r = rng(111);
    for (const dtype of FLOATS) {
      checkConv(r, { N: 9, C: 3, H: 32, W: 32, O: 6, KH: 5, KW: 5, stride: 1, padding: 0, groups: 1 }, dtype, 'conv1');
      checkConv(r, { N: 13, C: 6, H: 14, W: 14, O: 16, KH: 5, KW: 5, stride: 1, padding: 0, groups: 1 }, dtype, 'conv2');
    }
  });

  it('edge geometries: 1x1, one output pixel, 5 / 9 / 129 rows, K past 256, stride 2, groups', () => {
    const r = rng(112);
    const cases: Conv[] = [
      { N: 2, C: 1, H: 1, W: 1, O: 1, KH: 1, KW: 1, stride: 1, padding: 0, groups: 1 },
      { N: 3, C: 4, H: 5, W: 5, O: 5, KH: 5, KW: 5, stride: 1, padding: 0, groups: 1 },
      { N: 5, C: 9, H: 7, W: 6, O: 9, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 },
      { N: 2, C: 5, H: 6, W: 9, O: 129, KH: 2, KW: 3, stride: 1, padding: 0, groups: 1 },
      { N: 2, C: 30, H: 8, W: 8, O: 6, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 },
      { N: 3, C: 6, H: 11, W: 10, O: 6, KH: 3, KW: 3, stride: 2, padding: 1, groups: 1 },
      { N: 6, C: 6, H: 9, W: 9, O: 12, KH: 5, KW: 5, stride: 1, padding: 2, groups: 3 },
    ];
    for (const dtype of FLOATS) cases.forEach((c, i) => checkConv(r, c, dtype, `edge #${i}`));
  });
});

describe('whole-batch convolution GEMMs (small maps) against the reference backend', () => {
  it("ResNet-18's shape classes at 32x32 with the torchvision stem: 7x7 stride-2 stem, 3x3 on 8x8 .. 1x1, stride-2 3x3, 1x1 projections; dilation", () => {
    const r = rng(113);
    const cases: Conv[] = [
      { N: 3, C: 3, H: 32, W: 32, O: 8, KH: 7, KW: 7, stride: 2, padding: 3, groups: 1 }, // stem: 16x16, strided (grad-weight here, the rest on conv.ts)
      { N: 5, C: 16, H: 8, W: 8, O: 16, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // layer1
      { N: 4, C: 16, H: 8, W: 8, O: 24, KH: 3, KW: 3, stride: 2, padding: 1, groups: 1 }, // layer2's first conv
      { N: 4, C: 16, H: 8, W: 8, O: 24, KH: 1, KW: 1, stride: 2, padding: 0, groups: 1 }, // its 1x1 projection
      { N: 6, C: 40, H: 2, W: 2, O: 33, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // layer3's 2x2 maps
      { N: 7, C: 36, H: 2, W: 2, O: 20, KH: 3, KW: 3, stride: 2, padding: 1, groups: 1 }, // 2x2 -> 1x1
      { N: 9, C: 70, H: 1, W: 1, O: 12, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // layer4: 1x1 maps, 8 of 9 taps in the padding
      { N: 3, C: 10, H: 5, W: 7, O: 9, KH: 3, KW: 2, stride: 1, padding: 0, groups: 1 }, // odd, unpadded, non-square
      { N: 2, C: 5, H: 9, W: 9, O: 7, KH: 3, KW: 3, stride: 3, padding: 2, groups: 1 }, // stride 3, padding 2
      { N: 3, C: 6, H: 7, W: 7, O: 5, KH: 3, KW: 3, stride: 1, padding: 2, groups: 1, dilation: 2 }, // dilation 2
      { N: 2, C: 4, H: 9, W: 8, O: 3, KH: 2, KW: 3, stride: 2, padding: 1, groups: 1, dilation: 3 }, // dilation 3, stride 2
      // stride 1 with the output map the input's size: im2col copies whole shifted planes
      { N: 3, C: 5, H: 5, W: 7, O: 4, KH: 5, KW: 5, stride: 1, padding: 2, groups: 1 }, // 5x5 on a non-square map
      { N: 4, C: 3, H: 2, W: 3, O: 5, KH: 5, KW: 5, stride: 1, padding: 2, groups: 1 }, // taps wholly outside the map
      { N: 2, C: 6, H: 8, W: 1, O: 3, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // one-column map
      { N: 3, C: 7, H: 4, W: 4, O: 6, KH: 1, KW: 1, stride: 1, padding: 0, groups: 1 }, // 1x1, nothing cut
    ];
    for (const dtype of FLOATS) cases.forEach((c, i) => checkConv(r, c, dtype, `resnet #${i}`));
  });

  it('taps that only read the zero padding are cropped away (the same results, fewer multiply-adds)', () => {
    // which windows are kept: layer4's 1x1 maps keep the centre, 2x2 -> 1x1 at stride 2 the lower-right 2x2
    const desc = (H: number, W: number, KH: number, KW: number, s: number, p: number): number[] => [2, 3, H, W, 4, KH, KW, s, s, p, p, 1, 1, 1];
    assert.deepEqual(cropTaps(desc(1, 1, 3, 3, 1, 1), 1, 1), { desc: desc(1, 1, 1, 1, 1, 0), kh0: 1, khN: 1, kw0: 1, kwN: 1 });
    assert.deepEqual(cropTaps(desc(2, 2, 3, 3, 2, 1), 1, 1), { desc: desc(2, 2, 2, 2, 2, 0), kh0: 1, khN: 2, kw0: 1, kwN: 2 });
    assert.equal(cropTaps(desc(2, 2, 3, 3, 1, 1), 2, 2), null); // every tap reads the image for some output
    assert.equal(cropTaps(desc(8, 8, 3, 3, 1, 1), 8, 8), null);
    // layer3's 2x2 maps: forward by output pixel, each over the 2x2 window it reads (16 of 36 taps)
    assert.deepEqual(pixelWindows(desc(2, 2, 3, 3, 1, 1), 2, 2), [
      { oh: 0, ow: 0, kh0: 1, khN: 2, kw0: 1, kwN: 2 }, { oh: 0, ow: 1, kh0: 1, khN: 2, kw0: 0, kwN: 2 },
      { oh: 1, ow: 0, kh0: 0, khN: 2, kw0: 1, kwN: 2 }, { oh: 1, ow: 1, kh0: 0, khN: 2, kw0: 0, kwN: 2 },
    ]);
    assert.equal(pixelWindows(desc(4, 4, 3, 3, 1, 1), 4, 4), null); // 100 of 144 taps live
    assert.equal(pixelWindows(desc(4, 4, 3, 3, 2, 1), 2, 2), null); // 25 of 36
    const r = rng(115);
    const cases: Conv[] = [
      { N: 5, C: 300, H: 1, W: 1, O: 9, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // cropped K = 300 passes the 256 block
      { N: 3, C: 66, H: 1, W: 1, O: 21, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // one live tap: grad-input's weight transposed 8 output channels per vector (two and a tail of 5), input channels past a 64 block
      { N: 4, C: 6, H: 1, W: 5, O: 7, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // cropped along H only
      { N: 3, C: 5, H: 2, W: 3, O: 4, KH: 5, KW: 5, stride: 2, padding: 2, groups: 1 }, // 5x5 stride 2 on a 2x3 map
      { N: 3, C: 4, H: 1, W: 1, O: 6, KH: 3, KW: 3, stride: 1, padding: 2, groups: 1, dilation: 2 }, // dilation 2, 1x1 map
      { N: 5, C: 70, H: 2, W: 2, O: 9, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1 }, // by output pixel: K = 280 per pixel passes the 256 block
      { N: 3, C: 4, H: 3, W: 3, O: 5, KH: 5, KW: 5, stride: 1, padding: 2, groups: 1 }, // by output pixel: 3x3 of 25 taps each
      { N: 70, C: 3, H: 2, W: 2, O: 4, KH: 3, KW: 3, stride: 1, padding: 1, groups: 1, dilation: 1 }, // by output pixel, 70 images
    ];
    for (const dtype of FLOATS) cases.forEach((c, i) => checkConv(r, c, dtype, `cropped #${i}`));
  });

  it('batches whose columns pass the 4M-element chunk (two chunks of images; grad-weight sums them in float32)', () => {
    const r = rng(114);
    // 8x8 maps, K * P = 128*49 * 64 = 401,408 per image: 10 images per chunk, 11 -> chunks of 10 and 1 (all three passes)
    const small: Conv = { N: 11, C: 128, H: 8, W: 8, O: 2, KH: 7, KW: 7, stride: 1, padding: 3, groups: 1 };
    // a strided 16x16 output (grad-weight only): K * P = 64*49 * 256 = 802,816: chunks of 5 and 1
    const c: Conv = { N: 6, C: 64, H: 32, W: 32, O: 2, KH: 7, KW: 7, stride: 2, padding: 3, groups: 1 };
    for (const dtype of FLOATS) checkConv(r, small, dtype, 'two chunks, 8x8');
    for (const dtype of FLOATS) checkConv(r, c, dtype, 'two chunks');
  });
});

interface GradInputCase {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  stride: [number, number]; padding: [number, number]; groups?: number;
}

/** conv2dBackwardInput alone (also convTranspose2d's forward): dx [N, C, H, W] from gy and w [O, C/g, KH, KW]. */
function checkGradInput(r: () => number, c: GradInputCase, dtype: Float, label: string): void {
  const g = c.groups ?? 1;
  const OH = Math.floor((c.H + 2 * c.padding[0] - c.KH) / c.stride[0]) + 1;
  const OW = Math.floor((c.W + 2 * c.padding[1] - c.KW) / c.stride[1]) + 1;
  const w = dense(r, [c.O, c.C / g, c.KH, c.KW], dtype);
  const gy = dense(r, [c.N, c.O, OH, OW], dtype);
  const p: Conv2dParams = { stride: c.stride, padding: c.padding, dilation: [1, 1], groups: g };
  checkProduct('conv2dBackwardInput', [gy, w], { shape: [c.N, c.C, c.H, c.W], dtype }, p, (c.O / g) * c.KH * c.KW, `conv2dBackwardInput ${label} ${dtype} ${JSON.stringify(c)}`);
}

describe('conv2dBackwardInput by phases (stride > 1) and as one GEMM (1x1 dY) against the reference backend', () => {
  it("DCGAN's transposed convolutions (4x4, stride 2, padding 1; 1x1 -> 4x4), reduced batch and width", () => {
    const r = rng(131);
    for (const dtype of FLOATS) {
      checkGradInput(r, { N: 3, C: 16, H: 8, W: 8, O: 32, KH: 4, KW: 4, stride: [2, 2], padding: [1, 1] }, dtype, 'dcgan 4->8');
      checkGradInput(r, { N: 2, C: 3, H: 32, W: 32, O: 8, KH: 4, KW: 4, stride: [2, 2], padding: [1, 1] }, dtype, 'dcgan 16->32');
      checkGradInput(r, { N: 5, C: 24, H: 4, W: 4, O: 20, KH: 4, KW: 4, stride: [1, 1], padding: [0, 0] }, dtype, 'dcgan 1x1->4x4 (gemm)');
    }
  });

  it('odd sizes, strides 2 and 3, unequal strides and paddings, kernels 2..5, groups, one image', () => {
    const r = rng(132);
    const cases: GradInputCase[] = [
      { N: 1, C: 5, H: 9, W: 7, O: 6, KH: 4, KW: 4, stride: [2, 2], padding: [1, 1] }, // few units: columns split
      { N: 2, C: 7, H: 11, W: 10, O: 9, KH: 3, KW: 3, stride: [2, 2], padding: [1, 1] },
      { N: 3, C: 4, H: 13, W: 12, O: 5, KH: 5, KW: 5, stride: [2, 2], padding: [2, 2] },
      { N: 2, C: 6, H: 10, W: 11, O: 7, KH: 3, KW: 5, stride: [3, 2], padding: [0, 2] },
      { N: 2, C: 3, H: 8, W: 9, O: 4, KH: 2, KW: 2, stride: [2, 2], padding: [0, 0] },
      { N: 2, C: 5, H: 7, W: 7, O: 3, KH: 4, KW: 3, stride: [2, 1], padding: [1, 1] },
      { N: 2, C: 6, H: 9, W: 9, O: 9, KH: 4, KW: 4, stride: [2, 2], padding: [3, 0], groups: 3 },
      { N: 1, C: 131, H: 6, W: 6, O: 10, KH: 4, KW: 4, stride: [2, 2], padding: [1, 1] }, // rows past the 128 / 126 blocks
      { N: 2, C: 4, H: 5, W: 5, O: 70, KH: 4, KW: 4, stride: [2, 2], padding: [1, 1] }, // a phase's K past 256
      { N: 2, C: 3, H: 3, W: 2, O: 5, KH: 3, KW: 2, stride: [1, 1], padding: [0, 0] }, // 1x1 dY: the GEMM
    ];
    for (const dtype of FLOATS) cases.forEach((c, i) => checkGradInput(r, c, dtype, `phases #${i}`));
  });
});

/** im2col by definition: col[k][(n - n0) * P + p] for tap k = (ci, kh, kw), 0 where the tap reads the padding. */
function im2colReference(x: Uint16Array | Uint32Array, N: number, C: number, H: number, W: number, K: number, pad: number, dil: number, n0: number, nImg: number, stride = 1): number[] {
  const OH = Math.floor((H + 2 * pad - dil * (K - 1) - 1) / stride) + 1, OW = Math.floor((W + 2 * pad - dil * (K - 1) - 1) / stride) + 1, P = OH * OW;
  const out: number[] = [];
  for (let ci = 0; ci < C; ci++) {
    for (let kh = 0; kh < K; kh++) {
      for (let kw = 0; kw < K; kw++) {
        for (let n = n0; n < n0 + nImg; n++) {
          for (let p = 0; p < P; p++) {
            const ih = Math.floor(p / OW) * stride - pad + kh * dil, iw = (p % OW) * stride - pad + kw * dil;
            out.push(ih < 0 || ih >= H || iw < 0 || iw >= W ? 0 : x[((n * C + ci) * H + ih) * W + iw]!);
          }
        }
      }
    }
  }
  return out;
}

describe('conv_im2col (masked plane copies, swizzled strided rows) against its definition', () => {
  it('strided (the swizzled rows and one-pixel outputs): 8x8 .. 1x1 maps and odd sizes, strides 2 and 3, kernels 1 .. 7, x last in its block; 1 and 3 parts', () => {
    const b = backends.get('plain')!.t3;
    const heap = b.heap;
    const r = rng(143);
    const maps: [number, number][] = [[8, 8], [4, 4], [2, 2], [1, 1], [8, 4], [5, 7], [16, 16], [3, 2]];
    const kernels: [number, number, number, number][] = [[3, 1, 1, 2], [1, 0, 1, 2], [2, 0, 1, 2], [3, 1, 1, 3], [7, 3, 1, 2], [3, 2, 2, 2]]; // size, padding, dilation, stride
    for (const es of [2, 4]) {
      for (const [H, W] of maps) {
        for (const [K, pad, dil, stride] of kernels) {
          if (H + 2 * pad < dil * (K - 1) + 1 || W + 2 * pad < dil * (K - 1) + 1) continue;
          const N = 4, C = 3, elems = N * C * H * W;
          // x at the end of its block (the 16-byte row loads must stop at its end) and inside it
          const block = heap.alloc((elems + 64) * es);
          for (const at of [64, 0]) {
            const x = block + at * es;
            const vals = es === 2 ? new Uint16Array(elems) : new Uint32Array(elems);
            for (let i = 0; i < elems; i++) vals[i] = es === 2 ? Math.floor(r() * 65536) : Math.floor(r() * 2 ** 32);
            (es === 2 ? heap.views().u16 : heap.views().u32).set(vals, x / es);
            const desc = heap.alloc(64);
            heap.views().i32.set([N, C, H, W, 4, K, K, stride, stride, pad, pad, dil, dil, 1, 0, 0], desc >> 2);
            for (const [n0, nImg] of [[0, N], [1, 3], [3, 1]] as const) {
              const want = im2colReference(vals, N, C, H, W, K, pad, dil, n0, nImg, stride);
              const col = heap.alloc(want.length * es + 16);
              for (const parts of [1, 3]) {
                (es === 2 ? heap.views().u16 : heap.views().u32).fill(es === 2 ? 0x7e00 : 0x7fc00000, col / es, col / es + want.length);
                b.pool.runParts('conv_im2col', [desc, es === 2 ? 1 : 0, x, col, n0, nImg], parts);
                const got = (es === 2 ? heap.views().u16 : heap.views().u32).slice(col / es, col / es + want.length);
                for (let i = 0; i < want.length; i++) {
                  if (got[i] !== want[i]) assert.fail(`es ${es} ${H}x${W} k${K} p${pad} d${dil} s${stride} images ${n0}+${nImg} ${parts} part(s): col[${i}] = 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`);
                }
              }
              heap.release(col, want.length * es + 16);
            }
            heap.release(desc, 64);
          }
          heap.release(block, (elems + 64) * es);
        }
      }
    }
  });

  it('8x8 .. 1x1 maps (and 2x4, 4x2, 8x4, 1x8, 3x3) in 16 bits and float32, kernels 1 / 3 / 5, dilation 2, chunks, x first and last in its block; 1 and 3 parts', () => {
    const b = backends.get('plain')!.t3;
    const heap = b.heap;
    const r = rng(141);
    const maps: [number, number][] = [[8, 8], [4, 4], [2, 2], [1, 1], [2, 4], [4, 2], [8, 4], [4, 8], [1, 8], [8, 1], [2, 1], [3, 3]];
    const kernels: [number, number, number][] = [[3, 1, 1], [1, 0, 1], [5, 2, 1], [3, 2, 2]]; // size, padding, dilation: "same" maps
    for (const es of [2, 4]) {
      for (const [H, W] of maps) {
        for (const [K, pad, dil] of kernels) {
          const N = 5, C = 3, elems = N * C * H * W;
          // x placed at both ends of a block filled with all-ones bits: a masked lane that kept a
          // byte read outside the planes it should would show up as non-zero
          const guard = 64;
          const block = heap.alloc((elems + 2 * guard) * es);
          for (const at of [guard, 0, 2 * guard]) {
            const x = block + at * es;
            const vals = es === 2 ? new Uint16Array(elems) : new Uint32Array(elems);
            // every 16-bit pattern cycles through x in 16 bits (NaNs, Infs, subnormals: a copy keeps them)
            for (let i = 0; i < elems; i++) vals[i] = es === 2 ? (i * 40503 + Math.floor(r() * 65536)) & 0xffff : Math.floor(r() * 2 ** 32);
            if (es === 2) {
              heap.views().u16.fill(0xffff, block >> 1, (block >> 1) + elems + 2 * guard);
              heap.views().u16.set(vals, x >> 1);
            } else {
              heap.views().u32.fill(0xffffffff, block >> 2, (block >> 2) + elems + 2 * guard);
              heap.views().u32.set(vals, x >> 2);
            }
            const desc = heap.alloc(64);
            heap.views().i32.set([N, C, H, W, 4, K, K, 1, 1, pad, pad, dil, dil, 1, 0, 0], desc >> 2);
            for (const [n0, nImg] of [[0, N], [0, 2], [3, 2], [4, 1]] as const) {
              const want = im2colReference(vals, N, C, H, W, K, pad, dil, n0, nImg);
              const col = heap.alloc(want.length * es + 16);
              for (const parts of [1, 3]) {
                if (es === 2) heap.views().u16.fill(0x7e00, col >> 1, (col >> 1) + want.length);
                else heap.views().u32.fill(0x7fc00000, col >> 2, (col >> 2) + want.length);
                b.pool.runParts('conv_im2col', [desc, es === 2 ? 1 : 0, x, col, n0, nImg], parts);
                const got = es === 2 ? heap.views().u16.slice(col >> 1, (col >> 1) + want.length) : heap.views().u32.slice(col >> 2, (col >> 2) + want.length);
                for (let i = 0; i < want.length; i++) {
                  if (got[i] !== want[i]) assert.fail(`es ${es} ${H}x${W} k${K} p${pad} d${dil} x at +${at} images ${n0}+${nImg} ${parts} part(s): col[${i}] = 0x${got[i]!.toString(16)}, want 0x${want[i]!.toString(16)}`);
                }
              }
              heap.release(col, want.length * es + 16);
            }
            heap.release(desc, 64);
          }
          heap.release(block, (elems + 2 * guard) * es);
        }
      }
    }
  });
});

describe('conv_to_channel_major / conv_from_channel_major (runs of 2 .. 32 bytes by single moves) against their definition', () => {
  it('planes of 1 .. 64 elements in 16 bits and float32, chunks of images, 1 and 3 parts; the inverse gives x back', () => {
    const b = backends.get('plain')!.t3;
    const heap = b.heap;
    const r = rng(142);
    for (const es of [2, 4]) {
      for (const P of [1, 2, 3, 4, 8, 16, 64]) {
        const N = 6, C = 7, elems = N * C * P;
        const x = heap.alloc(elems * es), cm = heap.alloc(elems * es), back = heap.alloc(elems * es);
        const view = () => (es === 2 ? heap.views().u16 : heap.views().u32);
        const vals = Array.from({ length: elems }, () => Math.floor(r() * (es === 2 ? 65536 : 2 ** 32)));
        view().set(vals, x / es);
        for (const [n0, nImg] of [[0, N], [2, 3], [5, 1]] as const) {
          for (const parts of [1, 3]) {
            view().fill(0, cm / es, cm / es + elems);
            b.pool.runParts('conv_to_channel_major', [es === 2 ? 1 : 0, x, cm, n0, nImg, C, P], parts);
            const got = view().slice(cm / es, cm / es + nImg * C * P);
            for (let c = 0; c < C; c++) {
              for (let n = 0; n < nImg; n++) {
                for (let p = 0; p < P; p++) {
                  const want = vals[((n0 + n) * C + c) * P + p]!, have = got[c * nImg * P + n * P + p]!;
                  if (have !== want) assert.fail(`to_channel_major es ${es} P ${P} images ${n0}+${nImg} ${parts} part(s): [${c}][${n}][${p}] 0x${have.toString(16)}, want 0x${want.toString(16)}`);
                }
              }
            }
            view().fill(0, back / es, back / es + elems);
            b.pool.runParts('conv_from_channel_major', [es === 2 ? 1 : 0, cm, back, n0, nImg, C, P], parts);
            const round = view().slice(back / es, back / es + elems);
            for (let i = 0; i < elems; i++) {
              const inside = Math.floor(i / (C * P)) >= n0 && Math.floor(i / (C * P)) < n0 + nImg;
              if (round[i] !== (inside ? vals[i] : 0)) assert.fail(`from_channel_major es ${es} P ${P} images ${n0}+${nImg} ${parts} part(s): element ${i}`);
            }
          }
        }
        for (const a of [x, cm, back]) heap.release(a, elems * es);
      }
    }
  });
});

describe('conv_uncrop_taps with one live tap (the 16-bit weight gradient of a centre-tap convolution)', () => {
  it('rounds as the reference: every 16-bit pattern with the float32 values just around its rounding boundaries, NaN payloads, Inf; 1 and 3 parts', () => {
    // float32 inputs: every pattern h as the top half, with low halves on both sides of bfloat16's
    // tie (0x8000) and float16's (0x1000 in the 13 dropped bits of a normal value), and their ends
    const lows = [0, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x7fff, 0x8000, 0x8001, 0xefff, 0xf000, 0xf001, 0xffff];
    const n = 65536 * lows.length + 3; // a tail of 3 past the vectors of 4
    const bits = new Uint32Array(n);
    for (let h = 0, i = 0; h < 65536; h++) for (const lo of lows) bits[i++] = ((h << 16) | lo) >>> 0;
    bits.set([0x38800000, 0x33000000, 0x7f800001], n - 3); // float16's smallest normal, half its smallest subnormal, a signalling NaN
    const taps = 9, tap = 4;
    for (const simd of VARIANTS) {
      const b = backends.get(simd)!.t3;
      const heap = b.heap;
      const src = heap.alloc(n * 4), dst = heap.alloc(n * taps * 2);
      heap.views().u32.set(bits, src >> 2);
      for (const [dt, name, encode] of [[1, 'float16', f32BitsToF16Bits], [2, 'bfloat16', f32BitsToBf16Bits]] as const) {
        for (const parts of [1, 3]) {
          heap.views().u16.fill(0xffff, dst >> 1, (dst >> 1) + n * taps);
          b.pool.runParts('conv_uncrop_taps', [dt, src, dst, n, 3, 3, 1, 1, 1, 1], parts);
          const out = heap.views().u16.slice(dst >> 1, (dst >> 1) + n * taps);
          for (let r = 0; r < n; r++) {
            for (let t = 0; t < taps; t++) {
              const want = t === tap ? encode(bits[r]!) : 0;
              if (out[r * taps + t] !== want) assert.fail(`${simd} ${name} ${parts} part(s): row ${r} (0x${bits[r]!.toString(16)}) tap ${t}: 0x${out[r * taps + t]!.toString(16)}, want 0x${want.toString(16)}`);
            }
          }
        }
      }
    }
  });
});

describe('work split: dynamic (sync block), static and one part give the same bits', () => {
  it('gemm and the convolution kernels called through the pool', () => {
    const r = rng(121);
    for (const simd of VARIANTS) {
      const b = backends.get(simd)!.t3;
      const heap = b.heap;
      const f32 = (n: number, scale = 1) => {
        const addr = heap.alloc(n * 4);
        heap.views().f32.set(Float32Array.from({ length: n }, () => (r() - 0.5) * 2 * scale), addr >> 2);
        return addr;
      };
      const read = (addr: number, n: number) => heap.views().f32.slice(addr >> 2, (addr >> 2) + n);
      const sync = heap.alloc(64);
      const zeroSync = () => heap.views().i32.fill(0, sync >> 2, (sync >> 2) + 16);
      // three ways to run one call: 3 parts taking units from the sync block, 3 static parts, 1 part
      const threeWays = (kernel: string, args: number[], out: number, n: number): Float32Array[] => {
        const results: Float32Array[] = [];
        for (const [parts, dynamic] of [[3, true], [3, false], [1, false]] as const) {
          heap.views().f32.fill(NaN, out >> 2, (out >> 2) + n);
          if (dynamic) zeroSync();
          b.pool.runParts(kernel, [...args, dynamic ? sync : 0], parts);
          results.push(read(out, n));
        }
        return results;
      };

      // gemm: [150 x 300] x [300 x 70] (f32), blocks smaller than MC x NC when split
      const M = 150, K = 300, N = 70;
      const A = f32(M * K), B = f32(K * N), C = f32(M * N);
      const gemmWs = heap.alloc(3 * (b.pool.call('gemm_scratch_bytes') as number));
      const g = threeWays('gemm', [0, 0, 1, M, N, K, A, K, 0, B, N, 0, C, N, 0, 0, gemmWs], C, M * N);
      sameBits(g[0]!, g[2]!, `gemm ${simd}: dynamic vs one part`);
      sameBits(g[1]!, g[2]!, `gemm ${simd}: static vs one part`);
      let ref = 0;
      for (let k = 0; k < K; k++) ref += read(A + (M - 1) * K * 4, K)[k]! * read(B, K * N)[k * N + N - 1]!;
      assert.ok(Math.abs(g[2]![M * N - 1]! - ref) < 1e-4, `gemm ${simd}: C[M-1][N-1]`);

      // convolutions: LeNet's conv2 with 10 images (3 grad-weight chunks of <= 4), f32
      const desc = heap.alloc(64);
      heap.views().i32.set([10, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1, 1, 0, 0], desc >> 2);
      const nx = 10 * 6 * 14 * 14, nw = 16 * 6 * 25, ny = 10 * 16 * 10 * 10;
      const X = f32(nx), Wt = f32(nw), DY = f32(ny), Y = f32(ny), DX = f32(nx), DW = f32(nw);
      const ws = heap.alloc(b.pool.call('conv2d_scratch_bytes', desc, 3) as number);
      for (const [kernel, args, out, n] of [
        ['conv2d_forward', [desc, 0, 0, X, Wt, 0, Y, ws], Y, ny],
        ['conv2d_grad_input', [desc, 0, 0, DY, Wt, DX, ws], DX, nx],
        ['conv2d_grad_weight', [desc, 0, 0, X, DY, DW, ws], DW, nw],
      ] as const) {
        const res = threeWays(kernel, [...args], out, n);
        assert.ok(res[2]!.every(Number.isFinite), `${kernel} ${simd}: every element written`);
        sameBits(res[0]!, res[2]!, `${kernel} ${simd}: dynamic vs one part`);
        sameBits(res[1]!, res[2]!, `${kernel} ${simd}: static vs one part`);
      }
      // grad-input by phases (stride 2): 2 images (8 units: units taken or static ranges) and 1 image (4 units: columns split)
      for (const n of [2, 1]) {
        heap.views().i32.set([n, 5, 9, 11, 7, 4, 4, 2, 2, 1, 1, 1, 1, 1, 0, 0], desc >> 2);
        const nx2 = n * 5 * 9 * 11, ny2 = n * 7 * 4 * 5;
        const DY2 = f32(ny2), W2 = f32(7 * 5 * 16), DX2 = f32(nx2);
        const ws2 = heap.alloc(b.pool.call('conv2d_scratch_bytes', desc, 3) as number);
        const res = threeWays('conv2d_grad_input', [desc, 0, 0, DY2, W2, DX2, ws2], DX2, nx2);
        assert.ok(res[2]!.every(Number.isFinite), `phased grad-input ${simd} N=${n}: every element written`);
        sameBits(res[0]!, res[2]!, `phased grad-input ${simd} N=${n}: dynamic vs one part`);
        sameBits(res[1]!, res[2]!, `phased grad-input ${simd} N=${n}: static vs one part`);
      }
    }
  });
});

describe('training with each build', () => {
  it('a LeNet fp16 step: native products only, loss within 1% of the reference', () => {
    const step = (name: string) =>
      on(name, () =>
        mx.scope(() => {
          mx.manualSeed(3);
          const model = new mx.models.LeNet();
          const g = new mx.Generator(4);
          const x = mx.randn([12, 3, 32, 32], { generator: g });
          const y = mx.randint(0, 10, [12], { generator: g });
          const loss = mx.amp.autocast({ dtype: 'float16' }, () => mx.nn.functional.crossEntropy(model.call(x) as Tensor, y));
          loss.backward();
          const grads = model.parameters().map((p) => Float32Array.from(p.grad!.dataSync()));
          const out = { loss: loss.dataSync()[0]!, grads };
          for (const p of model.parameters()) p.dispose();
          return out;
        }),
      );
    const ref = step('reference');
    for (const simd of VARIANTS) {
      const b = backends.get(simd)!.t3;
      const before = b.kernelStats();
      const got = step(`wgc-${simd}-t3`);
      const now = b.kernelStats();
      for (const k of ['bmm', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight']) {
        assert.ok((now[k]?.native ?? 0) > (before[k]?.native ?? 0), `${simd}: ${k} ran natively`);
        assert.equal(now[k]?.fallback ?? 0, before[k]?.fallback ?? 0, `${simd}: ${k} did not fall back`);
      }
      assert.ok(Math.abs(got.loss - ref.loss) <= 0.01 * Math.abs(ref.loss), `${simd}: loss ${got.loss} vs ${ref.loss}`);
      got.grads.forEach((gr, i) => {
        const e = ref.grads[i]!;
        const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        gr.forEach((v, j) => assert.ok(Math.abs(v - e[j]!) <= 0.05 * scale + 1e-6, `${simd}: grad ${i}[${j}] ${v} vs ${e[j]}`));
      });
    }
  });
});
