/**
 * Native handlers of the multi-tensor SGD update `sgdUpdateMulti` (the per-tensor `sgdUpdate` is in
 * native.ts), of the fused Adam / AdamW update, `adamUpdate`, and of the multi-tensor unscale
 * `ampUnscale` (below). adamUpdate (definition:
 * src/backend/reference/kernels/optim.ts), on the `adam_<wfmt>_<gfmt>` kernels of
 * assembly/kernels/optim.ts: one pass over float32 master weights (or 16-bit parameters), float32
 * state and float32 / float16 / bfloat16 gradients widened in registers, split across the pool's
 * threads, bit for bit the reference kernel.
 *
 * Native when every tensor is contiguous, the outputs are the inputs' own views (in place), the
 * state is float32 and no two tensors overlap; anything else returns false and the reference kernel
 * runs. The optional step and foundInf inputs are read here (the backend is synchronous): a nonzero
 * foundInf leaves the in-place outputs as they are.
 */
import type { KernelTensor } from '../backend.js';
import { numel } from '../../shape/strides.js';
import { adamBiasCorrections } from '../optim_math.js';
import { contiguous, extent, fmtOf } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import type { AdamUpdateParams, SgdUpdateParams } from '../kernels.js';
import { MIN_ELEMENTS_PER_PART } from './native_rows.js';

const ADAM_MAXIMIZE = 1;
const ADAM_AMSGRAD = 2;
const ADAM_DECOUPLED = 4;
const ADAM_WEIGHT_DECAY = 8;
/** The heap block holding adamUpdateMulti's table of tensors (calls never overlap). */
const ADAM_TABLE = 'adam-multi-table';

/** `flags` bits of the sgd kernels (assembly/kernels/optim.ts). */
const SGD_MOMENTUM = 1;
const SGD_FIRST = 2;
const SGD_NESTEROV = 4;
const SGD_MAXIMIZE = 8;
const SGD_WEIGHT_DECAY = 16;
/** The heap block holding sgdUpdateMulti's table of tensors (calls never overlap). */
const SGD_TABLE = 'sgd-multi-table';

/** The sgd kernels' `flags` word for a call (or a tensor: `first` may be its own). */
export function sgdFlags(p: SgdUpdateParams, first: boolean): number {
  return (
    (p.momentum !== 0 ? SGD_MOMENTUM : 0) |
    (first ? SGD_FIRST : 0) |
    (p.nesterov ? SGD_NESTEROV : 0) |
    (p.maximize ? SGD_MAXIMIZE : 0) |
    (p.weightDecay !== 0 ? SGD_WEIGHT_DECAY : 0)
  );
}

/** The sgd kernels' scalar arguments lr, momentum, damp1, wd, rounded as the reference rounds them. */
export function sgdScalars(p: SgdUpdateParams): [number, number, number, number] {
  return [Math.fround(p.lr), Math.fround(p.momentum), Math.fround(1 - p.dampening), Math.fround(p.weightDecay)];
}

/** Whether two different tensors share any memory. */
function overlap(a: KernelTensor, b: KernelTensor): boolean {
  if (a.buffer !== b.buffer) return false;
  const [a0, a1] = extent(a);
  const [b0, b1] = extent(b);
  const i = a.dtype.itemsize;
  const o = b.dtype.itemsize;
  return !((a1 + 1) * i <= b0 * o || (b1 + 1) * o <= a0 * i);
}

const sameView = (a: KernelTensor, b: KernelTensor): boolean => a.buffer === b.buffer && a.offset === b.offset && a.dtype === b.dtype;

/** The adam kernels' scalar arguments (b1 .. bc2, flags), rounded as the reference rounds them. */
function adamScalars(ctx: NativeContext, p: AdamUpdateParams, stepT: KernelTensor | undefined): number[] {
  const [bc1, bc2s] = stepT ? adamBiasCorrections(p.beta1, p.beta2, ctx.readScalar(stepT)) : [p.biasCorrection1!, p.biasCorrection2Sqrt!];
  const f = Math.fround;
  const flags =
    (p.maximize ? ADAM_MAXIMIZE : 0) |
    (p.amsgrad ? ADAM_AMSGRAD : 0) |
    (p.decoupled ? ADAM_DECOUPLED : 0) |
    (p.weightDecay !== 0 ? ADAM_WEIGHT_DECAY : 0);
  return [f(p.beta1), f(1 - p.beta1), f(p.beta2), f(1 - p.beta2), f(p.eps), f(p.weightDecay), f(1 - p.lr * p.weightDecay), f(-(p.lr / bc1)), f(bc2s), flags];
}

/** Tensors an overlap check takes (the index rides in the low bits of its sort key). */
const MAX_OVERLAP_TENSORS = 2 ** 20;

/**
 * Whether any two of `tensors` (contiguous) share memory: their byte ranges sorted by start, neighbours
 * compared. The sort is a typed array's own (no comparator calls: this runs on every optimizer step, too
 * rarely for V8 to optimise a comparator soon): key = start * 2^20 + index, exact in float64 (addresses
 * < 2^32), equal starts in input order as a stable sort leaves them.
 */
function anyOverlap(ctx: NativeContext, tensors: readonly KernelTensor[]): boolean {
  const n = tensors.length;
  if (n > MAX_OVERLAP_TENSORS) return true; // (not checked: the caller falls back)
  const keys = new Float64Array(n);
  const ends = new Float64Array(n);
  let m = 0; // nonempty ranges (an empty tensor shares no memory)
  for (let i = 0; i < n; i++) {
    const t = tensors[i]!;
    const bytes = numel(t.shape) * t.dtype.itemsize;
    if (bytes === 0) continue;
    const a = ctx.address(t);
    keys[m++] = a * MAX_OVERLAP_TENSORS + i;
    ends[i] = a + bytes;
  }
  const sorted = keys.subarray(0, m).sort();
  let prevEnd = -1;
  for (let j = 0; j < m; j++) {
    const start = Math.floor(sorted[j]! / MAX_OVERLAP_TENSORS);
    if (j > 0 && start < prevEnd) return true;
    prevEnd = ends[sorted[j]! - start * MAX_OVERLAP_TENSORS]!;
  }
  return false;
}

const adamUpdate: NativeKernel<'adamUpdate'> = (ctx, inputs, outputs, p) => {
  const [w, g, m, v] = inputs;
  let k = 4;
  const vmax = p.amsgrad ? inputs[k++] : undefined;
  const stepT = p.stepInput ? inputs[k++] : undefined;
  const found = p.foundInfInput ? inputs[k++] : undefined;
  if (!w || !g || !m || !v || (p.amsgrad && !vmax) || (p.stepInput && !stepT) || (p.foundInfInput && !found)) return false;
  const wf = fmtOf(w.dtype);
  const gf = fmtOf(g.dtype);
  const kernel = `adam_${wf}_${gf}`;
  if (!wf || !gf || !ctx.pool.hasKernel(kernel)) return false;
  const updated = [w, m, v, ...(vmax ? [vmax] : [])];
  if (outputs.length !== updated.length || !outputs.every((o, i) => sameView(o, updated[i]!))) return false;
  const tensors = [w, g, m, v, ...(vmax ? [vmax] : [])];
  if (!tensors.every(contiguous) || !outputs.every(contiguous)) return false;
  if ([m, v, ...(vmax ? [vmax] : [])].some((t) => t.dtype.name !== 'float32')) return false;
  const n = numel(w.shape);
  if (tensors.some((t) => numel(t.shape) !== n)) return false;
  for (let i = 0; i < tensors.length; i++) {
    for (let j = i + 1; j < tensors.length; j++) if (overlap(tensors[i]!, tensors[j]!)) return false;
  }
  if (found && ctx.readScalar(found) !== 0) return true; // skipped: the outputs are the inputs' own views
  if (n === 0) return true;
  const scalars = adamScalars(ctx, p, stepT);
  const sw = w.dtype.itemsize;
  const sg = g.dtype.itemsize;
  const pw = ctx.address(w);
  const pg = ctx.address(g);
  const pm = ctx.address(m);
  const pv = ctx.address(v);
  const pvmax = vmax ? ctx.address(vmax) : 0;
  const parts = ctx.pool.split(n, MIN_ELEMENTS_PER_PART, 16);
  ctx.pool.run(kernel, parts.map(([u0, u1]) => [pw + u0 * sw, pg + u0 * sg, pm + u0 * 4, pv + u0 * 4, vmax ? pvmax + u0 * 4 : 0, u1 - u0, ...scalars]));
  return true;
};

/**
 * adamUpdateMulti: the k tensors' elements as one range split across the threads, each part one
 * `adam_multi_<wfmt>_<gfmt>` call over a table of (w, g, m, v, vmax, n) records in the heap; one
 * parameter and one gradient format for all k (else the reference runs). Same conditions as
 * adamUpdate per tensor, and no two of the 4k (5k) tensors may share memory.
 */
const adamUpdateMulti: NativeKernel<'adamUpdateMulti'> = (ctx, inputs, outputs, p) => {
  const k = p.count;
  const lists = p.amsgrad ? 5 : 4;
  if (!Number.isInteger(k) || k < 1 || inputs.length !== lists * k + (p.stepInput ? 1 : 0) + (p.foundInfInput ? 1 : 0)) return false;
  if (outputs.length !== (lists - 1) * k) return false;
  const stepT = p.stepInput ? inputs[lists * k] : undefined;
  const found = p.foundInfInput ? inputs[inputs.length - 1] : undefined;
  const own = inputs.slice(0, lists * k);
  const w0 = own[0]!;
  const g0 = own[k]!;
  const wf = fmtOf(w0.dtype);
  const gf = fmtOf(g0.dtype);
  const kernel = `adam_multi_${wf}_${gf}`;
  if (!wf || !gf || !ctx.pool.hasKernel(kernel)) return false;
  if (!own.every(contiguous) || !outputs.every(contiguous)) return false;
  const sizes: number[] = [];
  for (let i = 0; i < k; i++) {
    const n = numel(own[i]!.shape);
    if (own[i]!.dtype !== w0.dtype || own[k + i]!.dtype !== g0.dtype) return false;
    for (let l = 1; l < lists; l++) if (numel(own[l * k + i]!.shape) !== n) return false;
    for (let l = 2; l < lists; l++) if (own[l * k + i]!.dtype.name !== 'float32') return false;
    // outputs: param, then the states, the inputs' own views
    if (!sameView(outputs[i]!, own[i]!)) return false;
    for (let l = 2; l < lists; l++) if (!sameView(outputs[(l - 1) * k + i]!, own[l * k + i]!)) return false;
    sizes.push(n);
  }
  if (anyOverlap(ctx, own)) return false;
  if (found && ctx.readScalar(found) !== 0) return true; // skipped: the outputs are the inputs' own views
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return true;
  if (total > 0x7fffffff) return false;
  const table = ctx.heap.cachedBlock(ADAM_TABLE, k * 24);
  const i32 = ctx.heap.views().i32;
  for (let i = 0, r = table >> 2; i < k; i++, r += 6) {
    i32[r] = ctx.address(own[i]!);
    i32[r + 1] = ctx.address(own[k + i]!);
    i32[r + 2] = ctx.address(own[2 * k + i]!);
    i32[r + 3] = ctx.address(own[3 * k + i]!);
    i32[r + 4] = p.amsgrad ? ctx.address(own[4 * k + i]!) : 0;
    i32[r + 5] = sizes[i]!;
  }
  const scalars = adamScalars(ctx, p, stepT);
  ctx.pool.run(kernel, ctx.pool.split(total, MIN_ELEMENTS_PER_PART, 16).map(([u0, u1]) => [table, k, u0, u1, ...scalars]));
  return true;
};

/**
 * sgdUpdateMulti (definition: src/backend/reference/kernels/optim.ts): the k tensors' elements as one
 * range split across the threads, each part one `sgd_multi_<wfmt>_<gfmt>` call over a table of
 * (w, g, buf, n, flags) records in the heap; one parameter and one gradient format for all k (else
 * the reference runs). Native when every parameter, gradient and buffer is contiguous, the buffers
 * float32, the outputs the inputs' own views, and no two of those 2k (3k) tensors, the isFirst flags
 * and the next flags share memory. The isFirst and foundInf scalars are read here (the backend is
 * synchronous): each tensor's first step is its own flags bit; a nonzero foundInf leaves the in-place
 * outputs as they are.
 */
const sgdUpdateMulti: NativeKernel<'sgdUpdateMulti'> = (ctx, inputs, outputs, p) => {
  const k = p.count;
  const momentum = p.momentum !== 0;
  const lists = 2 + (momentum ? 1 : 0) + (p.firstInput ? 1 : 0);
  if (!Number.isInteger(k) || k < 1 || inputs.length !== lists * k + (p.foundInfInput ? 1 : 0)) return false;
  if (p.flagOutput && !(p.firstInput && p.foundInfInput)) return false;
  if (outputs.length !== (1 + (momentum ? 1 : 0) + (p.flagOutput ? 1 : 0)) * k) return false;
  const wf = fmtOf(inputs[0]!.dtype);
  const gf = fmtOf(inputs[k]!.dtype);
  const kernel = `sgd_multi_${wf}_${gf}`;
  if (!wf || !gf || !ctx.pool.hasKernel(kernel)) return false;
  const updated = momentum ? 3 * k : 2 * k; // params, grads, [buffers]
  const total = sgdMultiElements(inputs, outputs, k, updated, momentum, p.flagOutput === true);
  if (total < 0 || total > 0x7fffffff) return false;
  const own = inputs.slice(0, lists * k);
  if (anyOverlap(ctx, p.flagOutput ? own.concat(outputs.slice(updated - k)) : own)) return false;
  // every isFirst flag read before any next flag is written
  const firsts = p.firstInput ? readFlags(ctx, inputs, updated, k) : null;
  const skipped = p.foundInfInput && ctx.readScalar(inputs[lists * k]!) !== 0;
  if (p.flagOutput) {
    const f32 = ctx.heap.views().f32;
    for (let i = 0; i < k; i++) f32[ctx.address(outputs[updated - k + i]!) >> 2] = skipped ? firsts![i]! : 0;
  }
  if (skipped) return true; // the outputs are the inputs' own views
  if (total === 0) return true;
  const table = sgdTable(ctx, inputs, k, momentum, firsts, p);
  const { 0: lr, 1: mom, 2: damp1, 3: wd } = sgdScalars(p);
  const parts = ctx.pool.split(total, MIN_ELEMENTS_PER_PART, 16);
  const args: number[][] = []; // pushed: packed in every V8 tier (src/shape/packed.ts)
  for (let j = 0; j < parts.length; j++) args.push([table, k, parts[j]![0], parts[j]![1], lr, mom, damp1, wd]);
  ctx.pool.run(kernel, args);
  return true;
};

/**
 * sgdUpdateMulti's layout checks: the parameters of one dtype, the gradients of another, each
 * gradient (and buffer, float32) of its parameter's size, everything contiguous, the parameter and
 * buffer outputs the inputs' own views, the next flags (if any) contiguous float32. Returns the
 * parameters' total element count, or -1 where the reference must run.
 */
function sgdMultiElements(inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], k: number, updated: number, momentum: boolean, flagOutput: boolean): number {
  let total = 0;
  const wd = inputs[0]!.dtype;
  const gd = inputs[k]!.dtype;
  for (let i = 0; i < k; i++) {
    const w = inputs[i]!;
    const g = inputs[k + i]!;
    const n = numel(w.shape);
    total += n;
    if (w.dtype !== wd || g.dtype !== gd || numel(g.shape) !== n || !contiguous(w) || !contiguous(g) || !sameView(outputs[i]!, w)) return -1;
    if (momentum) {
      const b = inputs[2 * k + i]!;
      if (b.dtype.name !== 'float32' || numel(b.shape) !== n || !contiguous(b) || !sameView(outputs[k + i]!, b)) return -1;
    }
    if (flagOutput) {
      const f = outputs[updated - k + i]!;
      if (f.dtype.name !== 'float32' || numel(f.shape) !== 1 || !contiguous(f)) return -1;
    }
  }
  return total;
}

/**
 * sgdUpdateMulti's table in the heap: per tensor its (w, g, buf, n, flags) record (its first step
 * from its own isFirst flag where there are flags). A function of its own: the once-per-step handler
 * then holds no loop over the tensors (V8 compiles just this loop when it gets hot; bench/README.md,
 * "warm-up").
 */
function sgdTable(ctx: NativeContext, inputs: readonly KernelTensor[], k: number, momentum: boolean, firsts: Float64Array | null, p: SgdUpdateParams): number {
  const table = ctx.heap.cachedBlock(SGD_TABLE, k * 20);
  const i32 = ctx.heap.views().i32;
  for (let i = 0, r = table >> 2; i < k; i++, r += 5) {
    i32[r] = ctx.address(inputs[i]!);
    i32[r + 1] = ctx.address(inputs[k + i]!);
    i32[r + 2] = momentum ? ctx.address(inputs[2 * k + i]!) : 0;
    i32[r + 3] = numel(inputs[i]!.shape);
    i32[r + 4] = sgdFlags(p, firsts ? firsts[i] !== 0 : p.first);
  }
  return table;
}

/** The k isFirst flags (inputs from `at`) as numbers. */
function readFlags(ctx: NativeContext, inputs: readonly KernelTensor[], at: number, k: number): Float64Array {
  const out = new Float64Array(k);
  for (let i = 0; i < k; i++) out[i] = ctx.readScalar(inputs[at + i]!);
  return out;
}

/**
 * ampUnscale over [grad_1..k, invScale, foundInf] (outputs: the same views): each contiguous
 * float gradient unscaled in place by `amp_unscale_<fmt>` on the calling thread (a GPT's ~1M
 * gradient elements take well under a millisecond; one call instead of six ops per gradient),
 * foundInf set to 1 when any incoming element was inf or NaN.
 */
const ampUnscale: NativeKernel<'ampUnscale'> = (ctx, inputs, outputs) => {
  const k = inputs.length - 2;
  const inv = inputs[k];
  const found = inputs[k + 1];
  if (k < 1 || !inv || !found || outputs.length !== k + 1 || !sameView(outputs[k]!, found)) return false;
  if (inv.dtype.name !== 'float32' || found.dtype.name !== 'float32' || !contiguous(found)) return false;
  const grads = inputs.slice(0, k);
  if (!unscalable(grads, outputs) || anyOverlap(ctx, grads)) return false;
  if (unscaleAll(ctx, grads, Math.fround(ctx.readScalar(inv)))) ctx.heap.views().f32[ctx.address(found) >> 2] = 1;
  return true;
};

/*
 * ampUnscale runs once per step; its loops over the gradients live in these two small functions, so
 * that V8 compiles just them when they get hot in a process's first steps, not the whole handler
 * with everything inlined into it (bench/README.md, "warm-up").
 */

/** Every gradient a contiguous float tensor written in place (its output the same view). */
function unscalable(grads: readonly KernelTensor[], outputs: readonly KernelTensor[]): boolean {
  for (let i = 0; i < grads.length; i++) if (!sameView(outputs[i]!, grads[i]!) || !fmtOf(grads[i]!.dtype) || !contiguous(grads[i]!)) return false;
  return true;
}

/** Each gradient times `scale` in place; whether any incoming element was inf or NaN. */
function unscaleAll(ctx: NativeContext, grads: readonly KernelTensor[], scale: number): boolean {
  let bad = false;
  for (let i = 0; i < grads.length; i++) {
    const g = grads[i]!;
    const n = numel(g.shape);
    if (n > 0 && ctx.pool.call(`amp_unscale_${fmtOf(g.dtype)}`, ctx.address(g), n, scale) !== 0) bad = true;
  }
  return bad;
}

/**
 * sumSquares over [x_1..k] into a float32 [k]: each contiguous float input by `sum_squares_<fmt>`
 * on the calling thread (float64 block sums), one call for the whole gradient list.
 */
const sumSquares: NativeKernel<'sumSquares'> = (ctx, inputs, [out]) => {
  if (!out || out.dtype.name !== 'float32' || !contiguous(out) || numel(out.shape) !== inputs.length) return false;
  if (!inputs.every((x) => fmtOf(x.dtype) && contiguous(x) && !overlap(x, out))) return false;
  const f32 = ctx.heap.views().f32;
  const o = ctx.address(out) >> 2;
  inputs.forEach((x, i) => {
    const n = numel(x.shape);
    f32[o + i] = n > 0 ? (ctx.pool.call(`sum_squares_${fmtOf(x.dtype)}`, ctx.address(x), n) as number) : 0;
  });
  return true;
};

/** The handlers of this file by kernel name (merged into NATIVE_KERNELS by native.ts). */
export const OPTIM_KERNELS = { sgdUpdateMulti, adamUpdate, adamUpdateMulti, ampUnscale, sumSquares } satisfies NativeKernels;
