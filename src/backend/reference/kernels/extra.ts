/**
 * Reference kernels of the ops in src/ops/math.ts: reciprocal, softplus, atan2, addcmul/addcdiv,
 * prod, cumsum and p-norms, with their fused backward kernels. Everything is computed in float64
 * and rounded once into the output dtype by the backend (so a 16-bit op or backward rounds once).
 */
import type { CumsumParams, NormParams, ReduceDimsParams, ScaledParams, SoftplusParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';
import { numel } from '../../../shape/strides.js';
import { outputIndexMap } from './reduce.js';

/** Number of output elements of a reduction of `shape` over `dims`. */
function reducedSize(shape: readonly number[], dims: readonly number[]): number {
  let n = 1;
  shape.forEach((d, i) => {
    if (!dims.includes(i)) n *= d;
  });
  return n;
}

function map1<P>(f: (x: number, p: P) => number): RefKernel<P> {
  return ([a], p) => {
    const x = a!.data;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, p);
    return [out];
  };
}

function map2<P>(f: (x: number, y: number, p: P) => number): RefKernel<P> {
  return ([a, b], p) => {
    const x = a!.data;
    const y = b!.data;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, y[i]!, p);
    return [out];
  };
}

function map3<P>(f: (x: number, y: number, z: number, p: P) => number): RefKernel<P> {
  return ([a, b, c], p) => {
    const x = a!.data;
    const y = b!.data;
    const z = c!.data;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, y[i]!, z[i]!, p);
    return [out];
  };
}

/* ------------------------------------------------------------------ elementwise */

/** softplus(x) = log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch). */
function softplus(x: number, p: SoftplusParams): number {
  const bx = x * p.beta;
  if (bx > p.threshold) return x;
  // log1p(exp(bx)) without overflow for large bx, without cancellation for very negative bx
  return (bx > 0 ? bx + Math.log1p(Math.exp(-bx)) : Math.log1p(Math.exp(bx))) / p.beta;
}

/** d softplus / dx = sigmoid(beta x), and 1 above the threshold. */
function softplusGrad(x: number, p: SoftplusParams): number {
  const bx = x * p.beta;
  if (bx > p.threshold) return 1;
  return bx >= 0 ? 1 / (1 + Math.exp(-bx)) : Math.exp(bx) / (1 + Math.exp(bx));
}

/* ------------------------------------------------------------------ reductions */

/** Product over `dims`; an empty product is 1. */
const prod: RefKernel<ReduceDimsParams> = ([x], params, [out]) => {
  const map = outputIndexMap(x!.shape, params.dims);
  const res = new Float64Array(numel(out!.shape)).fill(1);
  const src = x!.data;
  for (let i = 0; i < src.length; i++) res[map[i]!]! *= src[i]!;
  return [res];
};

/**
 * inputs (x, g): d prod / dx_i = product of the other elements of x_i's slice, computed without
 * dividing by x_i, so zeros get their exact gradient (one zero: the product of the others; two or
 * more: 0).
 */
const prodBackward: RefKernel<ReduceDimsParams> = ([x, g], params) => {
  const src = x!.data;
  const G = g!.data;
  const map = outputIndexMap(x!.shape, params.dims);
  const m = reducedSize(x!.shape, params.dims);
  const nonzeroProd = new Float64Array(m).fill(1);
  const zeros = new Int32Array(m);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v === 0) zeros[map[i]!]!++;
    else nonzeroProd[map[i]!]! *= v;
  }
  const res = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const o = map[i]!;
    const v = src[i]!;
    const z = zeros[o]!;
    let d: number;
    if (z === 0) d = nonzeroProd[o]! / v;
    else if (z === 1) d = v === 0 ? nonzeroProd[o]! : 0;
    else d = 0;
    res[i] = G[o]! * d;
  }
  return [res];
};

/** [outer, n, inner] view of a shape around `dim`. */
function splitAround(shape: readonly number[], dim: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < dim; d++) outer *= shape[d]!;
  for (let d = dim + 1; d < shape.length; d++) inner *= shape[d]!;
  return [outer, shape[dim] ?? 1, inner];
}

/** Running sum along `dim` (from the end when `reverse`: the gradient of cumsum). Accumulates in float64. */
const cumsum: RefKernel<CumsumParams> = ([x], params) => {
  const src = x!.data;
  const res = new Float64Array(src.length);
  if (x!.shape.length === 0) {
    res.set(src);
    return [res];
  }
  const [outer, n, inner] = splitAround(x!.shape, params.dim);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let s = 0;
      if (params.reverse) {
        for (let k = n - 1; k >= 0; k--) res[base + k * inner] = s += src[base + k * inner]!;
      } else {
        for (let k = 0; k < n; k++) res[base + k * inner] = s += src[base + k * inner]!;
      }
    }
  return [res];
};

/** Vector p-norm of a slice: p = 0 counts nonzeros, ±Infinity are max/min of |x|. */
function pNorm(values: readonly number[] | Float64Array, p: number): number {
  if (p === Infinity || p === -Infinity) {
    let r = p > 0 ? 0 : Infinity;
    if (p > 0 && values.length === 0) return 0;
    for (const v of values) {
      const a = Math.abs(v);
      if (Number.isNaN(a)) return NaN;
      r = p > 0 ? Math.max(r, a) : Math.min(r, a);
    }
    return r;
  }
  if (p === 0) {
    let c = 0;
    for (const v of values) if (v !== 0) c++;
    return c;
  }
  if (p === 1) {
    let s = 0;
    for (const v of values) s += Math.abs(v);
    return s;
  }
  if (p === 2) {
    // scaled sum of squares: no overflow or underflow of the squares
    let scale = 0;
    for (const v of values) scale = Math.max(scale, Math.abs(v));
    if (scale === 0 || !Number.isFinite(scale)) {
      let s = 0;
      for (const v of values) s += v * v;
      return Math.sqrt(s);
    }
    let s = 0;
    for (const v of values) s += (v / scale) ** 2;
    return scale * Math.sqrt(s);
  }
  let s = 0;
  for (const v of values) s += Math.abs(v) ** p;
  return s ** (1 / p);
}

/** The elements of each reduction slice, grouped by output index. */
function slices(shape: readonly number[], dims: readonly number[], src: Float64Array): { map: Int32Array; groups: number[][] } {
  const map = outputIndexMap(shape, dims);
  const groups: number[][] = Array.from({ length: reducedSize(shape, dims) }, () => []);
  for (let i = 0; i < src.length; i++) groups[map[i]!]!.push(src[i]!);
  return { map, groups };
}

const norm: RefKernel<NormParams> = ([x], params) => {
  const { groups } = slices(x!.shape, params.dims, x!.data);
  return [Float64Array.from(groups, (s) => pNorm(s, params.p))];
};

/**
 * inputs (x, g): the gradient of the p-norm (recomputed in float64 from x). Where the norm is 0 the
 * gradient is 0 (PyTorch's subgradient); ±Infinity norms split the gradient evenly among the
 * elements attaining the extremum; p = 0 has a zero gradient.
 */
const normBackward: RefKernel<NormParams> = ([x, g], params) => {
  const src = x!.data;
  const G = g!.data;
  const p = params.p;
  const { map, groups } = slices(x!.shape, params.dims, src);
  const norms = groups.map((s) => pNorm(s, p));
  const ties = new Float64Array(norms.length);
  if (!Number.isFinite(p)) {
    for (let i = 0; i < src.length; i++) {
      const a = Math.abs(src[i]!);
      if (a === norms[map[i]!] || Number.isNaN(a)) ties[map[i]!]!++;
    }
  }
  const res = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const o = map[i]!;
    const v = src[i]!;
    const n = norms[o]!;
    const sgn = v > 0 ? 1 : v < 0 ? -1 : 0;
    let d: number;
    if (p === 0) d = 0;
    else if (!Number.isFinite(p)) {
      const a = Math.abs(v);
      d = a === n || Number.isNaN(a) ? sgn / ties[o]! : 0;
    } else if (p === 1) d = sgn;
    else if (n === 0 || v === 0) d = 0;
    else if (p === 2) d = v / n;
    else d = (sgn * Math.abs(v) ** (p - 1)) / n ** (p - 1);
    res[i] = G[o]! * d;
  }
  return [res];
};

export const extraKernels = {
  reciprocal: map1((x) => 1 / x),
  /** inputs (y = 1/x, g): -g y^2 */
  reciprocalBackward: map2((y, g) => -g * y * y),
  softplus: map1(softplus),
  /** inputs (x, g) */
  softplusBackward: map2((x, g, p) => g * softplusGrad(x, p)),
  atan2: map2((a, b) => Math.atan2(a, b)),
  /** inputs (a, b, g): g b / (a^2 + b^2) */
  atan2BackwardInput: map3((a, b, g) => (g * b) / (a * a + b * b)),
  /** inputs (a, b, g): -g a / (a^2 + b^2) */
  atan2BackwardOther: map3((a, b, g) => (-g * a) / (a * a + b * b)),
  addcmul: map3((x, t1, t2, p) => x + p.value * t1 * t2),
  addcdiv: map3((x, t1, t2, p) => x + (p.value * t1) / t2),
  /** inputs (the other factor t, g): g value t */
  addcmulBackward: map2((t, g, p) => g * p.value * t),
  /** inputs (t2, g): g value / t2 */
  addcdivBackwardNumerator: map2((t2, g, p) => (g * p.value) / t2),
  /** inputs (t1, t2, g): -g value t1 / t2^2 */
  addcdivBackwardDenominator: map3((t1, t2, g, p) => (-g * p.value * t1) / (t2 * t2)),
  prod,
  prodBackward,
  cumsum,
  norm,
  normBackward,
} satisfies RefKernels;
