/** Full sums of contiguous float storage in fixed chunks (the `sum` kernel's, shared with native_nll.ts). */
import type { NativeContext } from './native.js';
import { COST, minPerPart } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

/** Elements per chunk of a full sum (fixed, so results do not depend on the thread count). */
export const SUM_CHUNK = 16384;

/** Relative cost per element of summing `fmt` (float16 widens like a cast): how finely sums split across threads. */
export const sumCost = (fmt: 'f32' | 'f16' | 'bf16'): number => (fmt === 'f16' ? COST.cast : COST.light);

/**
 * The float64 sum of n contiguous elements of `fmt` at byte address px, as the `sum` kernel makes a
 * full sum (fixed chunks of SUM_CHUNK, each summed by one thread, added in order): rounded to float32
 * it is that kernel's result, whatever the thread count.
 */
export function fullSum(ctx: NativeContext, fmt: 'f32' | 'f16' | 'bf16', px: number, n: number): number {
  const K = Math.ceil(n / SUM_CHUNK);
  return ctx.heap.withScratch(K * 8, (acc) => {
    const parts = ctx.pool.split(K, Math.ceil(minPerPart(sumCost(fmt)) / SUM_CHUNK));
    ctx.pool.run(`sumchunks_${fmt}`, mapPacked(parts, ({ 0: k0, 1: k1 }) => [px, acc, k0, k1, n, SUM_CHUNK]));
    const f64 = ctx.heap.views().f64;
    let s = 0;
    for (let i = 0; i < K; i++) s += f64[acc / 8 + i]!;
    return s;
  });
}

