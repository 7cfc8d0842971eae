/**
 * mx.models.gpt: nanoGPT's layout, names, weight tying and initialisation; nanoGPT checkpoints
 * written by PyTorch (tools/gen_nanogpt_fixture.py -> test/fixtures/gpt/) loaded through
 * mx.io.loadTorch give PyTorch's logits; generate; a few training steps in every precision.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { fixturePath, readJson } from './helpers/fixtures.js';

const small = { nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 8, vocabSize: 11, bias: true, dropout: 0 };

test('gpt: nanoGPT names, tied lm_head, init N(0, 0.02) with c_proj scaled by 1/sqrt(2 nLayer)', async () => {
  const model = mx.models.gpt({ ...small, nEmbd: 64, nLayer: 3 }, { generator: new mx.Generator(0) });
  const keys = Object.keys(model.stateDict());
  assert.deepEqual(keys.slice(0, 16), [
    'transformer.wte.weight', 'transformer.wpe.weight',
    'transformer.h.0.ln_1.weight', 'transformer.h.0.ln_1.bias',
    'transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias',
    'transformer.h.0.attn.c_proj.weight', 'transformer.h.0.attn.c_proj.bias',
    'transformer.h.0.ln_2.weight', 'transformer.h.0.ln_2.bias',
    'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_fc.bias',
    'transformer.h.0.mlp.c_proj.weight', 'transformer.h.0.mlp.c_proj.bias',
    'transformer.h.1.ln_1.weight', 'transformer.h.1.ln_1.bias',
  ]);
  assert.deepEqual(keys.slice(-3), ['transformer.ln_f.weight', 'transformer.ln_f.bias', 'lm_head.weight']);
  // tied: one tensor under both names, counted once as a parameter
  assert.equal(model.lm_head.weight, model.transformer.wte.weight);
  assert.equal(model.parameters().filter((p) => p === model.lm_head.weight).length, 1);
  assert.equal(model.namedParameters().some(([n]) => n === 'lm_head.weight'), false);
  const std = async (t: Tensor) => {
    const v = await t.data();
    let s = 0;
    for (const x of v) s += x * x;
    return Math.sqrt(s / v.length);
  };
  const near = (got: number, want: number, label: string) => assert.ok(Math.abs(got - want) < 0.1 * want, `${label}: std ${got}, expected ${want}`);
  near(await std(model.getParameter('transformer.h.1.attn.c_attn.weight')), 0.02, 'c_attn');
  near(await std(model.getParameter('transformer.h.1.mlp.c_fc.weight')), 0.02, 'c_fc');
  near(await std(model.getParameter('transformer.wpe.weight')), 0.02, 'wpe');
  near(await std(model.getParameter('transformer.h.2.mlp.c_proj.weight')), 0.02 / Math.sqrt(6), 'mlp.c_proj');
  near(await std(model.getParameter('transformer.h.0.attn.c_proj.weight')), 0.02 / Math.sqrt(6), 'attn.c_proj');
  assert.ok((await model.getParameter('transformer.h.0.attn.c_attn.bias').data()).every((v) => v === 0));
  assert.ok((await model.getParameter('transformer.h.0.ln_1.weight').data()).every((v) => v === 1));
  const noBias = mx.models.gpt({ ...small, bias: false });
  assert.ok(Object.keys(noBias.stateDict()).every((k) => !k.endsWith('.bias')), 'bias: false has no biases');
  assert.equal(noBias.numParams(false) - noBias.numParams(), 8 * 16, 'numParams leaves out wpe by default');
  assert.throws(() => mx.models.gpt({ ...small, nHead: 3 }), /nEmbd 16 must be divisible by nHead 3/);
});

test('gpt forward: logits and loss with targets (ignore -1), last position only without; block size enforced', async () => {
  const model = mx.models.gpt(small, { generator: new mx.Generator(1) });
  const g = new mx.Generator(2);
  const idx = mx.randint(0, 11, [3, 8], { generator: g });
  const targets = mx.randint(0, 11, [3, 8], { generator: g });
  const [logits, loss] = model.call(idx, targets);
  assert.deepEqual(logits.shape, [3, 8, 11]);
  // at init the prediction is near uniform: loss ~ ln(11)
  assert.ok(Math.abs((await loss!.item()) - Math.log(11)) < 0.1);
  const [last, none] = model.call(idx);
  assert.equal(none, null);
  assert.deepEqual(last.shape, [3, 1, 11]);
  const a = await last.data();
  const b = await logits.narrow(1, 7, 1).data();
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-5 * Math.max(1, Math.abs(b[i]!))));
  // causal: the logits at position t do not depend on later tokens
  const changed = mx.cat([idx.narrow(1, 0, 5), mx.full([3, 3], 4, { dtype: 'int32' })], 1);
  const [early] = model.call(changed, targets);
  const x = await logits.narrow(1, 0, 5).data();
  const y = await early.narrow(1, 0, 5).data();
  x.forEach((v, i) => assert.ok(Math.abs(v - y[i]!) <= 1e-5 * Math.max(1, Math.abs(v)), `position < 5 changed by later tokens at ${i}`));
  const ignored = mx.full([3, 8], -1, { dtype: 'int32' }).narrow(1, 0, 8);
  const mixed = mx.cat([targets.narrow(1, 0, 4), ignored.narrow(1, 0, 4)], 1);
  const [, partial] = model.call(idx, mixed);
  const [, firstHalf] = model.call(idx, targets);
  assert.ok(Number.isFinite(await partial!.item()) && (await partial!.item()) !== (await firstHalf!.item()), 'targets of -1 are ignored');
  assert.throws(() => model.call(mx.zeros([1, 9], { dtype: 'int32' })), /sequence of length 9, the block size is only 8/);
});

interface Expected {
  model_args: { n_layer: number; n_head: number; n_embd: number; block_size: number; bias: boolean; vocab_size: number; dropout: number };
  idx: number[];
  targets: number[];
  shape: number[];
  logits: number[];
  loss: number;
  keys: string[];
}

const expected = readJson<{ torch: string; files: Record<string, Expected> }>('gpt', 'expected.json');

for (const [file, want] of Object.entries(expected.files)) {
  test(`a nanoGPT checkpoint from PyTorch (${file}) loads and gives PyTorch's logits within 1e-4`, async () => {
    const ckpt = await mx.io.loadTorch(fixturePath('gpt', file));
    const args = ckpt['model_args'] as Expected['model_args'];
    assert.deepEqual(args, want.model_args);
    assert.equal(ckpt['iter_num'], 3);
    const model = mx.models.gpt({
      nLayer: args.n_layer, nHead: args.n_head, nEmbd: args.n_embd, blockSize: args.block_size, vocabSize: args.vocab_size, bias: args.bias, dropout: args.dropout,
    });
    const state = ckpt['model'] as Record<string, Tensor>;
    assert.deepEqual(Object.keys(state), want.keys);
    const { missingKeys, unexpectedKeys } = model.loadStateDict(state);
    assert.deepEqual([missingKeys, unexpectedKeys], [[], []]);
    model.eval();
    const idx = mx.tensor(want.idx, { dtype: 'int32', shape: [2, 12] });
    const targets = mx.tensor(want.targets, { dtype: 'int32', shape: [2, 12] });
    const [logits, loss] = model.call(idx, targets);
    assert.deepEqual(logits.shape, want.shape);
    const got = await logits.data();
    let worst = 0;
    want.logits.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i]! - w) / Math.max(Math.abs(w), 1e-3))));
    assert.ok(worst <= 1e-4, `logits: worst relative error ${worst}`);
    assert.ok(Math.abs((await loss!.item()) - want.loss) <= 1e-4 * want.loss, `loss ${await loss!.item()} vs PyTorch ${want.loss}`);
  });
}

test('GPT.loadStateDict: the `_orig_mod.` prefix and the causal-mask buffers of PyTorch < 2.0 nanoGPT; other keys still checked', async () => {
  const a = mx.models.gpt(small, { generator: new mx.Generator(3) });
  const b = mx.models.gpt(small, { generator: new mx.Generator(4) });
  const state: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(a.stateDict())) state[`_orig_mod.${k}`] = v;
  for (let i = 0; i < small.nLayer; i++) state[`_orig_mod.transformer.h.${i}.attn.bias`] = mx.ones([1, 1, 8, 8]);
  assert.deepEqual(b.loadStateDict(state), { missingKeys: [], unexpectedKeys: [] });
  const idx = mx.tensor([[1, 2, 3]], { dtype: 'int32' });
  assert.deepEqual(await b.call(idx)[0].data(), await a.call(idx)[0].data());
  state['_orig_mod.transformer.h.0.attn.extra'] = mx.ones([2]);
  assert.throws(() => b.loadStateDict(state), /unexpected key: 'transformer.h.0.attn.extra'/);
});

test('GPT.generate: crops the context to the block size, temperature 0 and topK 1 are greedy, seeded sampling repeats', async () => {
  const model = mx.models.gpt(small, { generator: new mx.Generator(5) });
  const idx = mx.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'int32' });
  const greedy = await model.generate(idx, 10, { temperature: 0 });
  assert.deepEqual(greedy.shape, [2, 13]);
  const rows = Array.from(await greedy.data());
  assert.deepEqual(rows.slice(0, 3), [1, 2, 3]);
  // the first new token is the argmax of the forward's last logits
  const [last] = model.call(idx);
  const l = await last.data();
  const argmax = (o: number) => Array.from(l.subarray(o, o + 11)).reduce((best, v, i, a) => (v > a[best]! ? i : best), 0);
  assert.deepEqual([rows[3], rows[16]], [argmax(0), argmax(11)]);
  assert.deepEqual(Array.from(await (await model.generate(idx, 10, { topK: 1, generator: new mx.Generator(1) })).data()), rows);
  const s1 = await (await model.generate(idx, 12, { temperature: 1.5, topK: 5, generator: new mx.Generator(7) })).data();
  const s2 = await (await model.generate(idx, 12, { temperature: 1.5, topK: 5, generator: new mx.Generator(7) })).data();
  assert.deepEqual(s1, s2);
  assert.ok(Array.from(s1).every((v) => v >= 0 && v < 11));
  assert.equal(model.training, true, 'generate restores training mode');
});

test('a small GPT learns in fp32, fp16 (GradScaler) and bf16: the loss falls', async () => {
  for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
    const model = mx.models.gpt(small, { generator: new mx.Generator(6) });
    const optimizer = new mx.optim.AdamW(model.parameters(), { lr: 1e-2 });
    const scaler = new mx.amp.GradScaler({ enabled: precision === 'fp16' });
    // a repeating sequence: easy to learn
    const ids = Array.from({ length: 4 * 9 }, (_, i) => (i * 3) % 11);
    const data = mx.tensor(ids, { dtype: 'int32', shape: [4, 9] });
    const [x, y] = [data.narrow(1, 0, 8), data.narrow(1, 1, 8)];
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const loss = mx.scope(() => {
        optimizer.zeroGrad();
        const dtype = precision === 'fp16' ? 'float16' : precision === 'bf16' ? 'bfloat16' : null;
        const l = dtype ? mx.amp.autocast({ dtype }, () => model.call(x, y)[1]!) : model.call(x, y)[1]!;
        scaler.scale(l).backward();
        scaler.step(optimizer);
        scaler.update();
        return l.detach();
      });
      losses.push(await loss.item());
      loss.dispose();
    }
    assert.ok(losses.at(-1)! < 0.5 * losses[0]!, `${precision}: loss ${losses[0]} -> ${losses.at(-1)}`);
  }
});
