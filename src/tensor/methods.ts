/** Tensor methods: thin forwards to the op functions, attached to the prototype once. */
import { dtypeOf, type DType, type DTypeName } from '../dtype/dtype.js';
import { Tensor } from './tensor.js';
import * as ew from '../ops/elementwise.js';
import * as red from '../ops/reduce.js';
import * as shp from '../ops/shape.js';
import * as la from '../ops/linalg.js';
import * as math from '../ops/math.js';
import { apply, applyInto, withoutAutocast } from '../ops/dispatch.js';
import { castTo, shapeStr, wrap, type TensorLike } from '../ops/util.js';
import { onesLike } from '../ops/creation.js';
import { runBackward, type BackwardOptions } from '../autograd/engine.js';
import { assembleSliceGradients } from '../ops/slice_gradient.js';
import { accumulateGrad } from '../autograd/accumulate.js';
import { noGrad } from '../autograd/mode.js';

declare module './tensor.js' {
  interface Tensor {
    add(other: TensorLike): Tensor;
    sub(other: TensorLike): Tensor;
    mul(other: TensorLike): Tensor;
    div(other: TensorLike): Tensor;
    pow(exponent: TensorLike): Tensor;
    maximum(other: TensorLike): Tensor;
    minimum(other: TensorLike): Tensor;
    eq(other: TensorLike): Tensor;
    ne(other: TensorLike): Tensor;
    lt(other: TensorLike): Tensor;
    le(other: TensorLike): Tensor;
    gt(other: TensorLike): Tensor;
    ge(other: TensorLike): Tensor;
    neg(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    log1p(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    leakyRelu(negativeSlope?: number): Tensor;
    gelu(options?: { approximate?: 'none' | 'tanh' }): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    isfinite(): Tensor;
    logicalNot(): Tensor;
    sum(dim?: red.Dims, keepdim?: boolean): Tensor;
    mean(dim?: red.Dims, keepdim?: boolean): Tensor;
    max(dim?: red.Dims, keepdim?: boolean): Tensor;
    min(dim?: red.Dims, keepdim?: boolean): Tensor;
    argmax(dim?: number | null, keepdim?: boolean): Tensor;
    argmin(dim?: number | null, keepdim?: boolean): Tensor;
    logsumexp(dim: red.Dims, keepdim?: boolean): Tensor;
    var(dim?: red.Dims, keepdim?: boolean, correction?: number): Tensor;
    softmax(dim: number): Tensor;
    logSoftmax(dim: number): Tensor;
    matmul(other: Tensor): Tensor;
    mm(other: Tensor): Tensor;
    reshape(...shape: (number | readonly number[])[]): Tensor;
    view(...shape: (number | readonly number[])[]): Tensor;
    permute(...dims: (number | readonly number[])[]): Tensor;
    transpose(dim0: number, dim1: number): Tensor;
    t(): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    squeeze(dim?: number | readonly number[]): Tensor;
    unsqueeze(dim: number): Tensor;
    expand(...shape: (number | readonly number[])[]): Tensor;
    expandAs(other: Tensor): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    contiguous(): Tensor;
    indexSelect(dim: number, index: Tensor): Tensor;
    gather(dim: number, index: Tensor): Tensor;
    /** Cast to another dtype (differentiable: the gradient is cast back). */
    to(dtype: DTypeName | DType): Tensor;
    float(): Tensor;
    half(): Tensor;
    bfloat16(): Tensor;
    double(): Tensor;
    int(): Tensor;
    clone(): Tensor;
    /** Run reverse-mode autodiff from this tensor (a scalar unless `gradient` is given). */
    backward(gradient?: Tensor | null, options?: BackwardOptions): void;
    /** Overwrite this tensor's values with `src` (broadcast and cast), outside autograd. */
    copy_(src: TensorLike): this;
    fill_(value: number): this;
    zero_(): this;
  }
}

const P = Tensor.prototype;
const binary = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
for (const name of binary) {
  const f = ew[name];
  (P as any)[name] = function (this: Tensor, other: TensorLike) {
    return f(this, other);
  };
}
const unary = ['neg', 'abs', 'sign', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'relu', 'square', 'isfinite', 'logicalNot'] as const;
for (const name of unary) {
  const f = ew[name];
  (P as any)[name] = function (this: Tensor) {
    return f(this);
  };
}

P.leakyRelu = function (negativeSlope) { return ew.leakyRelu(this, negativeSlope); };
P.gelu = function (options) { return ew.gelu(this, options); };
P.clamp = function (min, max) { return ew.clamp(this, min, max); };
P.sum = function (dim, keepdim) { return red.sum(this, dim, keepdim); };
P.mean = function (dim, keepdim) { return red.mean(this, dim, keepdim); };
P.max = function (dim, keepdim) { return red.max(this, dim, keepdim); };
P.min = function (dim, keepdim) { return red.min(this, dim, keepdim); };
P.argmax = function (dim, keepdim) { return red.argmax(this, dim, keepdim); };
P.argmin = function (dim, keepdim) { return red.argmin(this, dim, keepdim); };
P.logsumexp = function (dim, keepdim) { return red.logsumexp(this, dim, keepdim); };
P.var = function (dim, keepdim, correction) { return red.variance(this, dim, keepdim, correction); };
P.softmax = function (dim) { return red.softmax(this, dim); };
P.logSoftmax = function (dim) { return red.logSoftmax(this, dim); };
P.matmul = function (other) { return la.matmul(this, other); };
P.mm = function (other) { return math.mm(this, other); };
P.reciprocal = function () { return math.reciprocal(this); };
P.reshape = function (...shape) { return shp.reshape(this, ...shape); };
P.view = function (...shape) { return shp.view(this, ...shape); };
P.permute = function (...dims) { return shp.permute(this, ...dims); };
P.transpose = function (a, b) { return shp.transpose(this, a, b); };
P.t = function () { return shp.t(this); };
P.flatten = function (s, e) { return shp.flatten(this, s, e); };
P.squeeze = function (dim) { return shp.squeeze(this, dim); };
P.unsqueeze = function (dim) { return shp.unsqueeze(this, dim); };
P.expand = function (...shape) { return shp.expand(this, ...shape); };
P.expandAs = function (other) { return shp.expand(this, other.shape); };
P.narrow = function (dim, start, length) { return shp.narrow(this, dim, start, length); };
P.contiguous = function () { return shp.contiguous(this); };
P.indexSelect = function (dim, index) { return shp.indexSelect(this, dim, index); };
P.gather = function (dim, index) { return shp.gather(this, dim, index); };
P.to = function (dtype) { return castTo(this, dtypeOf(dtype)); };
P.float = function () { return this.to('float32'); };
P.half = function () { return this.to('float16'); };
P.bfloat16 = function () { return this.to('bfloat16'); };
P.double = function () { return this.to('float64'); };
P.int = function () { return this.to('int32'); };
P.clone = function () { return apply('contiguous', [this]); };

P.copy_ = function (src) {
  noGrad(() => {
    const s = shp.expand(castTo(wrap(src, this), this.dt), this.shape);
    applyInto('copy', [s], this, {});
  });
  return this;
};
// the fill kernel takes the value as a parameter: no 0-d tensor uploaded and cast, as copy_ would
P.fill_ = function (value) {
  noGrad(() => {
    if (this.numel > 0) applyInto('fill', [], this, { value });
  });
  return this;
};
P.zero_ = function () { return this.fill_(0); };

P.backward = function (gradient, options = {}) {
  if (!this.requiresGrad) {
    throw new Error('backward: tensor does not require grad and has no gradFn (did you forget requiresGrad: true, or run inside noGrad?)');
  }
  let g = gradient ?? null;
  if (!g) {
    if (this.numel !== 1) throw new Error(`backward: grad can be implicitly created only for scalar outputs, got shape ${shapeStr(this.shape)}`);
    g = onesLike(this);
  } else if (g.shape.length !== this.shape.length || g.shape.some((d, i) => d !== this.shape[i])) {
    throw new RangeError(`backward: gradient ${shapeStr(g.shape)} does not match tensor ${shapeStr(this.shape)}`);
  }
  const root = castTo(g, this.dt);
  withoutAutocast(() =>
    runBackward(this, root, options, accumulateGrad, {
      add: (a, b) => ew.add(a, b),
      castTo: (t, like) => castTo(t, like.dt),
      assemble: assembleSliceGradients,
    }),
  );
};
