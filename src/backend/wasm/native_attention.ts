/**
 * Native fused attention (assembly/kernels/attention.ts: FlashAttention's tiles, float32 scores,
 * the online softmax; definitions in src/backend/reference/kernels/attention.ts): float32, float16
 * and bfloat16 q, k, v of one format, read through their strides (the heads of a packed projection
 * need no copy) as long as the last dim is contiguous and the batch dims collapse to two; the mask
 * bool or of q's format, broadcast through strides (a [L, S] mask is never expanded); outputs
 * contiguous. The forward splits query blocks of every batch across the threads (their size:
 * attention_block_rows, which depends on the algorithm the shape gets), the backward whole batches
 * (each accumulates its dk and dv over all query blocks). Scratch per thread: from
 * attention_scratch_bytes.
 */
import type { KernelTensor } from '../backend.js';
import type { FlashAttentionParams } from '../kernels.js';
import { numel } from '../../shape/strides.js';
import { attentionLayout, type AttentionLayout } from '../attention_layout.js';
import { contiguous, fmtOf, type Fmt } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';

const DESC = 'attention-desc';
const SCRATCH = 'attention-scratch';
const DESC_WORDS = 32;

/** Multiply-adds per thread below which a call runs on the calling thread alone (~50 us). */
const MIN_MACS_PER_PART = 1 << 17;

interface Geometry extends AttentionLayout {
  fmt: Fmt;
}

/**
 * The call's geometry, or null for a case the module does not cover: `rowed` are q, k, v (and o, g
 * in the backward) whose last dim must be contiguous; the mask (if any) comes last.
 */
function geometry(rowed: readonly KernelTensor[], mask: KernelTensor | null, p: FlashAttentionParams): Geometry | null {
  const q = rowed[0]!;
  const fmt = fmtOf(q.dtype);
  if (!fmt || rowed.some((t) => t.dtype !== q.dtype || t.shape.length !== q.shape.length || t.strides[t.strides.length - 1] !== 1)) return null;
  if (mask && (p.mask === 'bool' ? mask.dtype.name !== 'bool' : mask.dtype !== q.dtype)) return null;
  const g = attentionLayout(rowed, mask);
  if (!g || [g.L, g.S, g.E, g.Ev].concat(...g.strides).some((w) => !Number.isInteger(w) || w < 0 || w > 0x7fffffff)) return null;
  return { ...g, fmt };
}

/** Write the descriptor (assembly/kernels/attention.ts) into a cached block; returns its address. */
function writeDesc(ctx: NativeContext, g: Geometry, rows: readonly (readonly number[])[], mask: readonly number[] | null, nQB: number, p: FlashAttentionParams): number {
  const addr = ctx.heap.cachedBlock(DESC, DESC_WORDS * 4);
  const { i32, f32 } = ctx.heap.views();
  const w = new Int32Array(DESC_WORDS);
  w.set([g.L, g.S, g.E, g.Ev, g.B2, nQB]);
  rows.forEach((s, i) => w.set(s, 6 + 3 * i));
  w[21] = mask ? (p.mask === 'bool' ? 1 : 2) : 0;
  if (mask) w.set(mask, 22);
  w[26] = p.causal ? 1 : 0;
  w[27] = p.dropoutThreshold;
  w[28] = p.seed0 | 0;
  w[29] = p.seed1 | 0;
  i32.set(w, addr >> 2);
  f32[(addr >> 2) + 30] = p.scale;
  f32[(addr >> 2) + 31] = p.dropoutScale;
  return addr;
}

/** Per-part scratch of `parts` parts; returns the first part's address and the bytes per part. */
function scratch(ctx: NativeContext, g: Geometry, parts: number): [number, number] {
  const per = ctx.pool.call('attention_scratch_bytes', g.L, g.S, g.E, g.Ev) as number;
  return [ctx.heap.cachedBlock(SCRATCH, per * parts), per];
}

const flashAttentionForward: NativeKernel<'flashAttentionForward'> = (ctx, inputs, [out, lse], p) => {
  const mask = p.mask === 'none' ? null : inputs[3] ?? null;
  if (!out || !lse || !contiguous(out) || !contiguous(lse) || lse.dtype.name !== 'float32') return false;
  const g = geometry(inputs.slice(0, 3), mask, p);
  if (!g || out.dtype !== inputs[0]!.dtype || numel(out.shape) !== g.N * g.L * g.Ev) return false;
  const desc = writeDesc(ctx, g, g.strides.slice(0, 3), mask ? g.strides[3]! : null, 0, p);
  // the kernel picks its algorithm (and so its work unit) from the call's shape
  const BR = ctx.pool.call('attention_block_rows', desc) as number;
  const nQB = Math.ceil(g.L / BR);
  ctx.heap.views().i32[(desc >> 2) + 5] = nQB;
  const macs = BR * g.S * (g.E + g.Ev);
  const parts = ctx.pool.split(g.N * nQB, Math.ceil(MIN_MACS_PER_PART / macs));
  const [ws, per] = scratch(ctx, g, parts.length);
  const [pq, pk, pv] = inputs.slice(0, 3).map((t) => ctx.address(t));
  const pm = mask ? ctx.address(mask) : 0;
  const [po, pl] = [ctx.address(out), ctx.address(lse)];
  ctx.pool.run(`attention_forward_${g.fmt}`, parts.map(([u0, u1], i) => [desc, pq!, pk!, pv!, pm, po, pl, u0, u1, ws + i * per]));
  return true;
};

const flashAttentionBackward: NativeKernel<'flashAttentionBackward'> = (ctx, inputs, [dq, dk, dv], p) => {
  const hasMask = p.mask !== 'none';
  const mask = hasMask ? inputs[3]! : null;
  const [o, lse, gOut] = inputs.slice(hasMask ? 4 : 3) as [KernelTensor, KernelTensor, KernelTensor];
  if (!dq || !dk || !dv || ![dq, dk, dv, lse].every(contiguous) || lse.dtype.name !== 'float32') return false;
  const rowed = [...inputs.slice(0, 3), o, gOut];
  const g = geometry(rowed, mask, p);
  if (!g || [dq, dk, dv].some((t) => t.dtype !== inputs[0]!.dtype)) return false;
  const desc = writeDesc(ctx, g, g.strides.slice(0, 5), mask ? g.strides[5]! : null, 1, p);
  const macs = 3 * g.L * g.S * (g.E + g.Ev);
  const parts = ctx.pool.split(g.N, Math.ceil(MIN_MACS_PER_PART / macs));
  const [ws, per] = scratch(ctx, g, parts.length);
  const [pq, pk, pv] = inputs.slice(0, 3).map((t) => ctx.address(t));
  const pm = mask ? ctx.address(mask) : 0;
  const args = [pq!, pk!, pv!, pm, ctx.address(o), ctx.address(lse), ctx.address(gOut), ctx.address(dq), ctx.address(dk), ctx.address(dv)];
  ctx.pool.run(`attention_backward_${g.fmt}`, parts.map(([u0, u1], i) => [desc, ...args, u0, u1, ws + i * per]));
  return true;
};

export const ATTENTION_KERNELS = { flashAttentionForward, flashAttentionBackward } satisfies NativeKernels;
