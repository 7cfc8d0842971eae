/**
 * Strided views into contiguous memory for the wasm kernels that need contiguous operands: `gather`
 * (the copy kernel's strided path) and `withContiguousOperands` (gathers into scratch memory, then
 * runs a contiguous kernel).
 */
import type { KernelTensor } from '../backend.js';
import { contiguousStrides, numel } from '../../shape/strides.js';
import { collapse } from './layout.js';
import type { NativeContext } from './native.js';
import { COST, minPerPart, rowsLayout } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

/** Gather the strided view `x` (at byte address px) into contiguous memory at `dst` (same format); false beyond 4 collapsed dims. */
export function gather(ctx: NativeContext, x: KernelTensor, px: number, dst: number, shape: readonly number[]): boolean {
  const size = x.dtype.itemsize;
  const c = collapse(shape, [x.strides]);
  if (c.dims.length > 4) return false;
  const pad = 4 - c.dims.length;
  const d = [...new Array<number>(pad).fill(1), ...c.dims];
  const s = [...new Array<number>(pad).fill(0), ...c.strides[0]!];
  const rows = d[0]! * d[1]! * d[2]!;
  const parts = ctx.pool.split(rows, Math.ceil(minPerPart(COST.light) / d[3]!));
  ctx.pool.run(`gather${size * 8}`, mapPacked(parts, ({ 0: r0, 1: r1 }) => [px, dst, r0, r1, d[1]!, d[2]!, d[3]!, s[0]!, s[1]!, s[2]!, s[3]!]));
  return true;
}

/**
 * Run `fn` with the operands that `keep` refuses gathered into contiguous scratch memory (one exact
 * copy each), then free the scratch. By default the operands kept are those the rows layout walks;
 * a transposed matrix (a linear layer's weight gradient, added to the previous time step's) is not.
 * False when nothing needed a copy or a gather does not fit.
 */
export function withContiguousOperands(
  ctx: NativeContext,
  operands: readonly KernelTensor[],
  shape: readonly number[],
  fn: (xs: KernelTensor[]) => boolean,
  keep: (t: KernelTensor) => boolean = (t) => rowsLayout(shape, [t]) !== null,
): boolean {
  const n = numel(shape);
  const strides = contiguousStrides(shape);
  const gathered: KernelTensor[] = [];
  const scratch: [number, number][] = [];
  try {
    for (let k = 0; k < operands.length; k++) {
      const t = operands[k]!;
      if (keep(t)) {
        gathered.push(t);
        continue;
      }
      const bytes = n * t.dtype.itemsize;
      const addr = ctx.heap.alloc(bytes);
      scratch.push([addr, bytes]);
      if (!gather(ctx, t, ctx.address(t), addr, shape)) return false;
      gathered.push({ buffer: { addr } as unknown as KernelTensor['buffer'], dtype: t.dtype, shape, strides, offset: 0 });
    }
    if (scratch.length === 0) return false;
    return fn(gathered);
  } finally {
    for (const [addr, bytes] of scratch) ctx.heap.release(addr, bytes);
  }
}

