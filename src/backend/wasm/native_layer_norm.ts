/**
 * Native handlers of the fused layer-norm ops (src/nn/layer_norm_ops.ts) on
 * assembly/kernels/layer_norm.ts: statistics, normalisation, input gradient (one row at a time:
 * split by rows across threads) and the weight/bias sums (split by 8-column groups), over
 * contiguous tensors whose x, g, y, w and b share one format (float32, float16 or bfloat16), with
 * float32 statistics. Having these makes F.layerNorm take its fused path on wasm
 * (Backend.nativeKernel). Anything else (float64 gradcheck inputs, strided views, mixed formats,
 * aliasing) returns false: the reference kernel runs.
 */
import type { KernelTensor } from '../backend.js';
import { numel } from '../../shape/strides.js';
import { contiguous, fmtOf, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernels } from './native.js';
import { COST, minPerPart } from './native_rows.js';

/** A contiguous float32 [2, n] statistics or sums tensor. */
const isPair = (t: KernelTensor | undefined, n: number): t is KernelTensor =>
  !!t && t.dtype.name === 'float32' && contiguous(t) && t.shape.length === 2 && t.shape[0] === 2 && t.shape[1] === n;

/**
 * The format shared by `ts` (contiguous, same dtype, none aliasing `out`) and R rows of D, or
 * null: the kernels read every operand in one format.
 */
function common(ts: readonly (KernelTensor | undefined)[], out: KernelTensor, stats: KernelTensor | undefined, D: number): { fmt: string; R: number } | null {
  const x = ts[0];
  const fmt = x && fmtOf(x.dtype);
  if (!x || !fmt || D < 1 || !contiguous(out)) return null;
  for (const t of ts) if (!t || t.dtype !== x.dtype || !contiguous(t) || unsafeAlias(t, out)) return null;
  if (stats && unsafeAlias(stats, out)) return null;
  const n = numel(x.shape);
  if (n % D !== 0) return null;
  return { fmt, R: n / D };
}

/** Row parts: every element is read two or three times per call. */
const rowParts = (ctx: NativeContext, R: number, D: number) => ctx.pool.split(R, Math.ceil(minPerPart(COST.half) / D));

export const LAYER_NORM_KERNELS = {
  layerNormStats: (ctx, [x], [stats], p) => {
    if (!x || !stats) return false;
    const c = common([x], stats, undefined, p.size);
    if (!c || !isPair(stats, c.R)) return false;
    if (c.R === 0) return true;
    ctx.pool.run(`layer_norm_stats_${c.fmt}`, rowParts(ctx, c.R, p.size).map(([r0, r1]) => [ctx.address(x), ctx.address(stats), c.R, p.size, p.eps, r0, r1]));
    return true;
  },

  layerNormFused: (ctx, [x, stats, ...affine], [y], p) => {
    if (!x || !y) return false;
    const c = common([x, ...affine], y, stats, p.size);
    if (!c || !isPair(stats, c.R) || y.dtype !== x.dtype || numel(y.shape) !== c.R * p.size) return false;
    if (affine.length !== Number(p.hasWeight) + Number(p.hasBias) || affine.some((t) => numel(t.shape) !== p.size)) return false;
    if (c.R === 0) return true;
    const w = p.hasWeight ? ctx.address(affine[0]!) : 0;
    const b = p.hasBias ? ctx.address(affine[p.hasWeight ? 1 : 0]!) : 0;
    ctx.pool.run(`layer_norm_forward_${c.fmt}`, rowParts(ctx, c.R, p.size).map(([r0, r1]) => [ctx.address(x), ctx.address(stats!), w, b, ctx.address(y), c.R, p.size, r0, r1]));
    return true;
  },

  layerNormBackwardInput: (ctx, [g, x, stats, w], [dx], p) => {
    if (!g || !x || !dx) return false;
    const c = common(p.hasWeight ? [x, g, w] : [x, g], dx, stats, p.size);
    if (!c || !isPair(stats, c.R) || dx.dtype !== x.dtype || numel(g.shape) !== c.R * p.size || numel(dx.shape) !== c.R * p.size) return false;
    if (p.hasWeight && numel(w!.shape) !== p.size) return false;
    if (c.R === 0) return true;
    const wa = p.hasWeight ? ctx.address(w!) : 0;
    ctx.pool.run(`layer_norm_backward_input_${c.fmt}`, rowParts(ctx, c.R, p.size).map(([r0, r1]) => [ctx.address(g), ctx.address(x), ctx.address(stats!), wa, ctx.address(dx), c.R, p.size, r0, r1]));
    return true;
  },

  layerNormGradSums: (ctx, [g, x, stats], [sums], p) => {
    if (!g || !x || !sums) return false;
    const c = common([x, g], sums, stats, p.size);
    if (!c || !isPair(stats, c.R) || !isPair(sums, p.size) || numel(g.shape) !== c.R * p.size) return false;
    // 8-column groups across threads (each part reads every row of its columns)
    const groups = Math.ceil(p.size / 8);
    const parts = ctx.pool.split(groups, Math.ceil(minPerPart(COST.half) / Math.max(1, 8 * c.R)));
    ctx.pool.run(`layer_norm_grad_sums_${c.fmt}`, parts.map(([u0, u1]) => [ctx.address(g), ctx.address(x), ctx.address(stats!), ctx.address(sums), c.R, p.size, u0 * 8, Math.min(p.size, u1 * 8)]));
    return true;
  },
} satisfies NativeKernels;
