/**
 * More math ops, each in the op table with the autocast category of PyTorch's CUDA autocast lists:
 *
 *   lower:   mm, addmm, baddbmm
 *   float32: reciprocal, softplus, prod, cumsum, norm, cosineSimilarity
 *   promote: addcmul, addcdiv, atan2, dot
 *
 * Primitives (reciprocal, softplus, prod, cumsum, atan2, addcmul, addcdiv, norm) have reference
 * kernels in src/backend/reference/kernels/extra.ts and fused backward kernels, so a 16-bit forward
 * or backward computes in float64/float32 and rounds once. addmm/baddbmm given 16-bit operands
 * compute beta*input + alpha*(a@b) in float32 and round once (cuBLAS's epilogue), as does
 * cosineSimilarity (the float32 pattern of the losses and normalisations).
 */
import { float32, int32, resultType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { normalizeDim } from '../tensor/tensor.js';
import { apply } from './dispatch.js';
import type { KernelName } from '../backend/kernels.js';
import { defineOp } from './registry.js';
import { broadcastShapes, castTo, inFloat32, operandDtype, promoteAndBroadcast, shapeStr, wrap, type TensorLike } from './util.js';
import { add, mul, div, maximum, sqrt } from './elementwise.js';
import { reduceDims, reducedShape, sum, type Dims } from './reduce.js';
import { reshape } from './shape.js';
import { sameShape } from '../shape/strides.js';

const toFloat = (xs: readonly Tensor[]) => xs.map((x) => (x.dt.isFloating ? x : castTo(x, float32)));
const sameAsInput = (xs: readonly Tensor[]) => ({ shape: xs[0]!.shape, dtype: operandDtype(xs) });
/** Gradient kernels: (saved tensors..., incoming gradient) -> a gradient in the incoming gradient's dtype. */
const gradKernel = (name: KernelName) =>
  defineOp({ name, autocast: 'none', infer: (xs) => ({ shape: xs[0]!.shape, dtype: xs[xs.length - 1]!.dt }) });

for (const name of [
  'reciprocalBackward', 'softplusBackward', 'atan2BackwardInput', 'atan2BackwardOther', 'addcmulBackward',
  'addcdivBackwardNumerator', 'addcdivBackwardDenominator', 'prodBackward', 'normBackward',
] as const) gradKernel(name);



/* ------------------------------------------------------------------ float32 category */

defineOp({
  name: 'reciprocal', autocast: 'float32', prepare: toFloat, infer: sameAsInput,
  backward: (g, { output }) => [apply('reciprocalBackward', [output, g])],
});

defineOp<{ beta: number; threshold: number }>({
  name: 'softplus', autocast: 'float32', prepare: toFloat, infer: sameAsInput,
  backward: (g, { inputs, params }) => [apply('softplusBackward', [inputs[0]!, g], params)],
});

interface ReduceParams {
  dims: readonly number[];
  keepdim: boolean;
}

/** prod: float inputs keep their dtype, integer and bool inputs give int32 (PyTorch: int64). */
defineOp<ReduceParams>({
  name: 'prod', autocast: 'float32',
  infer: ({ 0: x }, p) => ({ shape: reducedShape(x!.shape, p.dims, p.keepdim), dtype: x!.dt.isFloating ? x!.dt : int32 }),
  backward: (g, { inputs, params }) => {
    const x = inputs[0]!;
    return [apply('prodBackward', [x, reshape(g, reducedShape(x.shape, params.dims, true))], params)];
  },
});

/** cumsum along `dim` (from the end when `reverse`, which is its own gradient's direction). */
defineOp<{ dim: number; reverse: boolean }>({
  name: 'cumsum', autocast: 'float32',
  infer: ({ 0: x }) => ({ shape: x!.shape, dtype: x!.dt.isFloating ? x!.dt : int32 }),
  backward: (g, { params }) => [apply('cumsum', [g], { dim: params.dim, reverse: !params.reverse })],
});

/** Vector p-norm over `dims` (p = 0, ±Infinity and any real p). */
defineOp<ReduceParams & { p: number }>({
  name: 'norm', autocast: 'float32',
  prepare: (xs) => {
    if (!xs[0]!.dt.isFloating) throw new TypeError(`norm: expected a floating point input, got ${xs[0]!.dtype}`);
    return [...xs];
  },
  infer: ({ 0: x }, p) => ({ shape: reducedShape(x!.shape, p.dims, p.keepdim), dtype: x!.dt }),
  backward: (g, { inputs, params }) => {
    const x = inputs[0]!;
    return [apply('normBackward', [x, reshape(g, reducedShape(x.shape, params.dims, true))], params)];
  },
});

/** PyTorch 1.13's formula: sum(x1 x2) / sqrt(max(sum(x1^2) sum(x2^2), eps^2)) along dim. */
defineOp<{ dim: number; eps: number }>({
  name: 'cosineSimilarity', autocast: 'float32',
  compose: ({ 0: a0, 1: b0 }, { dim, eps }) => {
    const { 0: a1, 1: b1 } = promoteAndBroadcast('cosineSimilarity', [a0!, b0!], true);
    return inFloat32([a1!, b1!], a1!.dt, ({ 0: x1, 1: x2 }) => {
      const w12 = sum(mul(x1!, x2!), dim);
      const w1 = sum(mul(x1!, x1!), dim);
      const w2 = sum(mul(x2!, x2!), dim);
      return div(w12, sqrt(maximum(mul(w1, w2), eps * eps)));
    });
  },
});

/* ------------------------------------------------------------------ promote category */

defineOp({
  name: 'atan2', autocast: 'promote',
  prepare: (xs) => promoteAndBroadcast('atan2', xs, true),
  infer: sameAsInput,
  backward: (g, { inputs: { 0: a, 1: b } }) => [
    a!.requiresGrad ? apply('atan2BackwardInput', [a!, b!, g]) : null,
    b!.requiresGrad ? apply('atan2BackwardOther', [a!, b!, g]) : null,
  ],
});

defineOp<{ value: number }>({
  name: 'addcmul', autocast: 'promote',
  prepare: (xs) => promoteAndBroadcast('addcmul', xs),
  infer: sameAsInput,
  backward: (g, { inputs: { 0: x, 1: t1, 2: t2 }, params }) => [
    x!.requiresGrad ? g : null,
    t1!.requiresGrad ? apply('addcmulBackward', [t2!, g], params) : null,
    t2!.requiresGrad ? apply('addcmulBackward', [t1!, g], params) : null,
  ],
});

defineOp<{ value: number }>({
  name: 'addcdiv', autocast: 'promote',
  prepare: (xs) => {
    if (!xs[1]!.dt.isFloating && !xs[2]!.dt.isFloating) {
      throw new TypeError(`addcdiv: integer division of tensors (${xs[1]!.dtype} by ${xs[2]!.dtype}) is not supported; use floating point tensors`);
    }
    return promoteAndBroadcast('addcdiv', xs, true);
  },
  infer: sameAsInput,
  backward: (g, { inputs: { 0: x, 1: t1, 2: t2 }, params }) => [
    x!.requiresGrad ? g : null,
    t1!.requiresGrad ? apply('addcdivBackwardNumerator', [t2!, g], params) : null,
    t2!.requiresGrad ? apply('addcdivBackwardDenominator', [t1!, t2!, g], params) : null,
  ],
});

/** Inner product of two 1-D tensors: one bmm (accumulated in float64, rounded once). */
defineOp({
  name: 'dot', autocast: 'promote',
  compose: ({ 0: a, 1: b }) => {
    if (a!.ndim !== 1 || b!.ndim !== 1) throw new RangeError(`dot: expects 1-D tensors, got ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
    const n = a!.shape[0]!;
    if (b!.shape[0] !== n) throw new RangeError(`dot: inconsistent tensor size, expected tensors of the same length, got ${n} and ${b!.shape[0]}`);
    return reshape(apply('bmm', [reshape(a!, [1, 1, n]), reshape(b!, [1, n, 1])]), []);
  },
});

/* ------------------------------------------------------------------ lower category */

defineOp({
  name: 'mm', autocast: 'lower',
  compose: ({ 0: a, 1: b }) => {
    if (a!.ndim !== 2 || b!.ndim !== 2) throw new RangeError(`mm: expects 2-D tensors, got ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
    const { 0: M, 1: K } = a!.shape as [number, number];
    const { 0: K2, 1: N } = b!.shape as [number, number];
    if (K !== K2) throw new RangeError(`mm: cannot multiply ${shapeStr(a!.shape)} by ${shapeStr(b!.shape)} (${M}x${K} and ${K2}x${N})`);
    return reshape(apply('bmm', [reshape(a!, [1, M, K]), reshape(b!, [1, K, N])]), [M, N]);
  },
});

interface AddmmParams {
  beta: number;
  alpha: number;
}

/** beta * input + alpha * product, with input broadcast to the product's shape (not beyond it). */
function scaledSum(op: string, input: Tensor, product: Tensor, { beta, alpha }: AddmmParams): Tensor {
  const y = alpha === 1 ? product : mul(product, alpha);
  if (beta === 0) return y; // PyTorch: input is ignored (its NaN/Inf do not propagate)
  return add(beta === 1 ? input : mul(input, beta), y);
}

function checkBroadcastTo(op: string, input: Tensor, shape: readonly number[]): void {
  let ok = input.ndim <= shape.length;
  if (ok) {
    try {
      const b = broadcastShapes(op, [input.shape, shape]);
      ok = sameShape(b, shape);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new RangeError(`${op}: input ${shapeStr(input.shape)} cannot be broadcast to the product's shape ${shapeStr(shape)}`);
}

function addProduct(op: string, xs: readonly Tensor[], p: AddmmParams, product: (a: Tensor, b: Tensor) => Tensor, shape: number[]): Tensor {
  checkBroadcastTo(op, xs[0]!, shape);
  const dt = resultType(xs);
  const cast = xs.map((x) => castTo(x, dt));
  return inFloat32(cast, dt, ({ 0: input, 1: a, 2: b }) => scaledSum(op, input!, product(a!, b!), p));
}

defineOp<AddmmParams>({
  name: 'addmm', autocast: 'lower',
  compose: (xs, p) => {
    const { 1: a, 2: b } = xs;
    if (a!.ndim !== 2 || b!.ndim !== 2 || a!.shape[1] !== b!.shape[0]) {
      throw new RangeError(`addmm: cannot multiply mat1 ${shapeStr(a!.shape)} by mat2 ${shapeStr(b!.shape)}`);
    }
    return addProduct('addmm', xs, p, (x, y) => apply('mm', [x, y]), [a!.shape[0]!, b!.shape[1]!]);
  },
});

defineOp<AddmmParams>({
  name: 'baddbmm', autocast: 'lower',
  compose: (xs, p) => {
    const { 1: a, 2: b } = xs;
    if (a!.ndim !== 3 || b!.ndim !== 3 || a!.shape[0] !== b!.shape[0] || a!.shape[2] !== b!.shape[1]) {
      throw new RangeError(`baddbmm: cannot multiply batch1 ${shapeStr(a!.shape)} by batch2 ${shapeStr(b!.shape)}`);
    }
    return addProduct('baddbmm', xs, p, (x, y) => apply('bmm', [x, y]), [a!.shape[0]!, a!.shape[1]!, b!.shape[2]!]);
  },
});

/* ------------------------------------------------------------------ public functions */

/** 1 / x, computed in one kernel (float32 under autocast). */
export function reciprocal(x: Tensor): Tensor {
  return apply('reciprocal', [x]);
}

/** log(1 + exp(beta x)) / beta, reverting to x where beta x > threshold. */
export function softplus(x: Tensor, options: { beta?: number; threshold?: number } = {}): Tensor {
  const beta = options.beta ?? 1;
  const threshold = options.threshold ?? 20;
  if (!(beta !== 0 && Number.isFinite(beta))) throw new RangeError(`softplus: beta must be a finite nonzero number, got ${beta}`);
  return apply('softplus', [x], { beta, threshold });
}

/** Product of all elements, or along `dim`. */
export function prod(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  return apply('prod', [x], { dims: reduceDims('prod', x, dim), keepdim });
}

/** Cumulative sum along `dim`. */
export function cumsum(x: Tensor, dim: number): Tensor {
  const d = x.ndim === 0 ? normalizeDim(dim, 1, 'cumsum') : normalizeDim(dim, x.ndim, 'cumsum');
  return apply('cumsum', [x], { dim: x.ndim === 0 ? 0 : d, reverse: false });
}

/** Vector p-norm of all elements, or over `dim`: p = 2 (default), 1, 0, Infinity, -Infinity or any real p ('fro' is 2). */
export function norm(x: Tensor, p: number | 'fro' = 2, dim?: Dims, keepdim = false): Tensor {
  const pv = p === 'fro' ? 2 : p;
  if (typeof pv !== 'number' || Number.isNaN(pv)) throw new RangeError(`norm: p must be a number, Infinity or 'fro', got ${String(p)}`);
  return apply('norm', [x], { dims: reduceDims('norm', x, dim), keepdim, p: pv });
}

/** Cosine similarity of x1 and x2 (broadcast together) along `dim`. */
export function cosineSimilarity(x1: Tensor, x2: Tensor, options: { dim?: number; eps?: number } = {}): Tensor {
  let ndim: number;
  try {
    ndim = broadcastShapes('cosineSimilarity', [x1.shape, x2.shape]).length;
  } catch {
    throw new RangeError(`cosineSimilarity: shapes ${shapeStr(x1.shape)} and ${shapeStr(x2.shape)} cannot be broadcast together`);
  }
  const dim = normalizeDim(options.dim ?? 1, ndim, 'cosineSimilarity');
  return apply('cosineSimilarity', [x1, x2], { dim, eps: options.eps ?? 1e-8 });
}

/** atan2(a, b): the angle of the point (b, a), in (-pi, pi]. */
export function atan2(a: TensorLike, b: TensorLike): Tensor {
  const like = typeof a === 'object' ? a : typeof b === 'object' ? b : undefined;
  return apply('atan2', [wrap(a, like), wrap(b, like)]);
}

/** input + value * t1 * t2 (broadcast), rounded once. */
export function addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, options: { value?: number } = {}): Tensor {
  return apply('addcmul', [input, tensor1, tensor2], { value: options.value ?? 1 });
}

/** input + value * t1 / t2 (broadcast), rounded once. */
export function addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, options: { value?: number } = {}): Tensor {
  return apply('addcdiv', [input, tensor1, tensor2], { value: options.value ?? 1 });
}

/** Inner product of two 1-D tensors of the same length. */
export function dot(a: Tensor, b: Tensor): Tensor {
  return apply('dot', [a, b]);
}

/** Matrix product of two 2-D tensors (its own op, 'lower' under autocast). */
export function mm(a: Tensor, b: Tensor): Tensor {
  return apply('mm', [a, b]);
}

/** beta * input + alpha * (mat1 @ mat2); input broadcasts to [n, p]. */
export function addmm(input: Tensor, mat1: Tensor, mat2: Tensor, options: { beta?: number; alpha?: number } = {}): Tensor {
  return apply('addmm', [input, mat1, mat2], { beta: options.beta ?? 1, alpha: options.alpha ?? 1 });
}

/** beta * input + alpha * bmm(batch1, batch2); input broadcasts to [b, n, p]. */
export function baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, options: { beta?: number; alpha?: number } = {}): Tensor {
  return apply('baddbmm', [input, batch1, batch2], { beta: options.beta ?? 1, alpha: options.alpha ?? 1 });
}
