/** Reductions over a set of dimensions, and softmax along one. Accumulation in float64 (>= float32). */
import type { ArgReduceParams, DimParams, ReduceDimsParams, SumParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';
import { numel } from '../../../shape/strides.js';

/** For each input element, the linear index of the output element it reduces into. */
export function outputIndexMap(shape: readonly number[], dims: readonly number[]): Int32Array {
  const rank = shape.length;
  const reduced = new Array<boolean>(rank).fill(false);
  for (const d of dims) reduced[d] = true;
  const outStrides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    if (!reduced[d]) {
      outStrides[d] = s;
      s *= shape[d]!;
    }
  }
  const n = numel(shape);
  const map = new Int32Array(n);
  const idx = new Array<number>(rank).fill(0);
  let o = 0;
  for (let i = 0; i < n; i++) {
    map[i] = o;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      o += outStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      o -= outStrides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return map;
}

const sum: RefKernel<SumParams> = ([x], params, [out]) => {
  const map = outputIndexMap(x!.shape, params.dims);
  const res = new Float64Array(numel(out!.shape));
  const src = x!.data;
  for (let i = 0; i < src.length; i++) res[map[i]!]! += src[i]!;
  if (params.scale !== undefined) for (let i = 0; i < res.length; i++) res[i]! *= params.scale;
  return [res];
};

function extremum(isMax: boolean): RefKernel<ReduceDimsParams> {
  return ([x], params, [out]) => {
    const map = outputIndexMap(x!.shape, params.dims);
    const res = new Float64Array(numel(out!.shape)).fill(isMax ? -Infinity : Infinity);
    const src = x!.data;
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      const o = map[i]!;
      if (Number.isNaN(v) || (isMax ? v > res[o]! : v < res[o]!)) res[o] = v; // NaN propagates: nothing beats it
    }
    return [res];
  };
}

/** [outer, n, inner] view of a shape around `dim`. */
export function splitAround(shape: readonly number[], dim: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < dim; d++) outer *= shape[d]!;
  for (let d = dim + 1; d < shape.length; d++) inner *= shape[d]!;
  return [outer, shape[dim] ?? 1, inner];
}

/** Index of the first maximum (or minimum) along `dim`; NaN counts as the extremum, as in PyTorch. */
function argExtremum(isMax: boolean): RefKernel<ArgReduceParams> {
  return ([x], params) => {
    const src = x!.data;
    const shape = params.dim === null ? [src.length] : x!.shape;
    const [outer, n, inner] = splitAround(shape, params.dim ?? 0);
    const res = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = 0;
        let bestVal = src[o * n * inner + i]!;
        for (let k = 1; k < n && !Number.isNaN(bestVal); k++) {
          const v = src[(o * n + k) * inner + i]!;
          if (Number.isNaN(v) || (isMax ? v > bestVal : v < bestVal)) {
            best = k;
            bestVal = v;
          }
        }
        res[o * inner + i] = best;
      }
    }
    return [res];
  };
}

function softmaxLike(log: boolean): RefKernel<DimParams> {
  return ([x], params) => {
    const src = x!.data;
    const [outer, n, inner] = splitAround(x!.shape, params.dim);
    const res = new Float64Array(src.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let m = -Infinity;
        for (let k = 0; k < n; k++) m = Math.max(m, src[base + k * inner]!);
        if (m === -Infinity) m = 0;
        let s = 0;
        for (let k = 0; k < n; k++) s += Math.exp(src[base + k * inner]! - m);
        const logS = Math.log(s);
        for (let k = 0; k < n; k++) {
          const z = src[base + k * inner]! - m;
          res[base + k * inner] = log ? z - logS : Math.exp(z) / s;
        }
      }
    }
    return [res];
  };
}

/** inputs (softmax output y, gradient g): y * (g - sum(g * y)) along dim. */
const softmaxBackward: RefKernel<DimParams> = ([y, g], params) => {
  const Y = y!.data;
  const G = g!.data;
  const [outer, n, inner] = splitAround(y!.shape, params.dim);
  const res = new Float64Array(Y.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let dot = 0;
      for (let k = 0; k < n; k++) dot += G[base + k * inner]! * Y[base + k * inner]!;
      for (let k = 0; k < n; k++) res[base + k * inner] = Y[base + k * inner]! * (G[base + k * inner]! - dot);
    }
  return [res];
};

/** inputs (logSoftmax output y, gradient g): g - exp(y) * sum(g) along dim. */
const logSoftmaxBackward: RefKernel<DimParams> = ([y, g], params) => {
  const Y = y!.data;
  const G = g!.data;
  const [outer, n, inner] = splitAround(y!.shape, params.dim);
  const res = new Float64Array(Y.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let total = 0;
      for (let k = 0; k < n; k++) total += G[base + k * inner]!;
      for (let k = 0; k < n; k++) res[base + k * inner] = G[base + k * inner]! - Math.exp(Y[base + k * inner]!) * total;
    }
  return [res];
};

export const reduceKernels = {
  sum,
  max: extremum(true),
  min: extremum(false),
  argmax: argExtremum(true),
  argmin: argExtremum(false),
  softmax: softmaxLike(false),
  logSoftmax: softmaxLike(true),
  softmaxBackward,
  logSoftmaxBackward,
} satisfies RefKernels;
