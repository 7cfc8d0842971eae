/**
 * `mixprec train-gan` and its parts: the DCGAN networks (shapes, the paper's init), the PNG grid
 * writer, the shared-GradScaler protocol of a GAN's two optimizers, and the CLI end to end on a
 * synthetic CIFAR-10 folder.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import * as mx from '../src/index.js';
import { DCGANGenerator, DCGANDiscriminator } from '../src/models/dcgan.js';
import { imageGrid, saveImageGrid } from '../src/io/png_grid.js';
import { ganStep, parseTrainGanArgs, sample, type GanContext } from '../src/cli/train_gan.js';
import { runCli } from './helpers/cli.js';
import { writeCifar } from './helpers/data.js';

const hostSteps = Boolean(mx.getBackend().readSync);
const stepResult = (stepped: boolean): boolean | undefined => (hostSteps ? stepped : undefined);

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'mixprec-gan-'));
});

async function stats(t: mx.Tensor): Promise<{ mean: number; std: number }> {
  const v = await t.data();
  let s = 0;
  for (const x of v) s += x;
  const mean = s / v.length;
  let q = 0;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, std: Math.sqrt(q / v.length) };
}

describe('DCGAN networks', () => {
  it('G: noise [N, 100, 1, 1] or [N, 100] -> images [N, 3, 32, 32] in [-1, 1]; D: images -> one logit each', async () => {
    mx.manualSeed(0);
    const G = new DCGANGenerator({ width: 8 });
    const D = new DCGANDiscriminator({ width: 8 });
    const x = G.call(mx.randn([4, 100, 1, 1])) as mx.Tensor;
    assert.deepEqual(x.shape, [4, 3, 32, 32]);
    for (const v of await x.data()) assert.ok(v >= -1 && v <= 1);
    assert.deepEqual((G.call(mx.randn([2, 100])) as mx.Tensor).shape, [2, 3, 32, 32]);
    assert.deepEqual((D.call(x) as mx.Tensor).shape, [4]);
    assert.throws(() => G.call(mx.randn([2, 50, 1, 1])), /DCGANGenerator: expected noise \[N, 100, 1, 1\], got \[2, 50, 1, 1\]/);
    assert.throws(() => D.call(mx.randn([2, 3, 28, 28])), /DCGANDiscriminator: expected images \[N, 3, 32, 32\], got \[2, 3, 28, 28\]/);
    // The layers the issue names, in order.
    const kinds = (m: mx.nn.Module) => m.modules().slice(2).map((c) => c.constructor.name);
    assert.deepEqual(kinds(G), ['ConvTranspose2d', 'BatchNorm2d', 'ReLU', 'ConvTranspose2d', 'BatchNorm2d', 'ReLU', 'ConvTranspose2d', 'BatchNorm2d', 'ReLU', 'ConvTranspose2d', 'Tanh']);
    assert.deepEqual(kinds(D), ['Conv2d', 'LeakyReLU', 'Conv2d', 'BatchNorm2d', 'LeakyReLU', 'Conv2d', 'BatchNorm2d', 'LeakyReLU', 'Conv2d']);
  });

  it("the paper's init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0", async () => {
    mx.manualSeed(1);
    for (const model of [new DCGANGenerator({ width: 16 }), new DCGANDiscriminator({ width: 16 })]) {
      for (const [name, p] of model.namedParameters()) {
        const s = await stats(p);
        const isBn = p.ndim === 1;
        if (name.endsWith('.bias')) assert.deepEqual(s, { mean: 0, std: 0 }, name);
        else if (isBn) assert.ok(Math.abs(s.mean - 1) < 0.02 && Math.abs(s.std - 0.02) < 0.01, `${name}: ${JSON.stringify(s)}`);
        else if (p.numel > 1000) assert.ok(Math.abs(s.mean) < 0.003 && Math.abs(s.std - 0.02) < 0.003, `${name}: ${JSON.stringify(s)}`);
      }
    }
  });
});

describe('PNG grid', () => {
  it('64 images -> 8x8 grid of 32x32 with a 2-px black border; [-1, 1] -> 0..255, clamped, NaN black', () => {
    const values = new Float32Array(64 * 3 * 32 * 32).fill(1);
    values[0] = -1; // image 0, R, (0, 0)
    values[1] = 0; // image 0, R, (0, 1)
    values[2] = 5; // clamped
    values[3] = NaN;
    values[1024 + 0] = -3; // image 0, G, (0, 0): clamped to 0
    const grid = imageGrid(values, [64, 3, 32, 32]);
    assert.equal(grid.width, 8 * 34 + 2);
    assert.equal(grid.height, 8 * 34 + 2);
    const px = (x: number, y: number) => [...grid.data.subarray((y * grid.width + x) * 4, (y * grid.width + x) * 4 + 4)];
    assert.deepEqual(px(0, 0), [0, 0, 0, 255], 'border');
    assert.deepEqual(px(34, 10), [0, 0, 0, 255], 'border between images');
    assert.deepEqual(px(2, 2), [0, 0, 255, 255]);
    assert.deepEqual(px(3, 2), [128, 255, 255, 255]);
    assert.deepEqual(px(4, 2), [255, 255, 255, 255]);
    assert.deepEqual(px(5, 2), [0, 255, 255, 255]);
    assert.deepEqual(px(36, 36), [255, 255, 255, 255], 'image 9 at row 1, column 1');
    assert.throws(() => imageGrid(values, [64, 2, 32, 48]), /expected 1 or 3 channels/);
    assert.throws(() => imageGrid(values, [64, 3, 32, 31]), /do not fill/);
  });

  it('saveImageGrid writes a PNG atomically (no temporary file left) that decodes to the grid', async () => {
    const dir = join(work, 'grid');
    mkdirSync(dir);
    const t = mx.tensor(Array.from({ length: 5 * 1 * 4 * 4 }, (_, i) => (i % 7) / 3 - 1), { shape: [5, 1, 4, 4], dtype: 'float16' });
    await saveImageGrid(join(dir, 'g.png'), t, { nrow: 3 });
    assert.deepEqual(readdirSync(dir), ['g.png']);
    const png = pngjs.PNG.sync.read(readFileSync(join(dir, 'g.png')));
    const expected = imageGrid(await t.data(), t.shape, { nrow: 3 });
    assert.equal(png.width, 3 * 6 + 2);
    assert.equal(png.height, 2 * 6 + 2);
    assert.deepEqual(new Uint8Array(png.data), expected.data);
  });
});

describe('one GradScaler shared by the two optimizers', () => {
  async function snapshot(m: mx.nn.Module): Promise<Float32Array[]> {
    return Promise.all(m.parameters().map(async (p) => Float32Array.from(await p.data())));
  }
  const same = (a: Float32Array[], b: Float32Array[]) => a.every((x, i) => x.every((v, j) => Object.is(v, b[i]![j])));

  it("D overflows, G not: D skips, G steps, the scale backs off once; clean next iteration steps both", async () => {
    mx.manualSeed(2);
    const G = new DCGANGenerator({ width: 2, latentDim: 4 });
    const D = new DCGANDiscriminator({ width: 2 });
    const events: mx.amp.ScalerStepEvent[] = [];
    const scaler = new mx.amp.GradScaler({ initScale: 1024, onStep: (e) => events.push(e) });
    const adam = { lr: 2e-4, betas: [0.5, 0.999] as const };
    const ctx: GanContext = { generator: G, discriminator: D, optG: new mx.optim.Adam(G.parameters(), adam), optD: new mx.optim.Adam(D.parameters(), adam), scaler, precision: 'fp16' };

    // Real images of Inf: D's loss, and so its gradients, are non-finite; G's loss only sees D(fake).
    let g0 = await snapshot(G);
    let d0 = await snapshot(D);
    const r1 = ganStep(ctx, mx.full([4, 3, 32, 32], Infinity, { dtype: 'float16' }));
    assert.ok(!Number.isFinite(await r1.lossD.item()));
    assert.ok(Number.isFinite(await r1.lossG.item()));
    assert.equal(r1.steppedD, stepResult(false), "D's step is skipped: its own gradients overflowed");
    assert.equal(r1.steppedG, stepResult(true), "G's step runs: each optimizer decides on its own gradients (PyTorch)");
    assert.ok(same(await snapshot(D), d0), "D's parameters are unchanged");
    assert.ok(!same(await snapshot(G), g0), "G's parameters moved");
    assert.equal(await scaler.getScaleAsync(), 512, 'update() once: backed off exactly once');
    assert.equal(await scaler.getSkippedStepsAsync(), 1);
    await scaler.flush();
    assert.deepEqual(events, [{ scale: 512, foundInf: true, skipped: true }]);

    g0 = await snapshot(G);
    d0 = await snapshot(D);
    const r2 = ganStep(ctx, mx.rand([4, 3, 32, 32]).mul(2).sub(1).half());
    assert.equal(r2.steppedD, stepResult(true));
    assert.equal(r2.steppedG, stepResult(true));
    assert.ok(!same(await snapshot(D), d0), "D's parameters moved");
    assert.ok(!same(await snapshot(G), g0), "G's parameters moved");
    assert.equal(await scaler.getScaleAsync(), 512, 'no change after one clean iteration');
    assert.equal(await scaler.getSkippedStepsAsync(), 1);
    await scaler.flush();
    assert.deepEqual(events[1], { scale: 512, foundInf: false, skipped: false });
    for (const m of [G, D]) for (const p of m.parameters()) for (const v of await p.data()) assert.ok(Number.isFinite(v));
    // D's parameters require grad again after the G step froze them.
    assert.ok(D.parameters().every((p) => p.requiresGrad));
  });

  it('both overflow (a loss scale too large for float16): both skip, and update() backs off once, not twice', async () => {
    mx.manualSeed(5);
    const G = new DCGANGenerator({ width: 2, latentDim: 4 });
    const D = new DCGANDiscriminator({ width: 2 });
    const events: mx.amp.ScalerStepEvent[] = [];
    const scaler = new mx.amp.GradScaler({ initScale: 2 ** 40, onStep: (e) => events.push(e) });
    const adam = { lr: 2e-4, betas: [0.5, 0.999] as const };
    const ctx: GanContext = { generator: G, discriminator: D, optG: new mx.optim.Adam(G.parameters(), adam), optD: new mx.optim.Adam(D.parameters(), adam), scaler, precision: 'fp16' };
    const [g0, d0] = [await snapshot(G), await snapshot(D)];
    const r = ganStep(ctx, mx.rand([4, 3, 32, 32]).mul(2).sub(1).half());
    assert.ok(Number.isFinite(await r.lossD.item()) && Number.isFinite(await r.lossG.item()), 'the losses are finite: only the scaled float16 gradients overflow');
    assert.equal(r.steppedD, stepResult(false));
    assert.equal(r.steppedG, stepResult(false));
    assert.ok(same(await snapshot(D), d0) && same(await snapshot(G), g0), 'neither network moved');
    assert.equal(await scaler.getScaleAsync(), 2 ** 39, 'one backoff for the iteration');
    await scaler.flush();
    assert.deepEqual(events, [{ scale: 2 ** 39, foundInf: true, skipped: true }]);
  });

  it('an fp16 GAN iteration keeps the same live buffers after every step (one scope)', async () => {
    mx.manualSeed(6);
    const G = new DCGANGenerator({ width: 2, latentDim: 4 });
    const D = new DCGANDiscriminator({ width: 2 });
    const adam = { lr: 2e-4, betas: [0.5, 0.999] as const };
    const ctx: GanContext = { generator: G, discriminator: D, optG: new mx.optim.Adam(G.parameters(), adam), optD: new mx.optim.Adam(D.parameters(), adam), scaler: new mx.amp.GradScaler(), precision: 'fp16' };
    const real = mx.rand([4, 3, 32, 32]).mul(2).sub(1).half();
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = ganStep(ctx, real);
      assert.ok(Number.isFinite(await r.lossD.item()) && Number.isFinite(await r.lossG.item()));
      r.lossD.dispose();
      r.lossG.dispose();
      counts.push(mx.memory().liveBuffers);
    }
    assert.deepEqual(counts.slice(2), counts.slice(1, -1), `live buffers per iteration: ${counts.join(', ')}`);
  });

  it('samples in eval mode without gradients, then returns to training mode', async () => {
    mx.manualSeed(3);
    const G = new DCGANGenerator({ width: 2, latentDim: 4 });
    const z = mx.randn([3, 4, 1, 1]);
    const before = await G.modules().find((m) => m instanceof mx.nn.BatchNorm2d)!.runningMean!.data();
    const x = sample(G, z, 'fp16');
    assert.equal(x.dtype, 'float32');
    assert.equal(x.requiresGrad, false);
    assert.deepEqual(x.shape, [3, 3, 32, 32]);
    assert.equal(G.training, true);
    const after = await G.modules().find((m) => m instanceof mx.nn.BatchNorm2d)!.runningMean!.data();
    assert.deepEqual(after, before, 'eval mode: running statistics untouched');
  });
});

describe('mixprec train-gan', () => {
  const cli = (args: string[]) => runCli(args, { cwd: work, timeout: 120_000 });

  it('trains, writes sample grids and JSON lines', () => {
    const data = writeCifar(join(work, 'cifar'));
    const out = join(work, 'samples');
    const log = join(work, 'gan.jsonl');
    const r = cli(['train-gan', '--data', data, '--iterations', '4', '--batch-size', '8', '--width', '4', '--sample-every', '2', '--out', out, '--log-json', log, '--seed', '1']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[lines.length - 1]!, /^done: 4 iterations in [\d.]+ s {2}loss_d [\d.]+ {2}loss_g [\d.]+ {2}skipped steps \d+ \([\d.]+%\) {2}loss scale \d+ {2}weights finite$/);
    assert.deepEqual(readdirSync(out).sort(), ['samples-000000.png', 'samples-000002.png', 'samples-000004.png', 'samples-final.png']);
    for (const f of readdirSync(out)) {
      const png = pngjs.PNG.sync.read(readFileSync(join(out, f)));
      assert.deepEqual([png.width, png.height], [274, 274], f);
    }
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const iters = events.filter((e) => e.event === 'iteration');
    assert.deepEqual(iters.map((e) => e.iteration), [1, 2, 3, 4]);
    for (const e of iters) {
      assert.deepEqual(Object.keys(e), ['event', 'iteration', 'loss_d', 'loss_g', 'loss_scale', 'skipped']);
      assert.equal(typeof e.skipped, 'boolean');
      assert.ok(e.loss_scale > 0);
    }
    const end = events[events.length - 1];
    assert.equal(end.event, 'end');
    assert.equal(end.finite_weights, true);
  });

  it('bad input: one line, non-zero exit', () => {
    const oneLine = (res: ReturnType<typeof cli>, pattern: RegExp, code: number) => {
      assert.equal(res.code, code, res.stderr);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      assert.match(res.stderr, pattern);
    };
    oneLine(cli(['train-gan', '--data', join(work, 'nope')]), /--data .*nope: no such file or folder/, 1);
    oneLine(cli(['train-gan', '--lr', '1']), /Unknown option '--lr'/, 2);
    assert.throws(() => parseTrainGanArgs(['--precision', 'fp8']), /--precision must be one of fp32, fp16, bf16 \(got 'fp8'\)/);
    assert.throws(() => parseTrainGanArgs(['--batch-size', '1']), /--batch-size must be an integer >= 2/);
    assert.throws(() => parseTrainGanArgs(['--width', '0']), /--width must be an integer >= 1/);
    assert.throws(() => parseTrainGanArgs(['--out', '']), /--out needs a value/);
    const d = parseTrainGanArgs([]);
    assert.deepEqual([d.iterations, d.batchSize, d.width, d.precision, d.sampleEvery], [1500, 64, 32, 'fp16', 500]);
  });
});
