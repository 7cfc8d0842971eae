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

/** A descriptor word: a non-negative int32. */
function isWord(w: number): boolean {
  return Number.isInteger(w) && w >= 0 && w <= 0x7fffffff;
}

/**
 * The call's geometry, or null for a case the module does not cover: `rowed` are q, k, v (and o, g
 * in the backward) whose last dim must be contiguous; the mask (if any) comes last. Plain loops, no
 * closures or spreads: this runs twice per attention layer and step, too rarely for V8 to optimise
 * it early (the closure form measured 20-40 us per call in a GPT step).
 */
function geometry(rowed: readonly KernelTensor[], mask: KernelTensor | null, p: FlashAttentionParams): Geometry | null {
  const q = rowed[0]!;
  const fmt = fmtOf(q.dtype);
  if (!fmt) return null;
  const rank = q.shape.length;
  for (let i = 0; i < rowed.length; i++) {
    const t = rowed[i]!;
    if (t.dtype !== q.dtype || t.shape.length !== rank || t.strides[rank - 1] !== 1) return null;
  }
  if (mask && (p.mask === 'bool' ? mask.dtype.name !== 'bool' : mask.dtype !== q.dtype)) return null;
  const g = attentionLayout(rowed, mask);
  if (!g || !isWord(g.L) || !isWord(g.S) || !isWord(g.E) || !isWord(g.Ev)) return null;
  for (let i = 0; i < g.strides.length; i++) {
    const s = g.strides[i]!;
    for (let j = 0; j < s.length; j++) if (!isWord(s[j]!)) return null;
  }
  return { L: g.L, S: g.S, E: g.E, Ev: g.Ev, N: g.N, B2: g.B2, strides: g.strides, fmt };
}

/**
 * Write the descriptor (assembly/kernels/attention.ts) into a cached block; returns its address.
 * `rowed` operands' strides are g.strides[0 .. rowed), the mask's (if any) g.strides[rowed].
 */
function writeDesc(ctx: NativeContext, g: Geometry, rowed: number, hasMask: boolean, nQB: number, p: FlashAttentionParams): number {
  const addr = ctx.heap.cachedBlock(DESC, DESC_WORDS * 4);
  const { i32, f32 } = ctx.heap.views();
  const w = addr >> 2;
  i32.fill(0, w, w + DESC_WORDS);
  i32[w] = g.L;
  i32[w + 1] = g.S;
  i32[w + 2] = g.E;
  i32[w + 3] = g.Ev;
  i32[w + 4] = g.B2;
  i32[w + 5] = nQB;
  for (let i = 0; i < rowed; i++) {
    const s = g.strides[i]!;
    for (let j = 0; j < 3; j++) i32[w + 6 + 3 * i + j] = s[j]!;
  }
  i32[w + 21] = hasMask ? (p.mask === 'bool' ? 1 : 2) : 0;
  if (hasMask) {
    const s = g.strides[rowed]!;
    for (let j = 0; j < 4; j++) i32[w + 22 + j] = s[j]!;
  }
  i32[w + 26] = p.causal ? 1 : 0;
  i32[w + 27] = p.dropoutThreshold;
  i32[w + 28] = p.seed0 | 0;
  i32[w + 29] = p.seed1 | 0;
  f32[w + 30] = p.scale;
  f32[w + 31] = p.dropoutScale;
  return addr;
}

/** Per-part scratch of `parts` parts; returns the first part's address and the bytes per part. */
function scratch(ctx: NativeContext, g: Geometry, parts: number): [number, number] {
  const per = ctx.pool.call('attention_scratch_bytes', g.L, g.S, g.E, g.Ev) as number;
  return [ctx.heap.cachedBlock(SCRATCH, per * parts), per];
}

const flashAttentionForward: NativeKernel<'flashAttentionForward'> = (ctx, inputs, { 0: out, 1: lse }, p) => {
  const mask = p.mask === 'none' ? null : inputs[3] ?? null;
  if (!out || !lse || !contiguous(out) || !contiguous(lse) || lse.dtype.name !== 'float32') return false;
  const q = inputs[0]!;
  const g = geometry([q, inputs[1]!, inputs[2]!], mask, p);
  if (!g || out.dtype !== q.dtype || numel(out.shape) !== g.N * g.L * g.Ev) return false;
  const desc = writeDesc(ctx, g, 3, mask !== null, 0, p);
  // the kernel picks its algorithm (and so its work unit) from the call's shape
  const BR = ctx.pool.call('attention_block_rows', desc) as number;
  const nQB = Math.ceil(g.L / BR);
  ctx.heap.views().i32[(desc >> 2) + 5] = nQB;
  const macs = BR * g.S * (g.E + g.Ev);
  const parts = ctx.pool.split(g.N * nQB, Math.ceil(MIN_MACS_PER_PART / macs));
  const { 0: ws, 1: per } = scratch(ctx, g, parts.length);
  const pq = ctx.address(q);
  const pk = ctx.address(inputs[1]!);
  const pv = ctx.address(inputs[2]!);
  const pm = mask ? ctx.address(mask) : 0;
  const po = ctx.address(out);
  const pl = ctx.address(lse);
  const list: number[][] = []; // pushed: packed in every V8 tier (src/shape/packed.ts)
  for (let i = 0; i < parts.length; i++) list.push([desc, pq, pk, pv, pm, po, pl, parts[i]![0], parts[i]![1], ws + i * per]);
  ctx.pool.run(`attention_forward_${g.fmt}`, list);
  return true;
};

const flashAttentionBackward: NativeKernel<'flashAttentionBackward'> = (ctx, inputs, { 0: dq, 1: dk, 2: dv }, p) => {
  const hasMask = p.mask !== 'none';
  const mask = hasMask ? inputs[3]! : null;
  const at = hasMask ? 4 : 3;
  const o = inputs[at]!;
  const lse = inputs[at + 1]!;
  const gOut = inputs[at + 2]!;
  if (!dq || !dk || !dv || !contiguous(dq) || !contiguous(dk) || !contiguous(dv) || !contiguous(lse) || lse.dtype.name !== 'float32') return false;
  const q = inputs[0]!;
  const g = geometry([q, inputs[1]!, inputs[2]!, o, gOut], mask, p);
  if (!g || dq.dtype !== q.dtype || dk.dtype !== q.dtype || dv.dtype !== q.dtype) return false;
  const desc = writeDesc(ctx, g, 5, hasMask, 1, p);
  const macs = 3 * g.L * g.S * (g.E + g.Ev);
  const parts = ctx.pool.split(g.N, Math.ceil(MIN_MACS_PER_PART / macs));
  const { 0: ws, 1: per } = scratch(ctx, g, parts.length);
  const pm = mask ? ctx.address(mask) : 0;
  const pq = ctx.address(q);
  const pk = ctx.address(inputs[1]!);
  const pv = ctx.address(inputs[2]!);
  const po = ctx.address(o);
  const pl = ctx.address(lse);
  const pg = ctx.address(gOut);
  const pdq = ctx.address(dq);
  const pdk = ctx.address(dk);
  const pdv = ctx.address(dv);
  const list: number[][] = [];
  for (let i = 0; i < parts.length; i++) list.push([desc, pq, pk, pv, pm, po, pl, pg, pdq, pdk, pdv, parts[i]![0], parts[i]![1], ws + i * per]);
  ctx.pool.run(`attention_backward_${g.fmt}`, list);
  return true;
};

export const ATTENTION_KERNELS = { flashAttentionForward, flashAttentionBackward } satisfies NativeKernels;
