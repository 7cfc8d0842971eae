/**
 * nanoGPT's recipe pieces (src/train/gpt.ts: learning-rate schedule, AdamW parameter groups,
 * gradient accumulation) and `mixprec train-gpt` end to end: JSON eval lines with exactly the
 * contract's fields, the sample, a bitwise resume, Ctrl-C, bad input.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { runCli, interruptAtFirstStep } from './helpers/cli.js';
import { trainStepAccumulated, type StepContext } from '../src/train/classifier.js';
import { gptLoss, nanoGptLr, nanoGptParamGroups } from '../src/train/gpt.js';

test("nanoGptLr is nanoGPT's get_lr: linear warm-up, cosine decay, min_lr after", () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupIters: 100, lrDecayIters: 2000 };
  assert.equal(nanoGptLr(0, s), 1e-3 / 101);
  assert.equal(nanoGptLr(99, s), (1e-3 * 100) / 101);
  assert.equal(nanoGptLr(100, s), 1e-3);
  assert.ok(Math.abs(nanoGptLr(1050, s) - 5.5e-4) < 1e-15, 'half way: the mean of lr and minLr');
  assert.ok(Math.abs(nanoGptLr(2000, s) - 1e-4) < 1e-15);
  assert.equal(nanoGptLr(2001, s), 1e-4);
});

test('nanoGptParamGroups: weight decay on the 2-D weights only; the tied weight once', () => {
  const model = mx.models.gpt({ nLayer: 2, nHead: 2, nEmbd: 8, blockSize: 4, vocabSize: 5, bias: true, dropout: 0 });
  const [decay, nodecay] = nanoGptParamGroups(model, 0.1);
  assert.equal(decay!.weightDecay, 0.1);
  assert.equal(nodecay!.weightDecay, 0);
  assert.ok(decay!.params.every((p) => p.ndim === 2) && nodecay!.params.every((p) => p.ndim === 1));
  // wte(=lm_head), wpe, and per block c_attn, attn.c_proj, c_fc, mlp.c_proj
  assert.equal(decay!.params.length, 2 + 2 * 4);
  assert.equal(decay!.params.length + nodecay!.params.length, model.parameters().length);
  new mx.optim.AdamW(nanoGptParamGroups(model, 0.1), { lr: 1e-3 }); // no parameter in two groups
});

test('gradient accumulation: two micro-batches of 2 give the gradient of one batch of 4', async () => {
  const run = async (micro: number) => {
    const model = mx.models.gpt({ nLayer: 1, nHead: 2, nEmbd: 8, blockSize: 6, vocabSize: 7, bias: true, dropout: 0 }, { generator: new mx.Generator(1) });
    const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.1 });
    const ctx: StepContext = { model, optimizer, scaler: new mx.amp.GradScaler({ enabled: false }), precision: 'fp32', loss: (x, y) => gptLoss(model, x, y) };
    const data = mx.randint(0, 7, [4, 7], { generator: new mx.Generator(2) });
    const [x, y] = [data.narrow(1, 0, 6), data.narrow(1, 1, 6)];
    const size = 4 / micro;
    const batches = Array.from({ length: micro }, (_, i) => [x.narrow(0, i * size, size), y.narrow(0, i * size, size)] as const);
    const { loss } = trainStepAccumulated(ctx, batches);
    return { loss: await loss.item(), weight: Array.from(await model.getParameter('transformer.h.0.mlp.c_fc.weight').data()) };
  };
  const [one, two] = [await run(1), await run(2)];
  assert.ok(Math.abs(one.loss - two.loss) < 1e-6, `loss ${one.loss} vs ${two.loss}`);
  one.weight.forEach((w, i) => assert.ok(Math.abs(w - two.weight[i]!) < 1e-6, `weight ${i}`));
});

const cli = (args: string[]) => runCli(args);

function writeText(dir: string): string {
  const words = ['the', 'king', 'queen', 'sword', 'crown', 'night', 'day', 'love', 'war', 'and', 'of', 'my'];
  const gen = new mx.Generator(7);
  let text = '';
  for (let line = 0; line < 300; line++) text += `${Array.from({ length: 3 + gen.nextInt(0, 5) }, () => words[gen.nextInt(0, words.length)]).join(' ')}.\n`;
  const path = join(dir, 'verses.txt');
  writeFileSync(path, text);
  return path;
}

describe('mixprec train-gpt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixprec-gpt-'));
  const text = writeText(dir);
  const common = ['--data', text, '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '16', '--batch-size', '4', '--eval-iters', '2', '--warmup-iters', '2', '--lr-decay-iters', '6'];
  const events = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  it('trains, estimates the losses, samples and logs the eval lines with exactly their fields (fp16, grad-accum 2); --report', () => {
    const log = join(dir, 'run.jsonl');
    const html = join(dir, 'run.html');
    const r = cli(['train-gpt', ...common, '--max-iters', '6', '--eval-interval', '3', '--grad-accum', '2', '--sample-len', '40', '--prompt', 'the ', '--log-json', log, '--report', html]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /iter 3\/6: train loss \d+\.\d+, val loss \d+\.\d+, loss scale \d+, skipped steps \d+/);
    assert.match(r.stdout, /sample \(temperature 0\.8, top-k 200\):\nthe /);
    assert.match(r.stdout, /val loss: \d+\.\d+ \(train loss \d+\.\d+\) after 6 iterations, \d+ skipped steps, loss scale \d+/);
    const all = events(log);
    const evals = all.filter((e) => e['event'] === 'eval');
    assert.deepEqual(evals.map((e) => e['iter']), [0, 3, 6]);
    for (const e of evals) {
      assert.deepEqual(Object.keys(e), ['event', 'iter', 'train_loss', 'val_loss', 'loss_scale', 'skipped_steps']);
      for (const k of ['train_loss', 'val_loss', 'loss_scale', 'skipped_steps']) assert.equal(typeof e[k], 'number');
    }
    const steps = all.filter((e) => e['event'] === 'step');
    assert.deepEqual(steps.map((e) => e['iter']), [0, 1, 2, 3, 4, 5]);
    assert.equal(steps[0]!['lr'], 1e-3 / 3, 'warm-up');
    assert.equal((all.find((e) => e['event'] === 'sample')!['text'] as string).length, 4 + 40);
    const config = all[0]!;
    assert.deepEqual([config['event'], config['command'], config['model'], config['n_layer'], config['grad_accum']], ['config', 'train-gpt', 'gpt', 1, 2]);
    assert.match(r.stdout, /wrote the report .*run\.html/);
    assert.match(readFileSync(html, 'utf8'), /<html/i);
  });

  it('a checkpoint resumes bitwise: 3 iterations + resume to 6 equals 6 straight (fp16)', async () => {
    const straight = join(dir, 'straight.safetensors');
    const half = join(dir, 'half.safetensors');
    const [logA, logB] = [join(dir, 'a.jsonl'), join(dir, 'b.jsonl')];
    const a = cli(['train-gpt', ...common, '--max-iters', '6', '--eval-interval', '3', '--checkpoint', straight, '--sample-len', '0', '--log-json', logA]);
    assert.equal(a.code, 0, a.stderr);
    const b1 = cli(['train-gpt', ...common, '--max-iters', '3', '--eval-interval', '3', '--checkpoint', half, '--sample-len', '0']);
    assert.equal(b1.code, 0, b1.stderr);
    const b2 = cli(['train-gpt', ...common, '--max-iters', '6', '--eval-interval', '3', '--resume', half, '--checkpoint', half, '--sample-len', '0', '--log-json', logB]);
    assert.equal(b2.code, 0, b2.stderr);
    assert.match(b2.stdout, /resumed from .*half\.safetensors: iter 3/);
    const last = (s: string) => s.trim().split('\n').pop()!.replace(/, \d+ s$/, '');
    assert.equal(last(b2.stdout), last(a.stdout));
    // the resumed run does not repeat the estimate at iter 3, and its iter-6 line is the straight run's
    assert.deepEqual(events(logB).filter((e) => e['event'] === 'eval'), events(logA).filter((e) => e['event'] === 'eval' && e['iter'] === 6));
    const [ca, cb] = [await mx.io.loadCheckpoint(straight), await mx.io.loadCheckpoint(half)];
    assert.equal(cb.meta.step, 6);
    for (const [name, t] of ca.tensors) assert.deepEqual(await (cb.tensors.get(name) as Tensor).data(), await t.data(), `${name}: the same bits`);
  });

  it('Ctrl-C writes the checkpoint and exits 130; the run resumes from it', async () => {
    const ckpt = join(dir, 'interrupted.safetensors');
    const log = join(dir, 'interrupted.jsonl');
    const { code, stdout } = await interruptAtFirstStep(['train-gpt', ...common, '--max-iters', '100000', '--eval-interval', '100000', '--checkpoint', ckpt, '--log-json', log], log);
    assert.equal(code, 130);
    assert.match(stdout, /interrupted: checkpoint written to/);
    const { meta } = await mx.io.loadCheckpoint(ckpt);
    assert.ok(meta.step >= 1 && meta.step < 100000);
    const r = cli(['train-gpt', ...common, '--max-iters', String(meta.step + 2), '--eval-interval', '100000', '--resume', ckpt, '--sample-len', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`after ${meta.step + 2} iterations`));
  });

  it('bad input: no --data, heads that do not divide the width, a checkpoint of another command, a text too short, a launcher', () => {
    const noData = cli(['train-gpt']);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /--data FILE is required/);
    const heads = cli(['train-gpt', '--data', text, '--n-embd', '10', '--n-head', '4']);
    assert.equal(heads.code, 2);
    assert.match(heads.stderr, /--n-embd 10 must be divisible by --n-head 4/);
    const lmCkpt = join(dir, 'lm.safetensors');
    assert.equal(cli(['train-lm', '--data', text, '--hidden', '8', '--embed', '4', '--layers', '1', '--seq-len', '8', '--batch-size', '2', '--steps', '1', '--sample-len', '0', '--checkpoint', lmCkpt]).code, 0);
    const other = cli(['train-gpt', ...common, '--resume', lmCkpt]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /not a mixprec train-gpt checkpoint \(its metadata is of 'mixprec.train-lm'\)/);
    const tiny = join(dir, 'tiny.txt');
    writeFileSync(tiny, 'to be or not to be\n');
    const short = cli(['train-gpt', ...common, '--data', tiny]);
    assert.equal(short.code, 1);
    assert.match(short.stderr, /the validation split \(2 characters\) is too short for blocks of 16 \+ 1/);
    // started by a launcher (mixprec run sets WORLD_SIZE): train-gpt runs as one process, not one per rank alone
    const ranked = runCli(['train-gpt', ...common], { env: { WORLD_SIZE: '2', RANK: '0' } });
    assert.equal(ranked.code, 1);
    assert.match(ranked.stderr, /mixprec train-gpt: does not train data-parallel \(started by a launcher with WORLD_SIZE 2\)/);
  });
});
