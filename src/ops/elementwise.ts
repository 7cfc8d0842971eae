/**
 * Elementwise ops. Every one computes in at least float32 and rounds its output once into the
 * output dtype; backward rules are fused kernels (or single ops) for the same reason.
 */
import { bool, float32, resultType, type DType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { apply } from './dispatch.js';
import type { KernelName } from '../backend/kernels.js';
import { defineOp, type AutocastCategory } from './registry.js';
import { broadcastShapes, castTo, expandTo, operandDtype, promoteAndBroadcast, sumToShape, wrap, type TensorLike } from './util.js';
import { mapPacked } from '../shape/packed.js';
import { sameShape } from '../shape/strides.js';

const sameAsInput = (xs: readonly Tensor[]) => ({ shape: xs[0]!.shape, dtype: operandDtype(xs) });
const grad = (kernel: string, inputs: Tensor[], params: object = {}) => apply(kernel, inputs, params);

/** Integer/bool inputs of float functions (exp, log, ...) become float32, as in PyTorch. */
const toFloat = (xs: readonly Tensor[]) => mapPacked(xs, (x) => (x.dt.isFloating ? x : castTo(x, float32)));

function unaryFloatOp(
  name: KernelName,
  autocast: AutocastCategory,
  backward: (g: Tensor, x: Tensor, y: Tensor, params: any) => Tensor,
): void {
  defineOp({ name, autocast, prepare: toFloat, infer: sameAsInput, backward: (g, { inputs, output, params }) => [backward(g, inputs[0]!, output, params)] });
}

// Fused backward kernels: primitives with no backward of their own.
for (const name of [
  'geluBackward', 'tanhBackward', 'sigmoidBackward', 'reluBackward', 'leakyReluBackward', 'log1pBackward',
  'sqrtBackward', 'rsqrtBackward', 'clampBackward', 'powBackwardBase', 'powBackwardExponent',
  'divBackwardDivisor', 'maximumBackward', 'minimumBackward',
] as const) {
  defineOp({ name, autocast: 'none', infer: (xs) => ({ shape: xs[0]!.shape, dtype: xs[xs.length - 1]!.dt }) });
}

unaryFloatOp('exp', 'float32', (g, _x, y) => mul(g, y));
unaryFloatOp('log', 'float32', (g, x) => div(g, x));
unaryFloatOp('log1p', 'float32', (g, x) => grad('log1pBackward', [x, g]));
unaryFloatOp('sqrt', 'none', (g, _x, y) => grad('sqrtBackward', [y, g]));
unaryFloatOp('rsqrt', 'float32', (g, x) => grad('rsqrtBackward', [x, g]));
unaryFloatOp('tanh', 'none', (g, x) => grad('tanhBackward', [x, g]));
unaryFloatOp('sigmoid', 'none', (g, x) => grad('sigmoidBackward', [x, g]));
unaryFloatOp('gelu', 'none', (g, x, _y, p) => grad('geluBackward', [x, g], p));

const noBool = (name: string) => (xs: readonly Tensor[]) => {
  if (xs[0]!.dt === bool) throw new TypeError(`${name}: not supported for bool tensors; use logicalNot`);
  return [...xs];
};
defineOp({ name: 'neg', autocast: 'none', prepare: noBool('neg'), infer: sameAsInput, backward: (g) => [neg(g)] });
defineOp({ name: 'abs', autocast: 'none', prepare: noBool('abs'), infer: sameAsInput, backward: (g, { inputs }) => [mul(g, sign(inputs[0]!))] });
defineOp({ name: 'sign', autocast: 'none', infer: sameAsInput, backward: (g) => [mul(g, 0)] });
defineOp({ name: 'relu', autocast: 'none', prepare: noBool('relu'), infer: sameAsInput, backward: (g, { inputs }) => [grad('reluBackward', [inputs[0]!, g])] });
defineOp<{ negativeSlope: number }>({
  name: 'leakyRelu', autocast: 'none', prepare: toFloat, infer: sameAsInput,
  backward: (g, { inputs, params }) => [grad('leakyReluBackward', [inputs[0]!, g], params)],
});
defineOp<{ min: number | null; max: number | null }>({
  name: 'clamp', autocast: 'none', infer: sameAsInput,
  backward: (g, { inputs, params }) => [grad('clampBackward', [inputs[0]!, g], params)],
});
defineOp({ name: 'logicalNot', autocast: 'none', infer: (xs) => ({ shape: xs[0]!.shape, dtype: bool }) });
defineOp({ name: 'isfinite', autocast: 'none', infer: (xs) => ({ shape: xs[0]!.shape, dtype: bool }) });

/** cast: a copy into another dtype; its gradient is cast back to the source dtype. */
defineOp<{ dtype: DType }>({
  name: 'cast', autocast: 'none', kernel: 'copy',
  infer: (xs, p) => ({ shape: xs[0]!.shape, dtype: p.dtype }),
  backward: (g, { inputs }) => [castTo(g, inputs[0]!.dt)],
});

function binaryOp(
  name: KernelName,
  backward: ((g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null]) | null,
  floatResult = false,
  autocast: AutocastCategory = 'none',
): void {
  defineOp({
    name, autocast,
    prepare: (xs) => promoteAndBroadcast(name, xs, floatResult),
    infer: sameAsInput,
    ...(backward && { backward: (g: Tensor, { inputs, output }: { inputs: readonly Tensor[]; output: Tensor }) => backward(g, inputs[0]!, inputs[1]!, output) }),
  });
}

/**
 * add keeps a float32 and a float16 / bfloat16 tensor of one shape as they are (neither a wrapped
 * number): the kernel widens the 16-bit operand (exact) and adds in float32, as PyTorch's
 * TensorIterator does, so the bits are those of casting it first, without the cast op and its float32
 * copy (a transformer's residual add under autocast: the float32 stream plus a 16-bit branch). Each
 * input's gradient goes back in its own dtype, as PyTorch's autograd casts it.
 */
function isMixedAdd(a: Tensor, b: Tensor): boolean {
  if (a.dt === b.dt || a.wrappedNumber || b.wrappedNumber) return false;
  return (a.dt === float32 ? b.dt.isHalf : a.dt.isHalf && b.dt === float32) && sameShape(a.shape, b.shape);
}
const gradAs = (g: Tensor, x: Tensor) => (x.wrappedNumber ? g : castTo(g, x.dt));
defineOp({
  name: 'add', autocast: 'none',
  prepare: (xs) => (xs.length === 2 && isMixedAdd(xs[0]!, xs[1]!) ? [xs[0]!, xs[1]!] : promoteAndBroadcast('add', xs)),
  infer: (xs) => ({ shape: xs[0]!.shape, dtype: xs.length === 2 && isMixedAdd(xs[0]!, xs[1]!) ? float32 : operandDtype(xs) }),
  backward: (g, { inputs }) => [gradAs(g, inputs[0]!), gradAs(g, inputs[1]!)],
});
// Each input's gradient is computed only where the engine will use it (it drops the gradient of an
// input that needs none, as conv2d and bmm skip theirs): a tensor times a constant (the GradScaler's
// scale, a wrapped number) costs one backward op, not two.
binaryOp('sub', (g, a, b) => [g, b.requiresGrad ? neg(g) : null]);
binaryOp('mul', (g, a, b) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null]);
binaryOp('div', (g, a, b) => [a.requiresGrad ? div(g, b) : null, b.requiresGrad ? grad('divBackwardDivisor', [a, b, g]) : null], true);
binaryOp(
  'pow',
  (g, a, b) => [a.requiresGrad ? grad('powBackwardBase', [a, b, g]) : null, b.requiresGrad ? grad('powBackwardExponent', [a, b, g]) : null],
  false,
  'float32',
);

/** PyTorch refuses integers to negative integer powers (the result is not an integer). */
function checkIntegerPow(base: Tensor, exponent: Tensor): void {
  if (base.dt.isFloating || exponent.dt.isFloating || !exponent.backend.readSync) return;
  if (exponent.dataSync().some((v) => v < 0)) throw new RangeError('pow: integers to negative integer powers are not allowed (cast the base to a float dtype)');
}
binaryOp('maximum', (g, a, b) => [a.requiresGrad ? grad('maximumBackward', [a, b, g]) : null, b.requiresGrad ? grad('maximumBackward', [b, a, g]) : null]);
binaryOp('minimum', (g, a, b) => [a.requiresGrad ? grad('minimumBackward', [a, b, g]) : null, b.requiresGrad ? grad('minimumBackward', [b, a, g]) : null]);

for (const name of ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr'] as const) {
  defineOp({ name, autocast: 'none', prepare: (xs) => promoteAndBroadcast(name, xs), infer: (xs) => ({ shape: xs[0]!.shape, dtype: bool }) });
}

defineOp({
  name: 'where', autocast: 'none',
  prepare: ({ 0: c, 1: a, 2: b }) => {
    if (c!.dt !== bool) throw new TypeError(`where: expected condition to be a bool tensor, got ${c!.dtype} (compare it first, e.g. x.gt(0))`);
    const dt = resultType([a!, b!]);
    const shape = broadcastShapes('where', [c!.shape, a!.shape, b!.shape]);
    return [expandTo(castTo(c!, bool), shape), expandTo(castTo(a!, dt), shape), expandTo(castTo(b!, dt), shape)];
  },
  infer: (xs) => ({ shape: xs[1]!.shape, dtype: operandDtype(xs.slice(1)) }),
  backward: (g, { inputs }) => {
    const c = inputs[0]!;
    const zero = mul(g, 0);
    return [null, apply('where', [c, g, zero]), apply('where', [c, zero, g])];
  },
});

// Backward rules see the broadcast (expanded) inputs; the expand op's own backward sums gradients back.

/* ------------------------------------------------------------------ public functions */

export const add = (a: TensorLike, b: TensorLike): Tensor => bin('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => bin('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => bin('mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => bin('div', a, b);
export function pow(a: TensorLike, b: TensorLike): Tensor {
  const like = typeof a === 'object' ? a : typeof b === 'object' ? b : undefined;
  const base = wrap(a, like);
  const exponent = wrap(b, like);
  checkIntegerPow(base, exponent);
  return apply('pow', [base, exponent]);
}
export const maximum = (a: TensorLike, b: TensorLike): Tensor => bin('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => bin('minimum', a, b);
export const eq = (a: TensorLike, b: TensorLike): Tensor => bin('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => bin('ne', a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => bin('lt', a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => bin('le', a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => bin('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => bin('ge', a, b);
export const logicalAnd = (a: TensorLike, b: TensorLike): Tensor => bin('logicalAnd', a, b);
export const logicalOr = (a: TensorLike, b: TensorLike): Tensor => bin('logicalOr', a, b);

function bin(op: string, a: TensorLike, b: TensorLike): Tensor {
  const like = typeof a === 'object' ? a : typeof b === 'object' ? b : undefined;
  return apply(op, [wrap(a, like), wrap(b, like)]);
}

export const neg = (x: Tensor): Tensor => apply('neg', [x]);
export const abs = (x: Tensor): Tensor => apply('abs', [x]);
export const sign = (x: Tensor): Tensor => apply('sign', [x]);
export const exp = (x: Tensor): Tensor => apply('exp', [x]);
export const log = (x: Tensor): Tensor => apply('log', [x]);
export const log1p = (x: Tensor): Tensor => apply('log1p', [x]);
export const sqrt = (x: Tensor): Tensor => apply('sqrt', [x]);
export const rsqrt = (x: Tensor): Tensor => apply('rsqrt', [x]);
export const tanh = (x: Tensor): Tensor => apply('tanh', [x]);
export const sigmoid = (x: Tensor): Tensor => apply('sigmoid', [x]);
export const relu = (x: Tensor): Tensor => apply('relu', [x]);
export const logicalNot = (x: Tensor): Tensor => apply('logicalNot', [x]);
export const isfinite = (x: Tensor): Tensor => apply('isfinite', [x]);

export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return apply('leakyRelu', [x], { negativeSlope });
}

export function gelu(x: Tensor, options: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  const approximate = options.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') throw new RangeError(`gelu: approximate must be 'none' or 'tanh', got '${approximate}'`);
  return apply('gelu', [x], { approximate });
}

export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if ((min === undefined || min === null) && (max === undefined || max === null)) {
    throw new TypeError('clamp: at least one of min and max must be given');
  }
  return apply('clamp', [x], { min: min ?? null, max: max ?? null });
}

export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  return apply('where', [condition, wrap(a, condition), wrap(b, condition)]);
}

export function square(x: Tensor): Tensor {
  return mul(x, x);
}


export { sumToShape };
