// Writes, with mixprec's saveTorch, the files tools/check_torch_roundtrip.py reads with PyTorch:
//   node tools/torch_roundtrip.mjs OUT_DIR        (after npm run build)
// - dtypes.pt: test/fixtures/torch/dtypes.pt read by loadTorch and saved again (every dtype, 0-d,
//   views, empty); the same bytes test/torch_io.test.ts expects (test/fixtures/torch/saved_by_mixprec.pt).
// - resnet18_w8.pth: the 1/8-width ResNet-18 fixture loaded into mx.models.resnet18 and saved from
//   its stateDict() (mixprec's names and int32 counters: saveTorch writes PyTorch's).
// - checkpoint.pt: a nested checkpoint {model, iter_num, best_val_loss, model_args, ...}.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as mx from '../dist/index.js';

const out = process.argv[2];
if (!out) throw new Error('usage: node tools/torch_roundtrip.mjs OUT_DIR');
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'torch');
await mx.setBackend('reference');

await mx.io.saveTorch(join(out, 'dtypes.pt'), await mx.io.loadTorch(join(fixtures, 'dtypes.pt')));

const model = await mx.models.resnet18({ weights: join(fixtures, 'resnet18_w8.pth'), width: 8 });
await mx.io.saveTorch(join(out, 'resnet18_w8.pth'), model.stateDict());

const fc = new mx.nn.Linear(4, 3);
await mx.io.saveTorch(join(out, 'checkpoint.pt'), {
  model: { 'fc.weight': fc.weight, 'fc.bias': fc.bias },
  iter_num: 42,
  best_val_loss: 1.25,
  model_args: { n_layer: 4, bias: false, name: 'tiny', dropout: 0.1 },
  list: [1, -2, 2 ** 40, 'x', null, true, [0.5]],
});
console.log(`wrote dtypes.pt, resnet18_w8.pth, checkpoint.pt to ${out}`);
