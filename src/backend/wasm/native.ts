/**
 * The wasm backend's native kernels: for each kernel name, a handler that checks whether the call
 * is a case the wasm module covers (dtypes, layout, sizes), and if so runs it, split across the
 * pool's threads, and returns true. Returning false, before touching any memory, lets the backend
 * run the reference kernel instead (src/backend/wasm/index.ts), so every kernel works everywhere
 * and native coverage can grow case by case.
 *
 * Covered here: add/sub/mul/div (float32, float16, bfloat16; add/sub also int32; add also float32 +
 * float16 / bfloat16 into float32; the rows layout of
 * native_rows.ts: contiguous, broadcast rows and channels, scalar operands, 0-dim tensors), relu, reluBackward,
 * copy (memcpy, strided gather of any dtype with register-blocked transposes, casts between the
 * three float formats, also from strided views, and into them from bool / int32 / float64), fill
 * (every dtype), sum/mean (over the last axes, the leading axes, all but a middle axis, or
 * everything) and the fused SGD update `sgdUpdate`; comparisons, logical ops, isfinite, where,
 * neg, abs, softmax / logSoftmax and their gradients, gather, scatterAdd and divBackwardDivisor in
 * native_more.ts; bmm, conv2d, conv2dBackwardInput, conv2dBackwardWeight, maxPool2d and
 * maxPool2dBackward in native_linalg.ts; nllLossFused / nllLossBackward in native_nll.ts; adaptiveAvgPool2d and its gradient in native_pool.ts
 * (layout helpers in layout.ts and native_rows.ts).
 *
 * A LeNet or ResNet training step (fp32, fp16 with loss scaling, bf16) runs every kernel natively. Calls are
 * split into thread parts only with ~50 us of work per part (native_rows.ts: MIN_ELEMENTS_PER_PART,
 * COST): smaller ones run on the calling thread. (That bound dates from when a part cost a 20-60 us
 * worker wake-up; with the pool's timed spin a part costs 1-4 us while the worker spins.)
 */
import type { KernelTensor } from '../backend.js';
import type { KernelName, KernelParams } from '../kernels.js';
import { encoderFor } from '../reference/codec.js';
import { numel } from '../../shape/strides.js';
import { mapPacked } from '../../shape/packed.js';
import { collapse, contiguous, fmtOf, isScalar, unsafeAlias } from './layout.js';
import type { KernelPool } from './pool.js';
import type { WasmHeap } from './memory.js';
import { LINALG_KERNELS } from './native_linalg.js';
import { MORE_KERNELS } from './native_more.js';
import { COST, elementParts as splitElements, minPerPart, rowsLayout } from './native_rows.js';
import { gather, withContiguousOperands } from './native_gather.js';
import { UNARY_KERNELS } from './native_unary.js';
import { OPTIM_KERNELS, sgdFlags, sgdScalars } from './native_optim.js';
import { ATTENTION_KERNELS } from './native_attention.js';
import { LSTM_KERNELS } from './native_lstm.js';
import { MATH_KERNELS } from './native_math.js';
import { POOL_KERNELS } from './native_pool.js';
import { BATCH_NORM_KERNELS } from './native_batch_norm.js';
import { LAYER_NORM_KERNELS } from './native_layer_norm.js';
import { NLL_KERNELS } from './native_nll.js';
import { fullSum, sumCost as sumCostOf } from './native_sum.js';

export { collapse, fmtOf } from './layout.js';

export interface NativeContext {
  readonly pool: KernelPool;
  readonly heap: WasmHeap;
  /** Byte address of element `t.offset + index` of the tensor's buffer. */
  address(t: KernelTensor, index?: number): number;
  /** The element at `t.offset` as a number (16-bit floats widened). */
  readScalar(t: KernelTensor): number;
}

/**
 * A native kernel: runs the call and returns true, or returns false (having written nothing) for a
 * case it does not cover, and the reference kernel runs instead.
 */
export type NativeKernel<K extends KernelName = KernelName> = (
  ctx: NativeContext,
  inputs: readonly KernelTensor[],
  outputs: readonly KernelTensor[],
  params: KernelParams<K>,
) => boolean;

/** Native handlers by kernel name, each taking its kernel's params (src/backend/kernels.ts). */
export type NativeKernels = { readonly [K in KernelName]?: NativeKernel<K> };

/** Parts splitting n contiguous elements of a kernel of relative `cost` (native_rows.ts). */
function elementParts(ctx: NativeContext, n: number, cost = 1): [number, number][] {
  return splitElements(ctx.pool, n, cost);
}

/** Relative cost per element of arithmetic in a format (two loads, one store, conversions). */
const ARITH_COST = { f32: COST.light, f16: COST.half, bf16: COST.cast, i32: COST.light } as const;

/* ------------------------------------------------------------------ binary */

/** The storage format of a binary kernel's output: the float formats, and int32 for add / sub (int_arith.ts). */
function binaryFormat(op: 'add' | 'sub' | 'mul' | 'div', o: KernelTensor): keyof typeof ARITH_COST | undefined {
  if (o.dtype.name === 'int32') return op === 'add' || op === 'sub' ? 'i32' : undefined;
  return fmtOf(o.dtype);
}

/**
 * float32 out = a + b with one operand float32 and the other float16 / bfloat16, both of out's shape
 * (the op layer's mixed-dtype add, src/ops/elementwise.ts): add_f32_<fmt> widens the 16-bit operand
 * in registers. Strided operands are gathered first; any other mix is not covered.
 */
function mixedAdd(ctx: NativeContext, a: KernelTensor, b: KernelTensor, o: KernelTensor, n: number, self: NativeKernel<'add' | 'sub' | 'mul' | 'div'>): boolean {
  const wide = a.dtype === o.dtype ? a : b;
  const half = wide === a ? b : a;
  const fmt = fmtOf(half.dtype);
  if (wide.dtype !== o.dtype || (fmt !== 'f16' && fmt !== 'bf16')) return false;
  if (!contiguous(a) || !contiguous(b)) return withContiguousOperands(ctx, [a, b], o.shape, (xs) => self(ctx, xs, [o], {}), contiguous);
  const pw = ctx.address(wide);
  const ph = ctx.address(half);
  const po = ctx.address(o);
  ctx.pool.run(`add_f32_${fmt}`, mapPacked(elementParts(ctx, n, ARITH_COST.f16), ({ 0: u0, 1: u1 }) => [pw + u0 * 4, ph + u0 * 2, po + u0 * 4, u1 - u0]));
  return true;
}

function binary(op: 'add' | 'sub' | 'mul' | 'div'): NativeKernel<typeof op> {
  const self: NativeKernel<typeof op> = (ctx, { 0: a, 1: b }, { 0: o }) => {
    if (!a || !b || !o) return false;
    const fmt = binaryFormat(op, o);
    if (!fmt || !contiguous(o)) return false;
    const n = numel(o.shape);
    if (n === 0) return true;
    if (unsafeAlias(a, o) || unsafeAlias(b, o)) return false;
    const sa = isScalar(a);
    const sb = isScalar(b);
    const size = o.dtype.itemsize;
    const po = ctx.address(o);
    if (sa !== sb) {
      // one operand is a scalar (any float format: PyTorch's float32 "opmath" scalar of 16-bit ops)
      const { 0: t, 1: s } = sb ? [a, b] : [b, a];
      if (t.dtype !== o.dtype || (fmt === 'i32' ? s.dtype !== o.dtype : !fmtOf(s.dtype))) return false;
      const L = rowsLayout(o.shape, [t]);
      if (!L || L.innerStride[0] !== 1) return false;
      const value = ctx.readScalar(s);
      const swap = sa ? 1 : 0;
      const pt = ctx.address(t);
      const kernel = `${op}s_${fmt}`;
      if (L.rows === 1) {
        ctx.pool.run(kernel, mapPacked(elementParts(ctx, n, ARITH_COST[fmt]), ({ 0: u0, 1: u1 }) => [pt + u0 * size, value, po + u0 * size, 0, 1, 1, u1 - u0, 0, 0, swap]));
      } else {
        const { 0: s0, 1: s1 } = L.outer[0]!;
        const parts = ctx.pool.split(L.rows, Math.ceil(minPerPart(ARITH_COST[fmt]) / L.inner));
        ctx.pool.run(kernel, mapPacked(parts, ({ 0: r0, 1: r1 }) => [pt, value, po, r0, r1, L.n1, L.inner, s0, s1, swap]));
      }
      return true;
    }
    if (a.dtype !== o.dtype || b.dtype !== o.dtype) return op === 'add' && fmt === 'f32' ? mixedAdd(ctx, a, b, o, n, self) : false;
    const L = rowsLayout(o.shape, [a, b]);
    if (!L) return withContiguousOperands(ctx, [a, b], o.shape, (xs) => self(ctx, xs, [o], {}));
    const pa = ctx.address(a);
    const pb = ctx.address(b);
    const kernel = `${op}_${fmt}`;
    const { 0: ai, 1: bi } = L.innerStride as [number, number];
    if (L.rows === 1) {
      // both contiguous (a broadcast operand over a single row would be a scalar)
      ctx.pool.run(kernel, mapPacked(elementParts(ctx, n, ARITH_COST[fmt]), ({ 0: u0, 1: u1 }) => {
        const off = u0 * size;
        return [pa + off * ai, pb + off * bi, po + off, 0, 1, 1, u1 - u0, 0, 0, ai, 0, 0, bi];
      }));
    } else {
      const { 0: as0, 1: as1 } = L.outer[0]!;
      const { 0: bs0, 1: bs1 } = L.outer[1]!;
      const parts = ctx.pool.split(L.rows, Math.ceil(minPerPart(ARITH_COST[fmt]) / L.inner));
      ctx.pool.run(kernel, mapPacked(parts, ({ 0: r0, 1: r1 }) => [pa, pb, po, r0, r1, L.n1, L.inner, as0, as1, ai, bs0, bs1, bi]));
    }
    return true;
  };
  return self;
}

/* ------------------------------------------------------------------ unary */

const relu: NativeKernel = (ctx, { 0: x }, { 0: o }) => {
  if (!x || !o) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt || x.dtype !== o.dtype || !contiguous(x) || !contiguous(o) || unsafeAlias(x, o)) return false;
  const size = o.dtype.itemsize;
  const px = ctx.address(x);
  const po = ctx.address(o);
  ctx.pool.run(`relu_${fmt}`, mapPacked(elementParts(ctx, numel(o.shape), fmt === 'f32' ? COST.light : COST.bits), ({ 0: u0, 1: u1 }) => [px + u0 * size, po + u0 * size, u1 - u0]));
  return true;
};

const reluBackward: NativeKernel = (ctx, { 0: x, 1: g }, { 0: o }) => {
  if (!x || !g || !o) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt || x.dtype !== o.dtype || g.dtype !== o.dtype) return false;
  if (!contiguous(x) || !contiguous(g) || !contiguous(o) || unsafeAlias(x, o) || unsafeAlias(g, o)) return false;
  const size = o.dtype.itemsize;
  const px = ctx.address(x);
  const pg = ctx.address(g);
  const po = ctx.address(o);
  ctx.pool.run(`reluBackward_${fmt}`, mapPacked(elementParts(ctx, numel(o.shape), fmt === 'f32' ? COST.light : COST.bits), ({ 0: u0, 1: u1 }) => [px + u0 * size, pg + u0 * size, po + u0 * size, u1 - u0]));
  return true;
};

/**
 * copy (also cast and contiguous): a fill for a broadcast scalar, memcpy, strided gather, or a
 * cast between float formats.
 */
const copy: NativeKernel = (ctx, { 0: x }, { 0: o }) => {
  if (!x || !o || !contiguous(o)) return false;
  const n = numel(o.shape);
  if (n === 0) return true;
  if (unsafeAlias(x, o)) return false;
  if (isScalar(x)) {
    // a broadcast scalar (a JS number's cast, an expand): a fill with its value
    fillWith(ctx, o, ctx.readScalar(x));
    return true;
  }
  const px = ctx.address(x);
  const po = ctx.address(o);
  if (x.dtype === o.dtype) {
    const size = o.dtype.itemsize;
    if (contiguous(x)) {
      if (px !== po) ctx.heap.views().u8.copyWithin(po, px, px + n * size);
      return true;
    }
    return gather(ctx, x, px, po, o.shape);
  }
  const from = fmtOf(x.dtype);
  const to = fmtOf(o.dtype);
  if (!to) return false;
  const other = CAST_SOURCE[x.dtype.name];
  if (other) {
    // bool / int32 / float64 into a float format: through float32, as the reference codec rounds
    if (!contiguous(x)) return false;
    const si = x.dtype.itemsize;
    const so = o.dtype.itemsize;
    ctx.pool.run(`castto_${other}_${to}`, mapPacked(elementParts(ctx, n, to === 'f32' ? COST.light : COST.cast), ({ 0: u0, 1: u1 }) => [px + u0 * si, po + u0 * so, u1 - u0]));
    return true;
  }
  if (!from) return false;
  const si = x.dtype.itemsize;
  const so = o.dtype.itemsize;
  const cost = from === 'f16' || to === 'f16' ? COST.cast : COST.light;
  const cast = (src: number) => ctx.pool.run(`cast_${from}_${to}`, mapPacked(elementParts(ctx, n, cost), ({ 0: u0, 1: u1 }) => [src + u0 * si, po + u0 * so, u1 - u0]));
  if (contiguous(x)) {
    cast(px);
    return true;
  }
  // a strided cast (the transposed 16-bit gradient of a linear layer's float32 weight): gather in
  // the source format into scratch, then cast (both exact, so the result is the reference's)
  if (collapse(o.shape, [x.strides]).dims.length > 4) return false;
  ctx.heap.withScratch(n * si, (tmp) => {
    gather(ctx, x, px, tmp, o.shape);
    cast(tmp);
  });
  return true;
};

/** Source dtypes of the castto_<src>_<fmt> kernels (into float32 / float16 / bfloat16). */
const CAST_SOURCE: Partial<Record<string, string>> = { bool: 'u8', int32: 'i32', float64: 'f64' };

const scratch = new DataView(new ArrayBuffer(8));

/** Fill contiguous `o` with `value` in o's storage format (rounded once, as the reference encoder does). */
function fillWith(ctx: NativeContext, o: KernelTensor, value: number): void {
  const n = numel(o.shape);
  const size = o.dtype.itemsize;
  const po = ctx.address(o);
  let kernel: string;
  let bits: number[];
  switch (o.dtype.name) {
    case 'float32':
      scratch.setFloat32(0, value, true);
      kernel = 'fill32';
      bits = [scratch.getUint32(0, true)];
      break;
    case 'float64':
      scratch.setFloat64(0, value, true);
      kernel = 'fill64';
      bits = [scratch.getUint32(0, true), scratch.getUint32(4, true)];
      break;
    default:
      kernel = `fill${size * 8}`;
      bits = [encoderFor(o.dtype)(value)];
  }
  ctx.pool.run(kernel, mapPacked(elementParts(ctx, n, COST.bits), ({ 0: u0, 1: u1 }) => [po + u0 * size, u1 - u0, ...bits]));
}

const fill: NativeKernel<'fill'> = (ctx, _inputs, { 0: o }, params) => {
  if (!o || !contiguous(o)) return false;
  if (numel(o.shape) > 0) fillWith(ctx, o, params.value);
  return true;
};

/* ------------------------------------------------------------------ reductions */

/**
 * sum (and mean: sum with `scale`) of float32/float16/bfloat16, accumulated in float64: when the
 * reduced dimensions are [leading] [kept] [trailing] in that order (any of them absent).
 */
const sum: NativeKernel<'sum'> = (ctx, { 0: x }, { 0: o }, params) => {
  if (!x || !o) return false;
  const fmt = fmtOf(x.dtype);
  if (!fmt || o.dtype !== x.dtype || !contiguous(x) || !contiguous(o) || unsafeAlias(x, o)) return false;
  const n = numel(x.shape);
  if (n === 0) return false;
  const dims = new Set(params.dims);
  const scale = params.scale ?? 1;
  const seq: { size: number; reduced: boolean }[] = [];
  x.shape.forEach((d, i) => {
    if (d === 1) return;
    const reduced = dims.has(i);
    const last = seq[seq.length - 1];
    if (last && last.reduced === reduced) last.size *= d;
    else seq.push({ size: d, reduced });
  });
  let k = 0;
  let A = 1;
  let B = 1;
  let C = 1;
  if (seq[k]?.reduced) A = seq[k++]!.size;
  if (seq[k] && !seq[k]!.reduced) B = seq[k++]!.size;
  if (seq[k]?.reduced) C = seq[k++]!.size;
  if (k !== seq.length) return false;
  if (numel(o.shape) !== B) return false;
  const px = ctx.address(x);
  const po = ctx.address(o);
  const sumCost = sumCostOf(fmt);
  if (B === 1) {
    ctx.heap.withScratch(8, (acc) => {
      const total = fullSum(ctx, fmt, px, n);
      ctx.heap.views().f64[acc / 8] = total;
      ctx.pool.call(`finish_${fmt}`, acc, po, 1, scale);
    });
    return true;
  }
  if (B < SUM_FEW_OUTPUTS && C >= 8 && A >= 16) {
    // few outputs over many rows (a convolution's bias gradient): the rows in fixed chunks, so
    // that threads share the work; each output's partial sums added in order (the grouping is a
    // function of the shape alone: the same bits for any thread count)
    const nk = Math.min(SUM_ROW_CHUNKS, A >> 3);
    const chunk = Math.ceil(A / nk);
    const units = B * Math.ceil(A / chunk);
    const per = units / B;
    ctx.heap.withScratch(units * 8, (acc) => {
      const parts = ctx.pool.split(units, Math.ceil(minPerPart(sumCost) / (chunk * C)));
      ctx.pool.run(`sum3c_${fmt}`, mapPacked(parts, ({ 0: u0, 1: u1 }) => [px, acc, u0, u1, A, B, C, chunk]));
      const f64 = ctx.heap.views().f64;
      const base = acc / 8;
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let k = 0; k < per; k++) s += f64[base + b * per + k]!;
        f64[base + b] = s;
      }
      ctx.pool.call(`finish_${fmt}`, acc, po, B, scale);
    });
    return true;
  }
  ctx.heap.withScratch(B * 8, (acc) => {
    const parts = ctx.pool.split(B, Math.ceil(minPerPart(sumCost) / (A * C)), 8);
    ctx.pool.run(`sum3_${fmt}`, mapPacked(parts, ({ 0: b0, 1: b1 }) => [px, acc, b0, b1, A, B, C]));
    ctx.pool.call(`finish_${fmt}`, acc, po, B, scale);
  });
  return true;
};

/** sum3 outputs below which the reduced rows are cut into chunks (threads split the chunks). */
const SUM_FEW_OUTPUTS = 16;
/** Chunks the rows are cut into then (at most; at least 8 rows each). */
const SUM_ROW_CHUNKS = 8;

/* ------------------------------------------------------------------ SGD */

// The definition of sgdUpdate lives with the other optimizer kernels in the reference table
// (src/backend/reference/kernels/optim.ts); re-exported under its old name.
export { sgdUpdate as sgdUpdateReference } from '../reference/kernels/optim.js';

/**
 * sgdUpdate (definition: src/backend/reference/kernels/optim.ts): inputs [param, grad] or
 * [param, grad, momentumBuffer], then the optional isFirst and foundInf scalars; outputs [param] or
 * [param, momentumBuffer] (the same views: updated in place), then the next isFirst flag if
 * params.flagOutput. Native when everything is contiguous,
 * param float32/float16/bfloat16, grad any of those, buffer float32. A nonzero foundInf leaves the
 * in-place outputs as they are.
 */
const sgdUpdate: NativeKernel<'sgdUpdate'> = (ctx, inputs, { 0: ow, 1: obuf, 2: oflag }, p) => {
  const hasMomentum = p.momentum !== 0;
  const { 0: w, 1: g } = inputs;
  let k = 2;
  const buf = hasMomentum ? inputs[k++] : undefined;
  const isFirst = p.firstInput ? inputs[k++] : undefined;
  const foundInf = p.foundInfInput ? inputs[k++] : undefined;
  if (!w || !g || !ow) return false;
  if ((p.firstInput && !isFirst) || (p.foundInfInput && !foundInf)) return false;
  const wf = fmtOf(w.dtype);
  const gf = fmtOf(g.dtype);
  const kernel = `sgd_${wf}_${gf}`;
  if (!wf || !gf || !ctx.pool.hasKernel(kernel)) return false;
  if (hasMomentum && (!buf || !obuf || buf.dtype.name !== 'float32' || obuf.buffer !== buf.buffer || obuf.offset !== buf.offset || !contiguous(buf) || !contiguous(obuf))) return false;
  if (ow.buffer !== w.buffer || ow.offset !== w.offset || !contiguous(w) || !contiguous(ow) || !contiguous(g)) return false;
  const n = numel(w.shape);
  if (numel(g.shape) !== n || (hasMomentum && numel(buf!.shape) !== n)) return false;
  if (unsafeAlias(g, ow) || (hasMomentum && (unsafeAlias(g, obuf!) || unsafeAlias(buf!, ow) || unsafeAlias(w, obuf!)))) return false;
  if (p.flagOutput && (!oflag || !isFirst || !foundInf || oflag.dtype.name !== 'float32' || unsafeAlias(isFirst, oflag))) return false;
  const skipped = foundInf !== undefined && ctx.readScalar(foundInf) !== 0;
  if (oflag) fillWith(ctx, oflag, skipped ? ctx.readScalar(isFirst!) : 0);
  if (skipped) return true; // the outputs are the inputs' own views
  const flags = sgdFlags(p, p.firstInput ? ctx.readScalar(isFirst!) !== 0 : p.first);
  const pw = ctx.address(w);
  const pg = ctx.address(g);
  const pb = hasMomentum ? ctx.address(buf!) : 0;
  const sw = w.dtype.itemsize;
  const sg = g.dtype.itemsize;
  const { 0: lr, 1: mom, 2: damp1, 3: wd } = sgdScalars(p);
  ctx.pool.run(kernel, mapPacked(elementParts(ctx, n), ({ 0: u0, 1: u1 }) => [pw + u0 * sw, pg + u0 * sg, pb + u0 * 4, u1 - u0, lr, mom, damp1, wd, flags]));
  return true;
};

/**
 * The kernels this backend runs natively, by name (typed against the contract: an unknown name or
 * a handler taking other params is a compile error). Every other kernel, and every call a handler
 * declines, runs the reference kernel over views of the wasm memory (index.ts).
 */
export const NATIVE_KERNELS = {
  add: binary('add'),
  sub: binary('sub'),
  mul: binary('mul'),
  div: binary('div'),
  relu,
  reluBackward,
  copy,
  fill,
  sum,
  sgdUpdate,
  ...LINALG_KERNELS,
  ...MORE_KERNELS,
  ...UNARY_KERNELS,
  ...OPTIM_KERNELS,
  ...ATTENTION_KERNELS,
  ...LSTM_KERNELS,
  ...MATH_KERNELS,
  ...POOL_KERNELS,
  ...BATCH_NORM_KERNELS,
  ...LAYER_NORM_KERNELS,
  ...NLL_KERNELS,
} satisfies NativeKernels;
