/**
 * The webgpu backend in a real browser (Debian's Chromium, headless, WebGPU on its SwiftShader
 * adapter): the backend's browser path (navigator.gpu, not the npm package `webgpu`) runs a float32
 * matmul, a float16 convolution, float16 and bfloat16 elementwise chains with softmax and sum, and
 * three fp16 LeNet training steps with a GradScaler; the results must match the reference backend's
 * in the same page, and the key kernels must have run as WGSL, not on the host fallback.
 * SwiftShader has no shader-f16, so float16 runs on the packed path (16-bit halves of u32 words,
 * computed in float32; docs/webgpu.md "Storage formats"), and the backend says so once.
 * Belongs to the webgpu pass of npm test; skipped (with the reason) when Chromium is not installed or
 * offers no WebGPU adapter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumPath, launchChromium, runPage, type Browser } from './helpers/browser.js';
import { compareValues, describeMismatch, type FloatDType } from './helpers/compare.js';

const suiteBackend = process.env['MIXPREC_BACKEND'];
const skip = suiteBackend !== 'webgpu'
  ? `runs in the webgpu pass of npm test (MIXPREC_BACKEND=webgpu), ${suiteBackend ? `not the ${suiteBackend} one` : 'and MIXPREC_BACKEND is not set'}`
  : chromiumPath ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does)';

/**
 * WebGPU in headless Chromium without a GPU: SwiftShader (Vulkan on the CPU). Chromium offers no other
 * CPU adapter: it skips adapters that cannot import external textures unless they are SwiftShader,
 * which rules out Mesa lavapipe (and its shader-f16).
 */
const WEBGPU_ARGS = ['--headless=new', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

const MM = { a: [192, 160], b: [160, 224] } as const;
const CONV = { x: [8, 3, 20, 20], w: [6, 3, 5, 5], out: [8, 6, 20, 20] } as const;
const CHAIN = [32, 100] as const;
/** Kernels the page's work needs; each must have run on the GPU every time (none on the host fallback). */
const GPU_ONLY = ['bmm', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight', 'maxPool2d', 'softmax', 'sum', 'mul', 'add', 'sgdUpdate', 'ampUnscale', 'ampUpdateScale'];

/** The page's script: everything it checks lands in window.result. */
const PAGE_SCRIPT = `
import '/src/tensor/methods.js';
import '/src/ops/conv.js';
import '/src/nn/functional.js';
import { setBackend } from '/src/backend/registry.js';
import { Generator, manualSeed } from '/src/random/generator.js';
import { randn, randint } from '/src/ops/creation.js';
import { matmul } from '/src/ops/linalg.js';
import { conv2d } from '/src/nn/functional.js';
import { LeNet } from '/src/models/lenet.js';
import { SGD } from '/src/optim/sgd.js';
import { scalerFor, trainStep } from '/src/train/classifier.js';

async function work() {
  const g = new Generator(7);
  const a = randn(${JSON.stringify(MM.a)}, { generator: g });
  const b = randn(${JSON.stringify(MM.b)}, { generator: g });
  const mm = Array.from(await matmul(a, b).data());
  const x = randn(${JSON.stringify(CONV.x)}, { generator: g }).to('float16');
  const w = randn(${JSON.stringify(CONV.w)}, { generator: g }).to('float16');
  const conv = Array.from(await conv2d(x, w, null, { padding: 2 }).data());
  // mul and add of 16-bit values are exact in float32 and rounded once: the same bits on both backends.
  const chains = {};
  for (const dtype of ['float16', 'bfloat16']) {
    const p = randn(${JSON.stringify(CHAIN)}, { generator: g }).to(dtype);
    const q = randn(${JSON.stringify(CHAIN)}, { generator: g }).to(dtype);
    const z = p.mul(q).add(p);
    chains[dtype] = {
      z: Array.from(await z.data()),
      softmax: Array.from(await z.softmax(-1).data()),
      sumSquares: Array.from(await z.mul(z).sum(1).data()),
    };
  }
  manualSeed(1);
  const model = new LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const ctx = { model, optimizer, scaler: scalerFor('fp16'), precision: 'fp16' };
  const xb = randn([16, 3, 32, 32], { generator: g }).to('float16');
  const yb = randint(0, 10, [16], { generator: g });
  const losses = [];
  for (let i = 0; i < 3; i++) {
    const { loss } = trainStep(ctx, xb, yb);
    losses.push(await loss.item());
    loss.dispose();
  }
  return { mm, conv, chains, losses };
}

try {
  // A Chromium without WebGPU (or without an adapter) is a reason to skip, not a failure.
  const probe = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  if (!navigator.gpu) window.result = { skip: 'this Chromium exposes no navigator.gpu' };
  else if (!probe) window.result = { skip: 'navigator.gpu offers no adapter' };
  else {
    const gpu = await setBackend('webgpu');
    const fast = await work();
    const info = {
      adapterDescription: gpu.adapterDescription,
      adapterInfo: { vendor: gpu.gpu.adapter.info.vendor, architecture: gpu.gpu.adapter.info.architecture, device: gpu.gpu.adapter.info.device, description: gpu.gpu.adapter.info.description },
      features: [...gpu.gpu.adapter.features].sort(),
      nativeF16: gpu.nativeF16,
      usedNavigatorGpu: gpu.gpu.gpu === navigator.gpu,
      kernelStats: gpu.kernelStats(),
    };
    await setBackend('reference');
    const ref = await work();
    window.result = { ...info, fast, ref };
  }
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`;

interface Work {
  mm: number[];
  conv: number[];
  chains: Record<'float16' | 'bfloat16', { z: number[]; softmax: number[]; sumSquares: number[] }>;
  losses: number[];
}

interface PageResult {
  error?: string;
  skip?: string;
  adapterDescription: string;
  adapterInfo: Record<'vendor' | 'architecture' | 'device' | 'description', string>;
  features: string[];
  nativeF16: boolean;
  usedNavigatorGpu: boolean;
  kernelStats: Record<string, { native: number; fallback: number }>;
  fast: Work;
  ref: Work;
}

let browser: Browser | null = null;

before(async () => {
  if (skip) return;
  browser = await launchChromium(WEBGPU_ARGS);
});

after(async () => {
  await browser?.close();
});

const maxAbs = (v: readonly number[]) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxDiff = (p: readonly number[], q: readonly number[]) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i]!)), 0);

/** Within one ulp of the 16-bit format at the reference's value, element by element. */
function assertWithinUlp(label: string, actual: readonly number[], expected: readonly number[], shape: readonly number[], dtype: FloatDType): void {
  const r = compareValues(actual, expected, dtype, 'elementwise');
  assert.ok(r.ok, describeMismatch(label, r, shape, dtype, 'elementwise'));
}

test('browser WebGPU (navigator.gpu): the webgpu backend matches the reference in the same page', { skip, timeout: 600_000 }, async (t) => {
  const { result: r, logs } = await runPage<PageResult>(browser!, PAGE_SCRIPT, { timeoutMs: 540_000 });
  if (r.skip) {
    t.skip(r.skip);
    return;
  }
  t.diagnostic(`adapter: ${r.adapterDescription} (${JSON.stringify(r.adapterInfo)}); nativeF16 ${r.nativeF16}; features: ${r.features.join(' ')}`);

  // The browser path: the page's GPU object, not Dawn's Node bindings.
  assert.equal(r.usedNavigatorGpu, true, 'the backend took navigator.gpu');
  assert.notEqual(r.adapterDescription.trim(), '', 'the adapter describes itself');
  assert.notEqual(r.adapterDescription, 'unknown adapter');
  // float16 is native exactly when the adapter has shader-f16 (nothing in a page can disable it).
  const hasF16 = r.features.includes('shader-f16');
  assert.equal(r.nativeF16, hasF16, `nativeF16 ${r.nativeF16}, adapter shader-f16 ${hasF16}`);
  if (r.adapterInfo.architecture === 'swiftshader') assert.equal(r.nativeF16, false, 'SwiftShader has no shader-f16: the packed float16 path');
  if (!r.nativeF16) assert.ok(logs.some((l) => /mixprec webgpu: .*packed/.test(l)), `the packed-path notice was printed:\n${logs.join('\n')}`);

  // Matching the reference proves little if the host fallback computed it: the key kernels ran as WGSL.
  const onHost = GPU_ONLY.filter((k) => (r.kernelStats[k]?.fallback ?? 0) > 0);
  assert.deepEqual(onHost, [], `kernels that ran on the host: ${JSON.stringify(r.kernelStats)}`);
  for (const k of ['bmm', 'conv2d', 'softmax', 'sum']) assert.ok((r.kernelStats[k]?.native ?? 0) > 0, `${k} ran on the GPU: ${JSON.stringify(r.kernelStats)}`);

  const { fast, ref } = r;
  // float32 matmul: the same products, summed in another order (tiles in workgroup memory).
  const mmDiff = maxDiff(fast.mm, ref.mm);
  assert.equal(fast.mm.length, MM.a[0] * MM.b[1]);
  assert.ok(mmDiff <= 1e-5 * maxAbs(ref.mm), `matmul differs from the reference by ${mmDiff} (max |ref| ${maxAbs(ref.mm)})`);
  // float16 conv: float32 accumulation rounded once; the orders differ, so one float16 ulp at most.
  const convDiff = maxDiff(fast.conv, ref.conv);
  assert.equal(fast.conv.length, CONV.out.reduce((n, d) => n * d, 1));
  assert.ok(convDiff <= 0.02, `conv2d (float16) differs from the reference by ${convDiff}`);
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const f = fast.chains[dtype];
    const e = ref.chains[dtype];
    assertWithinUlp(`${dtype} p*q+p`, f.z, e.z, CHAIN, dtype);
    assertWithinUlp(`${dtype} softmax`, f.softmax, e.softmax, CHAIN, dtype);
    assertWithinUlp(`${dtype} sum of squares`, f.sumSquares, e.sumSquares, [CHAIN[0]], dtype);
  }

  assert.equal(fast.losses.length, 3);
  fast.losses.forEach((l, i) => assert.ok(Math.abs(l - ref.losses[i]!) <= 2e-3 * Math.abs(ref.losses[i]!) + 1e-3, `step ${i}: loss ${l} vs reference ${ref.losses[i]}`));
  assert.ok(fast.losses[2]! < fast.losses[0]!, `the fp16 loss went down: ${fast.losses.join(', ')}`);
  const hostKernels = Object.entries(r.kernelStats).filter(([, v]) => v.fallback > 0).map(([k]) => k);
  t.diagnostic(`matmul max diff ${mmDiff.toExponential(2)}, conv ${convDiff.toExponential(2)}; losses ${fast.losses.join(', ')} (reference ${ref.losses.join(', ')}); host-fallback kernels: ${hostKernels.join(', ') || 'none'}`);
});
