/**
 * Long (MIXPREC_LONG=1, `npm run test:long`): the first 50 iterations of nanoGPT's CPU recipe on
 * Tiny Shakespeare (`mixprec train-gpt` with its defaults) on the webgpu backend (lavapipe here)
 * follow the wasm backend's: the same seed gives both the same weights and batches, and every
 * iteration's training loss agrees within 16-bit rounding noise, in fp32, fp16 and bf16.
 *
 * The two backends order their float32 sums differently (and round 16-bit results of different
 * float32 values), so the losses drift apart by rounding noise that grows slowly over the steps;
 * a real error (a wrong kernel) moves the loss by far more from the first iterations on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ROOT, runCli } from './helpers/cli.js';

const TEXT = resolve(ROOT, '..', 'shared', 'datasets', 'tinyshakespeare.txt');
const LONG = process.env['MIXPREC_LONG'] === '1';
/**
 * Largest |webgpu - wasm| / wasm over the 50 iterations' losses, per precision: a unit in the last
 * place of the 16-bit format (2^-10, 2^-7), float32's noise grown over 50 steps for fp32. (Measured
 * for fp16 on lavapipe: 5.7e-6.)
 */
const TOL = { fp32: 1e-4, fp16: 2 ** -10, bf16: 2 ** -7 } as const;

function losses(log: string): number[] {
  return readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; loss: number }).filter((e) => e.event === 'step').map((e) => e.loss);
}

const skip = !LONG ? 'long: set MIXPREC_LONG=1 (npm run test:long)' : !existsSync(TEXT) ? `${TEXT} not found (the shared datasets folder is not next to this checkout)` : false;

for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
  test(`50 iterations of the recipe on webgpu follow wasm (${precision})`, { skip, timeout: 3_600_000 }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mixprec-gpt-recipe-'));
    const runs: Record<string, number[]> = {};
    for (const backend of ['wasm', 'webgpu']) {
      const log = join(dir, `${backend}.jsonl`);
      const r = runCli(['train-gpt', '--data', TEXT, '--precision', precision, '--max-iters', '50', '--eval-interval', '50', '--eval-iters', '2', '--sample-len', '0', '--seed', '0', '--backend', backend, '--log-json', log, '--quiet'], { timeout: 3_000_000 });
      if (backend === 'webgpu' && r.code !== 0 && /no (GPU )?adapter|Vulkan|lavapipe/i.test(r.stderr)) {
        t.skip('no WebGPU adapter on this machine'); // reported as skipped, not as a pass that compared nothing
        return;
      }
      assert.equal(r.code, 0, r.stderr);
      runs[backend] = losses(log);
    }
    const [a, b] = [runs['wasm']!, runs['webgpu']!];
    assert.equal(a.length, 50);
    assert.equal(b.length, 50);
    let worst = 0;
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(b[i]! - v) / v)));
    console.log(`${precision}: wasm ${a[0]!.toFixed(4)} -> ${a[49]!.toFixed(4)}, webgpu ${b[0]!.toFixed(4)} -> ${b[49]!.toFixed(4)}, largest relative difference ${worst.toExponential(2)}`);
    assert.ok(worst <= TOL[precision], `${precision}: the losses differ by up to ${worst} relative (tolerance ${TOL[precision]})`);
    assert.ok(a[49]! < a[0]! - 0.5, 'the loss falls');
  });
}
