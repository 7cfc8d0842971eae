// The PyTorch twin of one `mixprec train-gpt` run, step 1 of 2: write the run's initial weights
// (mx.io.saveTorch) and every batch offset it draws (training batches from its data generator,
// estimate_loss batches from its evaluation generator), so that tools/gpt_same_start.py can train
// nanoGPT's model in PyTorch from exactly the same start on exactly the same batches.
//
//   node tools/gpt_same_start.mjs OUT_DIR [--seed 0] [--data ../shared/datasets/tinyshakespeare.txt]
//   /usr/bin/python3 tools/gpt_same_start.py OUT_DIR
//
// The recipe is nanoGPT's CPU one (4 layers, 4 heads, width 128, block 64, batch 12, 2,000
// iterations, evaluations every 250 over 20 batches per split), as in the README's table.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as mx from '../dist/index.js';
import { GPT } from '../dist/models/gpt.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { seed: { type: 'string', default: '0' }, data: { type: 'string', default: '../shared/datasets/tinyshakespeare.txt' } } });
const out = positionals[0];
if (!out) throw new Error('usage: node tools/gpt_same_start.mjs OUT_DIR [--seed N] [--data FILE.txt]');
const seed = Number(values.seed);
const recipe = { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batchSize: 12, maxIters: 2000, evalInterval: 250, evalIters: 20 };
const corpus = await mx.data.CharCorpus.fromFile(values.data);
const { train, validation } = corpus.split(0.9);

// the same order of draws as `mixprec train-gpt` (src/cli/train_gpt.ts)
mx.manualSeed(seed);
const model = new GPT({ nLayer: recipe.nLayer, nHead: recipe.nHead, nEmbd: recipe.nEmbd, blockSize: recipe.blockSize, vocabSize: corpus.vocab.size, bias: false, dropout: 0 });
const dataRng = new mx.Generator(seed + 1);
const evalRng = new mx.Generator(seed + 3);
const offsets = (g, split) => Array.from({ length: recipe.batchSize }, () => g.nextInt(0, split.length - recipe.blockSize - 1 + 1));
const trainBatches = [];
const evalBatches = {};
for (let it = 0; it <= recipe.maxIters; it++) {
  if (it % recipe.evalInterval === 0) {
    evalBatches[it] = {
      train: Array.from({ length: recipe.evalIters }, () => offsets(evalRng, train)),
      val: Array.from({ length: recipe.evalIters }, () => offsets(evalRng, validation)),
    };
  }
  if (it < recipe.maxIters) trainBatches.push(offsets(dataRng, train));
}
mkdirSync(out, { recursive: true });
await mx.io.saveTorch(join(out, 'init.pt'), model.stateDict());
writeFileSync(join(out, 'batches.json'), JSON.stringify({ seed, data: values.data, recipe, train: trainBatches, evals: evalBatches }));
console.log(`wrote ${join(out, 'init.pt')} and ${join(out, 'batches.json')} (${trainBatches.length} training batches, evaluations at ${Object.keys(evalBatches).join(', ')})`);
