/**
 * WideCNN (src/models/wide_cnn.ts) and the model factory: shapes and parameter names, a few training
 * steps lower the loss in fp32, fp16 (GradScaler) and bf16, and the CLI end to end with
 * `--model widecnn`: bench train JSON, train on small synthetic MNIST-format data, checkpoint, eval
 * from the checkpoint's metadata, and resuming a LeNet checkpoint into WideCNN (one-line error).
 * A small width (8) keeps it fast on the reference backend.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { createModel, WideCNN } from '../src/models/index.js';
import { scalerFor, trainStep, autocastDtype, PRECISIONS, type StepContext } from '../src/train/classifier.js';
import { runCli } from './helpers/cli.js';
import { writeMnist } from './helpers/data.js';

describe('WideCNN', () => {
  it('maps [N, C, S, S] to [N, classes] with the documented layers and names', () => {
    const m = new WideCNN({ width: 8 });
    const x = mx.randn([2, 3, 32, 32]);
    const y = mx.noGrad(() => m.call(x) as Tensor);
    assert.deepEqual(y.shape, [2, 10]);
    const names = Object.keys(m.stateDict());
    // 5 convs (weight only: no bias), 5 BatchNorms (weight, bias, running stats), the classifier.
    assert.equal(names.filter((n) => /^features\.\d+\.weight$/.test(n)).length, 10);
    assert.ok(!names.some((n) => /^features\.(0|3|7|10|14)\.bias$/.test(n)), 'convolutions have no bias');
    assert.deepEqual(m.features.at(0).stateDict()['weight']!.shape, [8, 3, 3, 3]);
    assert.deepEqual(m.features.at(14).stateDict()['weight']!.shape, [32, 16, 3, 3]);
    assert.deepEqual(m.classifier.weight.shape, [10, 32 * 4 * 4]);
    // MNIST-shaped input: 28 -> 14 -> 7 -> 3.
    const mn = new WideCNN({ inChannels: 1, imageSize: 28, numClasses: 5, width: 4 });
    assert.deepEqual(mn.classifier.weight.shape, [5, 16 * 3 * 3]);
    assert.deepEqual(mx.noGrad(() => mn.call(mx.randn([3, 1, 28, 28])) as Tensor).shape, [3, 5]);
    assert.throws(() => new WideCNN({ imageSize: 7 }), /too small \(need at least 8x8\)/);
    assert.throws(() => new WideCNN({ width: 0 }), /width must be a positive integer/);
  });

  it('createModel builds lenet and widecnn by name', () => {
    assert.ok(createModel('lenet') instanceof mx.models.LeNet);
    const w = createModel('widecnn', { width: 4, numClasses: 3 });
    assert.ok(w instanceof mx.models.WideCNN);
    assert.equal((w as WideCNN).width, 4);
    assert.equal(new WideCNN().width, 64, 'default width');
    assert.throws(() => createModel('lenet', { width: 8 }), /'lenet' has no width/);
    assert.throws(() => createModel('resnet' as never), /unknown model 'resnet'/);
  });

  for (const precision of PRECISIONS) {
    it(`a few ${precision} SGD steps on a tiny batch lower the loss`, async () => {
      mx.manualSeed(0);
      const model = new WideCNN({ width: 8 });
      const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
      const ctx: StepContext = { model, optimizer, scaler: scalerFor(precision), precision };
      const gen = new mx.Generator(1);
      const x32 = mx.randn([8, 3, 32, 32], { generator: gen });
      const dtype = autocastDtype(precision);
      const x = dtype ? x32.to(dtype) : x32;
      const y = mx.randint(0, 10, [8], { generator: gen });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const { loss } = trainStep(ctx, x, y);
        losses.push(await loss.item());
        loss.dispose();
      }
      assert.ok(losses.every(Number.isFinite), `finite losses: ${losses.join(', ')}`);
      assert.ok(losses[losses.length - 1]! < 0.7 * losses[0]!, `loss ${losses[0]} -> ${losses[losses.length - 1]} (${losses.map((l) => l.toFixed(3)).join(', ')})`);
      assert.equal(await ctx.scaler.getSkippedStepsAsync(), 0);
      // BatchNorm keeps float32 running statistics under autocast, and they moved.
      const bn = model.features.at(1) as mx.nn.BatchNorm2d;
      assert.equal(bn.runningMean!.dtype, 'float32');
      assert.equal((await bn.numBatchesTracked!.data())[0], 8);
      assert.ok([...(await bn.runningVar!.data())].some((v) => v !== 1));
      for (const p of model.parameters()) assert.equal(p.dtype, 'float32', 'parameters stay float32 (autocast casts copies)');
      if (x !== x32) x.dispose();
      x32.dispose();
      y.dispose();
    });
  }
});

/** stderr without the limit warnings Dawn (webgpu backend) prints when a device is created. */
const dawnQuiet = (stderr: string) => stderr.split('\n').filter((l) => !/^Warning: max\w+ artificially reduced/.test(l)).join('\n');

describe('mixprec CLI with --model widecnn', () => {
  const cli = (args: string[]) => runCli(args, { unset: ['MIXPREC_THREADS'] });
  let work: string;
  let mnist: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'mixprec-widecnn-'));
    mnist = join(work, 'mnist');
    writeMnist(mnist, 64, 20);
  });

  it('bench train --model widecnn prints the bench JSON with its width', () => {
    const r = cli(['bench', 'train', '--model', 'widecnn', '--width', '8', '--batch-size', '4', '--precision', 'fp16', '--steps', '1', '--warmup', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, r.stdout);
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    for (const k of ['img_per_s', 'peak_bytes', 'activation_bytes', 'seconds', 'step_ms', 'resident_bytes']) {
      assert.ok(typeof o[k] === 'number' && (o[k] as number) > 0, `${k} > 0 (${String(o[k])})`);
    }
    assert.equal(o['model'], 'widecnn');
    assert.equal(o['width'], 8);
    assert.equal(o['batch_size'], 4);
    assert.equal(o['precision'], 'fp16');
    assert.equal(o['backend'], mx.defaultBackendName());
    if (o['backend'] === 'webgpu') assert.ok('adapter' in o && 'subgroup_matrix' in o, 'GPU backends name the adapter and the subgroup-matrix path');
    else assert.ok(!('subgroup_matrix' in o), 'CPU backends have no subgroup_matrix');
    assert.ok(Number.isFinite(o['loss'] as number));
  });

  it('train --model widecnn trains and checkpoints; eval rebuilds WideCNN from the checkpoint; a lenet checkpoint does not resume into it', async () => {
    const ckpt = join(work, 'wide.safetensors');
    const base = ['train', '--dataset', 'mnist', '--data', mnist, '--batch-size', '16', '--epochs', '1', '--precision', 'fp16', '--quiet'];
    const r = cli([...base, '--model', 'widecnn', '--width', '8', '--checkpoint', ckpt]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^test accuracy: \d+\.\d\d%$/);
    const { meta, tensors } = await mx.io.loadCheckpoint(ckpt);
    assert.equal(meta.model, 'widecnn');
    assert.equal(meta.width, 8);
    assert.ok(tensors.has('features.0.weight') && tensors.has('classifier.weight'));

    const ev = cli(['eval', '--checkpoint', ckpt, '--data', mnist]);
    assert.equal(ev.code, 0, ev.stderr);
    const lines = ev.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => /^ {2}\S+ +(\d+\.\d\d| +-)%/.test(l)).length, 10);
    assert.match(lines[lines.length - 1]!, /^test accuracy: \d+\.\d\d%$/);

    const lenet = join(work, 'lenet.safetensors');
    assert.equal(cli([...base, '--checkpoint', lenet]).code, 0);
    const bad = cli([...base, '--model', 'widecnn', '--width', '8', '--resume', lenet]);
    assert.equal(bad.code, 1, bad.stderr);
    const errLines = dawnQuiet(bad.stderr).trim().split('\n');
    assert.equal(errLines.length, 1, bad.stderr);
    assert.match(errLines[0]!, /does not match the widecnn model for mnist: missing features\.0\.weight.*; unexpected conv1\./);
  });

  it('--width with lenet, and a bad width, are one-line usage errors', () => {
    for (const [args, message] of [
      [['train', '--width', '8'], /^mixprec train: --width applies to --model widecnn and the resnets only$/],
      [['train', '--model', 'widecnn', '--width', '0'], /^mixprec train: --width must be an integer >= 1 \(got '0'\)$/],
      [['train', '--model', 'vgg'], /^mixprec train: --model must be one of lenet, widecnn, resnet18, resnet34, resnet50 \(got 'vgg'\)$/],
      [['bench', 'train', '--width', '8'], /^mixprec bench train: --width applies to --model widecnn and the resnets only$/],
    ] as [string[], RegExp][]) {
      const r = cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const errLines = r.stderr.trim().split('\n');
      assert.equal(errLines.length, 1, r.stderr);
      assert.match(errLines[0]!, message);
    }
  });
});
