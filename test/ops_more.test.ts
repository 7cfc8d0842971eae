/**
 * The ops of src/ops/math.ts and src/nn/functional_more.ts: forward and backward against PyTorch
 * fixtures (test/fixtures/more/more.json, tools/gen_more_fixtures.py) in float32 and float16/bfloat16,
 * gradcheck in float64 for every case, and each op's autocast category (the dtype it produces inside
 * mx.amp.autocast), plus edge cases PyTorch defines (zeros in prod, zero norms, beta = 0, masks).
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { readJson } from './helpers/fixtures.js';

const F = mx.nn.functional;

/* ------------------------------------------------------------------ fixtures */

type Num = number | 'nan' | 'inf' | '-inf';
type DtypeName = 'float32' | 'float16' | 'bfloat16';
interface InputSpec {
  kind: 'float' | 'bool';
  shape: number[];
  grad?: boolean;
  data?: number[];
}
interface PerDtype {
  inputs: Record<string, Num[]>;
  gradOutput: Num[];
  outputShape: number[];
  output: Num[];
  grads: Record<string, Num[]>;
}
interface Case {
  id: string;
  op: string;
  args: Record<string, any>;
  inputs: Record<string, InputSpec>;
  dtypes: Record<DtypeName, PerDtype>;
}

const doc = readJson<{ cases: Case[] }>('more', 'more.json');
const dec = (v: Num): number => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v);
const decAll = (a: readonly Num[]) => a.map(dec);

type Inputs = Record<string, Tensor | undefined>;
type Call = (i: Inputs, a: Record<string, any>) => Tensor;

const pOf = (p: unknown) => (p === 'inf' ? Infinity : p === '-inf' ? -Infinity : (p as number | undefined));

/** The TypeScript side of each fixture op (tools/gen_more_fixtures.py's FNS). */
const CALLS: Record<string, Call> = {
  reciprocal: (i) => mx.reciprocal(i.x!),
  softplus: (i, a) => mx.softplus(i.x!, a),
  prod: (i, a) => mx.prod(i.x!, a.dim, a.keepdim),
  cumsum: (i, a) => mx.cumsum(i.x!, a.dim),
  atan2: (i) => mx.atan2(i.a!, i.b!),
  addcmul: (i, a) => mx.addcmul(i.input!, i.t1!, i.t2!, a),
  addcdiv: (i, a) => mx.addcdiv(i.input!, i.t1!, i.t2!, a),
  dot: (i) => mx.dot(i.a!, i.b!),
  mm: (i) => mx.mm(i.a!, i.b!),
  addmm: (i, a) => mx.addmm(i.input!, i.a!, i.b!, a),
  baddbmm: (i, a) => mx.baddbmm(i.input!, i.a!, i.b!, a),
  norm: (i, a) => mx.norm(i.x!, pOf(a.p), a.dim, a.keepdim),
  cosineSimilarity: (i, a) => mx.cosineSimilarity(i.x1!, i.x2!, a),
  conv1d: (i, a) => F.conv1d(i.x!, i.w!, i.b, a),
  prelu: (i) => F.prelu(i.x!, i.w!),
  groupNorm: (i, a) => F.groupNorm(i.x!, a.numGroups, { weight: i.weight, bias: i.bias, eps: a.eps }),
  smoothL1Loss: (i, a) => F.smoothL1Loss(i.input!, i.target!, a),
  klDiv: (i, a) => F.klDiv(i.input!, i.target!, a),
  lstmCell: (i) => mx.stack(F.lstmCell(i.x!, [i.h!, i.c!], i.wIh!, i.wHh!, i.bIh, i.bHh)),
  gruCell: (i) => F.gruCell(i.x!, i.h!, i.wIh!, i.wHh!, i.bIh, i.bHh),
  sdpa: (i, a) => F.scaledDotProductAttention(i.q!, i.k!, i.v!, { attnMask: i.mask, ...a }),
};

/** Fixture op key -> op table name and its autocast category. */
const TABLE: Record<string, [string, mx.AutocastCategory]> = {
  mm: ['mm', 'lower'],
  addmm: ['addmm', 'lower'],
  baddbmm: ['baddbmm', 'lower'],
  conv1d: ['conv1d', 'lower'],
  prelu: ['prelu', 'lower'],
  lstmCell: ['lstmCell', 'lower'],
  gruCell: ['gruCell', 'lower'],
  sdpa: ['scaledDotProductAttention', 'lower'],
  reciprocal: ['reciprocal', 'float32'],
  softplus: ['softplus', 'float32'],
  prod: ['prod', 'float32'],
  cumsum: ['cumsum', 'float32'],
  groupNorm: ['groupNorm', 'float32'],
  norm: ['norm', 'float32'],
  cosineSimilarity: ['cosineSimilarity', 'float32'],
  smoothL1Loss: ['smoothL1Loss', 'float32'],
  klDiv: ['klDiv', 'float32'],
  addcmul: ['addcmul', 'promote'],
  addcdiv: ['addcdiv', 'promote'],
  atan2: ['atan2', 'promote'],
  dot: ['dot', 'promote'],
};

/**
 * Tolerance: |actual - expected| <= tol * (|expected| + max |expected| of the tensor). float32 is
 * PyTorch's float64 result within 1e-5 (relative); 16-bit results are the same PyTorch reference on
 * the rounded inputs, within a few units of the 16-bit dtype's precision.
 */
const TOL: Record<DtypeName, number> = { float32: 1e-5, float16: 2e-3, bfloat16: 1.6e-2 };

function assertClose(actual: ArrayLike<number>, expected: readonly number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  let scale = 0;
  for (const e of expected) if (Number.isFinite(e)) scale = Math.max(scale, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: ${a}, expected NaN`);
      continue;
    }
    if (!Number.isFinite(e)) {
      assert.equal(a, e, `${what}[${i}]`);
      continue;
    }
    const err = Math.abs(a - e);
    assert.ok(err <= tol * (Math.abs(e) + scale), `${what}[${i}]: ${a}, expected ${e} (error ${err.toExponential(2)}, tolerance ${tol} x (${Math.abs(e)} + ${scale}))`);
  }
}

function buildInputs(c: Case, values: Record<string, Num[]>, dtypeOf: (name: string) => mx.DTypeName, requiresGrad: (name: string) => boolean): Inputs {
  const out: Inputs = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    if (spec.kind === 'bool') out[name] = mx.tensor(Uint8Array.from(spec.data!), { dtype: 'bool', shape: spec.shape });
    else {
      const dtype = dtypeOf(name);
      const data = decAll(values[name]!);
      out[name] = mx.tensor(dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data), {
        dtype,
        shape: spec.shape,
        requiresGrad: !!spec.grad && requiresGrad(name),
      });
    }
  }
  return out;
}

/* ------------------------------------------------------------------ PyTorch fixtures */

for (const c of doc.cases) {
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
    test(`fixture ${c.id} (${dtype}): forward and backward match PyTorch`, async () => {
      const d = c.dtypes[dtype];
      const xs = buildInputs(c, d.inputs, () => dtype, () => true);
      const y = CALLS[c.op]!(xs, c.args);
      assert.equal(y.dtype, dtype, 'output dtype');
      assert.deepEqual([...y.shape], d.outputShape, 'output shape');
      assertClose(await y.data(), decAll(d.output), TOL[dtype], `${c.id} ${dtype} output`);
      const g = mx.tensor(Float32Array.from(decAll(d.gradOutput)), { dtype, shape: d.outputShape });
      y.backward(g);
      for (const [name, expected] of Object.entries(d.grads)) {
        const x = xs[name]!;
        assert.ok(x.grad, `${c.id} ${dtype}: no gradient for ${name}`);
        assert.equal(x.grad.dtype, dtype, `${c.id}: gradient dtype of ${name}`);
        assertClose(await x.grad.data(), decAll(expected), TOL[dtype] * (dtype === 'float32' ? 1 : 2), `${c.id} ${dtype} grad ${name}`);
      }
    });
  }
}

/* ------------------------------------------------------------------ gradcheck (float64) */

const gradchecked = new Set<string>();
for (const c of doc.cases) {
  test(`gradcheck ${c.id}`, async () => {
    const d = c.dtypes.float32;
    const xs = buildInputs(c, d.inputs, () => 'float64', () => true);
    const names = Object.keys(c.inputs);
    const fn = (...ts: Tensor[]) => CALLS[c.op]!(Object.fromEntries(names.map((n, i) => [n, ts[i]])), c.args);
    const r = await mx.gradcheck(fn, names.map((n) => xs[n]!), { atol: 1e-6, rtol: 1e-4 });
    assert.ok(r.ok, `${c.id}: ${r.message} (max abs error ${r.maxAbsError})`);
    gradchecked.add(c.op);
  });
}

test('every added differentiable op has a gradcheck case', () => {
  const missing = Object.keys(TABLE).filter((k) => !gradchecked.has(k));
  assert.deepEqual(missing, []);
});

/* ------------------------------------------------------------------ autocast categories */

test('mx.amp.policy lists every added op with its category', () => {
  for (const [name, category] of Object.values(TABLE)) assert.equal(mx.amp.policy[name], category, name);
  for (const [name, category] of Object.values(TABLE)) assert.equal(mx.getOp(name).autocast, category, name);
});

/** One case per op (the first fixture case of each op key), plus the float attention mask (cast too). */
const firstIds = new Set<string>();
for (const c of doc.cases) if (![...firstIds].some((id) => doc.cases.find((x) => x.id === id)!.op === c.op)) firstIds.add(c.id);
firstIds.add('sdpa_float_mask');
for (const c of doc.cases.filter((x) => firstIds.has(x.id))) {
  const category = TABLE[c.op]![1];
  test(`autocast float16: ${c.id} (${category})`, async () => {
    const d = c.dtypes.float32;
    const floatNames = Object.keys(c.inputs).filter((n) => c.inputs[n]!.kind === 'float');
    if (category === 'lower') {
      // float32 weights and inputs: the op runs in float16, gradients come back in float32
      const xs = buildInputs(c, d.inputs, () => 'float32', () => true);
      const y = mx.amp.autocast({ dtype: 'float16' }, () => CALLS[c.op]!(xs, c.args));
      assert.equal(y.dtype, 'float16');
      assertClose(await y.data(), decAll(d.output), 3e-2, `${c.id} autocast output`);
      y.backward(mx.tensor(Float32Array.from(decAll(d.gradOutput)), { dtype: 'float16', shape: d.outputShape }));
      for (const n of floatNames) if (c.inputs[n]!.grad) assert.equal(xs[n]!.grad?.dtype, 'float32', `grad of ${n}`);
      // bfloat16 too
      const yb = mx.amp.autocast({ dtype: 'bfloat16' }, () => CALLS[c.op]!(buildInputs(c, d.inputs, () => 'float32', () => false), c.args));
      assert.equal(yb.dtype, 'bfloat16');
    } else if (category === 'float32') {
      const half = c.dtypes.float16;
      const xs = buildInputs(c, half.inputs, () => 'float16', () => true);
      const y = mx.amp.autocast({ dtype: 'float16' }, () => CALLS[c.op]!(xs, c.args));
      assert.equal(y.dtype, 'float32');
      assertClose(await y.data(), decAll(half.output), 1e-5, `${c.id} autocast output (float32 compute of the float16 inputs)`);
      y.backward(mx.tensor(Float32Array.from(decAll(half.gradOutput)), { shape: half.outputShape }));
      for (const n of floatNames) if (c.inputs[n]!.grad) assert.equal(xs[n]!.grad?.dtype, 'float16', `grad of ${n}`);
    } else {
      // promote: the widest floating input wins (float16 + float32 -> float32); all float16 stays float16
      const half = c.dtypes.float16;
      const mixed = buildInputs(c, half.inputs, (n) => (n === floatNames[0] ? 'float16' : 'float32'), () => false);
      const y = mx.amp.autocast({ dtype: 'float16' }, () => CALLS[c.op]!(mixed, c.args));
      assert.equal(y.dtype, 'float32');
      assertClose(await y.data(), decAll(half.output), 1e-5, `${c.id} promoted output`);
      const all16 = buildInputs(c, half.inputs, () => 'float16', () => false);
      assert.equal(mx.amp.autocast({ dtype: 'float16' }, () => CALLS[c.op]!(all16, c.args)).dtype, 'float16');
      const all32 = buildInputs(c, half.inputs, () => 'float32', () => false);
      assert.equal(mx.amp.autocast({ dtype: 'float16' }, () => CALLS[c.op]!(all32, c.args)).dtype, 'float32');
    }
  });
}

test('autocast casts once at the entry of a composite: lstmCell under float16 matches the float16 op outside autocast', async () => {
  const c = doc.cases.find((x) => x.id === 'lstmCell')!;
  const d = c.dtypes.float16;
  const auto = mx.amp.autocast({ dtype: 'float16' }, () => CALLS.lstmCell!(buildInputs(c, d.inputs, () => 'float32', () => false), {}));
  const plain = CALLS.lstmCell!(buildInputs(c, d.inputs, () => 'float16', () => false), {});
  assert.deepEqual(await auto.data(), await plain.data());
});

/* ------------------------------------------------------------------ behaviour beyond the fixtures */

const t32 = (data: number[] | number[][] | number[][][], requiresGrad = false) => mx.tensor(data, { requiresGrad });

test('prod and cumsum of int32 tensors give int32; reciprocal of int32 gives float32', async () => {
  const x = mx.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'int32' });
  const p = mx.prod(x, 1);
  assert.equal(p.dtype, 'int32');
  assert.deepEqual(await p.toArray(), [6, 120]);
  const c = mx.cumsum(x, 0);
  assert.equal(c.dtype, 'int32');
  assert.deepEqual(await c.toArray(), [[1, 2, 3], [5, 7, 9]]);
  const r = mx.reciprocal(mx.tensor([2, 4], { dtype: 'int32' }));
  assert.equal(r.dtype, 'float32');
  assert.deepEqual(await r.toArray(), [0.5, 0.25]);
});

test('prod gradient at zeros: one zero gets the product of the others, two zeros give 0 everywhere', async () => {
  const x = t32([[2, 0, 3], [0, 0, 5]], true);
  mx.prod(x, 1).sum().backward();
  assert.deepEqual(await x.grad!.toArray(), [[0, 6, 0], [0, 0, 0]]);
  const y = t32([[2, 0, 3]], true);
  mx.prod(y).backward();
  assert.deepEqual(await y.grad!.toArray(), [[0, 6, 0]]);
});

test('norm: zero vectors have a zero gradient; the inf-norm splits ties evenly', async () => {
  const x = t32([[0, 0], [3, 4]], true);
  const n = mx.norm(x, 2, 1);
  assert.deepEqual(await n.toArray(), [0, 5]);
  n.sum().backward();
  assert.deepEqual(await x.grad!.toArray(), [[0, 0], [0.6000000238418579, 0.800000011920929]]);
  const y = t32([2, -2, 1], true);
  mx.norm(y, Infinity).backward();
  assert.deepEqual(await y.grad!.toArray(), [0.5, -0.5, 0]);
  assert.equal(await mx.norm(t32([3, 4]), 'fro').item(), 5);
  assert.throws(() => mx.norm(mx.tensor([1, 2], { dtype: 'int32' })), /floating point/);
});

test('norm of float16 accumulates wider than float16 and rounds once', async () => {
  // 4096 ones: the sum of squares (4096) is exact in float16, but accumulating in float16 would stall at 2048
  const x = mx.ones([4096], { dtype: 'float16' });
  const n = mx.norm(x);
  assert.equal(n.dtype, 'float16');
  assert.equal(await n.item(), 64);
});

test('cumsum: backward is the reverse cumulative sum; 0-d input is returned as is', async () => {
  const x = t32([1, 2, 3], true);
  mx.cumsum(x, 0).backward(mx.tensor([1, 10, 100]));
  assert.deepEqual(await x.grad!.toArray(), [111, 110, 100]);
  assert.equal(await mx.cumsum(mx.tensor(5), 0).item(), 5);
});

test('addmm/baddbmm: beta = 0 ignores the input (NaN does not propagate); bad shapes throw', async () => {
  const input = mx.full([2, 2], NaN);
  const a = t32([[1, 2], [3, 4]]);
  assert.deepEqual(await mx.addmm(input, a, a, { beta: 0 }).toArray(), [[7, 10], [15, 22]]);
  assert.deepEqual(await mx.baddbmm(mx.full([1, 2, 2], NaN), a.reshape(1, 2, 2), a.reshape(1, 2, 2), { beta: 0, alpha: 2 }).toArray(), [[[14, 20], [30, 44]]]);
  assert.throws(() => mx.addmm(mx.ones([3, 2]), a, a), /cannot be broadcast/);
  assert.throws(() => mx.addmm(mx.ones([2]), a, mx.ones([3, 2])), /cannot multiply/);
  assert.throws(() => mx.mm(mx.ones([2]), a), /2-D/);
  assert.throws(() => mx.dot(mx.ones([2]), mx.ones([3])), /same length/);
  assert.throws(() => mx.dot(a, a), /1-D/);
});

test('addmm and addcmul in float16 round once', async () => {
  const h = (v: number[][] | number[]) => mx.tensor(v, { dtype: 'float16' });
  // a@b = 1024 + 1025 = 2049 (float16: 2048), + 1: float32 compute gives 2050; rounding the product first gives 2048
  assert.equal(await mx.addmm(h([[1]]), h([[1, 1]]), h([[1024], [1025]])).item(), 2050);
  // -1 + (1 + 2^-10)(1 + 2^-9) = 3 * 2^-10 + 2^-19, a float16 value; rounding the product first loses the 2^-19
  const y = mx.addcmul(h([-1]), h([1 + 2 ** -10]), h([1 + 2 ** -9]));
  assert.equal(await y.item(), 3 * 2 ** -10 + 2 ** -19);
});

test('addcdiv rejects integer division; atan2 takes numbers; promote keeps float64', async () => {
  const i = mx.tensor([1, 2], { dtype: 'int32' });
  assert.throws(() => mx.addcdiv(mx.ones([2]), i, i), /integer division/);
  assert.ok(Math.abs((await mx.atan2(t32([1]), 1).data())[0]! - Math.PI / 4) < 1e-7);
  const d = mx.amp.autocast({ dtype: 'float16' }, () => mx.dot(mx.ones([3], { dtype: 'float64' }), mx.ones([3])));
  assert.equal(d.dtype, 'float64');
});

test('cosineSimilarity: eps bounds the denominator (zero vectors give 0)', async () => {
  const x = t32([[0, 0, 0], [1, 2, 3]]);
  const s = mx.cosineSimilarity(x, t32([[1, 1, 1], [2, 4, 6]]));
  const v = await s.data();
  assert.equal(v[0], 0);
  assert.ok(Math.abs(v[1]! - 1) < 1e-6);
});

test('conv1d: unbatched input, shape errors', async () => {
  const x = mx.randn([3, 7], { generator: new mx.Generator(1) });
  const w = mx.randn([2, 3, 3], { generator: new mx.Generator(2) });
  const y = F.conv1d(x, w, null, { padding: 1 });
  assert.deepEqual([...y.shape], [2, 7]);
  const yb = F.conv1d(x.unsqueeze(0), w, null, { padding: 1 });
  assert.deepEqual(await y.data(), await yb.squeeze(0).data());
  assert.throws(() => F.conv1d(mx.ones([1, 4, 5]), w), /channels/);
  assert.throws(() => F.conv1d(x, w, null, { stride: 0 }), /stride/);
});

test('prelu, groupNorm, smoothL1Loss, klDiv: argument errors', () => {
  assert.throws(() => F.prelu(mx.ones([2, 3]), mx.ones([2])), /1 or 3 elements/);
  assert.throws(() => F.groupNorm(mx.ones([2, 6, 3]), 4), /divisible/);
  assert.throws(() => F.groupNorm(mx.ones([2, 6, 3]), 3, { weight: mx.ones([3]) }), /shape \[6\]/);
  assert.throws(() => F.smoothL1Loss(mx.ones([2]), mx.ones([2]), { beta: -1 }), /beta/);
  assert.throws(() => F.klDiv(mx.ones([2]), mx.ones([2]), { reduction: 'avg' as 'mean' }), /batchmean/);
});

test('klDiv: a zero target contributes 0 and has a finite gradient', async () => {
  const input = t32([[-1, -2]], true);
  const target = t32([[0, 1]], true);
  const l = F.klDiv(input, target, { reduction: 'sum' });
  assert.equal(await l.item(), 2); // 0 + 1 * (log 1 - (-2))
  l.backward();
  assert.deepEqual(await input.grad!.toArray(), [[-0, -1]]);
  const gt = await target.grad!.data();
  assert.ok(gt.every(Number.isFinite));
});

test('lstmCell returns [h, c]; unbatched inputs; gruCell shape checks', async () => {
  const g = new mx.Generator(7);
  const x = mx.randn([5], { generator: g });
  const h = mx.randn([4], { generator: g });
  const c = mx.randn([4], { generator: g });
  const wIh = mx.randn([16, 5], { generator: g });
  const wHh = mx.randn([16, 4], { generator: g });
  const [h1, c1] = F.lstmCell(x, [h, c], wIh, wHh);
  assert.deepEqual([...h1.shape], [4]);
  assert.deepEqual([...c1.shape], [4]);
  const [hb, cb] = F.lstmCell(x.unsqueeze(0), [h.unsqueeze(0), c.unsqueeze(0)], wIh, wHh);
  assert.deepEqual(await h1.data(), await hb.squeeze(0).data());
  assert.deepEqual(await c1.data(), await cb.squeeze(0).data());
  assert.throws(() => F.lstmCell(x, [h, c], wIh, mx.ones([12, 4])), /wHh/);
  assert.throws(() => F.gruCell(x, h, mx.ones([12, 5]), mx.ones([12, 4]), mx.ones([16])), /bIh/);
  assert.throws(() => F.gruCell(x, mx.ones([3]), mx.ones([12, 5]), mx.ones([12, 4])), /hidden state/);
});

test('scaledDotProductAttention: dropout zeroes or rescales each attention weight; errors', async () => {
  const gen = new mx.Generator(3);
  const q = mx.randn([2, 4, 3], { generator: gen });
  const k = mx.randn([2, 5, 3], { generator: gen });
  const v = mx.eye(5).unsqueeze(0).expand(2, 5, 5); // output = the attention weights themselves
  const ref = await F.scaledDotProductAttention(q, k, v).data();
  const dropped = await F.scaledDotProductAttention(q, k, v, { dropoutP: 0.5, generator: new mx.Generator(9) }).data();
  let zeros = 0;
  for (let i = 0; i < ref.length; i++) {
    if (dropped[i] === 0) zeros++;
    else assert.ok(Math.abs(dropped[i]! - 2 * ref[i]!) < 1e-6, `element ${i}: ${dropped[i]} vs 2 x ${ref[i]}`);
  }
  assert.ok(zeros > 5 && zeros < 35, `${zeros} of 40 weights dropped`);
  const again = await F.scaledDotProductAttention(q, k, v, { dropoutP: 0.5, generator: new mx.Generator(9) }).data();
  assert.deepEqual(again, dropped);
  assert.throws(() => F.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: mx.ones([4, 5]) }), /not both/);
  assert.throws(() => F.scaledDotProductAttention(q, mx.ones([2, 5, 2]), v), /embedding size/);
  assert.throws(() => F.scaledDotProductAttention(q, k, v, { dropoutP: 1 }), /dropoutP/);
});

test('softplus: float16 values and gradients round once; bad beta throws', async () => {
  const x = mx.tensor([-30, -1, 0, 1, 30], { dtype: 'float16', requiresGrad: true });
  const y = mx.softplus(x);
  assert.equal(y.dtype, 'float16');
  const ref = [-30, -1, 0, 1, 30].map((v) => (v > 20 ? v : Math.log1p(Math.exp(v))));
  const f16 = async (vs: number[]) => [...(await mx.tensor(vs, { dtype: 'float16' }).data())];
  assert.deepEqual([...(await y.data())], await f16(ref));
  y.sum().backward();
  const dref = [-30, -1, 0, 1, 30].map((v) => (v > 20 ? 1 : 1 / (1 + Math.exp(-v))));
  assert.deepEqual([...(await x.grad!.data())], await f16(dref));
  assert.throws(() => mx.softplus(x, { beta: 0 }), /beta/);
});
