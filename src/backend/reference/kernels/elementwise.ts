/** Elementwise kernels: every input already has the output's shape (the op layer broadcasts). */
import type { KernelName, KernelParams, NoParams, FillParams } from '../../kernels.js';
import { kernelsOf, type RefKernel, type RefKernels } from './types.js';
import { gelu, geluGrad } from './math.js';

type Unary<P> = (x: number, params: P) => number;
type Binary<P> = (a: number, b: number, params: P) => number;
type Ternary<P> = (a: number, b: number, c: number, params: P) => number;
/** Scalar functions by kernel name, each taking its kernel's params. */
type ScalarTable<F extends 'unary' | 'binary' | 'ternary'> = {
  [K in KernelName]?: { unary: Unary<KernelParams<K>>; binary: Binary<KernelParams<K>>; ternary: Ternary<KernelParams<K>> }[F];
};

const UNARY = {
  copy: (x) => x,
  neg: (x) => -x,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x), // keeps ±0 and NaN
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => (x > 0 || Number.isNaN(x) ? x : 0),
  leakyRelu: (x, p) => (x > 0 ? x : x * p.negativeSlope),
  gelu: (x, p) => gelu(x, p.approximate),
  clamp: (x, p) => {
    if (Number.isNaN(x)) return x;
    if (p.min !== null && x < p.min) x = p.min;
    if (p.max !== null && x > p.max) x = p.max;
    return x;
  },
  logicalNot: (x) => (x === 0 ? 1 : 0),
  isfinite: (x) => (Number.isFinite(x) ? 1 : 0),
} satisfies ScalarTable<'unary'>;

const BINARY = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  minimum: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  logicalAnd: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  logicalOr: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
} satisfies ScalarTable<'binary'>;

/**
 * Fused backward rules (saved value, incoming gradient) -> input gradient, so that a 16-bit
 * backward computes in float32 and rounds once. tanh, sigmoid and rsqrt recompute from the input:
 * their 16-bit outputs are too coarse to differentiate from (tanh(x) rounds to 1 long before its
 * gradient is negligible).
 */
const GRAD_BINARY = {
  geluBackward: (x, g, p) => g * geluGrad(x, p.approximate),
  tanhBackward: (x, g) => {
    const y = Math.tanh(x);
    return g * (1 - y * y);
  },
  sigmoidBackward: (x, g) => {
    const y = 1 / (1 + Math.exp(-x));
    return g * y * (1 - y);
  },
  reluBackward: (x, g) => (x > 0 ? g : 0),
  leakyReluBackward: (x, g, p) => (x > 0 ? g : g * p.negativeSlope),
  log1pBackward: (x, g) => g / (1 + x),
  sqrtBackward: (y, g) => g / (2 * y),
  rsqrtBackward: (x, g) => -0.5 * g * Math.pow(x, -1.5),
  clampBackward: (x, g, p) => ((p.min === null || x >= p.min) && (p.max === null || x <= p.max) ? g : 0),
} satisfies ScalarTable<'binary'>;

/** (a, b, incoming gradient) -> gradient of one operand of a binary op. */
const GRAD_TERNARY = {
  powBackwardBase: (a, b, g) => (b === 0 ? 0 : g * b * Math.pow(a, b - 1)),
  powBackwardExponent: (a, b, g) => (a === 0 && b >= 0 ? 0 : g * Math.pow(a, b) * Math.log(a)),
  divBackwardDivisor: (a, b, g) => (-g * a) / (b * b),
  /** gradient reaching `a` of maximum(a, b): all of it where a wins, half on ties */
  maximumBackward: (a, b, g) => (a > b ? g : a === b ? g / 2 : 0),
  minimumBackward: (a, b, g) => (a < b ? g : a === b ? g / 2 : 0),
} satisfies ScalarTable<'ternary'>;

function ternaryKernel<P>(f: Ternary<P>): RefKernel<P> {
  return ([a, b, c], params) => {
    const x = a!.data;
    const y = b!.data;
    const z = c!.data;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, y[i]!, z[i]!, params);
    return [out];
  };
}

function unaryKernel<P>(f: Unary<P>): RefKernel<P> {
  return ([x], params) => {
    const src = x!.data;
    const out = new Float64Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f(src[i]!, params);
    return [out];
  };
}

function binaryKernel<P>(f: Binary<P>): RefKernel<P> {
  return ([a, b], params) => {
    const x = a!.data;
    const y = b!.data;
    const out = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]!, y[i]!, params);
    return [out];
  };
}

const where: RefKernel<NoParams> = ([c, a, b]) => {
  const cond = c!.data;
  const x = a!.data;
  const y = b!.data;
  const out = new Float64Array(cond.length);
  for (let i = 0; i < cond.length; i++) out[i] = cond[i] !== 0 ? x[i]! : y[i]!;
  return [out];
};

/** Fills its output with one value (used for zeros/ones/full without a host copy). */
const fill: RefKernel<FillParams> = (_inputs, params, [out]) => {
  let n = 1;
  for (const d of out!.shape) n *= d;
  return [new Float64Array(n).fill(params.value)];
};

export const elementwiseKernels = {
  where,
  fill,
  ...kernelsOf(UNARY, unaryKernel),
  ...kernelsOf(BINARY, binaryKernel),
  ...kernelsOf(GRAD_BINARY, binaryKernel),
  ...kernelsOf(GRAD_TERNARY, ternaryKernel),
} satisfies RefKernels;
