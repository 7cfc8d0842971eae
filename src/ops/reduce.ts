/**
 * Reductions. Sums and means accumulate in float32 or wider and round once into the input's dtype
 * (integer and bool sums give int32). max/min without indices split the gradient evenly among ties.
 */
import { float32, int32, type DType } from '../dtype/dtype.js';
import { Tensor, normalizeDim } from '../tensor/tensor.js';
import { apply } from './dispatch.js';
import type { SumParams } from '../backend/kernels.js';
import { defineOp } from './registry.js';
import { castTo } from './util.js';
import { expand, reshape } from './shape.js';
import { div, exp, log, mul, sub, where, eq, isfinite, add } from './elementwise.js';
import { mapNumbers, mapPacked } from '../shape/packed.js';

/** The reductions' params: the sum kernel's (dims, scale: src/backend/kernels.ts) and keepdim. */
interface ReduceParams extends SumParams {
  keepdim: boolean;
}

export function reducedShape(shape: readonly number[], dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** The output gradient broadcast back to the input's shape. */
function expandGrad(g: Tensor, input: Tensor, dims: readonly number[]): Tensor {
  return expand(reshape(g, reducedShape(input.shape, dims, true)), input.shape);
}

const inferReduce = (outDtype: (x: DType) => DType) => (xs: readonly Tensor[], p: ReduceParams) => ({
  shape: reducedShape(xs[0]!.shape, p.dims, p.keepdim),
  dtype: outDtype(xs[0]!.dt),
});

defineOp<ReduceParams>({
  name: 'sum', autocast: 'float32',
  infer: inferReduce((d) => (d.isFloating ? d : int32)),
  backward: (g, { inputs, params }) => [expandGrad(params.scale === undefined ? g : mul(g, params.scale), inputs[0]!, params.dims)],
});

defineOp<ReduceParams>({
  name: 'mean', autocast: 'none', kernel: 'sum',
  prepare: (xs) => {
    if (!xs[0]!.dt.isFloating) throw new TypeError(`mean: input dtype must be floating point, got ${xs[0]!.dtype}`);
    return [...xs];
  },
  infer: inferReduce((d) => d),
  backward: (g, { inputs, params }) => [expandGrad(mul(g, params.scale!), inputs[0]!, params.dims)],
});

for (const name of ['max', 'min'] as const) {
  defineOp<ReduceParams>({
    name, autocast: 'none',
    infer: (xs, p) => {
      if (xs[0]!.numel === 0) throw new RangeError(`${name}: cannot reduce an empty tensor`);
      return inferReduce((d) => d)(xs, p);
    },
    backward: (g, { inputs, output, params }) => {
      const x = inputs[0]!;
      const hit = castTo(eq(x, expandGrad(output, x, params.dims)), x.dt);
      const count = apply('sum', [hit], { dims: params.dims, keepdim: params.keepdim });
      return [mul(expandGrad(div(g, count), x, params.dims), hit)];
    },
  });
}

for (const name of ['argmax', 'argmin'] as const) {
  defineOp<{ dim: number | null; keepdim: boolean }>({
    name, autocast: 'none',
    infer: ({ 0: x }, { dim, keepdim }) => ({
      shape: dim === null ? (keepdim ? mapNumbers(x!.shape, () => 1) : []) : reducedShape(x!.shape, [dim], keepdim),
      dtype: int32,
    }),
  });
}

defineOp<{ dim: number }>({
  name: 'softmax', autocast: 'float32',
  prepare: (xs) => mapPacked(xs, (x) => (x.dt.isFloating ? x : castTo(x, float32))),
  infer: ({ 0: x }) => ({ shape: x!.shape, dtype: x!.dt }),
  backward: (g, { output, params }) => [apply('softmaxBackward', [output, g], params)],
});

defineOp<{ dim: number }>({
  name: 'logSoftmax', autocast: 'float32',
  prepare: (xs) => mapPacked(xs, (x) => (x.dt.isFloating ? x : castTo(x, float32))),
  infer: ({ 0: x }) => ({ shape: x!.shape, dtype: x!.dt }),
  backward: (g, { output, params }) => [apply('logSoftmaxBackward', [output, g], params)],
});

for (const name of ['softmaxBackward', 'logSoftmaxBackward'] as const) {
  defineOp<{ dim: number }>({ name, autocast: 'none', infer: (xs) => ({ shape: xs[0]!.shape, dtype: xs[1]!.dt }) });
}

/** logsumexp = m + log(sum(exp(x - m))), m the (detached) max; infinite maxima are replaced by 0. */
defineOp<{ dims: readonly number[]; keepdim: boolean }>({
  name: 'logsumexp', autocast: 'float32',
  compose: ({ 0: x }, { dims, keepdim }) => {
    const m0 = apply('max', [x!.detach()], { dims, keepdim: true });
    const m = where(isfinite(m0), m0, 0);
    const s = log(apply('sum', [exp(sub(x!, m))], { dims, keepdim: true }));
    const out = add(s, m);
    return keepdim ? out : reshape(out, reducedShape(x!.shape, dims, false));
  },
});

/** var with Bessel's correction `correction`; 16-bit inputs are computed in float32 and rounded once. */
defineOp<{ dims: readonly number[]; keepdim: boolean; correction: number }>({
  name: 'var', autocast: 'none',
  compose: ({ 0: x0 }, { dims, keepdim, correction }) => {
    if (!x0!.dt.isFloating) throw new TypeError(`var: input dtype must be floating point, got ${x0!.dtype}`);
    const x = x0!.dt.isHalf ? castTo(x0!, float32) : x0!;
    let n = 1;
    for (const d of dims) n *= x.shape[d]!;
    const mu = apply('mean', [x], { dims, keepdim: true, scale: 1 / n });
    const d = sub(x, mu);
    // d * d, not pow(d, 2): the same values and gradient, without pow's exponent gradient
    const sq = apply('sum', [mul(d, d)], { dims, keepdim });
    return castTo(div(sq, Math.max(n - correction, 0)), x0!.dt);
  },
});

/* ------------------------------------------------------------------ public functions */

export type Dims = number | readonly number[] | null | undefined;

/** Normalised, sorted, unique reduction dims; undefined/null means all dims. */
export function reduceDims(op: string, x: Tensor, dim: Dims): number[] {
  if (dim === undefined || dim === null) return mapNumbers(x.shape, (_, i) => i);
  const list = typeof dim === 'number' ? [dim] : [...dim];
  const out = [...new Set(list.map((d) => normalizeDim(d, x.ndim, op)))].sort((a, b) => a - b);
  if (out.length !== list.length) throw new RangeError(`${op}: dim ${JSON.stringify(dim)} appears more than once`);
  return x.ndim === 0 ? [] : out;
}

export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return apply('sum', [x], { dims: reduceDims('sum', x, dim), keepdim });
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = reduceDims('mean', x, dim);
  let n = 1;
  for (const d of dims) n *= x.shape[d]!;
  return apply('mean', [x], { dims, keepdim, scale: 1 / n });
}

export function max(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return apply('max', [x], { dims: reduceDims('max', x, dim), keepdim });
}

export function min(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  return apply('min', [x], { dims: reduceDims('min', x, dim), keepdim });
}

export function argmax(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  return apply('argmax', [x], { dim: dim === undefined || dim === null ? null : normalizeDim(dim, x.ndim, 'argmax'), keepdim });
}

export function argmin(x: Tensor, dim?: number | null, keepdim = false): Tensor {
  return apply('argmin', [x], { dim: dim === undefined || dim === null ? null : normalizeDim(dim, x.ndim, 'argmin'), keepdim });
}

export function logsumexp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  return apply('logsumexp', [x], { dims: reduceDims('logsumexp', x, dim), keepdim });
}

/** Variance; `correction` 1 (default) is the unbiased estimator, 0 the biased one. */
export function variance(x: Tensor, dim?: Dims, keepdim = false, correction = 1): Tensor {
  return apply('var', [x], { dims: reduceDims('var', x, dim), keepdim, correction });
}

export function softmax(x: Tensor, dim: number): Tensor {
  return apply('softmax', [x], { dim: normalizeDim(dim, x.ndim, 'softmax') });
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return apply('logSoftmax', [x], { dim: normalizeDim(dim, x.ndim, 'logSoftmax') });
}
