/**
 * The LSTM language model: the sequence op behind nn.LSTM (lstm_layer.ts) against a loop of
 * F.lstmCell; the autograd engine's slice gradients; character data; float16 gradient underflow
 * without loss scaling (measured with the precision report) and with a GradScaler; and
 * `mixprec train-lm` end to end (logs, sample, checkpoint and bitwise resume, bad input).
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { runCli, interruptAtFirstStep } from './helpers/cli.js';
import { trainStep, type StepContext } from '../src/train/classifier.js';
import { lmLoss } from '../src/train/language_model.js';

const F = mx.nn.functional;

/** Row i of the first axis (PyTorch's select(0, i)). */
const row = (t: Tensor, i: number): Tensor => t.narrow(0, i, 1).squeeze(0);

async function values(t: Tensor): Promise<number[]> {
  return [...((await t.float().data()) as Float32Array)];
}

function assertClose(actual: readonly number[], expected: readonly number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1e-3, ...expected.map(Math.abs));
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    assert.ok(d <= tol * scale, `${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (|diff| ${d} > ${tol} x ${scale})`);
  }
}

/** nn.LSTM's result and gradients, and the same weights run cell by cell with F.lstmCell. */
async function lstmAgainstCells(options: { layers: number; bidirectional: boolean; autocast?: 'float16' | 'bfloat16'; dtype?: 'float32' | 'float64' }) {
  const [T, B, I, H] = [5, 3, 4, 6];
  mx.manualSeed(11);
  const dtype = options.dtype ?? 'float32';
  const lstm = new mx.nn.LSTM(I, H, { numLayers: options.layers, bidirectional: options.bidirectional, dtype });
  const x0 = mx.randn([T, B, I], { dtype });
  const D = options.bidirectional ? 2 : 1;
  const h0 = mx.randn([options.layers * D, B, H], { dtype }).mul(0.5);
  const c0 = mx.randn([options.layers * D, B, H], { dtype }).mul(0.5);
  const wy = mx.randn([T, B, D * H]); // weighs every output differently in the loss
  const run = (fn: () => Tensor) => (options.autocast ? mx.amp.autocast({ dtype: options.autocast }, fn) : fn());
  const results: { out: number[]; grads: number[][] }[] = [];
  for (const path of ['layer', 'cells'] as const) {
    const x = x0.clone().requiresGrad_();
    lstm.zeroGrad();
    const loss = run(() => {
      let y: Tensor;
      let hN: Tensor;
      let cN: Tensor;
      if (path === 'layer') [y, [hN, cN]] = lstm.call(x, [h0, c0]) as [Tensor, [Tensor, Tensor]];
      else {
        // the definition: every layer and direction one F.lstmCell per time step
        let input = x;
        const hs: Tensor[] = [];
        const cs: Tensor[] = [];
        for (let l = 0; l < options.layers; l++) {
          const dirs: Tensor[] = [];
          for (let d = 0; d < D; d++) {
            const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
            const w = (name: string) => (lstm as unknown as Record<string, Tensor>)[name + sfx]!;
            let state: [Tensor, Tensor] = [row(h0, l * D + d), row(c0, l * D + d)];
            const outs: Tensor[] = new Array<Tensor>(T);
            for (let k = 0; k < T; k++) {
              const t = d === 1 ? T - 1 - k : k;
              state = F.lstmCell(row(input, t), state, w('weight_ih'), w('weight_hh'), w('bias_ih'), w('bias_hh'));
              outs[t] = state[0];
            }
            dirs.push(mx.stack(outs, 0));
            hs.push(state[0]);
            cs.push(state[1]);
          }
          input = D === 1 ? dirs[0]! : mx.cat(dirs, 2);
        }
        [y, hN, cN] = [input, mx.stack(hs, 0), mx.stack(cs, 0)];
      }
      // a loss that weighs every output and both final states differently
      return y.float().mul(wy).sum().add(hN.float().mul(0.3).sum()).add(cN.float().square().mul(0.2).sum());
    });
    loss.backward();
    const grads = [await values(x.grad!), ...(await Promise.all(lstm.parameters().map((p) => values(p.grad!))))];
    results.push({ out: [await loss.item()], grads });
  }
  return results as [{ out: number[]; grads: number[][] }, { out: number[]; grads: number[][] }];
}

describe('nn.LSTM as one op per layer (lstm_layer.ts)', () => {
  it('float64 and float32: the same outputs and gradients as a loop of F.lstmCell (2 layers, bidirectional)', async () => {
    for (const [dtype, tol] of [['float64', 1e-12], ['float32', 2e-5]] as const) {
      for (const bidirectional of [false, true]) {
        const [layer, cells] = await lstmAgainstCells({ layers: 2, bidirectional, dtype });
        assertClose(layer.out, cells.out, tol, `${dtype} loss`);
        layer.grads.forEach((g, i) => assertClose(g, cells.grads[i]!, tol, `${dtype} bidirectional=${bidirectional} gradient ${i}`));
      }
    }
  });

  it('under float16 and bfloat16 autocast: within the 16-bit rounding of the cell loop', async () => {
    for (const [autocast, tol] of [['float16', 1e-2], ['bfloat16', 6e-2]] as const) {
      const [layer, cells] = await lstmAgainstCells({ layers: 2, bidirectional: true, autocast });
      assertClose(layer.out, cells.out, tol, `${autocast} loss`);
      layer.grads.forEach((g, i) => assertClose(g, cells.grads[i]!, tol, `${autocast} gradient ${i}`));
    }
  });

  it('refuses bad shapes with both shapes in the message', () => {
    const wHh = mx.zeros([8, 2]);
    assert.throws(() => F.lstmLayer(mx.zeros([3, 2, 6]), [mx.zeros([2, 2]), mx.zeros([2, 2])], wHh, null, null), /lstmLayer: gates \[3,2,6\] must be \[T, B, 4H\] with wHh \[8,2\]/);
    assert.throws(() => F.lstmLayer(mx.zeros([3, 2, 8]), [mx.zeros([3, 2]), mx.zeros([2, 2])], wHh, null, null), /h0 \[3,2\] must have shape \[2, 2\]/);
  });
});

describe('autograd: gradients of slices (narrow) are assembled once', () => {
  it('a loop over every row, overlapping slices, a dense use and a hooked leaf give the dense gradient', async () => {
    const x = mx.randn([6, 3]).requiresGrad_();
    const seen: number[] = [];
    x.registerHook((g) => {
      seen.push(g.numel);
    });
    let loss = x.mul(2).sum(); // a dense use
    for (let t = 0; t < 6; t++) loss = loss.add(x.narrow(0, t, 1).square().mul(t + 1).sum()); // every row
    loss = loss.add(x.narrow(0, 1, 3).sum()).add(x.narrow(1, 2, 1).mul(3).sum()); // overlapping, another axis
    loss.backward();
    const xv = await values(x);
    const expected = xv.map((v, i) => {
      const [r, c] = [Math.floor(i / 3), i % 3];
      return 2 + 2 * v * (r + 1) + (r >= 1 && r <= 3 ? 1 : 0) + (c === 2 ? 3 : 0);
    });
    assertClose(await values(x.grad!), expected, 1e-6, 'x.grad');
    assert.ok(seen.length >= 1 && seen.every((n) => n === 18), 'the leaf hook sees full-size gradients');
  });

  it('a non-leaf read slice by slice (a sequence) and backward twice without retainGraph still fails clearly', async () => {
    const w = mx.randn([4, 5]).requiresGrad_();
    const seq = w.mul(3); // a non-leaf
    let acc = mx.zeros([5]);
    for (let t = 0; t < 4; t++) acc = acc.add(row(seq, t).mul(t));
    const loss = acc.sum();
    loss.backward(undefined, { retainGraph: true });
    assertClose(await values(w.grad!), Array.from({ length: 20 }, (_, i) => 3 * Math.floor(i / 5)), 1e-6, 'w.grad');
    loss.backward();
    assertClose(await values(w.grad!), Array.from({ length: 20 }, (_, i) => 6 * Math.floor(i / 5)), 1e-6, 'w.grad accumulated');
    assert.throws(() => loss.backward(), /backward through the graph a second time/);
  });
});

describe('character data', () => {
  it('vocabulary, encoding, split, random windows (targets shifted by one) and evaluation windows', async () => {
    const corpus = new mx.data.CharCorpus('hello world, hello moon.\n'.repeat(8));
    assert.deepEqual(corpus.vocab.chars, ['\n', ' ', ',', '.', 'd', 'e', 'h', 'l', 'm', 'n', 'o', 'r', 'w']);
    assert.equal(corpus.vocab.decode(corpus.vocab.encode('hello')), 'hello');
    assert.throws(() => corpus.vocab.encode('hex'), /character "x" is not in the vocabulary \(13 characters\)/);
    const { train, validation } = corpus.split(0.9);
    assert.equal(train.length + validation.length, corpus.ids.length);
    assert.equal(train.length, Math.floor(corpus.ids.length * 0.9));
    const [x, y] = train.randomBatch(new mx.Generator(3), 4, 7);
    assert.deepEqual(x.shape, [7, 4]);
    assert.equal(x.dtype, 'int32');
    const xs = await x.data();
    const ys = await y.data();
    for (let b = 0; b < 4; b++) for (let t = 0; t + 1 < 7; t++) assert.equal(ys[t * 4 + b], xs[(t + 1) * 4 + b], 'y is x shifted by one step');
    let predicted = 0;
    for (const [ex, ey] of train.evalBatches(3, 10)) {
      assert.equal(ex.shape[0], 10);
      predicted += ey.numel;
    }
    assert.equal(predicted, Math.floor((train.length - 1) / 10) * 10, 'every evaluation window once');
  });

  it('a missing, empty or binary file names the file and what was expected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixprec-text-'));
    await assert.rejects(mx.data.CharCorpus.fromFile(join(dir, 'nope.txt')), /nope\.txt: cannot read the text corpus \(no such file\)/);
    writeFileSync(join(dir, 'empty.txt'), '');
    await assert.rejects(mx.data.CharCorpus.fromFile(join(dir, 'empty.txt')), /empty\.txt: the text corpus is empty/);
    writeFileSync(join(dir, 'bin.txt'), Buffer.from([0x41, 0, 0x42]));
    await assert.rejects(mx.data.CharCorpus.fromFile(join(dir, 'bin.txt')), /bin\.txt: not a text file/);
  });
});

describe('float16 gradients of an LSTM: underflow without loss scaling, kept by GradScaler', () => {
  it('a trained LSTM\'s small gradients: most are lost to zero in float16 without scaling, none with a GradScaler (precision report)', async () => {
    // A sequence the model learns to predict almost perfectly: as the loss falls, so do the
    // gradients (Micikevicius et al. 2018, Fig. 3: most activation gradients of a trained network
    // are below float16's smallest subnormal, 2^-24).
    const [V, T, B] = [8, 24, 12];
    mx.manualSeed(0);
    const model = new mx.models.CharLSTM({ vocabSize: V, embedDim: 8, hidden: 32, layers: 1 });
    const batch = (offset: number): [Tensor, Tensor] => {
      const x: number[] = [];
      const y: number[] = [];
      for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) [x[t * B + b], y[t * B + b]] = [(offset + 5 * b + t) % V, (offset + 5 * b + t + 1) % V];
      return [mx.tensor(x, { dtype: 'int32' }).reshape([T, B]), mx.tensor(y, { dtype: 'int32' }).reshape([T, B])];
    };
    const lossOf = (x: Tensor, y: Tensor) => F.crossEntropy((model.forward(x)[0]).reshape([-1, V]), y.reshape([-1]));
    const opt = new mx.optim.Adam(model.parameters(), { lr: 0.05 });
    for (let s = 0; s < 80; s++) {
      const [x, y] = batch(s);
      mx.scope(() => {
        opt.zeroGrad();
        lossOf(x, y).backward();
        opt.step();
      });
    }
    const [x, y] = batch(3);
    const measure = async (mode: 'fp32' | 'fp16' | 'fp16+scaler') => {
      opt.zeroGrad();
      const scaler = new mx.amp.GradScaler({ enabled: mode === 'fp16+scaler', initScale: 2 ** 16 });
      const rec = mx.amp.precisionReport({ model, scaler, findOverflow: false });
      try {
        const loss = mx.amp.autocast({ dtype: 'float16', enabled: mode !== 'fp32' }, () => lossOf(x, y));
        scaler.scale(loss).backward();
        await rec.step();
        const report = rec.report();
        let zero = 0;
        let wouldUnderflow = 0;
        let n = 0;
        for (const p of Object.values(report.parameters)) {
          zero += p.atCurrentScale.zero * p.numel;
          wouldUnderflow += p.atScale1.underflow * p.numel;
          n += p.numel;
        }
        if (mode === 'fp16+scaler') scaler.unscale_(opt);
        const grads = await Promise.all(model.parameters().map((p) => values(p.grad!)));
        return { loss: await loss.item(), zero: zero / n, wouldUnderflow: wouldUnderflow / n, grads };
      } finally {
        rec.close();
      }
    };
    const fp32 = await measure('fp32');
    const fp16 = await measure('fp16');
    const scaled = await measure('fp16+scaler');
    assert.ok(fp32.loss < 1e-3, `the model has learned the sequence (loss ${fp32.loss})`);
    assert.ok(fp32.zero < 0.01, `float32 gradients are nonzero (${fp32.zero} zero)`);
    assert.ok(fp32.wouldUnderflow > 0.4, `a large share of the true gradients is below float16's range (${fp32.wouldUnderflow})`);
    assert.ok(fp16.zero > 0.4, `float16 autocast without loss scaling: a large share of the gradients underflow to zero (${fp16.zero})`);
    assert.ok(scaled.zero < 0.01, `with GradScaler they are kept (${scaled.zero} zero)`);
    // and the unscaled gradients are the float32 ones to float16 accuracy
    const flat = (gs: number[][]) => gs.flat();
    const [a, b] = [flat(scaled.grads), flat(fp32.grads)];
    const norm = Math.sqrt(b.reduce((s, v) => s + v * v, 0));
    const err = Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));
    assert.ok(err / norm < 0.05, `scaled fp16 gradients within 5% of float32 (relative error ${err / norm})`);
  });
});

describe('memory', () => {
  it('an fp16 LSTM training loop (GradScaler, clipping, AdamW) keeps the same live buffers after every step', async () => {
    mx.manualSeed(4);
    const model = new mx.models.CharLSTM({ vocabSize: 11, embedDim: 8, hidden: 16, layers: 2 });
    const params = model.parameters();
    const opt = new mx.optim.AdamW(params, { lr: 0.01 });
    const scaler = new mx.amp.GradScaler();
    const ids = mx.randint(0, 11, [17, 4], { dtype: 'int32' });
    const ctx: StepContext = { model, optimizer: opt, scaler, precision: 'fp16', clipGradNorm: 1, loss: (x, y) => lmLoss(model, x, y) };
    const counts: number[] = [];
    for (let step = 0; step < 6; step++) {
      const { loss } = trainStep(ctx, ids.narrow(0, 0, 16), ids.narrow(0, 1, 16));
      assert.ok(Number.isFinite(await loss.item()));
      loss.dispose();
      counts.push(mx.memory().liveBuffers);
    }
    // the first step creates the optimizer state and the gradients; after that nothing accumulates
    assert.deepEqual(counts.slice(2), counts.slice(1, -1), `live buffers per step: ${counts.join(', ')}`);
  });
});

const cli = (args: string[]) => runCli(args);

/** A small text with structure (a few verses with variations). */
function writeText(dir: string): string {
  const words = ['the', 'king', 'queen', 'sword', 'crown', 'night', 'day', 'love', 'war', 'and', 'of', 'my'];
  const gen = new mx.Generator(7);
  let text = '';
  for (let line = 0; line < 300; line++) {
    const n = 3 + gen.nextInt(0, 5);
    text += `${Array.from({ length: n }, () => words[gen.nextInt(0, words.length)]).join(' ')}.\n`;
  }
  const path = join(dir, 'verses.txt');
  writeFileSync(path, text);
  return path;
}

describe('mixprec train-lm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixprec-lm-'));
  const text = writeText(dir);
  const common = ['--data', text, '--hidden', '16', '--embed', '8', '--layers', '2', '--seq-len', '16', '--batch-size', '4', '--sample-len', '40', '--prompt', 'the '];

  it('trains, evaluates, samples and logs JSON lines (fp16: loss scale and skipped steps)', () => {
    const log = join(dir, 'run.jsonl');
    const r = cli(['train-lm', ...common, '--steps', '6', '--eval-every', '3', '--log-json', log]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /val loss \d+\.\d+ nats\/char \(\d+\.\d+ bpc\)/);
    assert.match(r.stdout, /sample \(temperature 0\.8\):\nthe /);
    assert.match(r.stdout, /validation loss: \d+\.\d+ nats\/char \(\d+\.\d+ bits\/char\) after 6 steps, \d+ skipped steps, loss scale \d+/);
    const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const evals = events.filter((e) => e['event'] === 'eval');
    assert.deepEqual(evals.map((e) => e['step']), [3, 6]);
    for (const e of evals) {
      for (const k of ['val_loss', 'val_bpc', 'loss_scale', 'skipped_steps']) assert.equal(typeof e[k], 'number', `eval event has ${k}`);
      assert.ok(Math.abs((e['val_bpc'] as number) - (e['val_loss'] as number) / Math.LN2) < 1e-9);
    }
    assert.equal(events.filter((e) => e['event'] === 'step').length, 6);
    const sample = events.find((e) => e['event'] === 'sample')!;
    assert.equal((sample['text'] as string).length, 4 + 40);
  });

  it('a checkpoint resumes bitwise: 3 steps + resume to 6 equals 6 straight (bf16)', async () => {
    const straight = join(dir, 'straight.safetensors');
    const half = join(dir, 'half.safetensors');
    const a = cli(['train-lm', ...common, '--precision', 'bf16', '--steps', '6', '--eval-every', '3', '--checkpoint', straight, '--sample-len', '0']);
    assert.equal(a.code, 0, a.stderr);
    const b1 = cli(['train-lm', ...common, '--precision', 'bf16', '--steps', '3', '--eval-every', '3', '--checkpoint', half, '--sample-len', '0']);
    assert.equal(b1.code, 0, b1.stderr);
    const b2 = cli(['train-lm', ...common, '--precision', 'bf16', '--steps', '6', '--eval-every', '3', '--resume', half, '--checkpoint', half, '--sample-len', '0']);
    assert.equal(b2.code, 0, b2.stderr);
    assert.match(b2.stdout, /resumed from .*half\.safetensors: step 3/);
    const last = (s: string) => s.trim().split('\n').pop()!.replace(/, \d+ s$/, '');
    assert.equal(last(b2.stdout), last(a.stdout));
    const [ca, cb] = [await mx.io.loadCheckpoint(straight), await mx.io.loadCheckpoint(half)];
    assert.equal(cb.meta.step, 6);
    for (const [name, t] of ca.tensors) assert.deepEqual(await values(cb.tensors.get(name)!), await values(t), `${name}: the same bits`);
    assert.deepEqual(cb.meta.optimizer.state.length, ca.meta.optimizer.state.length);
  });

  it('Ctrl-C writes the checkpoint and exits 130; the run resumes from it', async () => {
    const ckpt = join(dir, 'interrupted.safetensors');
    const log = join(dir, 'interrupted.jsonl');
    const { code, stdout } = await interruptAtFirstStep(['train-lm', ...common, '--steps', '100000', '--eval-every', '100000', '--checkpoint', ckpt, '--log-json', log], log);
    assert.equal(code, 130);
    assert.match(stdout, /interrupted: checkpoint written to/);
    const { meta } = await mx.io.loadCheckpoint(ckpt);
    assert.ok(meta.step >= 1 && meta.step < 100000);
    const r = cli(['train-lm', ...common, '--steps', String(meta.step + 2), '--eval-every', '100', '--resume', ckpt, '--sample-len', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`after ${meta.step + 2} steps`));
  });

  it('bad input: no --data, a missing file, a prompt outside the vocabulary', () => {
    const noData = cli(['train-lm']);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /--data FILE is required/);
    const missing = cli(['train-lm', '--data', join(dir, 'missing.txt')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /missing\.txt: cannot read the text corpus \(no such file\)/);
    const prompt = cli(['train-lm', ...common, '--steps', '1', '--prompt', 'Zebra']);
    assert.notEqual(prompt.code, 0);
    assert.match(prompt.stderr, /--prompt character "Z" is not in the text's vocabulary/);
  });
});
