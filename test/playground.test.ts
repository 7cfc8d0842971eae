/**
 * The browser playground end to end: `mixprec serve` serves the built page (dist/web) with the
 * COOP/COEP headers; headless Chromium (Debian's, WebGPU on SwiftShader) opens it, trains 200 steps
 * of LeNet fp16 on the bundled digits with the wasm backend (Web Worker threads: the page is
 * cross-origin isolated) and then with webgpu (SwiftShader has no shader-f16: float16 packed, which
 * the page must say), and the test reads what the page shows: the loss falls, the test accuracy is
 * above 80%, the loss and loss-scale plots hold a point per step of each run, the grid shows
 * predictions, and the console has no errors. The screenshot is the README's.
 * Runs once, in the wasm pass of npm test; skipped (saying why) without Chromium.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, ROOT } from './helpers/cli.js';
import { chromiumPath, launchChromium, screenshotPath, type Browser } from './helpers/browser.js';

const suiteBackend = process.env['MIXPREC_BACKEND'];
const skip = suiteBackend && suiteBackend !== 'wasm'
  ? `runs once, in the wasm pass of npm test (MIXPREC_BACKEND=wasm), not the ${suiteBackend} one`
  : chromiumPath ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does)';

/** WebGPU in headless Chromium without a GPU: SwiftShader (as test/browser_webgpu.test.ts). */
const WEBGPU_ARGS = ['--headless=new', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

let server: ChildProcess | null = null;
let url = '';
let browser: Browser | null = null;

before(async () => {
  if (skip) return;
  server = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mixprec serve printed no address in 30 s: ${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += String(d);
      const m = /mixprec playground: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    server!.stdout!.on('data', onData);
    server!.stderr!.on('data', onData);
    server!.on('exit', (code) => reject(new Error(`mixprec serve exited (${code}): ${output}`)));
  });
  browser = await launchChromium(WEBGPU_ARGS);
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGINT');
    await exited;
  }
});

test('mixprec serve: the page and the digits, cross-origin isolated, nothing outside the page folder', { skip }, async () => {
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  assert.match(await page.text(), /<script type="module" src="playground.js">/);
  const digits = await fetch(new URL('data/digits.bin', url));
  assert.equal(digits.status, 200);
  const bytes = new Uint8Array(await digits.arrayBuffer());
  assert.equal(String.fromCharCode(...bytes.subarray(0, 4)), 'MXDG');
  const view = new DataView(bytes.buffer);
  assert.deepEqual([view.getUint32(4, true), view.getUint32(8, true)], [8500, 1500], 'the 85/15 split of mixprec train --dataset digits');
  for (const path of ['/../package.json', '/%2e%2e/package.json', '/nope.js']) assert.equal((await fetch(new URL(path, url))).status, 404, path);
});

interface Shown {
  state: string;
  progress: string;
  loss: string;
  accuracy: string;
  backendInfo: string;
  storage: string;
  samples: number;
  /** Per plot, per run label: vertices of the line layer named. */
  points: Record<string, Record<string, number>>;
}

/** What the page shows, read from its DOM (runs in the page: no DOM typings here). */
function readPage(): Shown {
  type El = { textContent: string | null; getAttribute(n: string): string | null; querySelectorAll(s: string): ArrayLike<El> & Iterable<El> };
  const doc = (globalThis as unknown as { document: El & { getElementById(id: string): El; body: { dataset: Record<string, string> } } }).document;
  const text = (id: string) => doc.getElementById(id).textContent ?? '';
  const points: Record<string, Record<string, number>> = {};
  for (const [plot, layer] of [['loss', 'loss'], ['loss_scale', 'scale']] as const) {
    const counts: Record<string, number> = {};
    for (const path of doc.querySelectorAll(`figure[data-plot="${plot}"] g.${layer}_marks > path[aria-label]`)) {
      counts[path.getAttribute('aria-label')!] = (path.getAttribute('d')?.match(/[ML]/g) ?? []).length;
    }
    points[plot] = counts;
  }
  return {
    state: doc.body.dataset['state'] ?? '',
    progress: text('progress'),
    loss: text('loss'),
    accuracy: text('accuracy'),
    backendInfo: text('backend-info'),
    storage: text('storage'),
    samples: doc.querySelectorAll('#predictions .sample').length,
    points,
  };
}

test('the playground trains LeNet fp16 for 200 steps on wasm threads, then on WebGPU (packed float16)', { skip, timeout: 900_000 }, async (t) => {
  const page = await browser!.newPage({ viewport: { width: 1200, height: 1250 } });
  const errors: string[] = [];
  const warnings: string[] = [];
  page.on('console', (m) => (m.type() === 'error' ? errors : warnings).push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  // (page functions as source text: this file is compiled without the DOM's typings)
  await page.waitForFunction("document.getElementById('environment').textContent !== ''");
  assert.equal(await page.evaluate('globalThis.crossOriginIsolated'), true, 'served with COOP/COEP');
  const adapter = (await page.evaluate(`(async () => {
    const a = 'gpu' in navigator ? await navigator.gpu.requestAdapter() : null;
    return a ? { architecture: a.info.architecture, f16: a.features.has('shader-f16') } : null;
  })()`)) as { architecture: string; f16: boolean } | null;

  const trainRun = async (o: { backend: string; batch: number; evalEvery: number; testImages: number }): Promise<Shown> => {
    await page.selectOption('#backend', o.backend);
    await page.selectOption('#precision', 'fp16');
    await page.fill('#steps', '200');
    await page.fill('#batch-size', String(o.batch));
    await page.fill('#eval-every', String(o.evalEvery));
    await page.fill('#test-images', String(o.testImages));
    const started = Date.now();
    await page.click('#train');
    await page.waitForFunction("['done', 'error'].includes(document.body.dataset.state)", undefined, { timeout: 600_000, polling: 500 });
    const shown = (await page.evaluate(`(${readPage.toString()})()`)) as Shown;
    t.diagnostic(`${o.backend}: ${((Date.now() - started) / 1000).toFixed(0)} s; ${shown.backendInfo}; ${shown.storage}; loss ${shown.loss}; accuracy ${shown.accuracy}`);
    assert.equal(shown.state, 'done', `${await page.textContent('#message')}\n${errors.join('\n')}`);
    assert.equal(shown.progress, '200 / 200');
    const [first, last] = shown.loss.split('→').map((s) => Number(s.trim()));
    assert.ok(Number.isFinite(first) && Number.isFinite(last) && last! < first! * 0.5, `the loss falls: ${shown.loss}`);
    const accuracy = Number(/^([\d.]+)%$/.exec(shown.accuracy)?.[1]);
    assert.ok(accuracy > 80, `the accuracy shown is above 80%: ${shown.accuracy}`);
    const run = `${o.backend} fp16`;
    assert.equal(shown.points['loss']![run], 200, `${run}: a loss point per step`);
    assert.equal(shown.points['loss_scale']![run], 200, `${run}: a loss-scale point per step`);
    assert.equal(shown.samples, 32, 'the grid of test images with predicted labels');
    return shown;
  };

  // Batch 64, the test accuracy every 50 steps on the 1,500 test digits.
  const wasm = await trainRun({ backend: 'wasm', batch: 64, evalEvery: 50, testImages: 2000 });
  assert.match(wasm.backendInfo, /wasm · [2-9]\d* threads on Web Workers over shared memory \(cross-origin isolated\)/);

  if (!adapter) {
    t.diagnostic('this Chromium offers no WebGPU adapter: the webgpu half is skipped');
  } else {
    // SwiftShader runs the shaders on the CPU: batch 8 (Adam reaches ~88% in 200 steps), tested once at the end on 500 digits.
    const gpu = await trainRun({ backend: 'webgpu', batch: 8, evalEvery: 200, testImages: 500 });
    assert.match(gpu.backendInfo, /^backend: webgpu · adapter: \S/);
    if (adapter.f16) assert.match(gpu.storage, /float16 as f16 in the shaders/);
    else assert.match(gpu.storage, /float16 packed: two halves per 32-bit word/, 'the page says float16 runs packed');
    if (adapter.architecture === 'swiftshader') assert.equal(adapter.f16, false, 'SwiftShader has no shader-f16');
    // Both runs stay on the plots, overlaid.
    assert.equal(gpu.points['loss']!['wasm fp16'], 200);
  }
  await page.screenshot({ path: screenshotPath('playground.png') });
  assert.deepEqual(errors, [], 'no console errors');
  t.diagnostic(`console warnings: ${warnings.join(' | ') || 'none'}`);
  await page.close();
});
