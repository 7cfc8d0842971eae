/**
 * Ops and nn.functional against PyTorch: forward values and input gradients, in float32, float16
 * and bfloat16, including broadcasting, JS-number operands and non-contiguous views.
 *
 * Fixtures: test/fixtures/ops/ops.json from tools/gen_op_fixtures.py (PyTorch 1.13; see its
 * docstring). Each case gives float32 inputs (already rounded to the dtype for 16-bit cases), the
 * view applied to each input, a random upstream gradient `gradOutput`, and PyTorch's float32
 * results. For every case and dtype this test builds the inputs, runs the op through the table
 * below, calls out.backward(gradOutput) and compares the output and each leaf's .grad (in the
 * leaf's dtype) with the rules of test/helpers/compare.ts:
 *   float32: relative error <= 1e-5 (absolute floor 1e-6 * max|expected| near zero);
 *   float16/bfloat16: the reference rounded to the dtype, then within 1 ulp for elementwise ops
 *   (and their backward), 1e-2 relative for reductions, matmul, convolutions, losses and norms
 *   (and their backward, and the gradient of a broadcast operand, which is a sum), with an
 *   absolute floor of max(1e-3 * M, ulp(M)), M the largest magnitude in the tensor.
 * Known src failures run as node:test `todo` (KNOWN_FAILURES below) so the run stays green.
 *
 * dropout cannot be compared with PyTorch's RNG; it is checked on its own at the end.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import * as mx from '../src/index.js';
import { readJson } from './helpers/fixtures.js';
import { assertClose, decode, roundTo, ulp, type Encoded, type FloatDType, type Tolerance } from './helpers/compare.js';

const F = mx.nn.functional;
type Tensor = mx.Tensor;

// ---------------------------------------------------------------------------------------------
// Fixture format

type View = ['t'] | ['permute', number[]] | ['transpose', number, number] | ['narrow', number, number, number] | ['expand', number[]];

type InputSpec =
  | { name: string; kind: 'float'; shape: number[]; grad: boolean; view?: View[]; fixedDtype?: FloatDType; after?: boolean }
  | { name: string; kind: 'int32'; shape: number[]; data: number[] }
  | { name: string; kind: 'bool'; shape: number[]; data: number[] }
  | { name: string; kind: 'scalar'; value: number };

interface DtypeEntry {
  inputs: Record<string, Encoded[]>;
  output: Encoded[];
  gradOutput?: Encoded[];
  grads?: Record<string, Encoded[]>;
  after?: Record<string, Encoded[]>;
}

interface Case {
  id: string;
  op: string;
  args: Record<string, any>;
  fwd: Tolerance;
  bwd: Tolerance;
  inputs: InputSpec[];
  outputShape: number[];
  outputKind: 'float' | 'int32';
  gradKinds: Record<string, Tolerance>;
  dtypes: Partial<Record<FloatDType, DtypeEntry>>;
}

interface Fixture {
  torch: string;
  dtypes: FloatDType[];
  cases: Case[];
}

// ---------------------------------------------------------------------------------------------
// The calls: fixture op name -> TS call on named operands (tensors or JS numbers) and args

type Operand = Tensor | number;
type Operands = Record<string, Operand>;
const T = (x: Operand | undefined): Tensor => {
  if (!(x instanceof mx.Tensor)) throw new TypeError('expected a tensor operand');
  return x;
};
const opt = (x: Operand | undefined): Tensor | null => (x === undefined ? null : T(x));
const list = (x: Operands): Tensor[] => Object.keys(x).filter((k) => /^x\d+$/.test(k)).sort().map((k) => T(x[k]));

const OPS: Record<string, (x: Operands, a: Record<string, any>) => Tensor> = {
  add: (x) => mx.add(x.a!, x.b!),
  sub: (x) => mx.sub(x.a!, x.b!),
  mul: (x) => mx.mul(x.a!, x.b!),
  div: (x) => mx.div(x.a!, x.b!),
  pow: (x) => mx.pow(x.a!, x.b!),
  maximum: (x) => mx.maximum(x.a!, x.b!),
  minimum: (x) => mx.minimum(x.a!, x.b!),
  neg: (x) => mx.neg(T(x.x)),
  abs: (x) => mx.abs(T(x.x)),
  exp: (x) => mx.exp(T(x.x)),
  log: (x) => mx.log(T(x.x)),
  log1p: (x) => mx.log1p(T(x.x)),
  sqrt: (x) => mx.sqrt(T(x.x)),
  rsqrt: (x) => mx.rsqrt(T(x.x)),
  tanh: (x) => mx.tanh(T(x.x)),
  sigmoid: (x) => mx.sigmoid(T(x.x)),
  relu: (x) => mx.relu(T(x.x)),
  leakyRelu: (x, a) => (a.negativeSlope === undefined ? mx.leakyRelu(T(x.x)) : mx.leakyRelu(T(x.x), a.negativeSlope)),
  gelu: (x, a) => (a.approximate === undefined ? mx.gelu(T(x.x)) : mx.gelu(T(x.x), { approximate: a.approximate })),
  clamp: (x, a) => mx.clamp(T(x.x), a.min, a.max),
  where: (x) => mx.where(T(x.cond), x.a!, x.b!),

  sum: (x, a) => mx.sum(T(x.x), a.dim, a.keepdim),
  mean: (x, a) => mx.mean(T(x.x), a.dim, a.keepdim),
  max: (x, a) => mx.max(T(x.x), a.dim, a.keepdim),
  min: (x, a) => mx.min(T(x.x), a.dim, a.keepdim),
  argmax: (x, a) => mx.argmax(T(x.x), a.dim, a.keepdim),
  logsumexp: (x, a) => mx.logsumexp(T(x.x), a.dim, a.keepdim),
  var: (x, a) => mx.var(T(x.x), a.dim, a.keepdim, a.correction),
  matmul: (x) => mx.matmul(T(x.a), T(x.b)),

  reshape: (x, a) => mx.reshape(T(x.x), a.shape),
  view: (x, a) => mx.view(T(x.x), a.shape),
  permute: (x, a) => mx.permute(T(x.x), a.dims),
  transpose: (x, a) => mx.transpose(T(x.x), a.dim0, a.dim1),
  flatten: (x, a) => mx.flatten(T(x.x), a.startDim, a.endDim),
  squeeze: (x, a) => mx.squeeze(T(x.x), a.dim),
  unsqueeze: (x, a) => mx.unsqueeze(T(x.x), a.dim),
  expand: (x, a) => mx.expand(T(x.x), a.shape),
  narrow: (x, a) => mx.narrow(T(x.x), a.dim, a.start, a.length),
  cat: (x, a) => mx.cat(list(x), a.dim),
  stack: (x, a) => mx.stack(list(x), a.dim),
  indexSelect: (x, a) => mx.indexSelect(T(x.x), a.dim, T(x.index)),
  gather: (x, a) => mx.gather(T(x.x), a.dim, T(x.index)),

  linear: (x) => F.linear(T(x.x), T(x.weight), opt(x.bias)),
  conv2d: (x, a) => F.conv2d(T(x.x), T(x.weight), opt(x.bias), a),
  convTranspose2d: (x, a) => F.convTranspose2d(T(x.x), T(x.weight), opt(x.bias), a),
  maxPool2d: (x, { kernelSize, ...o }) => F.maxPool2d(T(x.x), kernelSize, o),
  avgPool2d: (x, { kernelSize, ...o }) => F.avgPool2d(T(x.x), kernelSize, o),
  adaptiveAvgPool2d: (x, a) => F.adaptiveAvgPool2d(T(x.x), a.outputSize),
  softmax: (x, a) => F.softmax(T(x.x), a.dim),
  logSoftmax: (x, a) => F.logSoftmax(T(x.x), a.dim),
  crossEntropy: (x, a) => F.crossEntropy(T(x.x), T(x.target), { ...a, weight: opt(x.weight) }),
  nllLoss: (x, a) => F.nllLoss(T(x.x), T(x.target), { ...a, weight: opt(x.weight) }),
  mseLoss: (x, a) => F.mseLoss(T(x.x), T(x.target), a),
  binaryCrossEntropyWithLogits: (x, a) =>
    F.binaryCrossEntropyWithLogits(T(x.x), T(x.target), { ...a, weight: opt(x.weight), posWeight: opt(x.posWeight) }),
  batchNorm: (x, a) => F.batchNorm(T(x.x), opt(x.runningMean), opt(x.runningVar), { ...a, weight: opt(x.weight), bias: opt(x.bias) }),
  layerNorm: (x, { normalizedShape, ...o }) => F.layerNorm(T(x.x), normalizedShape, { ...o, weight: opt(x.weight), bias: opt(x.bias) }),
  embedding: (x, a) => F.embedding(T(x.input), T(x.weight), a),
};

/**
 * Known failures, caused by src (not by the test): case id -> reason, run as node:test `todo`
 * for every dtype (or only those listed). Remove an entry once src is fixed.
 */
const KNOWN_FAILURES: Record<string, { reason: string; dtypes?: FloatDType[] }> = {};

// ---------------------------------------------------------------------------------------------
// Running one case

function applyView(x: Tensor, views: readonly View[] = []): Tensor {
  for (const v of views) {
    switch (v[0]) {
      case 't': x = x.t(); break;
      case 'permute': x = x.permute(v[1]); break;
      case 'transpose': x = x.transpose(v[1], v[2]); break;
      case 'narrow': x = x.narrow(v[1], v[2], v[3]); break;
      case 'expand': x = x.expand(v[1]); break;
      default: throw new Error(`unknown view ${JSON.stringify(v)}`);
    }
  }
  return x;
}

async function runCase(c: Case, dtype: FloatDType): Promise<void> {
  const entry = c.dtypes[dtype];
  assert.ok(entry, `${c.id}: no ${dtype} data in the fixture`);
  const label = `${c.id} [${dtype}]`;
  const leaves: Record<string, Tensor> = {};
  const operands: Operands = {};
  for (const s of c.inputs) {
    if (s.kind === 'float') {
      const dt = s.fixedDtype ?? dtype;
      const values = decode(entry.inputs[s.name]!);
      const leaf = mx.tensor(Float32Array.from(values), { dtype: dt, shape: s.shape, requiresGrad: s.grad });
      // The fixture stores values already rounded to the dtype: the tensor must hold them exactly.
      const held = (await leaf.data());
      const bad = values.findIndex((v, i) => !Object.is(held[i], v) && !(Number.isNaN(v) && Number.isNaN(held[i]!)));
      assert.equal(bad, -1, `${label}: input '${s.name}'[${bad}] = ${values[bad]} is not exact in ${dt} (tensor holds ${held[bad]})`);
      leaves[s.name] = leaf;
      operands[s.name] = applyView(leaf, s.view);
    } else if (s.kind === 'int32') {
      operands[s.name] = mx.tensor(Int32Array.from(s.data), { dtype: 'int32', shape: s.shape });
    } else if (s.kind === 'bool') {
      operands[s.name] = mx.tensor(Uint8Array.from(s.data), { dtype: 'bool', shape: s.shape });
    } else {
      operands[s.name] = s.value;
    }
  }

  const call = OPS[c.op];
  assert.ok(call, `${c.id}: no TS call for op '${c.op}'`);
  const out = call(operands, c.args);

  // Forward: shape, dtype, values.
  assert.deepEqual([...out.shape], c.outputShape, `${label}: output shape`);
  const outDtype = c.outputKind === 'int32' ? 'int32' : dtype;
  assert.equal(out.dtype, outDtype, `${label}: output dtype`);
  assertClose(`${label} output`, (await out.data()), decode(entry.output), c.outputShape, outDtype, c.fwd);

  // Backward: every float leaf with grad gets a gradient in its own dtype and shape.
  if (entry.gradOutput && entry.grads) {
    const g = mx.tensor(Float32Array.from(decode(entry.gradOutput)), { dtype, shape: c.outputShape });
    out.backward(g);
    for (const [name, expected] of Object.entries(entry.grads)) {
      const leaf = leaves[name]!;
      const grad = leaf.grad;
      assert.ok(grad, `${label}: input '${name}' got no gradient`);
      assert.deepEqual([...grad.shape], [...leaf.shape], `${label}: grad of '${name}' shape`);
      assert.equal(grad.dtype, leaf.dtype, `${label}: grad of '${name}' dtype`);
      assertClose(`${label} grad of '${name}'`, (await grad.data()), decode(expected), leaf.shape, leaf.dtype as FloatDType, c.gradKinds[name] ?? c.bwd);
    }
  }

  // In-place updates (batch-norm running statistics), in their own dtype.
  for (const [name, expected] of Object.entries(entry.after ?? {})) {
    const t = leaves[name]!;
    assertClose(`${label} '${name}' after the op`, (await t.data()), decode(expected), t.shape, t.dtype as FloatDType, c.fwd);
  }
}

// ---------------------------------------------------------------------------------------------
// The tests

const fixture = readJson<Fixture>('ops', 'ops.json');

describe('op fixtures', () => {
  it('cover every op of the issue and every op of the call table', async () => {
    const required = [
      'add', 'sub', 'mul', 'div', 'neg', 'abs', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'pow', 'tanh', 'sigmoid', 'relu', 'leakyRelu',
      'gelu', 'clamp', 'where', 'maximum', 'minimum', 'sum', 'mean', 'max', 'min', 'argmax', 'logsumexp', 'var', 'matmul', 'reshape',
      'view', 'permute', 'transpose', 'flatten', 'squeeze', 'unsqueeze', 'expand', 'narrow', 'cat', 'stack', 'indexSelect', 'gather',
      'linear', 'conv2d', 'convTranspose2d', 'maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d', 'softmax', 'logSoftmax', 'crossEntropy',
      'nllLoss', 'mseLoss', 'binaryCrossEntropyWithLogits', 'batchNorm', 'layerNorm', 'embedding',
    ];
    const present = new Set(fixture.cases.map((c) => c.op));
    assert.deepEqual(required.filter((op) => !present.has(op)), [], 'ops without fixture cases');
    assert.deepEqual([...present].filter((op) => !(op in OPS)), [], 'fixture ops without a TS call');
    assert.deepEqual(Object.keys(KNOWN_FAILURES).filter((id) => !fixture.cases.some((c) => c.id === id)), [], 'stale KNOWN_FAILURES ids');
  });

  it('ulp helper: spacing of the 16-bit formats, subnormals included', async () => {
    assert.equal(ulp(1, 'float16'), 2 ** -10);
    assert.equal(ulp(1.999, 'float16'), 2 ** -10);
    assert.equal(ulp(2, 'float16'), 2 ** -9);
    assert.equal(ulp(65504, 'float16'), 32);
    assert.equal(ulp(2 ** -14, 'float16'), 2 ** -24);
    assert.equal(ulp(1e-6, 'float16'), 2 ** -24);
    assert.equal(ulp(0, 'float16'), 2 ** -24);
    assert.equal(ulp(-3, 'bfloat16'), 2 ** -6);
    assert.equal(ulp(1e-39, 'bfloat16'), 2 ** -133);
    assert.equal(ulp(1, 'float32'), 2 ** -23);
    assert.equal(roundTo(1 + 2 ** -11, 'float16'), 1);
    assert.equal(roundTo(1 + 3 * 2 ** -11, 'float16'), 1 + 2 ** -9);
    assert.equal(roundTo(1 + 2 ** -8, 'bfloat16'), 1);
  });
});

const byOp = new Map<string, Case[]>();
for (const c of fixture.cases) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);

for (const [op, cases] of byOp) {
  describe(op, () => {
    for (const c of cases) {
      for (const dtype of fixture.dtypes) {
        if (!c.dtypes[dtype]) continue;
        const known = KNOWN_FAILURES[c.id];
        const todo = known && (!known.dtypes || known.dtypes.includes(dtype)) ? known.reason : undefined;
        it(`${c.id} [${dtype}]`, todo ? { todo } : {}, async () => runCase(c, dtype));
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// dropout (not comparable with PyTorch's RNG)

describe('dropout', () => {
  const DTYPES: FloatDType[] = ['float32', 'float16', 'bfloat16'];
  const shape = [200, 250];
  const n = shape[0]! * shape[1]!;

  for (const dtype of DTYPES) {
    it(`p=0 and training=false are the identity [${dtype}]`, async () => {
      const x = mx.randn([4, 5], { dtype, requiresGrad: true, generator: new mx.Generator(1) });
      for (const y of [F.dropout(x, { p: 0 }), F.dropout(x, { p: 0.5, training: false })]) {
        assert.equal(y.dtype, dtype);
        assert.deepEqual([...(await y.data())], [...(await x.data())]);
      }
      const y = F.dropout(x, { p: 0.5, training: false });
      const g = mx.randn([4, 5], { dtype, generator: new mx.Generator(2) });
      y.backward(g);
      assert.deepEqual([...(await x.grad!.data())], [...(await g.data())]);
    });

    for (const p of [0.3, 0.75]) {
      it(`p=${p}: mask fraction ~p, kept values scaled by 1/(1-p), gradient = mask * scale [${dtype}]`, async () => {
        // Inputs away from 0, so a zero output means a dropped element.
        const x0 = mx.rand(shape, { generator: new mx.Generator(11) });
        const x = mx.add(x0, 0.5).to(dtype).detach().requiresGrad_();
        const y = F.dropout(x, { p, generator: new mx.Generator(12) });
        assert.equal(y.dtype, dtype);
        assert.deepEqual([...y.shape], shape);
        const xv = (await x.data());
        const yv = (await y.data());
        const scale = Math.fround(1 / (1 - p)); // the JS-number factor is applied in float32 (opmath)
        let dropped = 0;
        const kept: number[] = [];
        const keptExpected: number[] = [];
        for (let i = 0; i < n; i++) {
          if (yv[i] === 0) dropped++;
          else {
            kept.push(yv[i]!);
            keptExpected.push(xv[i]! * scale);
          }
        }
        // Binomial(n, p): 6 standard deviations.
        const sd = Math.sqrt(p * (1 - p) / n);
        assert.ok(Math.abs(dropped / n - p) < 6 * sd, `dropped fraction ${dropped / n}, expected ${p} +- ${6 * sd}`);
        assertClose(`dropout kept values [${dtype}]`, kept, keptExpected, [kept.length], dtype, 'elementwise');

        const g = mx.add(mx.rand(shape, { generator: new mx.Generator(13) }), 0.25).to(dtype);
        y.backward(g);
        const gv = (await g.data());
        const dx = (await x.grad!.data());
        assert.equal(x.grad!.dtype, dtype);
        const actual: number[] = [];
        const expected: number[] = [];
        for (let i = 0; i < n; i++) {
          actual.push(dx[i]!);
          expected.push(yv[i] === 0 ? 0 : gv[i]! * scale);
        }
        assertClose(`dropout grad [${dtype}]`, actual, expected, shape, dtype, 'elementwise');
      });
    }

    it(`p=1 zeroes everything, gradient included [${dtype}]`, async () => {
      const x = mx.randn([3, 4], { dtype, requiresGrad: true, generator: new mx.Generator(3) });
      const y = F.dropout(x, { p: 1 });
      assert.ok([...(await y.data())].every((v) => v === 0));
      y.backward(mx.onesLike(y));
      assert.ok([...(await x.grad!.data())].every((v) => v === 0));
    });
  }

  it('the same generator seed gives the same mask; another seed a different one', async () => {
    const x = mx.ones([1000]);
    const a = (await F.dropout(x, { p: 0.5, generator: new mx.Generator(5) }).data());
    const b = (await F.dropout(x, { p: 0.5, generator: new mx.Generator(5) }).data());
    const c = (await F.dropout(x, { p: 0.5, generator: new mx.Generator(6) }).data());
    assert.deepEqual([...a], [...b]);
    assert.notDeepEqual([...a], [...c]);
  });
});
