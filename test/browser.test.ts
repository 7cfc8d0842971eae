/**
 * The wasm backend in a real browser (Debian's Chromium, headless, driven by playwright-core): the
 * compiled modules are served over HTTP, a page selects the wasm backend and runs a matmul, a
 * convolution and a float16 training step, and the results must equal the reference backend's in
 * the same page.
 * - cross-origin isolated page (COOP/COEP headers): the pool runs module Web Workers over shared
 *   memory, one per core (at least 2 threads here);
 * - plain page: no SharedArrayBuffer, so the pool says why and runs on the page's thread.
 * Skipped (with the reason) when Chromium is not installed: `.ci/run` installs it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromiumPath, launchChromium, runPage as runPageScript, type Browser } from './helpers/browser.js';

// `npm test` runs every suite once per backend: this one (it picks its backends itself) belongs to the wasm pass.
const suiteBackend = process.env['MIXPREC_BACKEND'];
const skip = suiteBackend && suiteBackend !== 'wasm'
  ? `runs in the wasm pass of npm test (MIXPREC_BACKEND=wasm), not the ${suiteBackend} one`
  : chromiumPath ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does)';

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
  const g = new Generator(5);
  const a = randn([192, 160], { generator: g });
  const b = randn([160, 224], { generator: g });
  const mm = Array.from(await matmul(a, b).data());
  const x = randn([8, 3, 20, 20], { generator: g }).to('float16');
  const w = randn([6, 3, 5, 5], { generator: g }).to('float16');
  const conv = Array.from(await conv2d(x, w, null, { padding: 2 }).data());
  manualSeed(1);
  const model = new LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const ctx = { model, optimizer, scaler: scalerFor('fp16'), precision: 'fp16' };
  const xb = randn([16, 3, 32, 32], { generator: g }).to('float16');
  const yb = randint(0, 10, [16], { generator: g });
  const losses = [];
  for (let i = 0; i < 3; i++) losses.push(await trainStep(ctx, xb, yb).loss.item());
  return { mm, conv, losses };
}

try {
  const wasm = await setBackend('wasm');
  const fast = await work();
  const info = { threads: wasm.threads, degraded: wasm.pool?.degraded ?? null };
  await setBackend('reference');
  const ref = await work();
  const maxDiff = (p, q) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - q[i])), 0);
  window.result = {
    ...info,
    isolated: globalThis.crossOriginIsolated === true,
    mmDiff: maxDiff(fast.mm, ref.mm), mmRefMax: ref.mm.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
    convDiff: maxDiff(fast.conv, ref.conv),
    losses: fast.losses, refLosses: ref.losses,
  };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
`;

let browser: Browser | null = null;

before(async () => {
  if (skip) return;
  browser = await launchChromium(['--disable-gpu']);
});

after(async () => {
  await browser?.close();
});

interface PageResult {
  error?: string;
  threads: number;
  degraded: string | null;
  isolated: boolean;
  mmDiff: number;
  mmRefMax: number;
  convDiff: number;
  losses: number[];
  refLosses: number[];
}

async function runPage(isolated: boolean): Promise<PageResult> {
  return (await runPageScript<PageResult>(browser!, PAGE_SCRIPT, { isolated })).result;
}

function checkNumbers(r: PageResult): void {
  // float32 matmul: the same products, summed in another order (packed SIMD blocks).
  assert.ok(r.mmDiff <= 1e-5 * r.mmRefMax, `matmul differs from the reference by ${r.mmDiff}`);
  // float16 conv: float32 accumulation rounded once; the orders differ, so one float16 ulp at most.
  assert.ok(r.convDiff <= 0.02, `conv2d (float16) differs from the reference by ${r.convDiff}`);
  assert.equal(r.losses.length, 3);
  r.losses.forEach((l, i) => assert.ok(Math.abs(l - r.refLosses[i]!) <= 2e-3 * Math.abs(r.refLosses[i]!) + 1e-3, `step ${i}: loss ${l} vs reference ${r.refLosses[i]}`));
  assert.ok(r.losses[2]! < r.losses[0]!, `the fp16 loss went down: ${r.losses.join(', ')}`);
}

test('browser, cross-origin isolated: the wasm backend runs on Web Workers and matches the reference', { skip, timeout: 300_000 }, async () => {
  const r = await runPage(true);
  assert.equal(r.isolated, true);
  assert.equal(r.degraded, null, 'no reason to run single-threaded');
  assert.ok(r.threads >= 2, `threads: ${r.threads} (navigator.hardwareConcurrency on this machine is at least 2)`);
  checkNumbers(r);
});

test('browser, not isolated: no SharedArrayBuffer, one thread, the same numbers', { skip, timeout: 300_000 }, async () => {
  const r = await runPage(false);
  assert.equal(r.isolated, false);
  assert.equal(r.threads, 1);
  assert.match(String(r.degraded), /SharedArrayBuffer/);
  checkNumbers(r);
});
