/**
 * The "rows" layout of the wasm backend's elementwise kernels, and how calls are split into
 * thread parts (shared by native.ts and native_more.ts).
 *
 * A kernel's output is contiguous [rows, inner]; row r is (i0, i1) = (r / n1, r % n1) over at most
 * two outer dimensions, each operand having outer strides (s0, s1) and an inner stride 0
 * (broadcast along the row) or 1. Any view that collapses (layout.ts `collapse`) to at most three
 * dimensions with inner strides 0 or 1 fits: contiguous tensors, a bias broadcast over rows or
 * channels, expanded scalars, the last axis of a transposed matrix's rows, ...
 */
import type { KernelTensor } from '../backend.js';
import { collapseDims, contiguousStrides, numel, sameShape } from '../../shape/strides.js';
import { mapPacked } from '../../shape/packed.js';
import { contiguous } from './layout.js';
import type { KernelPool } from './pool.js';

/**
 * Elements per thread part of a kernel costing about 0.4 ns per element on one thread (a float32 ->
 * float16 cast; other kernels scale it by their relative cost, `elementParts(pool, n, cost)`): ~50 us
 * of work. A part on another thread costs its dispatch: about a microsecond while the worker still
 * spins, 20-50 us once it has gone to sleep (the pool's workers spin ~20 us after a kernel, and a
 * training step's kernels are often further apart), so cheaper calls run on the calling thread.
 */
export const MIN_ELEMENTS_PER_PART = 131072;

/**
 * Relative per-element costs of the elementwise kernels (1: a float32 -> float16 cast, ~0.4 ns per
 * element on one thread), measured on the LeNet sizes.
 */
export const COST = {
  /** Bit operations on 16-bit data: relu, reluBackward, fill, sign ops, comparisons of bits. */
  bits: 0.25,
  /** float32 relu / reluBackward, bfloat16 <-> float32, copies. */
  light: 0.5,
  /** Casts and arithmetic with one float16 conversion per element. */
  cast: 1,
  /** Binary arithmetic on float16 (two widenings and a narrowing per element). */
  half: 3,
} as const;

export interface Rows {
  rows: number;
  n1: number;
  inner: number;
  /** Per operand: the outer strides (s0, s1). */
  outer: [number, number][];
  /** Per operand: the stride along the row, 0 or 1. */
  innerStride: number[];
}

/** A single row of `inner` elements: every operand at outer strides (0, 0) and inner stride `stride`. */
function oneRow(inner: number, operands: number, stride: number): Rows {
  const outer: [number, number][] = [];
  const innerStride: number[] = [];
  for (let k = 0; k < operands; k++) {
    outer.push([0, 0]);
    innerStride.push(stride);
  }
  return { rows: 1, n1: 1, inner, outer, innerStride };
}

/**
 * The rows layout of `shape` (contiguous output) over the operands, or null (more dimensions, other
 * inner strides). Plain loops and one object layout: it runs on every elementwise call, and its
 * arrays stay packed in every V8 tier (src/shape/packed.ts).
 */
export function rowsLayout(shape: readonly number[], operands: readonly KernelTensor[]): Rows | null {
  // the common cases without collapsing (small calls: the handler's overhead is most of their time)
  const n = numel(shape);
  const m = operands.length;
  if (n <= 1) return oneRow(n, m, 0);
  let flat = true;
  for (let k = 0; flat && k < m; k++) flat = contiguous(operands[k]!) && sameShape(operands[k]!.shape, shape);
  if (flat) return oneRow(n, m, 1);
  const list: (readonly number[])[] = [contiguousStrides(shape)];
  for (let k = 0; k < m; k++) list.push(operands[k]!.strides);
  const c = collapseDims(shape, list);
  const dims = c.shape;
  const r = dims.length;
  if (r > 3) return null;
  // r = 0: every dimension has size 1 (a single element, n <= 1 above); kept for completeness
  const inner = r === 0 ? 1 : dims[r - 1]!;
  const outer: [number, number][] = [];
  const innerStride: number[] = [];
  for (let k = 0; k < m; k++) {
    const s = c.strides[k + 1]!;
    const is = r === 0 ? 0 : s[r - 1]!;
    if (is !== 0 && is !== 1) return null;
    innerStride.push(is);
    outer.push(r === 3 ? [s[0]!, s[1]!] : r === 2 ? [s[0]!, 0] : [0, 0]);
  }
  const rows = r === 3 ? dims[0]! * dims[1]! : r === 2 ? dims[0]! : 1;
  return { rows, n1: r === 3 ? dims[1]! : 1, inner, outer, innerStride };
}

/** Elements per part for a kernel of relative `cost` per element. */
export function minPerPart(cost: number): number {
  return Math.ceil(MIN_ELEMENTS_PER_PART / cost);
}

/** Parts splitting n contiguous elements (boundaries at multiples of 16 elements). */
export function elementParts(pool: KernelPool, n: number, cost = 1): [number, number][] {
  return pool.split(n, minPerPart(cost), 16);
}

/** Parts splitting the rows of a layout. */
export function rowParts(pool: KernelPool, L: Rows, cost = 1): [number, number][] {
  return pool.split(L.rows, Math.ceil(minPerPart(cost) / Math.max(1, L.inner)));
}

/**
 * A rows-layout call split into parts: `args(r0, r1)` gives the kernel arguments of a range of rows.
 * A single row (rows = 1) long enough to split is cut along `inner` instead: `args` then gets the
 * element offset of the piece and its length through `piece`.
 */
export function runRows(
  pool: KernelPool,
  kernel: string,
  L: Rows,
  cost: number,
  args: (r0: number, r1: number, piece: { offset: number; length: number }) => number[],
): void {
  if (L.rows === 1) {
    pool.run(kernel, mapPacked(elementParts(pool, L.inner, cost), ({ 0: u0, 1: u1 }) => args(0, 1, { offset: u0, length: u1 - u0 })));
  } else {
    pool.run(kernel, mapPacked(rowParts(pool, L, cost), ({ 0: r0, 1: r1 }) => args(r0, r1, { offset: 0, length: L.inner })));
  }
}
