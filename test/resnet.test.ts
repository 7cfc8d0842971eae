/**
 * mx.models.resnet18/34/50 against torchvision: the architecture (every state_dict key and shape of
 * torchvision's full-width networks, resnet_shapes.json), and PyTorch's eval-mode logits of
 * torchvision's ResNet-18 and ResNet-50 (1/8-width twins with random weights and batch-norm
 * statistics, tools/gen_torch_fixtures.py) read through mx.io.loadTorch: within 1e-4 relative in
 * float32 on every backend suite.
 */
import { backendName } from './helpers/backend.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as mx from '../src/index.js';
import { fixturePath, readJson } from './helpers/fixtures.js';
import { toTorchKey } from '../src/util/torch_names.js';

type Shapes = Record<'resnet18' | 'resnet34' | 'resnet50', [string, number[], string][]>;
const shapes = readJson<Shapes>('torch', 'resnet_shapes.json');

function fixtureInput(): mx.Tensor {
  const io = readJson<{ input_shape: number[] }>('torch', 'resnet_io.json');
  const raw = readFileSync(fixturePath('torch', 'resnet_input.bin'));
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  return mx.tensor(values).reshape(io.input_shape);
}

describe(`ResNet (${backendName})`, () => {
  for (const net of ['resnet18', 'resnet34', 'resnet50'] as const) {
    it(`${net}: torchvision's keys in order, and its shapes scaled by the width (1/8 here; full width in resnet_weights.test.ts)`, () => {
      const model = mx.models.createResNet(net, { width: 8 });
      const sd = model.stateDict();
      const expected = shapes[net];
      assert.deepEqual(Object.keys(sd).map(toTorchKey), expected.map(([k]) => k));
      for (const [key, shape, dtype] of expected) {
        const t = sd[key.replace('running_mean', 'runningMean').replace('running_var', 'runningVar').replace('num_batches_tracked', 'numBatchesTracked')]!;
        // Every channel count is 64-based in torchvision: divide by 8, except the 3 input channels and the 1000 classes.
        const scaled = shape.map((d, i) => (key === 'conv1.weight' && i === 1) || (key === 'fc.weight' && i === 0) || key === 'fc.bias' || d < 64 ? d : d / 8);
        assert.deepEqual(t.shape, scaled, key);
        assert.equal(t.dtype, dtype === 'int64' ? 'int32' : dtype, key);
      }
      for (const [, t] of Object.entries(sd)) t.dispose();
    });
  }

  for (const net of ['resnet18', 'resnet50'] as const) {
    it(`${net}: a torchvision state_dict (torch.save) loads strictly and gives PyTorch's eval logits within 1e-4 relative`, async () => {
      const io = readJson<Record<string, { logits_shape: number[]; logits: number[] }>>('torch', 'resnet_io.json');
      const model = await mx.models[net]({ weights: fixturePath('torch', `${net}_w8.pth`), width: 8 });
      model.eval();
      const x = fixtureInput();
      const y = mx.noGrad(() => model.call(x));
      assert.deepEqual(y.shape, io[net]!.logits_shape);
      const got = await y.data();
      const want = io[net]!.logits;
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < want.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
        maxRef = Math.max(maxRef, Math.abs(want[i]!));
      }
      assert.ok(maxErr <= 1e-4 * maxRef, `max |error| ${maxErr} over max |logit| ${maxRef}: ${maxErr / maxRef} relative`);
      // The batch-norm statistics came from the file (not the defaults), counters included.
      const bn = model.layer1.at(0) as mx.models.BasicBlock | mx.models.Bottleneck;
      assert.ok([...(await bn.bn1.runningVar!.data())].every((v) => v !== 1));
      assert.ok((await bn.bn1.numBatchesTracked!.item()) > 0);
      x.dispose();
      y.dispose();
    });
  }

  it("the cifar stem: conv1 3x3 stride 1 and no max-pool, torchvision's names otherwise", async () => {
    const model = mx.models.createResNet('resnet18', { stem: 'cifar', width: 4, numClasses: 10 });
    assert.deepEqual(model.conv1.weight.shape, [4, 3, 3, 3]);
    assert.deepEqual(model.conv1.stride, [1, 1]);
    assert.ok(model.maxpool instanceof mx.nn.Identity);
    const y = mx.noGrad(() => model.eval().call(mx.randn([2, 3, 32, 32])));
    assert.deepEqual(y.shape, [2, 10]);
    // The imagenet stem quarters the image before layer1; the cifar stem keeps it.
    const seen: number[][] = [];
    model.layer1.registerForwardHook((_m, _i, out) => void seen.push([...(out as mx.Tensor).shape]));
    mx.noGrad(() => model.call(mx.randn([1, 3, 32, 32])));
    assert.deepEqual(seen[0], [1, 4, 32, 32]);
  });

  it("initialises as torchvision: kaiming normal (fan out) convolutions, batch norm 1/0, zeroInitResidual", async () => {
    mx.manualSeed(0);
    const model = mx.models.createResNet('resnet50', { width: 16, zeroInitResidual: true });
    const w = model.layer3.at(0) as mx.models.Bottleneck;
    const values = await w.conv2.weight.data();
    const fanOut = w.conv2.weight.shape[0]! * 9;
    const std = Math.sqrt([...values].reduce((s, v) => s + v * v, 0) / values.length);
    assert.ok(Math.abs(std / Math.sqrt(2 / fanOut) - 1) < 0.05, `std ${std} vs sqrt(2/fan_out) ${Math.sqrt(2 / fanOut)}`);
    assert.deepEqual(new Set(await w.bn1.weight!.data()), new Set([1]));
    assert.deepEqual(new Set(await w.bn1.bias!.data()), new Set([0]));
    assert.deepEqual(new Set(await w.bn3.weight!.data()), new Set([0]), 'the last norm of each block starts at zero');
    const basic = mx.models.createResNet('resnet18', { width: 8, zeroInitResidual: true });
    assert.deepEqual(new Set(await (basic.layer2.at(1) as mx.models.BasicBlock).bn2.weight!.data()), new Set([0]));
  });

  it('a new head, the backbone parameters, and the options checked', () => {
    const model = mx.models.createResNet('resnet18', { width: 8 });
    model.resetClassifier(7);
    assert.deepEqual(model.fc.weight.shape, [7, 64]);
    assert.equal(model.numClasses, 7);
    assert.equal(model.backboneParameters().length, model.parameters().length - 2);
    assert.throws(() => mx.models.createResNet('resnet18', { stem: 'tiny' as never }), /stem must be 'imagenet' or 'cifar'/);
    assert.throws(() => mx.models.createResNet('resnet18', { width: 0 }), /width must be a positive integer/);
    assert.throws(() => new mx.models.ResNet('basic', [2, 2]), /layers must be 4 positive block counts/);
  });
});
