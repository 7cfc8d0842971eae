/**
 * What the wasm backend's native GEMM and convolution handlers share: how many parts a call is split
 * into, the one scratch block (GEMM panels, padded images, packed weights) with its sync block in
 * front (docs/kernels.md), and the geometry descriptor block.
 */
import type { NativeContext } from './native.js';

/** The allocator's cached blocks used here (one scratch for all kernels: calls never overlap). */
const SCRATCH = 'kernel-scratch';
const DESC = 'kernel-desc';

/** Multiply-adds per thread below which a GEMM or convolution runs on the calling thread alone. */
export const MIN_MACS_PER_PART = 1 << 18;

export function partsFor(ctx: NativeContext, work: number, minPerPart: number, maxUnits = Infinity): number {
  return Math.max(1, Math.min(ctx.pool.threads, maxUnits, Math.floor(work / minPerPart)));
}

let gemmScratchPerPart = 0;
export function gemmScratchBytes(ctx: NativeContext): number {
  if (gemmScratchPerPart === 0) gemmScratchPerPart = ctx.pool.call('gemm_scratch_bytes') as number;
  return gemmScratchPerPart;
}

/** Write a 16-int geometry descriptor into the heap (a cached 64-byte block); returns its address. */
export function writeDesc(ctx: NativeContext, values: readonly number[]): number {
  const addr = ctx.heap.cachedBlock(DESC, 64);
  const i32 = ctx.heap.views().i32;
  const base = addr >> 2;
  for (let i = 0; i < 16; i++) i32[base + i] = values[i] ?? 0;
  return addr;
}

/** The shared scratch block, at least `bytes` long (64-byte aligned). */
export function scratch(ctx: NativeContext, bytes: number): number {
  return ctx.heap.cachedBlock(SCRATCH, Math.max(bytes, 64));
}

/** Bytes in front of the kernels' scratch in the scratch block: the sync block. */
const SYNC_BYTES = 64;

/**
 * Scratch of `bytes` for a call split into `parts`, and its sync block (docs/kernels.md): 64 bytes
 * in front of the scratch in the same cached block, their counters zeroed here, before the call
 * (the pool's Atomics.store of the call's sequence number publishes the zeros to the workers). The
 * parts then take work units from it, so a thread that starts late does less of the work. The sync
 * address is 0 (none) for one part.
 */
export function scratchAndSync(ctx: NativeContext, bytes: number, parts: number): { ws: number; sync: number } {
  const base = scratch(ctx, bytes + SYNC_BYTES);
  if (parts <= 1) return { ws: base + SYNC_BYTES, sync: 0 };
  ctx.heap.views().i32.fill(0, base >> 2, (base + SYNC_BYTES) >> 2);
  return { ws: base + SYNC_BYTES, sync: base };
}

