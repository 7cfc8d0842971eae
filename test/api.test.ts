/**
 * Smoke test of the public API as the issue writes it, and a check that every function the issue
 * names exists on `mx`, `mx.nn.functional` or as a Tensor method.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';

const F = mx.nn.functional;
const gradOf = (t: mx.Tensor) => t.grad;

test('the issue example: float16 leaf, cast, loss, backward, reads', async () => {
  mx.manualSeed(0);
  const a = mx.tensor([[1, 2], [3, 4]], { dtype: 'float16', requiresGrad: true });
  assert.ok(a instanceof mx.Tensor);
  assert.deepEqual(a.shape, [2, 2]);
  assert.equal(a.dtype, 'float16');
  assert.equal(a.requiresGrad, true);
  assert.equal(a.isLeaf, true);
  assert.equal(gradOf(a), null); // (through a function: keeps TypeScript from narrowing a.grad to null)

  const b = a.to('float32');
  assert.equal(b.dtype, 'float32');
  assert.equal(b.requiresGrad, true);
  assert.ok(b.gradFn);

  const loss = b.mul(b).sum();
  assert.deepEqual(loss.shape, []);
  loss.backward();
  assert.ok(a.grad);
  assert.equal(a.grad.dtype, 'float16');
  assert.deepEqual(await a.grad.toArray(), [[2, 4], [6, 8]]);

  const data = await a.data();
  assert.ok(data instanceof Float32Array);
  assert.deepEqual(Array.from(data), [1, 2, 3, 4]);
  assert.equal(await loss.item(), 30);
  assert.deepEqual(await a.toArray(), [[1, 2], [3, 4]]);

  const d = a.detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.gradFn, null);
  assert.deepEqual(await d.toArray(), [[1, 2], [3, 4]]);

  const n = mx.noGrad(() => a.mul(2));
  assert.equal(n.requiresGrad, false);
  assert.equal(n.gradFn, null);
  assert.deepEqual(await n.toArray(), [[2, 4], [6, 8]]);
});

test('factories take (shape, { dtype, requiresGrad })', async () => {
  mx.manualSeed(0);
  const made = [
    mx.zeros([2, 3], { dtype: 'float16', requiresGrad: true }),
    mx.ones([2, 3], { dtype: 'bfloat16', requiresGrad: true }),
    mx.full([2, 3], 1.5, { dtype: 'float64', requiresGrad: true }),
    mx.rand([2, 3], { dtype: 'float16', requiresGrad: true }),
    mx.randn([2, 3], { dtype: 'bfloat16', requiresGrad: true }),
    mx.randint(0, 10, [2, 3], { dtype: 'float32', requiresGrad: true }),
  ];
  for (const t of made) {
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.requiresGrad, true);
  }
  assert.deepEqual(made.map((t) => t.dtype), ['float16', 'bfloat16', 'float64', 'float16', 'bfloat16', 'float32']);
  const ar = mx.arange(0, 6, 1, { dtype: 'float16', requiresGrad: true });
  assert.deepEqual([ar.shape, ar.dtype, ar.requiresGrad], [[6], 'float16', true]);
  const ls = mx.linspace(0, 1, 3, { dtype: 'bfloat16', requiresGrad: true });
  assert.deepEqual([ls.shape, ls.dtype, ls.requiresGrad, Array.from(await ls.data())], [[3], 'bfloat16', true, [0, 0.5, 1]]);
  const e = mx.eye(3, 3, { dtype: 'float64', requiresGrad: true });
  assert.deepEqual([e.shape, e.dtype, e.requiresGrad], [[3, 3], 'float64', true]);
  assert.equal(mx.randint(0, 10, [4]).dtype, 'int32');
  assert.equal(mx.zeros([1]).dtype, 'float32');
});

test('mx.dtypes.finfo gives bits, max, min, eps, tiny, smallestSubnormal', () => {
  assert.deepEqual(
    (({ bits, max, min, eps, tiny, smallestSubnormal }) => ({ bits, max, min, eps, tiny, smallestSubnormal }))(mx.dtypes.finfo('float16')),
    { bits: 16, max: 65504, min: -65504, eps: 2 ** -10, tiny: 2 ** -14, smallestSubnormal: 2 ** -24 },
  );
  const bf = mx.dtypes.finfo('bfloat16');
  assert.deepEqual([bf.bits, bf.max, bf.min, bf.eps, bf.tiny, bf.smallestSubnormal], [16, (2 - 2 ** -7) * 2 ** 127, -(2 - 2 ** -7) * 2 ** 127, 2 ** -7, 2 ** -126, 2 ** -133]);
  const f32 = mx.dtypes.finfo('float32');
  assert.deepEqual([f32.bits, f32.max, f32.eps, f32.tiny, f32.smallestSubnormal], [32, 3.4028234663852886e38, 2 ** -23, 2 ** -126, 2 ** -149]);
  const f64 = mx.dtypes.finfo(mx.dtypes.float64);
  assert.deepEqual([f64.bits, f64.max, f64.min, f64.eps, f64.tiny, f64.smallestSubnormal], [64, Number.MAX_VALUE, -Number.MAX_VALUE, Number.EPSILON, 2 ** -1022, Number.MIN_VALUE]);
  // the values agree with the tensors: max is representable, 2*max overflows
  const fi = mx.dtypes.finfo('float16');
  fi.max = 0; // a copy: mutating it changes nothing
  assert.equal(mx.dtypes.finfo('float16').max, 65504);
});

test('finfo limits are what float16 tensors actually hold', async () => {
  const fi = mx.dtypes.finfo('float16');
  const t = mx.tensor([fi.max, fi.tiny, fi.smallestSubnormal, 1 + fi.eps, fi.smallestSubnormal / 2], { dtype: 'float16' });
  assert.deepEqual(Array.from(await t.data()), [fi.max, fi.tiny, fi.smallestSubnormal, 1 + fi.eps, 0]);
  assert.equal(await mx.tensor(fi.max, { dtype: 'float16' }).mul(2).item(), Infinity);
});

test('mx.dtypes exposes the dtype objects and promotion', () => {
  const { dtypes } = mx;
  assert.deepEqual(dtypes.ALL_DTYPES.map((d) => d.name), ['float32', 'float16', 'bfloat16', 'float64', 'int32', 'bool']);
  assert.equal(dtypes.float16.bits, 16);
  assert.equal(dtypes.bfloat16.itemsize, 2);
  assert.equal(dtypes.dtypeOf('int32'), dtypes.int32);
  assert.equal(dtypes.promoteTypes(dtypes.float16, dtypes.bfloat16).name, 'float32');
  assert.equal(dtypes.resultType([mx.ones([2], { dtype: 'float16' }), mx.tensor(2, { dtype: 'float64' })]).name, 'float16');
});

/* ------------------------------------------------------------------ names from the issue */

const MX_FUNCTIONS = [
  // creation and randomness
  'tensor', 'zeros', 'ones', 'full', 'zerosLike', 'onesLike', 'fullLike', 'arange', 'linspace', 'eye', 'rand', 'randn', 'randint', 'manualSeed',
  // autograd, memory, backends, op table
  'noGrad', 'enableGrad', 'isGradEnabled', 'setGradEnabled', 'gradcheck', 'scope', 'keep', 'memory',
  'setBackend', 'getBackend', 'listBackends', 'registerBackend', 'allOps', 'getOp',
  // differentiable ops
  'add', 'sub', 'mul', 'div', 'neg', 'abs', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'pow', 'tanh', 'sigmoid', 'relu',
  'leakyRelu', 'gelu', 'clamp', 'where', 'maximum', 'minimum', 'sum', 'mean', 'max', 'min', 'logsumexp', 'var',
  'matmul', 'mm', 'bmm', 'reshape', 'view', 'permute', 'transpose', 'flatten', 'squeeze', 'unsqueeze', 'expand', 'narrow',
  'cat', 'stack', 'indexSelect', 'gather', 'softmax', 'logSoftmax',
  // non-differentiable helpers
  'sign', 'square', 'reciprocal', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr', 'logicalNot', 'isfinite', 'argmax', 'argmin', 'contiguous', 't',
] as const;

const F_FUNCTIONS = [
  'linear', 'conv2d', 'convTranspose2d', 'maxPool2d', 'avgPool2d', 'adaptiveAvgPool2d', 'softmax', 'logSoftmax',
  'crossEntropy', 'nllLoss', 'mseLoss', 'l1Loss', 'binaryCrossEntropyWithLogits', 'binaryCrossEntropy', 'batchNorm', 'layerNorm',
  'embedding', 'dropout', 'relu', 'gelu', 'leakyRelu', 'sigmoid', 'tanh',
] as const;

const TENSOR_METHODS = [
  'add', 'sub', 'mul', 'div', 'pow', 'neg', 'abs', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'relu',
  'leakyRelu', 'gelu', 'clamp', 'maximum', 'minimum', 'sum', 'mean', 'max', 'min', 'logsumexp', 'var', 'softmax', 'logSoftmax',
  'matmul', 'mm', 'reshape', 'view', 'permute', 'transpose', 't', 'flatten', 'squeeze', 'unsqueeze', 'expand', 'expandAs', 'narrow',
  'contiguous', 'indexSelect', 'gather', 'argmax', 'argmin', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'sign', 'square', 'reciprocal',
  'isfinite', 'logicalNot', 'to', 'float', 'half', 'bfloat16', 'double', 'int', 'clone', 'detach', 'backward', 'registerHook',
  'retainGrad', 'requiresGrad_', 'data', 'dataSync', 'item', 'toArray', 'copy_', 'fill_', 'zero_', 'dispose', 'size',
] as const;

test('every function the issue names exists on mx', () => {
  const missing = MX_FUNCTIONS.filter((n) => typeof (mx as unknown as Record<string, unknown>)[n] !== 'function');
  assert.deepEqual(missing, []);
  assert.equal(typeof mx.Tensor, 'function');
  assert.equal(typeof mx.Generator, 'function');
  assert.equal(typeof mx.dtypes.finfo, 'function');
  assert.equal(typeof mx.defaultGenerator.nextDouble, 'function');
});

test('every function the issue names exists on mx.nn.functional', () => {
  const missing = F_FUNCTIONS.filter((n) => typeof (F as unknown as Record<string, unknown>)[n] !== 'function');
  assert.deepEqual(missing, []);
});

test('tensor methods exist', () => {
  const t = mx.ones([2]);
  const missing = TENSOR_METHODS.filter((n) => typeof (t as unknown as Record<string, unknown>)[n] !== 'function');
  assert.deepEqual(missing, []);
  for (const prop of ['shape', 'dtype', 'ndim', 'numel', 'requiresGrad', 'grad', 'gradFn', 'isLeaf', 'isContiguous', 'strides', 'dt'] as const) {
    assert.ok(prop in t, `missing property ${prop}`);
  }
});

test('function and method forms agree', async () => {
  const x = mx.tensor([[0.5, -1, 2], [3, -0.25, 1]]);
  const y = mx.tensor([[1, 2, 3], [4, 5, 6]]);
  const same = async (a: mx.Tensor, b: mx.Tensor, what: string) => assert.deepEqual(Array.from(await a.data()), Array.from(await b.data()), what);
  await same(mx.add(x, y), x.add(y), 'add');
  await same(mx.pow(y, 2), y.pow(2), 'pow');
  await same(mx.clamp(x, -0.5, 1), x.clamp(-0.5, 1), 'clamp');
  await same(mx.var(x, 1), x.var(1), 'var');
  await same(mx.logsumexp(x, 0), x.logsumexp(0), 'logsumexp');
  await same(mx.transpose(x, 0, 1), x.transpose(0, 1), 'transpose');
  await same(mx.flatten(x), x.flatten(), 'flatten');
  await same(mx.max(x, 1), x.max(1), 'max');
  await same(mx.matmul(x, y.t()), x.matmul(y.t()), 'matmul');
  await same(F.softmax(x, 1), x.softmax(1), 'softmax');
  await same(F.relu(x), x.relu(), 'relu');
  await same(F.gelu(x, { approximate: 'tanh' }), x.gelu({ approximate: 'tanh' }), 'gelu');
});

test('a tiny end-to-end step through the functional API', async () => {
  mx.manualSeed(0);
  const x = mx.randn([2, 1, 6, 6]);
  const w = mx.randn([4, 1, 3, 3], { requiresGrad: true });
  const wl = mx.randn([3, 4 * 2 * 2], { requiresGrad: true });
  const loss = mx.scope(() => {
    let h = F.conv2d(x.to('float16'), w.to('float16'), null, { padding: 1 });
    h = F.maxPool2d(F.relu(h), 3);
    const logits = F.linear(h.flatten(1), wl.to('float16'));
    const l = F.crossEntropy(logits, mx.tensor([0, 2], { dtype: 'int32' }));
    l.backward();
    return l;
  });
  assert.equal(loss.dtype, 'float16');
  assert.ok(Number.isFinite(await loss.item()));
  assert.equal(w.grad!.dtype, 'float32');
  assert.equal(wl.grad!.dtype, 'float32');
  assert.deepEqual(w.grad!.shape, [4, 1, 3, 3]);
  assert.ok(Array.from(await wl.grad!.data()).some((v) => v !== 0));
});
