/**
 * The negative log-likelihood as two native kernels (nllLossFused, nllLossBackward: src/nn/nll_ops.ts,
 * definitions in src/backend/reference/kernels/nll.ts) for float32 log-probabilities, int32 targets
 * and an optional float32 class weight, all contiguous. With them F.nllLoss and F.crossEntropy take
 * the fused ops on wasm: one call for the loss and one for its gradient, where the composite was
 * ~20 small ops (each a trip through the op layer, autograd and the pool: in a fresh process's first
 * steps that JavaScript runs unoptimised). The results are the composite's on this backend: each
 * product rounded to float32 as its mul rounds it, and the two sums (losses, weights) by the `sum`
 * kernel's own full-sum path (native.ts fullSum), so the same float64 order. The per-target work
 * (a few hundred to a few thousand targets) runs here on the calling thread; a target outside
 * [0, C) other than ignoreIndex goes to the reference kernel.
 */
import type { KernelTensor } from '../backend.js';
import type { NllParams } from '../kernels.js';
import { numel } from '../../shape/strides.js';
import { contiguous, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { fullSum } from './native_sum.js';

/** Where each target's log-probability is (element index into logp) and its weight, or null if uncovered. */
interface Picked {
  at: Int32Array;
  wt: Float32Array;
}

function pick(ctx: NativeContext, logp: KernelTensor, target: KernelTensor, w: KernelTensor | undefined, p: NllParams): Picked | null {
  if (logp.dtype.name !== 'float32' || target.dtype.name !== 'int32' || !contiguous(logp) || !contiguous(target)) return null;
  const C = logp.shape[p.classDim]!;
  if (w && (w.dtype.name !== 'float32' || !contiguous(w) || numel(w.shape) !== C)) return null;
  let S = 1;
  for (let d = p.classDim + 1; d < logp.shape.length; d++) S *= logp.shape[d]!;
  const M = numel(target.shape);
  if (M * C !== numel(logp.shape)) return null;
  const { i32, f32 } = ctx.heap.views();
  const t0 = ctx.address(target) >> 2;
  const w0 = w ? ctx.address(w) >> 2 : 0;
  const at = new Int32Array(M);
  const wt = new Float32Array(M);
  for (let m = 0; m < M; m++) {
    const t = i32[t0 + m]!;
    const ignored = t === p.ignoreIndex;
    if (!ignored && (t < 0 || t >= C)) return null;
    const n = Math.floor(m / S);
    at[m] = (n * C + (ignored ? 0 : t)) * S + (m % S);
    wt[m] = ignored ? 0 : w ? f32[w0 + t]! : 1;
  }
  return { at, wt };
}

/** The composite's sum of n float32 values (rounded to float32), written to scratch first. */
function sumOf(ctx: NativeContext, values: Float32Array): number {
  return ctx.heap.withScratch(Math.max(4, values.length * 4), (addr) => {
    ctx.heap.views().f32.set(values, addr >> 2);
    return Math.fround(fullSum(ctx, 'f32', addr, values.length));
  });
}

const nllLossFused: NativeKernel<'nllLossFused'> = (ctx, { 0: logp, 1: target, 2: w }, { 0: out }, p) => {
  if (!logp || !target || !out || out.dtype.name !== 'float32' || !contiguous(out) || unsafeAlias(logp, out)) return false;
  const picked = pick(ctx, logp, target, w, p);
  if (!picked) return false;
  const { at, wt } = picked;
  const M = at.length;
  const lp = ctx.address(logp) >> 2;
  const f32 = ctx.heap.views().f32;
  const losses = new Float32Array(M);
  for (let m = 0; m < M; m++) losses[m] = -Math.fround(f32[lp + at[m]!]! * wt[m]!);
  let result: number;
  if (p.reduction === 'none') {
    ctx.heap.views().f32.set(losses, ctx.address(out) >> 2);
    return true;
  }
  if (M === 0) return false; // the reference's empty sums
  const total = sumOf(ctx, losses);
  if (p.reduction === 'sum') result = total;
  else result = total / sumOf(ctx, wt);
  ctx.heap.views().f32[ctx.address(out) >> 2] = result;
  return true;
};

const nllLossBackward: NativeKernel<'nllLossBackward'> = (ctx, { 0: g, 1: logp, 2: target, 3: w }, { 0: out }, p) => {
  if (!g || !logp || !target || !out || g.dtype.name !== 'float32' || !contiguous(g) || out.dtype.name !== 'float32' || !contiguous(out)) return false;
  const picked = pick(ctx, logp, target, w, p);
  if (!picked) return false;
  const { at, wt } = picked;
  const M = at.length;
  if (p.reduction === 'mean' && M === 0) return false;
  let scaled = 0;
  if (p.reduction !== 'none') {
    const g0 = ctx.heap.views().f32[ctx.address(g) >> 2]!;
    if (p.reduction === 'sum') scaled = g0;
    else {
      const den = sumOf(ctx, wt);
      scaled = Math.fround(g0 / (den === 0 ? 1 : den));
    }
  }
  const f32 = ctx.heap.views().f32;
  const o = ctx.address(out) >> 2;
  const gp = ctx.address(g) >> 2;
  f32.fill(0, o, o + numel(out.shape));
  // added into zeros as the composite's scatter does (-0 becomes +0, NaN stays NaN)
  for (let m = 0; m < M; m++) {
    const q = p.reduction === 'none' ? f32[gp + m]! : scaled;
    f32[o + at[m]!] = 0 + -Math.fround(q * wt[m]!);
  }
  return true;
};

export const NLL_KERNELS = { nllLossFused, nllLossBackward } satisfies NativeKernels;
