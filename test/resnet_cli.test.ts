/**
 * `mixprec train --model resnet18 ...` end to end on a small image folder (two classes of 16x16
 * PNGs): from scratch with torchvision's stem (the default) and the cifar stem, fine-tuning from a weights file with a new head, a frozen
 * backbone, ImageNet normalisation and resizing, `mixprec eval` on its checkpoints, the offline
 * message for --pretrained imagenet, and the flags' one-line errors.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import * as mx from '../src/index.js';
import { runCli } from './helpers/cli.js';

let work: string;
let images: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'mixprec-resnet-cli-'));
  images = join(work, 'images');
  // Class 'left' is bright on the left half, 'right' on the right half, with per-image noise.
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const split of ['train', 'test']) {
    for (const cls of ['left', 'right']) {
      mkdirSync(join(images, split, cls), { recursive: true });
      for (let i = 0; i < (split === 'train' ? 48 : 16); i++) {
        const png = new pngjs.PNG({ width: 16, height: 16 });
        for (let p = 0; p < 256; p++) {
          const bright = (p % 16 < 8) === (cls === 'left');
          const v = Math.round((bright ? 180 : 60) + rand() * 60);
          png.data.set([v, v, 255 - v, 255], p * 4);
        }
        writeFileSync(join(images, split, cls, `${i}.png`), pngjs.PNG.sync.write(png));
      }
    }
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

const common = () => ['--dataset', 'imagefolder', '--data', images, '--batch-size', '16', '--backend', 'wasm'];

// The commands run on the wasm backend whichever suite runs this file: once (in the wasm suite) is enough.
const skip = process.env['MIXPREC_BACKEND'] === 'reference' && 'the CLI runs on wasm here; the wasm suite runs these';

describe('mixprec train --model resnet18', { skip }, () => {
  it('trains from scratch (cifar stem) and mixprec eval reads its checkpoint', () => {
    const ckpt = join(work, 'scratch.safetensors');
    const r = runCli(['train', '--model', 'resnet18', '--width', '4', '--stem', 'cifar', ...common(), '--epochs', '4', '--lr', '0.05', '--precision', 'bf16', '--checkpoint', ckpt]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /training resnet18 \(width 4, cifar stem\) on imagefolder .* of 3x16x16/);
    const acc = Number(/test accuracy: (\d+\.\d\d)%\s*$/.exec(r.stdout)![1]);
    assert.ok(acc >= 75, `learns the two classes (${acc}%)`);
    const ev = runCli(['eval', '--checkpoint', ckpt, '--backend', 'wasm']);
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, new RegExp(`test accuracy: ${acc.toFixed(2)}%\\s*$`), 'eval rebuilds the same network and data');
  });

  it("defaults to torchvision's stem (conv 7x7 stride 2 + max-pool) from scratch, also on small images", () => {
    const r = runCli(['train', '--model', 'resnet18', '--width', '4', ...common(), '--epochs', '1', '--lr', '0.05', '--precision', 'fp16']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /training resnet18 \(width 4, imagenet stem\) on imagefolder .* of 3x16x16, precision fp16, sgd lr 0\.05 cosine to 0,/);
    assert.match(r.stdout, /test accuracy: \d+\.\d\d%\s*$/);
  });

  it('fine-tunes from a weights file: new head, frozen backbone, ImageNet normalisation, resized images', async () => {
    // "Pretrained" weights: an imagenet-stem ResNet-18 of width 4 with 1000 classes, as torch.save would write it.
    mx.manualSeed(3);
    const pretrained = mx.models.createResNet('resnet18', { width: 4 });
    const weights = join(work, 'pretrained.pth');
    await mx.io.saveTorch(weights, pretrained.stateDict());
    const ckpt = join(work, 'tuned.safetensors');
    const r = runCli(['train', '--model', 'resnet18', '--width', '4', '--pretrained', weights, '--freeze-backbone', '--image-size', '24', ...common(), '--epochs', '1', '--lr', '0.05', '--precision', 'fp16', '--checkpoint', ckpt]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /training resnet18 \(width 4, imagenet stem, pretrained .*pretrained\.pth, 2-class head, backbone frozen\) on imagefolder .* of 3x24x24/);
    const { tensors, meta } = await mx.io.loadCheckpoint(ckpt);
    assert.equal(meta.normalize, 'imagenet');
    assert.equal(meta.resize, 24);
    assert.equal(meta.imageSize, 24);
    assert.deepEqual(tensors.get('fc.weight')!.shape, [2, 32]);
    // The backbone's weights are the file's, untouched; the head trained.
    const sd = pretrained.stateDict();
    for (const key of ['conv1.weight', 'layer3.1.conv2.weight', 'layer4.0.downsample.0.weight']) {
      assert.deepEqual([...(await tensors.get(key)!.storageData())], [...(await sd[key]!.storageData())], `${key} frozen`);
    }
    const ev = runCli(['eval', '--checkpoint', ckpt, '--backend', 'wasm']);
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /on imagefolder .* 32 test images/);
    assert.match(ev.stdout, /test accuracy: \d+\.\d\d%\s*$/);
  });

  it('--pretrained imagenet offline: one line naming the URL and where to place the file', async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const port = (dead.address() as { port: number }).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const home = join(work, 'home');
    const r = runCli(['train', '--model', 'resnet34', '--pretrained', 'imagenet', ...common(), '--epochs', '1'], {
      env: { MIXPREC_HOME: home, MIXPREC_WEIGHTS_URL: `http://127.0.0.1:${port}/models/` },
    });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`--pretrained imagenet: could not download http://127\\.0\\.0\\.1:${port}/models/resnet34-b627a593\\.pth \\(.*\\); offline, place the file by hand at ${home.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/checkpoints/resnet34-b627a593\\.pth`));
  });

  it('refuses flags that do not apply, in one line each', () => {
    const cases: [string[], RegExp][] = [
      [['--model', 'lenet', '--stem', 'cifar'], /--stem applies to --model resnet18\|resnet34\|resnet50 only/],
      [['--model', 'widecnn', '--pretrained', 'imagenet'], /--pretrained applies to --model resnet18/],
      [['--model', 'resnet18', '--freeze-backbone'], /--freeze-backbone needs --pretrained/],
      [['--model', 'resnet18', '--pretrained', 'imagenet', '--stem', 'cifar'], /--pretrained imagenet needs --stem imagenet/],
      [['--model', 'resnet18', '--pretrained', join(work, 'missing.pth')], /--pretrained .*missing\.pth: no such weights file/],
      [['--model', 'resnet18', '--stem', 'tiny'], /--stem must be one of cifar, imagenet/],
      [['--model', 'resnet18', '--lr-schedule', 'step'], /--lr-schedule must be one of constant, cosine/],
    ];
    for (const [flags, pattern] of cases) {
      const r = runCli(['train', ...flags, ...common()]);
      assert.notEqual(r.code, 0);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    }
  });
});
