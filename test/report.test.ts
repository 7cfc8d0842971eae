/**
 * `mixprec report` end to end: three real short runs of `mixprec train` on the bundled digits (fp32,
 * fp16 with a precision report, bf16) become one HTML page, opened in headless Chromium, whose
 * plots must hold, per run, as many points as the logs have (counted from the SVG the page
 * contains: each mark layer's group class and each item's ARIA label say what it is), and whose
 * screenshot the README shows; `--png` writes one valid PNG per plot; logs of train-lm, train-gan
 * and train-gpt read too; `--report` writes the page when training ends and on Ctrl-C.
 * Runs once, in the wasm pass of npm test; the browser part skips (saying why) without Chromium.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pngjs from 'pngjs';
import { interruptAtFirstStep, runCli } from './helpers/cli.js';
import { writeCifar } from './helpers/data.js';
import { chromiumPath, launchChromium, screenshotPath, type Browser } from './helpers/browser.js';

const suiteBackend = process.env['MIXPREC_BACKEND'];
const skip = suiteBackend && suiteBackend !== 'wasm' ? `runs once, in the wasm pass of npm test (MIXPREC_BACKEND=wasm), not the ${suiteBackend} one` : false;
const skipBrowser = skip || (chromiumPath ? false : 'Chromium is not installed (apt-get install chromium; .ci/run does)');

const PRECISIONS = ['fp32', 'fp16', 'bf16'] as const;
type Event = Record<string, unknown> & { event: string };

let work: string;
const cli = (args: string[]) => runCli(args, { cwd: work, env: { MIXPREC_BACKEND: 'wasm' }, timeout: 180_000 });
const events = (file: string): Event[] => readFileSync(join(work, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event);
const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'mixprec-report-'));
  // 2 epochs of 67 steps (batch 128 of the 8,500 training digits): real runs, a few seconds each.
  for (const p of PRECISIONS) {
    const r = cli(['train', '--dataset', 'digits', '--epochs', '2', '--batch-size', '128', '--precision', p, '--log-json', `${p}.jsonl`, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
  }
  // The precision report from a run of its own (recording it slows the steps the logs time).
  const r0 = cli(['train', '--dataset', 'digits', '--epochs', '1', '--batch-size', '128', '--precision', 'fp16', '--precision-report', 'precision.json', '--quiet']);
  assert.equal(r0.code, 0, r0.stderr);
  const r = cli(['report', 'fp32.jsonl', 'fp16.jsonl', 'bf16.jsonl', '--precision-report', 'precision.json', '--out', 'report.html', '--png', 'png']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote report\.html \(6 plots: loss, accuracy, loss_scale, throughput, gradient_histogram, gradient_histogram_per_parameter\)/);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Points per plot, per mark layer (`<name>_marks`), per run label: vertices of a line, else items. */
type Counts = Record<string, Record<string, Record<string, number>>>;

/** Runs in the page (no DOM typings here: the few members it uses are declared). */
function countPoints(): Counts {
  interface El {
    classList: Iterable<string> & { contains(c: string): boolean };
    getAttribute(name: string): string | null;
    querySelectorAll(selector: string): Iterable<El>;
    dataset: Record<string, string>;
  }
  const doc = (globalThis as unknown as { document: { querySelectorAll(selector: string): Iterable<El> } }).document;
  const out: Counts = {};
  for (const fig of doc.querySelectorAll('figure.plot')) {
    const marks: Record<string, Record<string, number>> = {};
    for (const g of fig.querySelectorAll('g.role-mark')) {
      const layer = [...g.classList].find((c) => c.endsWith('_marks'));
      if (!layer) continue;
      for (const item of g.querySelectorAll(':scope > path[aria-label]')) {
        const label = item.getAttribute('aria-label')!;
        const n = g.classList.contains('mark-line') ? (item.getAttribute('d')?.match(/[ML]/g) ?? []).length : 1;
        const forLayer = (marks[layer] ??= {});
        forLayer[label] = (forLayer[label] ?? 0) + n;
      }
    }
    out[fig.dataset['plot']!] = marks;
  }
  return out;
}

describe('mixprec report', { skip }, () => {
  it('renders the three runs and the precision report in Chromium: every plot, the right number of points per run', { skip: skipBrowser, timeout: 120_000 }, async (t) => {
    const browser: Browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1500 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
      // Offline: a request to anything but the file itself fails the test.
      await page.route(/^(?!file:)/, (route) => {
        errors.push(`network request: ${route.request().url()}`);
        return route.abort();
      });
      await page.goto(pathToFileURL(join(work, 'report.html')).href);
      const counts = (await page.evaluate(`(${countPoints.toString()})()`)) as Counts;
      const table = await page.$$eval('table.final tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent ?? '')));
      await page.screenshot({ path: screenshotPath('report.png') });
      assert.deepEqual(errors, []);
      assert.deepEqual(Object.keys(counts), ['loss', 'accuracy', 'loss_scale', 'throughput', 'gradient_histogram', 'gradient_histogram_per_parameter']);

      for (const p of PRECISIONS) {
        const log = events(`${p}.jsonl`);
        const steps = log.filter((e) => e.event === 'step');
        const epochs = log.filter((e) => e.event === 'epoch');
        assert.equal(log[0]!.event, 'config');
        assert.equal(log[0]!['precision'], p);
        assert.equal(steps.length, 134);
        assert.equal(epochs.length, 2);
        const lossPoints = steps.filter((e) => finite(e['loss'])).length;
        assert.equal(counts['loss']!['loss_marks']![p], lossPoints, `${p}: per-step loss`);
        assert.equal(counts['loss']!['smoothed_marks']![p], lossPoints, `${p}: smoothed loss`);
        assert.equal(counts['accuracy']!['evaluation_marks']![p], 2, `${p}: an accuracy point per epoch`);
        assert.equal(counts['loss_scale']!['scale_marks']![p], steps.length, `${p}: a loss scale per step`);
        const skipped = steps.filter((e) => e['skipped'] === true).length;
        assert.equal(counts['loss_scale']!['skipped_marks']?.[p] ?? 0, skipped, `${p}: a marker per skipped step`);
        if (p !== 'fp16') assert.equal(skipped, 0, 'no scaler, no skips');
        assert.equal(counts['throughput']!['throughput_marks']![p], 2, `${p}: throughput per epoch`);
        const row = table.find((r) => r[0] === p)!;
        assert.equal(row[3], `${((epochs[1]!['test_accuracy'] as number) * 100).toFixed(2)}%`, `${p}: final test accuracy in the table`);
        assert.equal(Number(row[5]), skipped, `${p}: skipped steps in the table`);
        t.diagnostic(`${p}: ${steps.length} steps, ${skipped} skipped, final scale ${String(steps.at(-1)!['loss_scale'])}, accuracy ${row[3]}`);
      }

      const report = JSON.parse(readFileSync(join(work, 'precision.json'), 'utf8')) as { scale: number; parameters: Record<string, { log2Histogram: Record<string, number> }> };
      assert.ok(report.scale > 1, 'fp16: a loss scale above 1');
      const scaled = `scale ${report.scale} (2^${Math.log2(report.scale)})`;
      const bins = (h: Record<string, number>) => Object.keys(h).filter((k) => h[k]! > 0);
      const all = new Set(Object.values(report.parameters).flatMap((p) => bins(p.log2Histogram)));
      for (const s of ['scale 1', scaled]) {
        assert.equal(counts['gradient_histogram']!['gradients_marks']![`all parameters · ${s}`], all.size, `summed histogram at ${s}`);
        for (const [name, p] of Object.entries(report.parameters)) {
          assert.equal(counts['gradient_histogram_per_parameter']!['gradients_marks']![`${name} · ${s}`], bins(p.log2Histogram).length, `${name} at ${s}`);
        }
      }
    } finally {
      await browser.close();
    }
  });

  it('--png: a valid PNG of each plot', () => {
    const files = readdirSync(join(work, 'png')).sort();
    assert.deepEqual(files, ['accuracy.png', 'gradient_histogram.png', 'gradient_histogram_per_parameter.png', 'loss.png', 'loss_scale.png', 'throughput.png']);
    for (const f of files) {
      const bytes = readFileSync(join(work, 'png', f));
      const png = pngjs.PNG.sync.read(bytes); // checks the signature, every chunk's CRC and the zlib stream
      assert.ok(png.width >= 600 && png.height >= 300, `${f}: ${png.width}x${png.height}`);
      let ink = 0;
      for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! < 200 || png.data[i + 1]! < 200 || png.data[i + 2]! < 200) ink++;
      const share = ink / (png.width * png.height);
      assert.ok(share > 0.01 && share < 0.9, `${f}: ${(share * 100).toFixed(1)}% of the pixels are drawn (axes, text, marks)`);
    }
    copyFileSync(join(work, 'png', 'gradient_histogram.png'), screenshotPath('gradient_histogram.png')); // the README's figure
  });

  it('reads the logs of train-lm, train-gan and train-gpt; --report writes the page when a run ends', { timeout: 180_000 }, () => {
    const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
    writeFileSync(join(work, 'text.txt'), text);
    const lm = cli(['train-lm', '--data', 'text.txt', '--steps', '8', '--eval-every', '4', '--batch-size', '4', '--seq-len', '16', '--hidden', '16', '--embed', '8', '--layers', '1', '--sample-len', '0', '--log-json', 'lm.jsonl', '--report', 'lm.html', '--quiet']);
    assert.equal(lm.code, 0, lm.stderr);
    assert.match(lm.stdout, /wrote the report lm\.html/);
    assert.ok(readFileSync(join(work, 'lm.html'), 'utf8').includes('data-plot="val_loss"'));
    const gan = cli(['train-gan', '--data', writeCifar(join(work, 'cifar')), '--iterations', '4', '--batch-size', '8', '--width', '4', '--sample-every', '0', '--out', 'gan-samples', '--log-json', 'gan.jsonl', '--quiet']);
    assert.equal(gan.code, 0, gan.stderr);
    // train-gpt's evaluation lines (the command is to come): iter, train_loss, val_loss, loss_scale, skipped_steps (since the start).
    const gpt = [
      { event: 'eval', iter: 0, train_loss: 4.2, val_loss: 4.21, loss_scale: 65536, skipped_steps: 0 },
      { event: 'eval', iter: 50, train_loss: 2.9, val_loss: 3.01, loss_scale: 32768, skipped_steps: 1 },
      { event: 'eval', iter: 100, train_loss: 2.5, val_loss: 2.62, loss_scale: 32768, skipped_steps: 1 },
    ];
    writeFileSync(join(work, 'gpt.jsonl'), gpt.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const r = cli(['report', 'lm.jsonl', 'gan.jsonl', 'gpt.jsonl', '--out', 'mixed.html', '--png', 'mixed']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(work, 'mixed')).sort(), [
      'train-gan-loss.png', 'train-gan-loss_scale.png', 'train-gan-throughput.png',
      'train-gpt-loss.png', 'train-gpt-loss_scale.png', 'train-gpt-val_loss.png',
      'train-lm-loss.png', 'train-lm-loss_scale.png', 'train-lm-throughput.png', 'train-lm-val_loss.png',
    ]);
    const html = readFileSync(join(work, 'mixed.html'), 'utf8');
    // The GAN's two losses per iteration, train-gpt's skip marked at the evaluation after it.
    assert.equal((html.match(/aria-label="gan D"/g) ?? []).length, 2, 'the D loss: per step and smoothed');
    const gptScale = html.slice(html.indexOf('data-plot="train-gpt-loss_scale"'));
    const skippedGroup = /<g class="mark-symbol role-mark skipped_marks"[^>]*>(.*?)<\/g>/.exec(gptScale)![1]!;
    assert.equal((skippedGroup.match(/aria-label="gpt"/g) ?? []).length, 1, 'one skip, at iteration 50');
    assert.ok(!/https?:\/\/(?!www\.w3\.org)/.test(html.replace(/"\$schema":"[^"]*"/g, '')), 'nothing to fetch: the page is self-contained');
  });

  it('--report on Ctrl-C: the page of the steps so far', async () => {
    const log = join(work, 'interrupted.jsonl');
    const { code, stdout } = await interruptAtFirstStep(['train', '--dataset', 'digits', '--epochs', '50', '--log-json', log, '--report', join(work, 'interrupted.html')], log);
    assert.equal(code, 130);
    assert.match(stdout, /wrote the report .*interrupted\.html/);
    const html = readFileSync(join(work, 'interrupted.html'), 'utf8');
    assert.ok(html.includes('data-plot="loss"') && html.includes('data-plot="loss_scale"'));
  });

  it('bad input: one line naming the file and line, non-zero exit', () => {
    writeFileSync(join(work, 'bad.jsonl'), '{"event":"step","step":1,"loss":2}\nnot json\n{"event":"step","step":2,"loss":1}\n');
    const r = cli(['report', 'bad.jsonl', '--out', 'bad.html']);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^mixprec report: bad\.jsonl line 2: not JSON .*expected the --log-json output of mixprec train/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(join(work, 'bad.html')), false);
    const missing = cli(['report', 'nope.jsonl']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.jsonl: no such file/);
    assert.equal(cli(['report']).code, 2);
  });
});
