/**
 * Elementwise kernels from one table: each op is a float32 WGSL expression over its inputs
 * `x0, x1, x2` and scalar params `P0, P1, ...` (read from the metadata). The generated kernel
 * walks any strided views (one thread per output element), loads every input as float32, and
 * rounds the result once into the output's format. `copy` and `fill` of same-format data move
 * raw bits (exact for every dtype, NaN payloads included); `where` selects raw bits too.
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelName, KernelParams } from '../../kernels.js';
import { encoderFor } from '../../reference/codec.js';
import { bind, collapse, entry, groups1d, makeDispatch, Meta, numel, shader, stridedOffsets, tensorOperand, type KernelContext } from './common.js';

interface OpDef<K extends KernelName = KernelName> {
  arity: number;
  /** WGSL expression; x0.. are the inputs, P0.. the params */
  expr: string | ((p: KernelParams<K>) => string);
  /** scalar params in order (float32) */
  params?: (p: KernelParams<K>) => number[];
  /** part of the pipeline key when the expression depends on params */
  variant?: (p: KernelParams<K>) => string;
}

const un = (expr: string): OpDef => ({ arity: 1, expr });
const bin = (expr: string): OpDef => ({ arity: 2, expr });
const ter = (expr: string): OpDef => ({ arity: 3, expr });

/** The kernels of the expression table, by name (typed against the contract). */
export const ELEMENTWISE_OPS = {
  copy: un('x0'),
  neg: un('-x0'),
  abs: un('abs(x0)'),
  sign: un('select(select(x0, -1.0, x0 < 0.0), 1.0, x0 > 0.0)'),
  exp: un('exp_(x0)'),
  log: un('log_(x0)'),
  log1p: un('log1p_(x0)'),
  sqrt: un('select(sqrt(x0), nan_f32(), x0 < 0.0)'),
  rsqrt: un('1.0 / sqrt(x0)'),
  tanh: un('tanh_(x0)'),
  sigmoid: un('sigmoid_(x0)'),
  relu: un('select(0.0, x0, x0 > 0.0 || is_nan(x0))'),
  leakyRelu: { arity: 1, expr: 'select(x0 * P0, x0, x0 > 0.0)', params: (p) => [p.negativeSlope] },
  gelu: { arity: 1, expr: (p) => (p.approximate === 'tanh' ? 'gelu_tanh(x0)' : 'gelu_erf(x0)'), variant: (p) => String(p.approximate) },
  clamp: {
    arity: 1,
    expr: (p) => {
      let e = 'x0';
      if (p.min !== null && p.min !== undefined) e = `select(${e}, P0, ${e} < P0)`;
      if (p.max !== null && p.max !== undefined) e = `select(${e}, P1, ${e} > P1)`;
      return `select(${e}, x0, is_nan(x0))`;
    },
    params: (p) => [p.min ?? 0, p.max ?? 0],
    variant: (p) => `${p.min === null || p.min === undefined ? 'n' : 'm'}${p.max === null || p.max === undefined ? 'n' : 'm'}`,
  },
  logicalNot: un('b2f(!nonzero(x0))'),
  isfinite: un('b2f(is_finite(x0))'),
  add: bin('x0 + x1'),
  sub: bin('x0 - x1'),
  mul: bin('x0 * x1'),
  div: bin('x0 / x1'),
  pow: bin('pow_(x0, x1)'),
  maximum: bin('max_nan(x0, x1)'),
  minimum: bin('min_nan(x0, x1)'),
  eq: bin('b2f(x0 == x1)'),
  ne: bin('b2f(!(x0 == x1))'),
  lt: bin('b2f(x0 < x1)'),
  le: bin('b2f(x0 <= x1)'),
  gt: bin('b2f(x0 > x1)'),
  ge: bin('b2f(x0 >= x1)'),
  logicalAnd: bin('b2f(nonzero(x0) && nonzero(x1))'),
  logicalOr: bin('b2f(nonzero(x0) || nonzero(x1))'),
  geluBackward: { arity: 2, expr: (p) => (p['approximate'] === 'tanh' ? 'x1 * gelu_grad_tanh(x0)' : 'x1 * gelu_grad_erf(x0)'), variant: (p) => String(p['approximate']) },
  tanhBackward: bin('x1 * (1.0 - tanh_(x0) * tanh_(x0))'),
  sigmoidBackward: bin('x1 * sigmoid_(x0) * sigmoid_(-x0)'),
  reluBackward: bin('select(0.0, x1, x0 > 0.0)'),
  leakyReluBackward: { arity: 2, expr: 'select(x1 * P0, x1, x0 > 0.0)', params: (p) => [p.negativeSlope] },
  log1pBackward: bin('x1 / (1.0 + x0)'),
  sqrtBackward: bin('x1 / (2.0 * x0)'),
  rsqrtBackward: bin('-0.5 * x1 * pow_(x0, -1.5)'),
  clampBackward: {
    arity: 2,
    expr: (p) => {
      const conds: string[] = [];
      if (p['min'] !== null && p['min'] !== undefined) conds.push('x0 >= P0');
      if (p['max'] !== null && p['max'] !== undefined) conds.push('x0 <= P1');
      return conds.length ? `select(0.0, x1, ${conds.join(' && ')})` : 'x1';
    },
    params: (p) => [(p['min'] as number | null) ?? 0, (p['max'] as number | null) ?? 0],
    variant: (p) => `${p['min'] === null || p['min'] === undefined ? 'n' : 'm'}${p['max'] === null || p['max'] === undefined ? 'n' : 'm'}`,
  },
  powBackwardBase: ter('select(x2 * x1 * pow_(x0, x1 - 1.0), 0.0, x1 == 0.0)'),
  powBackwardExponent: ter('select(x2 * pow_(x0, x1) * log_(x0), 0.0, x0 == 0.0 && x1 >= 0.0)'),
  divBackwardDivisor: ter('(-x2 * x0) / (x1 * x1)'),
  maximumBackward: ter('select(select(0.0, x2 / 2.0, x0 == x1), x2, x0 > x1)'),
  minimumBackward: ter('select(select(0.0, x2 / 2.0, x0 == x1), x2, x0 < x1)'),
  reciprocal: un('1.0 / x0'),
  reciprocalBackward: bin('-x1 * x0 * x0'),
  softplus: { arity: 1, expr: 'softplus_(x0, P0, P1)', params: (p) => [p.beta, p.threshold] },
  softplusBackward: { arity: 2, expr: 'x1 * softplus_grad(x0, P0, P1)', params: (p) => [p.beta, p.threshold] },
  atan2: bin('atan2_(x0, x1)'),
  atan2BackwardInput: ter('(x2 * x1) / (x0 * x0 + x1 * x1)'),
  atan2BackwardOther: ter('(-x2 * x0) / (x0 * x0 + x1 * x1)'),
  addcmul: { arity: 3, expr: 'x0 + P0 * x1 * x2', params: (p) => [p.value] },
  addcdiv: { arity: 3, expr: 'x0 + (P0 * x1) / x2', params: (p) => [p.value] },
  addcmulBackward: { arity: 2, expr: 'x1 * P0 * x0', params: (p) => [p.value] },
  addcdivBackwardNumerator: { arity: 2, expr: '(x1 * P0) / x0', params: (p) => [p.value] },
  addcdivBackwardDenominator: { arity: 3, expr: '(-x2 * P0 * x0) / (x1 * x1)', params: (p) => [p.value] },
} satisfies { [K in KernelName]?: OpDef<K> };

/**
 * Encode one elementwise dispatch. `raw`: move bits (copy/where between identical formats).
 * `body(xs, o)` returns the WGSL statement storing into the output.
 */
function encodeMap(
  ctx: KernelContext,
  key: string,
  inputs: readonly KernelTensor[],
  out: KernelTensor,
  store: (names: string[]) => string,
  scalars: number[],
  extraMeta?: (m: Meta) => void,
): void {
  const all = [...inputs, out];
  const { shape, strides } = collapse(out.shape, all.map((t) => t.strides));
  const rank = shape.length;
  const n = numel(out.shape);
  const bound = bind(ctx, [...inputs.map((t) => tensorOperand(t)), tensorOperand(out, true)]);
  const T = all.length;
  // meta: n, shape[rank], per operand: offset, strides[rank], then scalars (and extras)
  const meta = new Meta().i(n).ints(shape);
  all.forEach((t, i) => meta.i(t.offset).ints(strides[i]!));
  const paramAt = meta.length;
  for (const s of scalars) meta.f(s);
  extraMeta?.(meta);
  const shapeAt = 1;
  const offsetAt = (t: number) => 1 + rank + t * (1 + rank);
  const strideAt = (t: number, d: number) => offsetAt(t) + 1 + d;
  const code = () => {
    let stmt = store(bound.names);
    stmt = stmt.replace(/P(\d+)/g, (_, i) => `mf(${paramAt + Number(i)}u)`).replace(/U(\d+)/g, (_, i) => `mt[${paramAt + Number(i)}u]`);
    return shader(
      ctx,
      bound.decls,
      entry() +
        `  if (gid >= mi(0u)) { return; }\n` +
        stridedOffsets(rank, T, 'gid', shapeAt, offsetAt, strideAt) +
        `\n  ${stmt}\n}\n`,
    );
  };
  ctx.sched.dispatch(makeDispatch(`${key}|r${rank}`, code, bound, meta, groups1d(n)));
}

/** The kernels runElementwise serves: the expression table, `where` and `fill`. */
export type ElementwiseKernel = keyof typeof ELEMENTWISE_OPS | 'where' | 'fill';

export function runElementwise(ctx: KernelContext, kernel: ElementwiseKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<ElementwiseKernel>): void {
  const out = outputs[0]!;
  if (numel(out.shape) === 0) return;
  if (kernel === 'fill') {
    // the storage bits of the value, computed on the host exactly as the reference rounds it
    const st = new out.dtype.storage(4);
    st[0] = encoderFor(out.dtype)((params as KernelParams<'fill'>).value);
    const bits = new Uint32Array(st.buffer, 0, 1)[0]!;
    const mask = out.dtype.itemsize === 1 ? 0xff : out.dtype.itemsize === 2 ? 0xffff : 0xffffffff;
    encodeMap(ctx, 'fill', [], out, (nm) => `str_${nm[0]}(o0, U0);`, [], (m) => m.u((bits & mask) >>> 0));
    return;
  }
  if (kernel === 'where') {
    const [c, a, b] = inputs as [KernelTensor, KernelTensor, KernelTensor];
    const raw = a.dtype === out.dtype && b.dtype === out.dtype;
    encodeMap(ctx, `where${raw ? 'R' : ''}`, [c, a, b], out, (nm) =>
      raw
        ? `str_${nm[3]}(o3, select(ldr_${nm[2]}(o2), ldr_${nm[1]}(o1), nonzero(ld_${nm[0]}(o0))));`
        : `st_${nm[3]}(o3, select(ld_${nm[2]}(o2), ld_${nm[1]}(o1), nonzero(ld_${nm[0]}(o0))));`,
    [],
    );
    return;
  }
  const op = ELEMENTWISE_OPS[kernel] as OpDef;
  if (kernel === 'copy' && inputs[0]!.dtype === out.dtype) {
    encodeMap(ctx, 'copyR', inputs, out, (nm) => `str_${nm[1]}(o1, ldr_${nm[0]}(o0));`, []);
    return;
  }
  const expr = typeof op.expr === 'string' ? op.expr : op.expr(params);
  const variant = op.variant ? op.variant(params) : '';
  const scalars = op.params ? op.params(params) : [];
  const k = inputs.length;
  encodeMap(ctx, `ew:${kernel}:${variant}`, inputs, out, (nm) => {
    const loads = inputs.map((_, i) => `let x${i} = ld_${nm[i]}(o${i});`).join(' ');
    return `${loads} st_${nm[k]}(o${k}, ${expr});`;
  }, scalars);
}
