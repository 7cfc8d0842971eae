/**
 * Native handlers of the fused batch-norm ops (src/nn/batch_norm_ops.ts) on
 * assembly/kernels/batch_norm.ts: statistics, normalisation, gradient sums and input gradient, one
 * pass each over a contiguous [N, C, ...] tensor in float32, float16 or bfloat16 (float32
 * arithmetic, 16-bit outputs rounded once), with float32 statistics; the running-statistics update
 * ([C] vectors, float32) in JavaScript on the heap, rounded as the reference kernel rounds it.
 * Having these makes F.batchNorm take its fused path on wasm (Backend.nativeKernel). Anything else
 * (float64 gradcheck inputs, strided views, aliasing) returns false: the reference kernel runs.
 */
import type { KernelTensor } from '../backend.js';
import { numel, sameShape } from '../../shape/strides.js';
import { contiguous, dtCode, DT_F16, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernels } from './native.js';
import { COST, minPerPart } from './native_rows.js';

/** [N, C, S] of an [N, C, ...] tensor, or null below 2 dims. */
function layout(x: KernelTensor): [number, number, number] | null {
  if (x.shape.length < 2) return null;
  const S = numel(x.shape.slice(2));
  return [x.shape[0]!, x.shape[1]!, S];
}


/** A contiguous float32 [2, C] statistics or sums tensor. */
const isStats = (t: KernelTensor | undefined, C: number): t is KernelTensor =>
  !!t && t.dtype.name === 'float32' && contiguous(t) && t.shape.length === 2 && t.shape[0] === 2 && t.shape[1] === C;

/** A contiguous [C] affine tensor of a kernel dtype (its code), or undefined. */
function affineCode(t: KernelTensor | undefined, C: number): number | undefined {
  if (!t || !contiguous(t) || numel(t.shape) !== C) return undefined;
  return dtCode(t.dtype);
}

/**
 * Channel parts: every element is read (or written) a few times per call. float16 input costs about
 * twice a cast per element (widening, and narrowing where the output is float16: bn_train 1.25 ns
 * per element at 1 thread against a cast's ~0.8), so ResNet's layer2 maps ([64, 128, 4, 4]) split too.
 */
function parts(ctx: NativeContext, N: number, C: number, S: number, xDt: number): number {
  const cost = xDt === DT_F16 ? 2 * COST.cast : COST.cast;
  return Math.max(1, Math.min(ctx.pool.threads, C, Math.floor((N * C * S) / minPerPart(cost))));
}

/** The weight and bias ([w?, b?] after the fixed inputs) as (address, dtype code) pairs; null when one is unusable. */
function affinePair(ctx: NativeContext, rest: readonly KernelTensor[], hasWeight: boolean, hasBias: boolean, C: number): { w: number; wDt: number; b: number; bDt: number } | null {
  let i = 0;
  let w = 0, wDt = 0, b = 0, bDt = 0;
  if (hasWeight) {
    const t = rest[i++];
    const code = affineCode(t, C);
    if (code === undefined) return null;
    [w, wDt] = [ctx.address(t!), code];
  }
  if (hasBias) {
    const t = rest[i++];
    const code = affineCode(t, C);
    if (code === undefined) return null;
    [b, bDt] = [ctx.address(t!), code];
  }
  return { w, wDt, b, bDt };
}

export const BATCH_NORM_KERNELS = {
  batchNormStats: (ctx, [x], [stats]) => {
    const l = x && layout(x);
    if (!x || !l || !stats) return false;
    const [N, C, S] = l;
    const xDt = dtCode(x.dtype);
    if (xDt === undefined || !contiguous(x) || !isStats(stats, C) || unsafeAlias(x, stats)) return false;
    if (C === 0) return true;
    if (N * S === 0) return false; // the reference's NaN statistics
    ctx.pool.runParts('bn_stats', [N, C, S, xDt, ctx.address(x), ctx.address(stats)], parts(ctx, N, C, S, xDt));
    return true;
  },

  batchNormTrain: (ctx, [x, stats, ...affine], [y], p) => {
    const l = x && layout(x);
    if (!x || !l || !y) return false;
    const [N, C, S] = l;
    const xDt = dtCode(x.dtype), yDt = dtCode(y.dtype);
    if (xDt === undefined || yDt === undefined || !contiguous(x) || !contiguous(y) || !sameShape(x.shape, y.shape) || !isStats(stats, C)) return false;
    if (unsafeAlias(x, y) || unsafeAlias(stats, y) || affine.some((t) => unsafeAlias(t, y))) return false;
    const a = affinePair(ctx, affine, p.hasWeight, p.hasBias, C);
    if (!a) return false;
    if (N * C * S === 0) return true;
    ctx.pool.runParts('bn_train', [N, C, S, xDt, ctx.address(x), ctx.address(stats), a.w, a.wDt, a.b, a.bDt, p.eps, yDt, ctx.address(y)], parts(ctx, N, C, S, xDt));
    return true;
  },

  batchNormGradSums: (ctx, [g, x, stats], [out], p) => {
    const l = x && layout(x);
    if (!g || !x || !l || !out) return false;
    const [N, C, S] = l;
    const gDt = dtCode(g.dtype), xDt = dtCode(x.dtype);
    if (gDt === undefined || xDt === undefined || !contiguous(g) || !contiguous(x) || !sameShape(g.shape, x.shape) || !isStats(stats, C) || !isStats(out, C)) return false;
    if (unsafeAlias(g, out) || unsafeAlias(x, out) || unsafeAlias(stats, out)) return false;
    if (C === 0) return true;
    ctx.pool.runParts('bn_grad_sums', [N, C, S, gDt, ctx.address(g), xDt, ctx.address(x), ctx.address(stats), p.eps, ctx.address(out)], parts(ctx, N, C, S, xDt));
    return true;
  },

  batchNormBackwardInput: (ctx, [g, x, stats, sums, w], [dx], p) => {
    const l = x && layout(x);
    if (!g || !x || !l || !dx) return false;
    const [N, C, S] = l;
    const gDt = dtCode(g.dtype), xDt = dtCode(x.dtype), dxDt = dtCode(dx.dtype);
    if (gDt === undefined || xDt === undefined || dxDt === undefined) return false;
    if (!contiguous(g) || !contiguous(x) || !contiguous(dx) || !sameShape(g.shape, x.shape) || !sameShape(x.shape, dx.shape) || !isStats(stats, C) || !isStats(sums, C)) return false;
    if ([g, x, stats, sums, w].some((t) => t && unsafeAlias(t, dx))) return false;
    const wDt = p.hasWeight ? affineCode(w, C) : 0;
    if (wDt === undefined) return false;
    if (N * C * S === 0) return true;
    const wAddr = p.hasWeight ? ctx.address(w!) : 0;
    ctx.pool.runParts('bn_backward_input', [N, C, S, gDt, ctx.address(g), xDt, ctx.address(x), ctx.address(stats), ctx.address(sums), wAddr, wDt, p.eps, dxDt, ctx.address(dx)], parts(ctx, N, C, S, xDt));
    return true;
  },

  // [C] vectors: in JavaScript, every product and sum rounded to float32 as the reference kernel does for float32 tensors
  batchNormRunningUpdate: (ctx, [rm, rv, stats], [outMean, outVar], p) => {
    if (!rm || !rv || !outMean || !outVar) return false;
    const C = numel(rm.shape);
    if (!isStats(stats, C) || numel(rv.shape) !== C) return false;
    for (const t of [rm, rv, outMean, outVar]) if (t.dtype.name !== 'float32' || !contiguous(t)) return false;
    if (outMean.buffer !== rm.buffer || outMean.offset !== rm.offset || outVar.buffer !== rv.buffer || outVar.offset !== rv.offset) return false;
    const f32 = ctx.heap.views().f32;
    const pm = ctx.address(rm) >> 2, pv = ctx.address(rv) >> 2, ps = ctx.address(stats) >> 2;
    const r = Math.fround;
    const keep = r(1 - p.momentum), mom = r(p.momentum), unbias = r(p.unbiasFactor);
    for (let c = 0; c < C; c++) {
      f32[pm + c] = r(r(f32[pm + c]! * keep) + r(f32[ps + c]! * mom));
      f32[pv + c] = r(r(f32[pv + c]! * keep) + r(r(f32[ps + C + c]! * unbias) * mom));
    }
    return true;
  },
} satisfies NativeKernels;
