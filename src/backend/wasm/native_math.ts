/**
 * Native handlers of what a transformer's step needs beyond the LSTM's and the CNNs' kernels
 * (assembly/kernels/math_more.ts): gelu and geluBackward (exact 16-bit GELU by a per-format table,
 * gelu16.ts), reciprocal, clamp and pow (gradient
 * clipping's scalars), and the embedding's indexSelect (row copies) and indexAdd (its gradient:
 * rows summed in float64 in index order, each thread owning a range of output rows). Float32,
 * float16, bfloat16; operands of the output's format (pow's exponent: a tensor or one broadcast
 * value); strided inputs are gathered first. indexSelect copies rows of any dtype. Out-of-range
 * indices go to the reference kernel, which reports them.
 */
import type { KernelTensor } from '../backend.js';
import type { ClampParams, DimParams, GeluParams } from '../kernels.js';
import { numel } from '../../shape/strides.js';
import { contiguous, fmtOf, isScalar, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { withContiguousOperands } from './native_gather.js';
import { elementParts } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

/** Relative cost per element (native_rows.ts COST): erf's series runs up to ~40 terms. */
const GELU_COST = 40;
const MATH_COST = 8;
const OP = { reciprocal: 0, clamp: 1 } as const;

/**
 * Operands of the output's format, contiguous (gathered first when strided): `run(pointers, n)`
 * with their addresses; false for another case.
 */
function elementwise(ctx: NativeContext, operands: readonly KernelTensor[], o: KernelTensor, run: (fmt: string, pointers: number[], n: number) => void): boolean {
  const fmt = fmtOf(o.dtype);
  if (!fmt || !contiguous(o) || operands.some((t) => t.dtype !== o.dtype || unsafeAlias(t, o))) return false;
  if (!operands.every(contiguous)) return withContiguousOperands(ctx, operands, o.shape, (xs) => elementwise(ctx, xs, o, run), contiguous);
  run(fmt, [...operands.map((t) => ctx.address(t)), ctx.address(o)], numel(o.shape));
  return true;
}

/** `kernel(lead..., p_1 + u0, ..., p_k + u0, u1 - u0, ...tail)` over element parts of the pointers. */
function byParts(ctx: NativeContext, kernel: string, itemsize: number, pointers: readonly number[], n: number, cost: number, lead: readonly number[], tail: readonly number[] = []): void {
  ctx.pool.run(kernel, mapPacked(elementParts(ctx.pool, n, cost), ({ 0: u0, 1: u1 }) => [...lead, ...pointers.map((p) => p + u0 * itemsize), u1 - u0, ...tail]));
}

/** Relative cost per element of a table lookup (exact 16-bit GELU). */
const LUT_COST = 4;
/** Bytes of an exact-GELU table (assembly/kernels/gelu16.ts): u16 results, then f32 gradients. */
const GELU_TABLE_BYTES = 65536 * 6;

/**
 * The exact-GELU table of a 16-bit format on this heap, built on first use (~65536 float64 erf
 * evaluations, once) and kept for the heap's life: a constant, not a tensor or a scratch block.
 */
const geluTables = new WeakMap<object, Map<string, number>>();
function geluTable(ctx: NativeContext, fmt: string): number {
  let byFmt = geluTables.get(ctx.heap);
  if (!byFmt) geluTables.set(ctx.heap, (byFmt = new Map()));
  let addr = byFmt.get(fmt);
  if (addr === undefined) {
    addr = ctx.heap.alloc(GELU_TABLE_BYTES);
    ctx.pool.call(`gelu_table_${fmt}`, addr);
    byFmt.set(fmt, addr);
  }
  return addr;
}

const isExact16 = (fmt: string, p: GeluParams) => p.approximate !== 'tanh' && (fmt === 'f16' || fmt === 'bf16');

const gelu: NativeKernel<'gelu'> = (ctx, { 0: x }, { 0: o }, p: GeluParams) =>
  !!x && !!o && elementwise(ctx, [x], o, (fmt, ptrs, n) => {
    if (isExact16(fmt, p)) byParts(ctx, 'gelu_lut16', o.dtype.itemsize, ptrs, n, LUT_COST, [geluTable(ctx, fmt)]);
    else byParts(ctx, `gelu_${fmt}`, o.dtype.itemsize, ptrs, n, GELU_COST, [p.approximate === 'tanh' ? 1 : 0]);
  });

const geluBackward: NativeKernel<'geluBackward'> = (ctx, { 0: x, 1: g }, { 0: o }, p: GeluParams) =>
  !!x && !!g && !!o && elementwise(ctx, [x, g], o, (fmt, ptrs, n) => {
    if (isExact16(fmt, p)) byParts(ctx, `gelu_grad_lut_${fmt}`, o.dtype.itemsize, ptrs, n, LUT_COST, [geluTable(ctx, fmt)]);
    else byParts(ctx, `gelu_grad_${fmt}`, o.dtype.itemsize, ptrs, n, GELU_COST, [p.approximate === 'tanh' ? 1 : 0]);
  });

const reciprocal: NativeKernel<'reciprocal'> = (ctx, { 0: x }, { 0: o }) =>
  !!x && !!o && elementwise(ctx, [x], o, (fmt, ptrs, n) => byParts(ctx, `unary_math_${fmt}`, o.dtype.itemsize, ptrs, n, MATH_COST, [OP.reciprocal], [NaN, NaN]));

const clamp: NativeKernel<'clamp'> = (ctx, { 0: x }, { 0: o }, p: ClampParams) =>
  !!x && !!o && elementwise(ctx, [x], o, (fmt, ptrs, n) => byParts(ctx, `unary_math_${fmt}`, o.dtype.itemsize, ptrs, n, MATH_COST, [OP.clamp], [p.min ?? NaN, p.max ?? NaN]));

/** a^b; b a tensor like a, or one value broadcast (of any float format: a 16-bit a's float32 exponent). */
const pow: NativeKernel<'pow'> = (ctx, { 0: a, 1: b }, { 0: o }) => {
  if (!a || !b || !o || !fmtOf(b.dtype)) return false;
  if (isScalar(b) && (numel(o.shape) > 1 || b.dtype !== o.dtype)) {
    const e = ctx.readScalar(b);
    return elementwise(ctx, [a], o, (fmt, ptrs, n) => byParts(ctx, `pow_scalar_${fmt}`, o.dtype.itemsize, ptrs, n, MATH_COST, [], [e]));
  }
  return elementwise(ctx, [a, b], o, (fmt, ptrs, n) => byParts(ctx, `pow_${fmt}`, o.dtype.itemsize, ptrs, n, MATH_COST, []));
};

/** The int32 indices of a contiguous index tensor, if every one is within [-size, size). */
function indices(ctx: NativeContext, index: KernelTensor, size: number): Int32Array | null {
  if (index.dtype.name !== 'int32' || !contiguous(index)) return null;
  const at = ctx.address(index) >> 2;
  const idx = ctx.heap.views().i32.subarray(at, at + numel(index.shape));
  for (const v of idx) if (v < -size || v >= size) return null;
  return idx;
}

/** [outer, n, inner] around `dim`. */
function around(shape: readonly number[], dim: number): [number, number, number] {
  return [numel(shape.slice(0, dim)), shape[dim]!, numel(shape.slice(dim + 1))];
}

/** Row copies made on the calling thread at most before leaving a selection to the reference. */
const MAX_ROW_COPIES = 1 << 20;

const indexSelect: NativeKernel<'indexSelect'> = (ctx, { 0: x, 1: index }, { 0: o }, p: DimParams) => {
  if (!x || !index || !o || x.dtype !== o.dtype || !contiguous(x) || !contiguous(o) || unsafeAlias(x, o)) return false;
  const { 0: outer, 1: n, 2: inner } = around(x.shape, p.dim);
  const idx = indices(ctx, index, n);
  if (!idx || outer * idx.length > MAX_ROW_COPIES) return false;
  const size = x.dtype.itemsize;
  const { 0: px, 1: po } = [ctx.address(x), ctx.address(o)];
  const u8 = ctx.heap.views().u8;
  const row = inner * size;
  for (let r = 0; r < outer; r++) {
    for (let k = 0; k < idx.length; k++) {
      const src = px + ((r * n + (idx[k]! < 0 ? idx[k]! + n : idx[k]!)) * inner) * size;
      u8.copyWithin(po + (r * idx.length + k) * row, src, src + row);
    }
  }
  return true;
};

const INDEX_ADD_ACC = 'index-add-acc';

const indexAdd: NativeKernel<'indexAdd'> = (ctx, { 0: src, 1: index }, { 0: o }, p: DimParams) => {
  if (!src || !index || !o || src.dtype !== o.dtype || !contiguous(src) || !contiguous(o) || unsafeAlias(src, o)) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt) return false;
  const { 0: outer, 1: n, 2: inner } = around(o.shape, p.dim);
  const idx = indices(ctx, index, n);
  if (!idx) return false;
  const m = idx.length;
  // float64 sums of every output row of one outer slice, each part owning a range of rows
  const acc = ctx.heap.cachedBlock(INDEX_ADD_ACC, Math.max(8, n * inner * 8));
  const parts = ctx.pool.split(n, Math.ceil((1 << 16) / Math.max(1, (m * inner) / n)));
  const { 0: ps, 1: pi, 2: po } = [ctx.address(src), ctx.address(index), ctx.address(o)];
  ctx.pool.run(`index_add_${fmt}`, mapPacked(parts, ({ 0: r0, 1: r1 }) => [ps, pi, po, outer, m, n, inner, r0, r1, acc + r0 * inner * 8]));
  return true;
};

export const MATH_KERNELS = { gelu, geluBackward, reciprocal, clamp, pow, indexSelect, indexAdd } satisfies NativeKernels;
