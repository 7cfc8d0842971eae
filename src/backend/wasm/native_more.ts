/**
 * Native handlers of the small kernels around a training step (assembly/kernels/logical.ts,
 * softmax.ts, gather.ts and divBackwardDivisor in elementwise.ts): a classification loss
 * (logSoftmax, gather, scatterAdd, their backward, the ignore-index mask: ne, where) and the
 * GradScaler's finite check (isfinite, logicalNot, logicalOr), plus the rest of their families:
 *
 * - comparisons eq ne lt le gt ge and logicalAnd / logicalOr -> bool, isfinite, logicalNot: operands of
 *   one dtype (any of float32, float16, bfloat16, float64, int32, bool), the rows layout
 *   (native_rows.ts: contiguous, broadcast rows / channels, expanded scalars);
 * - neg, abs: float32 / float16 / bfloat16 (the sign bit) and int32, rows layout;
 * - where: any dtype (a bit copy), condition bool, rows layout;
 * - softmax, logSoftmax, softmaxBackward, logSoftmaxBackward: contiguous float32 / float16 /
 *   bfloat16, one format for every operand, any axis;
 * - gather, scatterAdd: contiguous, int32 indices, the index the data's size on every other axis
 *   (a loss's [N, 1] targets); out-of-range indices fall back (the reference throws the error);
 * - divBackwardDivisor: one float format, rows layout.
 *
 * Results are the reference kernels' bit for bit (NaN payloads aside; softmax up to the last bit
 * of float64 exp / log: see softmax.ts). Everything else returns false.
 */
import type { KernelTensor } from '../backend.js';
import { numel, sameShape } from '../../shape/strides.js';
import { contiguous, fmtOf, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { COST, minPerPart, rowsLayout, runRows, type Rows } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

/** The element-type suffix of the logical.ts kernels. */
const TYPE: Partial<Record<string, string>> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16', int32: 'i32', bool: 'u8', float64: 'f64' };
const typeOf = (t: KernelTensor): string | undefined => TYPE[t.dtype.name];

/** Operand pointer of a rows-layout piece: element offset `offset` along the row when the operand walks it. */
function at(ctx: NativeContext, t: KernelTensor, L: Rows, k: number, offset: number): number {
  return ctx.address(t) + offset * L.innerStride[k]! * t.dtype.itemsize;
}

/**
 * Run an elementwise kernel of the logical.ts convention over the rows layout:
 * `kernel(...lead, operand pointers..., out, r0, r1, n1, len, then each operand's outer strides and
 * inner stride)`. The caller has checked dtypes and that `o` is contiguous.
 */
function elementwiseRows(ctx: NativeContext, kernel: string, cost: number, operands: readonly KernelTensor[], o: KernelTensor, lead: readonly number[] = []): boolean {
  if (numel(o.shape) === 0) return true;
  if (operands.some((t) => unsafeAlias(t, o))) return false;
  const L = rowsLayout(o.shape, operands);
  if (!L) return false;
  const size = o.dtype.itemsize;
  // the argument lists built by push (packed in every V8 tier: src/shape/packed.ts)
  const strides: number[] = [];
  for (let k = 0; k < operands.length; k++) strides.push(L.outer[k]![0], L.outer[k]![1], L.innerStride[k]!);
  const po = ctx.address(o);
  runRows(ctx.pool, kernel, L, cost, (r0, r1, p) => {
    const args: number[] = [];
    for (let i = 0; i < lead.length; i++) args.push(lead[i]!);
    for (let k = 0; k < operands.length; k++) args.push(at(ctx, operands[k]!, L, k, p.offset));
    args.push(po + p.offset * size, r0, r1, L.n1, p.length);
    for (let i = 0; i < strides.length; i++) args.push(strides[i]!);
    return args;
  });
  return true;
}

/* ------------------------------------------------------------------ bool-valued */

const CMP_CODE = { eq: 0, ne: 1, lt: 2, le: 3, gt: 4, ge: 5, logicalAnd: 6, logicalOr: 7 } as const;

function compare(name: keyof typeof CMP_CODE): NativeKernel<typeof name> {
  const code = CMP_CODE[name];
  return (ctx, { 0: a, 1: b }, { 0: o }) => {
    if (!a || !b || !o || o.dtype.name !== 'bool' || a.dtype !== b.dtype || !contiguous(o)) return false;
    const t = typeOf(a);
    if (!t) return false;
    return elementwiseRows(ctx, `cmp_${t}`, COST.light, [a, b], o, [code]);
  };
}

/** isfinite (op 0) and logicalNot (op 1): any dtype -> bool. */
function test(op: number): NativeKernel {
  return (ctx, { 0: x }, { 0: o }) => {
    if (!x || !o || o.dtype.name !== 'bool' || !contiguous(o)) return false;
    const t = typeOf(x);
    if (!t) return false;
    return elementwiseRows(ctx, `test_${t}`, COST.light, [x], o, [op]);
  };
}

/* ------------------------------------------------------------------ neg, abs */

function signOp(op: number): NativeKernel {
  return (ctx, { 0: x }, { 0: o }) => {
    if (!x || !o || x.dtype !== o.dtype || !contiguous(o)) return false;
    const t = typeOf(x);
    if (t !== 'f32' && t !== 'f16' && t !== 'bf16' && t !== 'i32') return false;
    return elementwiseRows(ctx, `sign_${t}`, COST.bits, [x], o, [op]);
  };
}

/* ------------------------------------------------------------------ where, divBackwardDivisor */

const where: NativeKernel = (ctx, { 0: c, 1: a, 2: b }, { 0: o }) => {
  if (!c || !a || !b || !o || c.dtype.name !== 'bool' || a.dtype !== o.dtype || b.dtype !== o.dtype || !contiguous(o)) return false;
  return elementwiseRows(ctx, `where${o.dtype.itemsize * 8}`, COST.light, [c, a, b], o);
};

const divBackwardDivisor: NativeKernel = (ctx, { 0: a, 1: b, 2: g }, { 0: o }) => {
  if (!a || !b || !g || !o || a.dtype !== o.dtype || b.dtype !== o.dtype || g.dtype !== o.dtype || !contiguous(o)) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt) return false;
  return elementwiseRows(ctx, `divBackwardDivisor_${fmt}`, COST.half, [a, b, g], o);
};

/* ------------------------------------------------------------------ softmax */

/** [outer, n, inner] around axis `dim` (0 <= dim < rank), or null. */
function aroundAxis(shape: readonly number[], dim: unknown): [number, number, number] | null {
  // the ops normalise dims; anything else is left to the reference kernel
  if (typeof dim !== 'number' || !Number.isInteger(dim)) return null;
  const d = dim;
  if (shape.length === 0) return d === 0 ? [1, 1, 1] : null;
  if (d < 0 || d >= shape.length) return null;
  return [numel(shape.slice(0, d)), shape[d]!, numel(shape.slice(d + 1))];
}

/** Elements per thread of the exp-bound softmax kernels below which one thread runs the call. */
const MIN_SOFTMAX_ELEMENTS_PER_PART = 4096;


function softmaxLike(log: number): NativeKernel<'softmax' | 'logSoftmax'> {
  return (ctx, { 0: x }, { 0: o }, params) => {
    if (!x || !o || x.dtype !== o.dtype || !sameShape(x.shape, o.shape) || !contiguous(x) || !contiguous(o)) return false;
    const fmt = fmtOf(o.dtype);
    const g = aroundAxis(x.shape, params.dim);
    if (!fmt || !g) return false;
    const { 0: outer, 1: n, 2: inner } = g;
    if (outer * n * inner === 0) return true;
    if (unsafeAlias(x, o)) return false;
    const units = outer * inner;
    const parts = ctx.pool.split(units, Math.ceil(MIN_SOFTMAX_ELEMENTS_PER_PART / n));
    const px = ctx.address(x);
    const po = ctx.address(o);
    ctx.pool.run(`softmax_${fmt}`, mapPacked(parts, ({ 0: u0, 1: u1 }) => [log, px, po, u0, u1, n, inner]));
    return true;
  };
}

/** softmaxBackward / logSoftmaxBackward: inputs (y, g), the forward's output and the incoming gradient. */
function softmaxGrad(log: number): NativeKernel<'softmaxBackward' | 'logSoftmaxBackward'> {
  return (ctx, { 0: y, 1: g }, { 0: o }, params) => {
    if (!y || !g || !o || y.dtype !== o.dtype || g.dtype !== o.dtype) return false;
    if (!sameShape(y.shape, o.shape) || !sameShape(g.shape, o.shape) || !contiguous(y) || !contiguous(g) || !contiguous(o)) return false;
    const fmt = fmtOf(o.dtype);
    const geo = aroundAxis(y.shape, params.dim);
    if (!fmt || !geo) return false;
    const { 0: outer, 1: n, 2: inner } = geo;
    if (outer * n * inner === 0) return true;
    if (unsafeAlias(y, o) || unsafeAlias(g, o)) return false;
    const parts = ctx.pool.split(outer * inner, Math.ceil(MIN_SOFTMAX_ELEMENTS_PER_PART / n));
    const py = ctx.address(y);
    const pg = ctx.address(g);
    const po = ctx.address(o);
    ctx.pool.run(`softmax_grad_${fmt}`, mapPacked(parts, ({ 0: u0, 1: u1 }) => [log, py, pg, po, u0, u1, n, inner]));
    return true;
  };
}

/* ------------------------------------------------------------------ gather, scatterAdd */

/**
 * [outer, n, K, inner] of a gather / scatter along `dim`: `data` the gathered-from / scattered-into
 * shape, `index` the index shape (equal to data on every other axis); null otherwise.
 */
function indexGeometry(data: readonly number[], index: readonly number[], dim: unknown): [number, number, number, number] | null {
  if (typeof dim !== 'number' || !Number.isInteger(dim) || data.length !== index.length || data.length === 0) return null;
  const d = dim;
  if (d < 0 || d >= data.length) return null;
  for (let j = 0; j < data.length; j++) if (j !== d && data[j] !== index[j]) return null;
  return [numel(index.slice(0, d)), data[d]!, index[d]!, numel(index.slice(d + 1))];
}

/** Whether every index is within [-n, n) (a scan on the calling thread). */
function indicesValid(ctx: NativeContext, index: KernelTensor, count: number, n: number): boolean {
  return (ctx.pool.call('index_check', ctx.address(index), count, n) as number) === 0;
}

const gather: NativeKernel<'gather'> = (ctx, { 0: x, 1: index }, { 0: o }, params) => {
  if (!x || !index || !o || index.dtype.name !== 'int32' || x.dtype !== o.dtype || !sameShape(o.shape, index.shape)) return false;
  if (!contiguous(x) || !contiguous(index) || !contiguous(o)) return false;
  const geo = indexGeometry(x.shape, index.shape, params.dim);
  if (!geo) return false;
  const { 0: outer, 1: n, 2: K, 3: inner } = geo;
  const count = outer * K * inner;
  if (count === 0) return true;
  if (unsafeAlias(x, o) || unsafeAlias(index, o)) return false;
  if (!indicesValid(ctx, index, count, n)) return false;
  const px = ctx.address(x);
  const pi = ctx.address(index);
  const po = ctx.address(o);
  const parts = ctx.pool.split(outer, Math.ceil(minPerPart(COST.light) / (K * inner)));
  ctx.pool.run(`take${o.dtype.itemsize * 8}`, mapPacked(parts, ({ 0: r0, 1: r1 }) => [px, pi, po, r0, r1, n, K, inner]));
  return true;
};

/** scatterAdd (src, index) -> zeros of the output's shape with src added at the indexed places. */
const scatterAdd: NativeKernel<'scatterAdd'> = (ctx, { 0: src, 1: index }, { 0: o }, params) => {
  if (!src || !index || !o || index.dtype.name !== 'int32' || src.dtype !== o.dtype || !sameShape(src.shape, index.shape)) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt || !contiguous(src) || !contiguous(index) || !contiguous(o)) return false;
  const geo = indexGeometry(o.shape, index.shape, params.dim);
  if (!geo) return false;
  const { 0: outer, 1: n, 2: K, 3: inner } = geo;
  if (outer * n * inner === 0) return true;
  if (unsafeAlias(src, o) || unsafeAlias(index, o)) return false;
  const count = outer * K * inner;
  if (count > 0 && !indicesValid(ctx, index, count, n)) return false;
  const rowBytes = n * inner * 8;
  if (rowBytes > 1 << 26) return false; // a float64 row buffer per thread
  const parts = ctx.pool.split(outer, Math.ceil(minPerPart(COST.cast) / Math.max(1, (K + n) * inner)));
  const ps = ctx.address(src);
  const pi = ctx.address(index);
  const po = ctx.address(o);
  ctx.heap.withScratch(parts.length * rowBytes, (scratch) => {
    ctx.pool.run(`scatter_add_${fmt}`, mapPacked(parts, ({ 0: r0, 1: r1 }, i) => [ps, pi, po, r0, r1, n, K, inner, scratch + i * rowBytes]));
  });
  return true;
};

/** The handlers of this file by kernel name (merged into NATIVE_KERNELS by native.ts). */
export const MORE_KERNELS = {
  eq: compare('eq'),
  ne: compare('ne'),
  lt: compare('lt'),
  le: compare('le'),
  gt: compare('gt'),
  ge: compare('ge'),
  logicalAnd: compare('logicalAnd'),
  logicalOr: compare('logicalOr'),
  isfinite: test(0),
  logicalNot: test(1),
  neg: signOp(0),
  abs: signOp(1),
  where,
  divBackwardDivisor,
  softmax: softmaxLike(0),
  logSoftmax: softmaxLike(1),
  softmaxBackward: softmaxGrad(0),
  logSoftmaxBackward: softmaxGrad(1),
  gather,
  scatterAdd,
} satisfies NativeKernels;
