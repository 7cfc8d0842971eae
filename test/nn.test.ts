/**
 * mx.nn modules: Module bookkeeping (names, stateDict, hooks, modes, dtypes), initialisation, and
 * every layer, recurrent layer and loss against PyTorch.
 *
 * PyTorch fixtures (tools/gen_nn_fixtures.py -> test/fixtures/nn/): each case holds the torch
 * module's state dict, which is loaded with loadStateDict, so both sides run the very same weights;
 * the reference is PyTorch in float64 rounded to float32. Outputs and gradients of the scalar
 * sum(output * gradOut) are compared with |actual - expected| <= 1e-5 * max(1, |expected|).
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { readFixtureBytes, readJson } from './helpers/fixtures.js';

const nn = mx.nn;
type Module = mx.nn.Module;

/* ------------------------------------------------------------------ fixtures */

interface Entry {
  dtype: 'float32' | 'int32';
  shape: number[];
  offset: number;
  length: number;
}
interface FixtureCase {
  meta: Record<string, unknown>;
  tensors: Record<string, Entry>;
}
const manifest = readJson<{ cases: Record<string, FixtureCase> }>('nn', 'manifest.json');
const blob = readFixtureBytes('nn', 'nn.bin');

function caseOf(name: string): FixtureCase {
  const c = manifest.cases[name];
  if (!c) throw new Error(`no fixture case '${name}'`);
  return c;
}

function values(e: Entry): Float32Array | Int32Array {
  return e.dtype === 'int32' ? new Int32Array(blob, e.offset, e.length) : new Float32Array(blob, e.offset, e.length);
}

function fx(name: string, key: string, requiresGrad = false): Tensor {
  const e = caseOf(name).tensors[key];
  if (!e) throw new Error(`fixture '${name}' has no tensor '${key}'`);
  const data = values(e);
  return mx.tensor(data instanceof Int32Array ? Int32Array.from(data) : Float32Array.from(data), {
    shape: e.shape, dtype: e.dtype, requiresGrad: requiresGrad && e.dtype === 'float32',
  });
}

/** Tensors of a case whose key starts with `prefix`, keyed by the rest, in fixture order. */
function group(name: string, prefix: string, requiresGrad = false): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const key of Object.keys(caseOf(name).tensors).sort()) {
    if (key.startsWith(prefix)) out[key.slice(prefix.length)] = fx(name, key, requiresGrad);
  }
  return out;
}

async function assertClose(actual: Tensor | null, expected: Tensor | Entry, label: string, tol = 1e-5): Promise<void> {
  assert.ok(actual, `${label}: missing (null)`);
  const expShape = expected instanceof mx.Tensor ? expected.shape : expected.shape;
  assert.deepEqual([...actual.shape], [...expShape], `${label}: shape`);
  const a = (await actual.data());
  const e = expected instanceof mx.Tensor ? (await expected.data()) : values(expected);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < e.length; i++) {
    const err = Math.abs(a[i]! - e[i]!) / Math.max(1, Math.abs(e[i]!));
    if (!(err <= worst)) {
      worst = err;
      worstAt = i;
    }
  }
  assert.ok(worst <= tol, `${label}: element ${worstAt} is ${a[worstAt]}, expected ${e[worstAt]} (scaled error ${worst.toExponential(2)} > ${tol})`);
}

/**
 * Load the case's state into `module`, run `forward` on its inputs (float inputs require grad),
 * backprop sum(out_i * gradOut_i) and compare outputs, parameter gradients and input gradients.
 */
async function checkFixture(name: string, module: Module, forward: (inputs: Record<string, Tensor>) => Tensor[], tol = 1e-5): Promise<void> {
  const c = caseOf(name);
  const state = group(name, 'state/');
  if (Object.keys(state).length) module.loadStateDict(state);
  const inputs = group(name, 'input/', true);
  const outs = forward(inputs);
  const gradOut = group(name, 'gradOut/');
  assert.equal(outs.length, Object.keys(gradOut).length, `${name}: number of outputs`);
  let loss: Tensor | null = null;
  for (const [i, o] of outs.entries()) {
    await assertClose(o, c.tensors[`output/out${i}`]!, `${name} output ${i}`, tol);
    const term: Tensor = o.mul(gradOut[`out${i}`]!).sum();
    loss = loss ? loss.add(term) : term;
  }
  loss!.backward();
  for (const [pname, p] of module.namedParameters()) await assertClose(p.grad, c.tensors[`grad/${pname}`]!, `${name} grad ${pname}`, tol);
  for (const [iname, x] of Object.entries(inputs)) {
    if (x.requiresGrad) await assertClose(x.grad, c.tensors[`gradInput/${iname}`]!, `${name} grad of input ${iname}`, tol);
  }
}

async function stats(t: Tensor): Promise<{ mean: number; std: number; maxAbs: number }> {
  const v = (await t.data());
  let s = 0;
  let m = 0;
  for (const x of v) {
    s += x;
    m = Math.max(m, Math.abs(x));
  }
  const mean = s / v.length;
  let ss = 0;
  for (const x of v) ss += (x - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (v.length - 1)), maxAbs: m };
}

function leNet(): mx.nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(3, 6, 5), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(6, 16, 5), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Flatten(), new nn.Linear(400, 120), new nn.ReLU(), new nn.Linear(120, 84), new nn.ReLU(), new nn.Linear(84, 10),
  );
}

/* ------------------------------------------------------------------ structure */

test('LeNet: parameter names, shapes and count in registration order', async () => {
  const net = leNet();
  const named = net.namedParameters();
  assert.deepEqual(named.map(([n, p]) => [n, [...p.shape]]), [
    ['0.weight', [6, 3, 5, 5]], ['0.bias', [6]],
    ['3.weight', [16, 6, 5, 5]], ['3.bias', [16]],
    ['7.weight', [120, 400]], ['7.bias', [120]],
    ['9.weight', [84, 120]], ['9.bias', [84]],
    ['11.weight', [10, 84]], ['11.bias', [10]],
  ]);
  assert.equal(net.parameters().reduce((n, p) => n + p.numel, 0), 62006);
  for (const p of net.parameters()) {
    assert.ok(p.isLeaf && p.requiresGrad && p.dtype === 'float32');
  }
  assert.equal(net.length, 12);
  assert.equal(net.children().length, 12);
  assert.equal(net.modules().length, 13);
  assert.ok(net.at(-1) instanceof nn.Linear);
  assert.equal(net.getParameter('7.weight'), (net.at(7) as mx.nn.Linear).weight);
  assert.equal(net.getSubmodule('3'), net.at(3));
  assert.throws(() => net.getSubmodule('3.x'), /has no submodule 'x'/);
  assert.equal(net.buffers().length, 0);
  assert.match(String(net), /^Sequential\(\n {2}\(0\): Conv2d\(3, 6, kernelSize=\[5,5\], stride=\[1,1\]\)/);
  const y = net.call(mx.randn([2, 3, 32, 32]));
  assert.deepEqual(y.shape, [2, 10]);
});

test('nested modules: dotted names, named Sequential, ModuleList, accessors, custom modules', async () => {
  class Block extends nn.Module {
    declare readonly conv: mx.nn.Conv2d;
    declare readonly bn: mx.nn.BatchNorm2d;
    readonly act = this.registerModule('act', new nn.ReLU());
    constructor() {
      super();
      this.registerModule('conv', new nn.Conv2d(2, 4, 3, { padding: 1, bias: false }));
      this.registerModule('bn', new nn.BatchNorm2d(4));
    }
    forward(x: Tensor): Tensor {
      return this.act.call(this.bn.call(this.conv.call(x)));
    }
  }
  class Net extends nn.Module {
    declare readonly features: mx.nn.Sequential;
    declare readonly heads: mx.nn.ModuleList;
    constructor() {
      super();
      this.registerModule('features', new nn.Sequential({ block: new Block(), pool: new nn.AdaptiveAvgPool2d(1), flat: new nn.Flatten() }));
      this.registerModule('heads', new nn.ModuleList([new nn.Linear(4, 2), new nn.Linear(4, 3)]));
    }
    forward(x: Tensor): Tensor[] {
      const f = this.features.call(x);
      return [...this.heads].map((h) => h.call(f) as Tensor);
    }
  }
  const net = new Net();
  assert.deepEqual(Object.keys(net.stateDict()), [
    'features.block.conv.weight',
    'features.block.bn.weight', 'features.block.bn.bias',
    'features.block.bn.runningMean', 'features.block.bn.runningVar', 'features.block.bn.numBatchesTracked',
    'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias',
  ]);
  assert.deepEqual(net.namedBuffers().map(([n]) => n), ['features.block.bn.runningMean', 'features.block.bn.runningVar', 'features.block.bn.numBatchesTracked']);
  assert.deepEqual(net.namedModules().map(([n]) => n), [
    // `act` is a field initializer: registered before the constructor body runs
    '', 'features', 'features.block', 'features.block.act', 'features.block.conv', 'features.block.bn',
    'features.pool', 'features.flat', 'heads', 'heads.0', 'heads.1',
  ]);
  assert.equal(net.stateDict()['features.block.bn.numBatchesTracked']!.dtype, 'int32');
  const outs = net.call(mx.randn([2, 2, 5, 5]));
  assert.deepEqual(outs.map((o) => [...o.shape]), [[2, 2], [2, 3]]);
  assert.equal(net.heads.length, 2);
  const visited: string[] = [];
  net.apply((m) => visited.push(m.constructor.name));
  assert.equal(visited[visited.length - 1], 'Net');
  assert.equal(visited.length, 11);
  // requiresGrad_ freezes everything; a parameter registered twice is listed once.
  net.requiresGrad_(false);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
  const tied = new nn.Sequential(new nn.Linear(3, 3), new nn.Linear(3, 3));
  (tied.at(1) as mx.nn.Linear).registerParameter('weight', (tied.at(0) as mx.nn.Linear).weight);
  assert.equal(tied.parameters().length, 3);
  assert.equal(Object.keys(tied.stateDict()).length, 4);
  assert.equal(new nn.Sequential().length, 0);
  assert.throws(() => new nn.ModuleList().forward(), /ModuleList has no forward/);
});

test('registration errors: reserved and dotted names, non-leaf parameters, unregistered Module fields', async () => {
  const m = new nn.Linear(2, 2);
  assert.throws(() => m.registerParameter('a.b', mx.zeros([1])), /can't contain "\."/);
  assert.throws(() => m.registerParameter('forward', mx.zeros([1])), /is a Module member/);
  assert.throws(() => m.registerBuffer('weight', mx.zeros([1])), /already registered as a parameter/);
  const nonLeaf = mx.zeros([2], { requiresGrad: true }).mul(2);
  assert.throws(() => m.registerParameter('extra', nonLeaf), /must be a leaf tensor/);
  assert.throws(() => m.registerParameter('idx', mx.zeros([2], { dtype: 'int32' })), /must be floating point/);
  class Forgetful extends nn.Module {
    fc = new nn.Linear(2, 2);
    forward(x: Tensor): Tensor {
      return this.fc.call(x);
    }
  }
  assert.throws(() => new Forgetful().parameters(), /field 'fc' holds a Module that is not registered.*registerModule\('fc'/);
  class ListForgetful extends nn.Module {
    layers = [new nn.Linear(2, 2)];
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  assert.throws(() => new ListForgetful().stateDict(), /ModuleList/);
  class Private extends nn.Module {
    #helper = new nn.Linear(2, 2);
    forward(x: Tensor): Tensor {
      return this.#helper.call(x);
    }
  }
  assert.equal(new Private().parameters().length, 0);
});

/* ------------------------------------------------------------------ initialisation */

test('init: Linear, Conv2d, ConvTranspose2d, LSTM, Embedding follow PyTorch default formulas', async () => {
  mx.manualSeed(7);
  const lin = new nn.Linear(1000, 300);
  const b = 1 / Math.sqrt(1000);
  const w = await stats(lin.weight);
  assert.ok(w.maxAbs <= b && w.maxAbs > 0.999 * b, `Linear weight bound ${w.maxAbs} vs ${b}`);
  assert.ok(Math.abs(w.std - b / Math.sqrt(3)) < 0.01 * b, `Linear weight std ${w.std}`);
  assert.ok(Math.abs(w.mean) < 0.01 * b);
  const bb = await stats(lin.bias!);
  assert.ok(bb.maxAbs <= b && bb.maxAbs > 0.9 * b);

  const conv = new nn.Conv2d(16, 32, 3, { groups: 2 });
  const cb = 1 / Math.sqrt(8 * 9);
  assert.deepEqual(mx.nn.init.calculateFanInAndFanOut(conv.weight), [72, 288]);
  const cw = await stats(conv.weight);
  assert.ok(cw.maxAbs <= cb && cw.maxAbs > 0.99 * cb);
  assert.ok((await stats(conv.bias!)).maxAbs <= cb);

  // ConvTranspose2d: weight [in, out/groups, kh, kw], fanIn from dim 1 as PyTorch computes it.
  const tconv = new nn.ConvTranspose2d(16, 8, 3, { groups: 2 });
  assert.deepEqual([...tconv.weight.shape], [16, 4, 3, 3]);
  const tb = 1 / Math.sqrt(4 * 9);
  const tw = await stats(tconv.weight);
  assert.ok(tw.maxAbs <= tb && tw.maxAbs > 0.95 * tb, `ConvTranspose2d bound ${tw.maxAbs} vs ${tb}`);
  assert.ok((await stats(tconv.bias!)).maxAbs <= tb);

  const lstm = new nn.LSTM(10, 25, { numLayers: 2 });
  for (const p of lstm.parameters()) {
    const s = await stats(p);
    assert.ok(s.maxAbs <= 1 / 5, `LSTM bound ${s.maxAbs}`);
  }
  assert.ok((await stats(lstm.parameters()[0]!)).maxAbs > 0.98 / 5);

  const emb = new nn.Embedding(200, 50, { paddingIdx: -1 });
  assert.equal(emb.paddingIdx, 199);
  const es = await stats(emb.weight.narrow(0, 0, 199));
  assert.ok(Math.abs(es.mean) < 0.03 && Math.abs(es.std - 1) < 0.03, `Embedding N(0,1): ${es.mean}, ${es.std}`);
  assert.ok((await emb.weight.narrow(0, 199, 1).data()).every((v) => v === 0));

  const bn = new nn.BatchNorm1d(3);
  assert.deepEqual([...(await bn.weight!.data())], [1, 1, 1]);
  assert.deepEqual([...(await bn.bias!.data())], [0, 0, 0]);
});

test('init: kaiming, xavier, normal, constant, gains; seeded and generator-driven', async () => {
  const init = mx.nn.init;
  assert.equal(init.calculateGain('linear'), 1);
  assert.equal(init.calculateGain('sigmoid'), 1);
  assert.equal(init.calculateGain('conv2d'), 1);
  assert.equal(init.calculateGain('tanh'), 5 / 3);
  assert.equal(init.calculateGain('relu'), Math.SQRT2);
  assert.equal(init.calculateGain('leakyRelu'), Math.sqrt(2 / (1 + 0.01 ** 2)));
  assert.equal(init.calculateGain('leaky_relu', 0.2), Math.sqrt(2 / 1.04));
  assert.equal(init.calculateGain('selu'), 0.75);
  assert.throws(() => init.calculateGain('swish' as never), /unsupported nonlinearity/);
  assert.throws(() => init.calculateFanInAndFanOut(mx.zeros([5])), /fewer than 2 dimensions/);

  const g = new mx.Generator(3);
  const t = mx.zeros([400, 600]);
  init.kaimingNormal_(t, { mode: 'fanIn', nonlinearity: 'relu', generator: g });
  let s = await stats(t);
  assert.ok(Math.abs(s.std - Math.sqrt(2 / 600)) < 0.01 * Math.sqrt(2 / 600), `kaimingNormal std ${s.std}`);
  init.kaimingUniform_(t, { mode: 'fanOut', nonlinearity: 'relu', generator: g });
  s = await stats(t);
  const kb = Math.sqrt(3) * Math.sqrt(2 / 400);
  assert.ok(s.maxAbs <= kb && s.maxAbs > 0.999 * kb);
  init.xavierUniform_(t, { gain: 2, generator: g });
  s = await stats(t);
  const xb = 2 * Math.sqrt(6 / 1000);
  assert.ok(s.maxAbs <= xb && s.maxAbs > 0.999 * xb);
  init.xavierNormal_(t, { generator: g });
  s = await stats(t);
  assert.ok(Math.abs(s.std - Math.sqrt(2 / 1000)) < 0.01 * Math.sqrt(2 / 1000));
  init.normal_(t, 3, 0.5, { generator: g });
  s = await stats(t);
  assert.ok(Math.abs(s.mean - 3) < 0.005 && Math.abs(s.std - 0.5) < 0.005);
  init.truncNormal_(t, 0, 1, -1, 1.5, { generator: g });
  s = await stats(t);
  assert.ok((await t.data()).every((v) => v >= -1 && v <= 1.5));
  init.uniform_(t, -2, -1, { generator: g });
  assert.ok((await t.data()).every((v) => v >= -2 && v <= -1));
  init.constant_(t, 0.25);
  assert.ok((await t.data()).every((v) => v === 0.25));
  init.zeros_(t);
  assert.equal((await stats(t)).maxAbs, 0);
  const e = init.eye_(mx.zeros([2, 3]));
  assert.deepEqual([...(await e.data())], [1, 0, 0, 0, 1, 0]);
  // A float16 tensor is filled with rounded values.
  const h = init.ones_(mx.zeros([3], { dtype: 'float16' }));
  assert.deepEqual([...(await h.data())], [1, 1, 1]);

  // Seeding: the same seed gives the same model; a generator option bypasses the default one.
  mx.manualSeed(42);
  const a = leNet().stateDict();
  mx.manualSeed(42);
  const b = leNet().stateDict();
  for (const k of Object.keys(a)) assert.deepEqual((await a[k]!.data()), (await b[k]!.data()));
  const l1 = new nn.Linear(4, 4, { generator: new mx.Generator(5) });
  const l2 = new nn.Linear(4, 4, { generator: new mx.Generator(5) });
  assert.deepEqual((await l1.weight.data()), (await l2.weight.data()));
  const l3 = new nn.Linear(4, 4, { dtype: 'bfloat16' });
  assert.equal(l3.weight.dtype, 'bfloat16');
});

/* ------------------------------------------------------------------ layers vs PyTorch */

test('LeNet forward and backward match PyTorch with its weights', async () => {
  const net = leNet();
  await checkFixture('lenet', net, ({ x }) => [net.call(x!)]);
});

test('Linear, Conv2d, ConvTranspose2d match PyTorch', async () => {
  const lin = new nn.Linear(5, 3);
  await checkFixture('linear', lin, ({ x }) => [lin.call(x!)]);
  const lin2 = new nn.Linear(6, 2, { bias: false });
  assert.equal(lin2.bias, null);
  await checkFixture('linear_nobias', lin2, ({ x }) => [lin2.call(x!)]);
  const conv = new nn.Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 });
  await checkFixture('conv2d', conv, ({ x }) => [conv.call(x!)]);
  const dil = new nn.Conv2d(3, 2, [3, 2], { dilation: 2, bias: false, padding: [1, 0] });
  await checkFixture('conv2d_dilated', dil, ({ x }) => [dil.call(x!)]);
  const tconv = new nn.ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 });
  await checkFixture('convTranspose2d', tconv, ({ x }) => [tconv.call(x!)]);
  // outputSize selects the output padding as PyTorch's forward(input, output_size).
  const t2 = new nn.ConvTranspose2d(2, 2, 3, { stride: 2, padding: 1 });
  const x = mx.randn([1, 2, 5, 5]);
  assert.deepEqual(t2.forward(x).shape, [1, 2, 9, 9]);
  assert.deepEqual(t2.forward(x, [10, 10]).shape, [1, 2, 10, 10]);
  assert.throws(() => t2.forward(x, [12, 10]), /not reachable/);
  // padding 'same' and 'valid'
  const same = new nn.Conv2d(2, 3, 5, { padding: 'same', dilation: 2 });
  assert.deepEqual(same.call(mx.randn([1, 2, 11, 9])).shape, [1, 3, 11, 9]);
  assert.deepEqual(new nn.Conv2d(2, 3, 3, { padding: 'valid' }).call(mx.randn([1, 2, 6, 6])).shape, [1, 3, 4, 4]);
  assert.throws(() => new nn.Conv2d(2, 3, 2, { padding: 'same' }), /symmetric/);
  assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /divisible by groups/);
});

test('pooling, LayerNorm, Embedding and activations match PyTorch', async () => {
  const simple: [string, Module][] = [
    ['maxPool2d', new nn.MaxPool2d(3, { stride: 2, padding: 1 })],
    ['avgPool2d', new nn.AvgPool2d(3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false })],
    ['adaptiveAvgPool2d', new nn.AdaptiveAvgPool2d([3, 2])],
    ['layerNorm', new nn.LayerNorm([4, 5])],
    ['act_relu', new nn.ReLU()],
    ['act_leakyRelu', new nn.LeakyReLU(0.2)],
    ['act_gelu', new nn.GELU()],
    ['act_geluTanh', new nn.GELU({ approximate: 'tanh' })],
    ['act_tanh', new nn.Tanh()],
    ['act_sigmoid', new nn.Sigmoid()],
    ['act_softmax', new nn.Softmax(1)],
    ['act_logSoftmax', new nn.LogSoftmax(-1)],
    ['act_flatten', new nn.Flatten()],
  ];
  for (const [name, m] of simple) await checkFixture(name, m, ({ x }) => [m.call(x!) as Tensor]);
  const emb = new nn.Embedding(10, 4, { paddingIdx: 2 });
  await checkFixture('embedding', emb, ({ idx }) => [emb.call(idx!)]);
  // the padding row got no gradient
  assert.ok((await emb.weight.grad!.narrow(0, 2, 1).data()).every((v) => v === 0));
  const frozen = nn.Embedding.fromPretrained(mx.randn([5, 3]));
  assert.equal(frozen.weight.requiresGrad, false);
  assert.deepEqual(frozen.call(mx.tensor([[0, 4]], { dtype: 'int32' })).shape, [1, 2, 3]);
});

test('MultiheadAttention and TransformerEncoderLayer match PyTorch outputs and gradients (masks, batchFirst, kdim/vdim, pre/post-norm)', async () => {
  const mha1 = new nn.MultiheadAttention(8, 2, { batchFirst: true });
  await checkFixture('mha_batchFirst_masks', mha1, ({ q, k, v, attnMask, keyPaddingMask }) => {
    const [out, w] = mha1.call(q!, k!, v!, { attnMask: attnMask!.ne(0), keyPaddingMask: keyPaddingMask!.ne(0) }) as [Tensor, Tensor];
    return [out, w];
  });
  const mha2 = new nn.MultiheadAttention(8, 4, { bias: false });
  assert.deepEqual(mha2.namedParameters().map(([n]) => n), ['in_proj_weight', 'out_proj.weight']);
  // a float mask gets its gradient too (through the explicit weights)
  await checkFixture('mha_self_floatMask_perHead', mha2, ({ x, attnMask }) => {
    const [out, w] = mha2.call(x!, x!, x!, { attnMask: attnMask!, averageAttnWeights: false }) as [Tensor, Tensor];
    return [out, w];
  });
  const mha3 = new nn.MultiheadAttention(8, 2, { kdim: 5, vdim: 3, batchFirst: true });
  assert.deepEqual(mha3.namedParameters().map(([n, p]) => `${n}${JSON.stringify(p.shape)}`), [
    'q_proj_weight[8,8]', 'k_proj_weight[8,5]', 'v_proj_weight[8,3]', 'in_proj_bias[24]', 'out_proj.weight[8,8]', 'out_proj.bias[8]',
  ]);
  await checkFixture('mha_kdim_vdim_noWeights', mha3, ({ q, k, v, keyPaddingMask }) => {
    const [out, w] = mha3.call(q!, k!, v!, { keyPaddingMask: keyPaddingMask!.ne(0), needWeights: false }) as [Tensor, null];
    assert.equal(w, null);
    return [out];
  });
  const post = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0, batchFirst: true });
  await checkFixture('transformerEncoderLayer_postNorm_relu', post, ({ x, srcMask, srcKeyPaddingMask }) => [
    post.call(x!, { srcMask: srcMask!.ne(0), srcKeyPaddingMask: srcKeyPaddingMask!.ne(0) }) as Tensor,
  ]);
  const pre = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0, activation: 'gelu', normFirst: true });
  assert.deepEqual(Object.keys(pre.stateDict()), [
    'self_attn.in_proj_weight', 'self_attn.in_proj_bias', 'self_attn.out_proj.weight', 'self_attn.out_proj.bias',
    'linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias', 'norm1.weight', 'norm1.bias', 'norm2.weight', 'norm2.bias',
  ]);
  await checkFixture('transformerEncoderLayer_preNorm_gelu', pre, ({ x }) => [pre.call(x!) as Tensor]);
});

test('MultiheadAttention: causal hint, unbatched input, dropout only in training, errors', async () => {
  mx.manualSeed(3);
  const mha = new nn.MultiheadAttention(6, 3, { batchFirst: true, dropout: 0.5 });
  const x = mx.randn([2, 4, 6]);
  mha.eval();
  const causal = mx.arange(4).reshape([4, 1]).lt(mx.arange(4).reshape([1, 4])); // true above the diagonal: not allowed
  const [a, wa] = mha.call(x, x, x, { isCausal: true }) as [Tensor, Tensor];
  const [b, wb] = mha.call(x, x, x, { attnMask: causal }) as [Tensor, Tensor];
  await assertClose(a, b, 'isCausal equals the causal mask');
  await assertClose(wa, wb, 'and so do the weights');
  // causal weights: nothing above the diagonal
  const w = await wa.data();
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) assert.equal(w[i * 4 + j], 0);
  const [fast] = mha.call(x, x, x, { isCausal: true, needWeights: false }) as [Tensor, null];
  await assertClose(fast, a, 'needWeights false (scaledDotProductAttention) equals the explicit weights');
  const [u] = mha.call(x.narrow(0, 1, 1).squeeze(0), x.narrow(0, 1, 1).squeeze(0), x.narrow(0, 1, 1).squeeze(0)) as [Tensor, Tensor];
  const [batched] = mha.call(x, x, x) as [Tensor, Tensor];
  await assertClose(u, batched.narrow(0, 1, 1).squeeze(0), 'unbatched input equals its row of a batch');
  mha.train();
  const [t1] = mha.call(x, x, x) as [Tensor, Tensor];
  const [t2] = mha.call(x, x, x) as [Tensor, Tensor];
  assert.ok((await t1.sub(t2).abs().max().data())[0]! > 0, 'attention dropout in training mode');
  assert.throws(() => new nn.MultiheadAttention(6, 4), /divisible by numHeads/);
  assert.throws(() => mha.call(x, x, x, { attnMask: mx.ones([3, 4]).ne(0) }), /attnMask \[3,4\] must be \[4, 4\] or \[6, 4, 4\]/);
  assert.throws(() => mha.call(x, x, x, { keyPaddingMask: mx.ones([4]).ne(0) }), /keyPaddingMask \[4\] must be \[2,4\]/);
  assert.throws(() => mha.call(mx.randn([2, 4, 5]), x, x), /expected embedDim 6/);
  assert.throws(() => new nn.TransformerEncoderLayer(6, 3, { activation: 'tanh' as 'relu' }), /activation must be 'relu' or 'gelu'/);
});

test('LSTM and GRU (2 layers, seq-first and batchFirst, bidirectional) match PyTorch outputs and gradients', async () => {
  for (const kind of ['lstm', 'gru'] as const) {
    for (const variant of ['seqFirst_state', 'batchFirst', 'bidir_batchFirst_state']) {
      const name = `${kind}_${variant}`;
      const meta = caseOf(name).meta as { inputSize: number; hiddenSize: number; numLayers: number; batchFirst: boolean; bidirectional: boolean };
      const opts = { numLayers: meta.numLayers, batchFirst: meta.batchFirst, bidirectional: meta.bidirectional };
      if (kind === 'lstm') {
        const rnn = new nn.LSTM(meta.inputSize, meta.hiddenSize, opts);
        await checkFixture(name, rnn, ({ x, h0, c0 }) => {
          const [out, [h, c]] = rnn.call(x!, h0 ? [h0, c0!] : undefined);
          return [out, h, c];
        });
      } else {
        const rnn = new nn.GRU(meta.inputSize, meta.hiddenSize, opts);
        await checkFixture(name, rnn, ({ x, h0 }) => {
          const [out, h] = rnn.call(x!, h0);
          return [out, h];
        });
      }
    }
  }
});

test('LSTM/GRU: names, unbatched input, shape errors, dropout between layers only in training', async () => {
  const lstm = new nn.LSTM(3, 4, { numLayers: 2, bidirectional: true });
  assert.deepEqual(lstm.namedParameters().slice(0, 8).map(([n, p]) => `${n}${JSON.stringify(p.shape)}`), [
    'weight_ih_l0[16,3]', 'weight_hh_l0[16,4]', 'bias_ih_l0[16]', 'bias_hh_l0[16]',
    'weight_ih_l0_reverse[16,3]', 'weight_hh_l0_reverse[16,4]', 'bias_ih_l0_reverse[16]', 'bias_hh_l0_reverse[16]',
  ]);
  assert.deepEqual([...lstm.getParameter('weight_ih_l1').shape], [16, 8]);
  const x = mx.randn([5, 3]);
  const [out, [h, c]] = lstm.call(x);
  assert.deepEqual([out.shape, h.shape, c.shape].map((s) => [...s]), [[5, 8], [4, 4], [4, 4]]);
  // unbatched equals batch of one
  const [outB] = lstm.call(x.unsqueeze(1));
  await assertClose(out, outB.squeeze(1), 'unbatched LSTM');
  assert.throws(() => lstm.call(mx.randn([5, 2, 4])), /must have 3 features/);
  assert.throws(() => lstm.call(mx.randn([5, 2, 3]), [mx.zeros([2, 2, 4]), mx.zeros([4, 2, 4])]), /expected h0 of shape \[4,2,4\], got \[2,2,4\]/);
  const gru = new nn.GRU(3, 4, { numLayers: 3, dropout: 0.5, bias: false });
  assert.equal(gru.parameters().length, 6);
  const xs = mx.randn([4, 2, 3]);
  gru.eval();
  const [e1] = gru.call(xs);
  const [e2] = gru.call(xs);
  await assertClose(e1, e2, 'eval GRU is deterministic', 0);
  gru.train();
  const [t1] = gru.call(xs);
  const [t2] = gru.call(xs);
  assert.ok((await t1.sub(t2).abs().max().data())[0]! > 0, 'training GRU applies dropout between layers');
});

test('BatchNorm running statistics after training steps and eval mode match PyTorch', async () => {
  for (const name of ['batchNorm2d', 'batchNorm1d_cumulative', 'batchNorm1d_2d']) {
    const c = caseOf(name);
    const meta = c.meta as { features: number; momentum: number | null; eps: number };
    const bn = name === 'batchNorm2d' ? new nn.BatchNorm2d(meta.features) : new nn.BatchNorm1d(meta.features, { momentum: meta.momentum, eps: meta.eps });
    bn.loadStateDict(group(name, 'state/'));
    const xs = [0, 1, 2].map((i) => fx(name, `input/x${i}`, true));
    let loss: Tensor | null = null;
    for (const [i, x] of xs.entries()) {
      const y = bn.call(x);
      await assertClose(y, c.tensors[`output/out0_${i}`]!, `${name} step ${i}`);
      const term: Tensor = y.mul(fx(name, `gradOut/out0_${i}`)).sum();
      loss = loss ? loss.add(term) : term;
    }
    loss!.backward();
    await assertClose(bn.weight!.grad, c.tensors['grad/weight']!, `${name} grad weight`);
    await assertClose(bn.bias!.grad, c.tensors['grad/bias']!, `${name} grad bias`);
    for (const [i, x] of xs.entries()) await assertClose(x.grad, c.tensors[`gradInput/x${i}`]!, `${name} grad x${i}`);
    await assertClose(bn.runningMean, c.tensors['after/runningMean']!, `${name} runningMean`);
    await assertClose(bn.runningVar, c.tensors['after/runningVar']!, `${name} runningVar`);
    assert.equal(bn.numBatchesTracked!.dtype, 'int32');
    assert.deepEqual([...(await bn.numBatchesTracked!.data())], [3]);
    bn.eval();
    await assertClose(bn.call(fx(name, 'input/eval_x')), c.tensors['output/eval']!, `${name} eval`);
    assert.deepEqual([...(await bn.numBatchesTracked!.data())], [3], 'eval does not count batches');
  }
  assert.throws(() => new nn.BatchNorm2d(3).call(mx.randn([2, 3, 4])), /expected 4D input \(got 3D input/);
  assert.throws(() => new nn.BatchNorm1d(3).call(mx.randn([2, 3, 4, 4])), /expected 2D or 3D input/);
  // Without running statistics, eval mode uses the batch statistics.
  const free = new nn.BatchNorm1d(2, { trackRunningStats: false, affine: false });
  assert.equal(free.parameters().length + free.buffers().length, 0);
  const y = free.eval().call(mx.tensor([[1, 2], [3, 6]]));
  await assertClose(y, mx.tensor([[-1, -1], [1, 1]]), 'batch statistics in eval', 1e-4);
});

test('losses match PyTorch', async () => {
  const ce = new nn.CrossEntropyLoss({ weight: mx.zeros([5]), labelSmoothing: 0.1 });
  await checkFixture('crossEntropy_weighted', ce, ({ x, t }) => [ce.call(x!, t!)]);
  const ce2 = new nn.CrossEntropyLoss({ reduction: 'sum' });
  await checkFixture('crossEntropy_spatial_sum', ce2, ({ x, t }) => [ce2.call(x!, t!)]);
  const nll = new nn.NLLLoss({ weight: mx.zeros([5]) });
  await checkFixture('nllLoss_weighted', nll, ({ x, t }) => [nll.call(x!, t!)]);
  const mse = new nn.MSELoss();
  await checkFixture('mseLoss', mse, ({ x, y }) => [mse.call(x!, y!)]);
  const bce = new nn.BCEWithLogitsLoss({ weight: mx.zeros([4]), posWeight: mx.zeros([4]) });
  assert.deepEqual(Object.keys(bce.stateDict()), ['weight', 'posWeight']);
  await checkFixture('bceWithLogits', bce, ({ x, y }) => [bce.call(x!, y!)]);
  assert.throws(() => new nn.MSELoss({ reduction: 'avg' as never }), /reduction must be/);
  const l1 = new nn.L1Loss({ reduction: 'none' });
  assert.deepEqual([...(await l1.call(mx.tensor([1, -2]), mx.tensor([0, 0])).data())], [1, 2]);
});

/* ------------------------------------------------------------------ state dicts */

test('stateDict / loadStateDict round trip', async () => {
  mx.manualSeed(1);
  const a = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.ReLU(), new nn.Flatten(), new nn.Linear(8, 3));
  mx.manualSeed(2);
  const b = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.ReLU(), new nn.Flatten(), new nn.Linear(8, 3));
  a.call(mx.randn([4, 1, 4, 4])); // moves a's running statistics
  const x = mx.randn([2, 1, 4, 4]);
  a.eval();
  b.eval();
  assert.notDeepEqual((await a.call(x).data()), (await b.call(x).data()));
  const sd = a.stateDict();
  assert.deepEqual(Object.keys(sd), ['0.weight', '0.bias', '1.weight', '1.bias', '1.runningMean', '1.runningVar', '1.numBatchesTracked', '4.weight', '4.bias']);
  assert.ok(Object.values(sd).every((t) => !t.requiresGrad));
  const res = b.loadStateDict(sd);
  assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
  assert.deepEqual((await b.call(x).data()), (await a.call(x).data()));
  for (const [k, v] of Object.entries(b.stateDict())) assert.deepEqual((await v.data()), (await sd[k]!.data()), k);
  // values were copied in place: b's parameters are still its own tensors, still leaves requiring grad
  assert.notEqual((b.at(0) as mx.nn.Conv2d).weight.storage, (a.at(0) as mx.nn.Conv2d).weight.storage);
  assert.ok(b.parameters().every((p) => p.isLeaf && p.requiresGrad));
  // a Map works too; non-persistent buffers are left out
  b.loadStateDict(new Map(Object.entries(sd)));
  const m = new nn.Linear(2, 2);
  m.registerBuffer('scratch', mx.zeros([2]), false);
  assert.deepEqual(Object.keys(m.stateDict()), ['weight', 'bias']);
  assert.equal(m.namedBuffers().length, 1);
});

test('loadStateDict lists every mismatch (missing, unexpected, shape, dtype) in one error and copies nothing', async () => {
  class Net extends nn.Module {
    constructor() {
      super();
      this.registerModule('conv1', new nn.Conv2d(3, 6, 5));
      this.registerModule('bn', new nn.BatchNorm2d(6));
      this.registerModule('fc', new nn.Linear(4, 2));
    }
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  const net = new Net();
  const before = (await net.getParameter('fc.weight').data()).slice();
  const sd = new Net().stateDict();
  sd['conv1.weight'] = mx.zeros([6, 1, 5, 5]);
  sd['fc.weight'] = mx.zeros([2, 4], { dtype: 'float16' });
  delete sd['fc.bias'];
  sd['fc.extra'] = mx.zeros([1]);
  sd['bn.numBatchesTracked'] = mx.zeros([], { dtype: 'float32' });
  let message = '';
  assert.throws(() => net.loadStateDict(sd), (e: Error) => {
    message = e.message;
    return true;
  });
  assert.match(message, /^loadStateDict: 5 problems loading the state dict into Net \(nothing was copied\):/);
  assert.match(message, /missing key: 'fc\.bias'/);
  assert.match(message, /unexpected key: 'fc\.extra'/);
  assert.match(message, /conv1\.weight: shape mismatch: expected \[6,3,5,5\], got \[6,1,5,5\]/);
  assert.match(message, /fc\.weight: dtype mismatch: expected float32, got float16/);
  assert.match(message, /bn\.numBatchesTracked: dtype mismatch: expected int32, got float32/);
  assert.deepEqual((await net.getParameter('fc.weight').data()), before, 'nothing copied');

  // strict: false tolerates missing/unexpected keys (returned) but not shape or dtype mismatches.
  assert.throws(() => net.loadStateDict(sd, { strict: false }), (e: Error) => /3 problems/.test(e.message) && !/missing key/.test(e.message));
  const ok = new Net().stateDict();
  delete ok['fc.bias'];
  ok['fc.extra'] = mx.zeros([1]);
  ok['fc.weight'] = mx.full([2, 4], 0.5, { dtype: 'float16' });
  assert.throws(() => net.loadStateDict(ok, { strict: false }), /1 problem loading.*\n {2}fc\.weight: dtype mismatch/);
  const res = net.loadStateDict(ok, { strict: false, allowDtypeCast: true });
  assert.deepEqual(res, { missingKeys: ['fc.bias'], unexpectedKeys: ['fc.extra'] });
  assert.deepEqual([...(await net.getParameter('fc.weight').data())], new Array(8).fill(0.5));
  assert.equal(net.getParameter('fc.weight').dtype, 'float32');
});

/* ------------------------------------------------------------------ modes, hooks, grads, dtypes */

test('train/eval toggles Dropout (recursively)', async () => {
  const net = new nn.Sequential(new nn.Linear(50, 200), new nn.Sequential(new nn.Dropout(0.5)));
  assert.ok(net.modules().every((m) => m.training));
  const x = mx.randn([4, 50]);
  const clean = (await (net.at(0) as mx.nn.Linear).call(x).data());
  const y = (await net.call(x).data());
  let zeros = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] === 0) zeros++;
    else assert.ok(Math.abs(y[i]! - 2 * clean[i]!) <= 1e-6 * Math.max(1, Math.abs(clean[i]!)), 'kept values are scaled by 1/(1-p)');
  }
  assert.ok(zeros > 300 && zeros < 500, `about half dropped, got ${zeros} of 800`);
  net.eval();
  assert.ok(net.modules().every((m) => !m.training));
  assert.deepEqual((await net.call(x).data()), clean);
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  net.train(false);
  assert.equal((net.at(1) as mx.nn.Sequential).at(0).training, false);
  assert.throws(() => new nn.Dropout(1.5), /between 0 and 1/);
});

test('forward hooks fire (also inside Sequential), can replace inputs and outputs, and can be removed', async () => {
  const lin = new nn.Linear(3, 2);
  const net = new nn.Sequential(lin, new nn.ReLU());
  const log: string[] = [];
  const pre = lin.registerForwardPreHook((m, inputs) => {
    log.push(`pre ${m.constructor.name} ${JSON.stringify((inputs[0] as Tensor).shape)}`);
  });
  const post = lin.registerForwardHook((m, _inputs, output) => {
    log.push(`post ${m.outFeatures} ${JSON.stringify((output as Tensor).shape)}`);
    return mx.full([1, 2], -7);
  });
  const x = mx.randn([1, 3]);
  const y = net.call(x);
  assert.deepEqual(log, ['pre Linear [1,3]', 'post 2 [1,2]']);
  assert.deepEqual([...(await y.data())], [0, 0], 'the replaced output flowed into ReLU');
  // forward() bypasses hooks; call() runs them
  log.length = 0;
  lin.forward(x);
  assert.equal(log.length, 0);
  post.remove();
  pre.remove();
  assert.deepEqual((await net.call(x).data()), (await lin.forward(x).relu().data()));
  assert.equal(log.length, 0);
  // a pre-hook can replace the inputs
  const h = lin.registerForwardPreHook(() => [mx.zeros([1, 3])]);
  await assertClose(lin.call(x), lin.bias!.unsqueeze(0), 'pre-hook replaced input');
  h.remove();
  // hooks see the module, the inputs and the output
  let seen: unknown[] = [];
  const loss = new nn.MSELoss();
  loss.registerForwardHook((m, inputs, out) => {
    seen = [m, inputs.length, (out as Tensor).shape.length];
  });
  loss.call(mx.ones([2]), mx.zeros([2]));
  assert.deepEqual(seen, [loss, 2, 0]);
});

test('zeroGrad drops (or zeroes) the gradients', async () => {
  const net = leNet();
  net.call(mx.randn([1, 3, 32, 32])).sum().backward();
  assert.ok(net.parameters().every((p) => p.grad !== null));
  const grads = net.parameters().map((p) => p.grad!);
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === null));
  assert.ok(grads.every((g) => g.storage.disposed), 'the gradients were freed');
  net.call(mx.randn([1, 3, 32, 32])).sum().backward();
  net.zeroGrad(false);
  for (const p of net.parameters()) assert.ok(p.grad !== null && (await p.grad.abs().max().data())[0] === 0);
});

test("to('float16') halves parameter bytes; keepNormInFloat32 keeps BatchNorm in float32", async () => {
  const build = () => new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Flatten(), new nn.LayerNorm(16), new nn.Linear(16, 2));
  const bytes = (m: Module) => m.parameters().reduce((n, p) => n + p.numel * p.dt.itemsize, 0);
  const net = build();
  net.call(mx.randn([2, 3, 4, 4])).sum().backward();
  const full = bytes(net);
  const oldConvWeight = (net.at(0) as mx.nn.Conv2d).weight;
  assert.equal(net.half(), net);
  assert.equal(bytes(net), full / 2);
  for (const p of net.parameters()) assert.ok(p.dtype === 'float16' && p.isLeaf && p.requiresGrad);
  const conv = net.at(0) as mx.nn.Conv2d;
  assert.notEqual(conv.weight, oldConvWeight, 'the parameter was replaced');
  assert.equal(oldConvWeight.dtype, 'float32');
  assert.equal(conv.weight.grad!.dtype, 'float16', 'the gradient was cast too');
  const bn = net.at(1) as mx.nn.BatchNorm2d;
  assert.equal(bn.runningMean!.dtype, 'float16');
  assert.equal(bn.numBatchesTracked!.dtype, 'int32', 'integer buffers are left alone');

  const mixed = build().to('float16', { keepNormInFloat32: true });
  const dtypes = Object.fromEntries(Object.entries(mixed.stateDict()).map(([k, v]) => [k, v.dtype]));
  assert.deepEqual(dtypes, {
    '0.weight': 'float16', '0.bias': 'float16',
    '1.weight': 'float32', '1.bias': 'float32', '1.runningMean': 'float32', '1.runningVar': 'float32', '1.numBatchesTracked': 'int32',
    '4.weight': 'float16', '4.bias': 'float16',
    '5.weight': 'float16', '5.bias': 'float16',
  });
  // LayerNorm opts in per instance.
  const ln = new nn.Sequential(new nn.LayerNorm(4, { keepFloat32: true }), new nn.Linear(4, 4)).bfloat16({ keepNormInFloat32: true });
  assert.deepEqual(ln.parameters().map((p) => p.dtype), ['float32', 'float32', 'bfloat16', 'bfloat16']);
  // The mixed model trains: float16 activations through a float32 BatchNorm.
  const y = mixed.call(mx.randn([2, 3, 4, 4], { dtype: 'float16' }));
  assert.equal(y.dtype, 'float16');
  y.float().sum().backward();
  assert.ok(mixed.parameters().every((p) => p.grad !== null && p.grad.dtype === p.dtype));
  const m1 = (mixed.at(1) as mx.nn.BatchNorm2d);
  assert.equal(m1.runningMean!.dtype, 'float32');
  assert.ok((await m1.runningMean!.abs().max().data())[0]! > 0, 'running mean updated');
  // Back to float32; tied parameters stay tied; integer dtypes are refused.
  const tied = new nn.Sequential(new nn.Linear(3, 3), new nn.Linear(3, 3));
  (tied.at(1) as mx.nn.Linear).registerParameter('weight', (tied.at(0) as mx.nn.Linear).weight);
  tied.half();
  assert.equal((tied.at(1) as mx.nn.Linear).weight, (tied.at(0) as mx.nn.Linear).weight);
  assert.equal(tied.float().parameters()[0]!.dtype, 'float32');
  assert.throws(() => tied.to('int32'), /only floating point dtypes/);
  // A field assigned from registerParameter follows the replacement.
  class Scale extends nn.Module {
    readonly s = this.registerParameter('s', mx.ones([1]));
    forward(x: Tensor): Tensor {
      return x.mul(this.s);
    }
  }
  const sc = new Scale().double();
  assert.equal(sc.s.dtype, 'float64');
  assert.equal(sc.s, sc.parameters()[0]);
});

test('BatchNorm under autocast: float16 compute, running statistics stay float32', async () => {
  mx.manualSeed(3);
  const net = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm2d(3), new nn.ReLU());
  const bn = net.at(1) as mx.nn.BatchNorm2d;
  const x = mx.randn([4, 2, 6, 6]);
  const y = mx.amp.autocast({ dtype: 'float16' }, () => net.call(x));
  assert.equal(y.dtype, 'float16');
  assert.equal(bn.runningMean!.dtype, 'float32');
  assert.equal(bn.runningVar!.dtype, 'float32');
  assert.deepEqual([...(await bn.numBatchesTracked!.data())], [1]);
  // the update matches a float32 run up to the float16 rounding of the conv output
  const ref = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm2d(3), new nn.ReLU());
  ref.loadStateDict(net.stateDict());
  ref.at(1).loadStateDict(new nn.BatchNorm2d(3).stateDict());
  ref.call(x);
  await assertClose(bn.runningMean, (ref.at(1) as mx.nn.BatchNorm2d).runningMean!, 'autocast running mean', 2e-3);
  y.float().sum().backward();
  assert.ok(net.parameters().every((p) => p.grad !== null && p.grad.dtype === 'float32'));
});

test('modules outlive mx.scope, and a training step in a scope keeps memory constant', async () => {
  const net = mx.scope(() => new nn.Sequential(new nn.Linear(4, 8), new nn.BatchNorm1d(8), new nn.ReLU(), new nn.Linear(8, 2)));
  for (const t of [...net.parameters(), ...net.buffers()]) assert.ok(!t.storage.disposed);
  const lossFn = new nn.CrossEntropyLoss();
  const opt = new mx.optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
  const x = mx.randn([6, 4]);
  const target = mx.tensor([0, 1, 1, 0, 1, 0], { dtype: 'int32' });
  const step = () => {
    mx.scope(() => {
      opt.zeroGrad();
      lossFn.call(net.call(x), target).backward();
      opt.step();
    });
  };
  step();
  step();
  const live = mx.memory().liveBuffers;
  for (let i = 0; i < 3; i++) step();
  assert.equal(mx.memory().liveBuffers, live);
  // the model's state is intact and it is still usable
  assert.deepEqual([...(await (net.at(1) as mx.nn.BatchNorm1d).numBatchesTracked!.data())], [5]);
  assert.deepEqual(net.eval().call(x).shape, [6, 2]);
});
