/**
 * The negative log-likelihood as two native kernels (nllLossFused, nllLossBackward: src/nn/nll_ops.ts,
 * definitions in src/backend/reference/kernels/nll.ts) for float32 log-probabilities, int32 targets
 * and an optional float32 class weight, all contiguous. With them F.nllLoss and F.crossEntropy take
 * the fused ops on wasm: one call for the loss and one for its gradient, where the composite was
 * ~20 small ops (each a trip through the op layer, autograd and the pool: in a fresh process's first
 * steps that JavaScript runs unoptimised). The results are the composite's on this backend: each
 * product rounded to float32 as its mul rounds it, and the two sums (losses, weights) by the `sum`
 * kernel's own full-sum path (native.ts fullSum), so the same float64 order. The per-target work
 * (a few hundred to a few thousand targets) runs on the calling thread, in wasm
 * (assembly/kernels/nll.ts); a target outside [0, C) other than ignoreIndex goes to the reference
 * kernel.
 */
import type { KernelTensor } from '../backend.js';
import type { NllParams } from '../kernels.js';
import { numel } from '../../shape/strides.js';
import { contiguous, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { fullSum } from './native_sum.js';

/** The layout of one call (null: a case the native kernels do not cover, or a target out of range). */
interface Targets {
  /** Byte addresses of the targets and the weight (0: none). */
  target: number;
  w: number;
  M: number;
  C: number;
  S: number;
}

/*
 * The per-target loops run in wasm (assembly/kernels/nll.ts), not here: a JavaScript loop over the
 * targets made these handlers hot enough for V8 to compile them (and everything inlined into them)
 * within a fresh process's first steps, ~50-100 ms of compiler work competing with the kernels
 * (bench/README.md, "warm-up"). The handlers now run once per loss with no loop.
 */
function targetsOf(ctx: NativeContext, logp: KernelTensor, target: KernelTensor, w: KernelTensor | undefined, p: NllParams): Targets | null {
  if (logp.dtype.name !== 'float32' || target.dtype.name !== 'int32' || !contiguous(logp) || !contiguous(target)) return null;
  const C = logp.shape[p.classDim]!;
  if (w && (w.dtype.name !== 'float32' || !contiguous(w) || numel(w.shape) !== C)) return null;
  let S = 1;
  for (let d = p.classDim + 1; d < logp.shape.length; d++) S *= logp.shape[d]!;
  const M = numel(target.shape);
  if (M * C !== numel(logp.shape)) return null;
  const t = ctx.address(target);
  if ((ctx.pool.call('nll_check', t, M, C, p.ignoreIndex) as number) !== 0) return null;
  return { target: t, w: w ? ctx.address(w) : 0, M, C, S };
}

/**
 * Each target's loss -(logp[n, t, s] * wt) and weight wt, written as float32 at `losses` and
 * `wts` (M values each), then `fn` of their addresses.
 */
function picked<T>(ctx: NativeContext, logp: KernelTensor, q: Targets, p: NllParams, fn: (losses: number, wts: number) => T): T {
  return ctx.heap.withScratch(Math.max(8, q.M * 8), (losses) => {
    const wts = losses + q.M * 4;
    ctx.pool.call('nll_pick', ctx.address(logp), q.target, q.w, q.M, q.C, q.S, p.ignoreIndex, losses, wts);
    return fn(losses, wts);
  });
}

/** The composite's sum of n float32 values at `addr` (rounded to float32). */
const sumAt = (ctx: NativeContext, addr: number, n: number): number => Math.fround(fullSum(ctx, 'f32', addr, n));

const nllLossFused: NativeKernel<'nllLossFused'> = (ctx, { 0: logp, 1: target, 2: w }, { 0: out }, p) => {
  if (!logp || !target || !out || out.dtype.name !== 'float32' || !contiguous(out) || unsafeAlias(logp, out)) return false;
  const q = targetsOf(ctx, logp, target, w, p);
  if (!q || (q.M === 0 && p.reduction !== 'none')) return false; // (the reference's empty sums)
  const o = ctx.address(out);
  picked(ctx, logp, q, p, (losses, wts) => {
    const f32 = ctx.heap.views().f32;
    if (p.reduction === 'none') f32.copyWithin(o >> 2, losses >> 2, (losses >> 2) + q.M);
    else {
      const total = sumAt(ctx, losses, q.M);
      f32[o >> 2] = p.reduction === 'sum' ? total : total / sumAt(ctx, wts, q.M);
    }
  });
  return true;
};

const nllLossBackward: NativeKernel<'nllLossBackward'> = (ctx, { 0: g, 1: logp, 2: target, 3: w }, { 0: out }, p) => {
  if (!g || !logp || !target || !out || g.dtype.name !== 'float32' || !contiguous(g) || out.dtype.name !== 'float32' || !contiguous(out)) return false;
  const q = targetsOf(ctx, logp, target, w, p);
  if (!q || (p.reduction === 'mean' && q.M === 0)) return false;
  let scale = 0;
  if (p.reduction !== 'none') {
    const g0 = ctx.heap.views().f32[ctx.address(g) >> 2]!;
    if (p.reduction === 'sum') scale = g0;
    else {
      const den = picked(ctx, logp, q, p, (_, wts) => sumAt(ctx, wts, q.M));
      scale = Math.fround(g0 / (den === 0 ? 1 : den));
    }
  }
  // added into zeros as the composite's scatter does (-0 becomes +0, NaN stays NaN)
  ctx.pool.call('nll_grad', ctx.address(out), p.reduction === 'none' ? ctx.address(g) : 0, scale, q.target, q.w, q.M, q.C, q.S, p.ignoreIndex);
  return true;
};

export const NLL_KERNELS = { nllLossFused, nllLossBackward } satisfies NativeKernels;
