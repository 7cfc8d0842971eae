/**
 * The wasm backend's native kernels: for each kernel name, a handler that checks whether the call
 * is a case the wasm module covers (dtypes, layout, sizes), and if so runs it, split across the
 * pool's threads, and returns true. Returning false, before touching any memory, lets the backend
 * run the reference kernel instead (src/backend/wasm/index.ts), so every kernel works everywhere
 * and native coverage can grow case by case.
 *
 * Covered here: add/sub/mul/div (float32, float16, bfloat16; contiguous, broadcast rows and
 * channels, scalar operands), relu, reluBackward, copy (memcpy, strided gather of any dtype, casts
 * between the three float formats, also from strided views), fill (every dtype), sum/mean (over
 * the last axes, the leading axes, all but a middle axis, or everything) and the fused SGD update
 * `sgdUpdate`; bmm, conv2d, conv2dBackwardInput, conv2dBackwardWeight, maxPool2d and
 * maxPool2dBackward in native_linalg.ts (layout helpers in layout.ts).
 */
import type { KernelParams, KernelTensor } from '../backend.js';
import type { SGDOptions } from '../../optim/sgd.js';
import { contiguousStrides, encoderFor, numel } from '../reference/codec.js';
import { collapse, contiguous, fmtOf, isScalar, unsafeAlias } from './layout.js';
import type { RefKernel } from '../reference/kernels/types.js';
import type { KernelPool } from './pool.js';
import type { WasmHeap } from './memory.js';
import { LINALG_KERNELS } from './native_linalg.js';

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
export type NativeKernel = (
  ctx: NativeContext,
  inputs: readonly KernelTensor[],
  outputs: readonly KernelTensor[],
  params: KernelParams,
) => boolean;

/** Elements per thread below which splitting a memory-bound kernel costs more than it saves. */
export const MIN_ELEMENTS_PER_PART = 32768;
/** Elements per chunk of a full sum (fixed, so results do not depend on the thread count). */
export const SUM_CHUNK = 16384;

/**
 * The rows layout of the binary kernels: output [rows, inner] contiguous, row r = (r / n1, r % n1)
 * over at most two outer dimensions, each operand with outer strides (s0, s1) and an inner
 * stride 0 or 1.
 */
interface Rows {
  rows: number;
  n1: number;
  inner: number;
  outer: [number, number][];
  innerStride: number[];
}

function rowsLayout(shape: readonly number[], operands: readonly KernelTensor[]): Rows | null {
  const c = collapse(shape, [contiguousStrides(shape), ...operands.map((t) => t.strides)]);
  let dims = c.dims;
  let strides = c.strides.slice(1);
  if (dims.length === 0) {
    dims = [1];
    strides = strides.map(() => [0]);
  }
  const r = dims.length;
  if (r > 3) return null;
  const inner = dims[r - 1]!;
  const innerStride = strides.map((s) => s[r - 1]!);
  if (innerStride.some((s) => s !== 0 && s !== 1)) return null;
  if (r === 1) return { rows: 1, n1: 1, inner, outer: strides.map(() => [0, 0]), innerStride };
  if (r === 2) return { rows: dims[0]!, n1: 1, inner, outer: strides.map((s) => [s[0]!, 0]), innerStride };
  return { rows: dims[0]! * dims[1]!, n1: dims[1]!, inner, outer: strides.map((s) => [s[0]!, s[1]!]), innerStride };
}

/** Parts splitting n contiguous elements (boundaries at multiples of 16 elements). */
function elementParts(ctx: NativeContext, n: number): [number, number][] {
  return ctx.pool.split(n, MIN_ELEMENTS_PER_PART, 16);
}

/* ------------------------------------------------------------------ binary */

function binary(op: 'add' | 'sub' | 'mul' | 'div'): NativeKernel {
  return (ctx, [a, b], [o]) => {
    if (!a || !b || !o) return false;
    const fmt = fmtOf(o.dtype);
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
      const [t, s] = sb ? [a, b] : [b, a];
      if (t.dtype !== o.dtype || !fmtOf(s.dtype)) return false;
      const L = rowsLayout(o.shape, [t]);
      if (!L || L.innerStride[0] !== 1) return false;
      const value = ctx.readScalar(s);
      const swap = sa ? 1 : 0;
      const pt = ctx.address(t);
      const kernel = `${op}s_${fmt}`;
      if (L.rows === 1) {
        ctx.pool.run(kernel, elementParts(ctx, n).map(([u0, u1]) => [pt + u0 * size, value, po + u0 * size, 0, 1, 1, u1 - u0, 0, 0, swap]));
      } else {
        const [s0, s1] = L.outer[0]!;
        const parts = ctx.pool.split(L.rows, Math.ceil(MIN_ELEMENTS_PER_PART / L.inner));
        ctx.pool.run(kernel, parts.map(([r0, r1]) => [pt, value, po, r0, r1, L.n1, L.inner, s0, s1, swap]));
      }
      return true;
    }
    if (a.dtype !== o.dtype || b.dtype !== o.dtype) return false;
    if (sa && sb) return false; // one element, or all broadcast: not worth a kernel
    const L = rowsLayout(o.shape, [a, b]);
    if (!L) return false;
    const pa = ctx.address(a);
    const pb = ctx.address(b);
    const kernel = `${op}_${fmt}`;
    const [ai, bi] = L.innerStride as [number, number];
    if (L.rows === 1) {
      // both contiguous (a broadcast operand over a single row would be a scalar)
      ctx.pool.run(kernel, elementParts(ctx, n).map(([u0, u1]) => {
        const off = u0 * size;
        return [pa + off * ai, pb + off * bi, po + off, 0, 1, 1, u1 - u0, 0, 0, ai, 0, 0, bi];
      }));
    } else {
      const [as0, as1] = L.outer[0]!;
      const [bs0, bs1] = L.outer[1]!;
      const parts = ctx.pool.split(L.rows, Math.ceil(MIN_ELEMENTS_PER_PART / L.inner));
      ctx.pool.run(kernel, parts.map(([r0, r1]) => [pa, pb, po, r0, r1, L.n1, L.inner, as0, as1, ai, bs0, bs1, bi]));
    }
    return true;
  };
}

/* ------------------------------------------------------------------ unary */

const relu: NativeKernel = (ctx, [x], [o]) => {
  if (!x || !o) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt || x.dtype !== o.dtype || !contiguous(x) || !contiguous(o) || unsafeAlias(x, o)) return false;
  const size = o.dtype.itemsize;
  const px = ctx.address(x);
  const po = ctx.address(o);
  ctx.pool.run(`relu_${fmt}`, elementParts(ctx, numel(o.shape)).map(([u0, u1]) => [px + u0 * size, po + u0 * size, u1 - u0]));
  return true;
};

const reluBackward: NativeKernel = (ctx, [x, g], [o]) => {
  if (!x || !g || !o) return false;
  const fmt = fmtOf(o.dtype);
  if (!fmt || x.dtype !== o.dtype || g.dtype !== o.dtype) return false;
  if (!contiguous(x) || !contiguous(g) || !contiguous(o) || unsafeAlias(x, o) || unsafeAlias(g, o)) return false;
  const size = o.dtype.itemsize;
  const px = ctx.address(x);
  const pg = ctx.address(g);
  const po = ctx.address(o);
  ctx.pool.run(`reluBackward_${fmt}`, elementParts(ctx, numel(o.shape)).map(([u0, u1]) => [px + u0 * size, pg + u0 * size, po + u0 * size, u1 - u0]));
  return true;
};

/**
 * copy (also cast and contiguous): a fill for a broadcast scalar, memcpy, strided gather, or a
 * cast between float formats.
 */
const copy: NativeKernel = (ctx, [x], [o]) => {
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
  if (!from || !to) return false;
  const si = x.dtype.itemsize;
  const so = o.dtype.itemsize;
  const cast = (src: number) => ctx.pool.run(`cast_${from}_${to}`, elementParts(ctx, n).map(([u0, u1]) => [src + u0 * si, po + u0 * so, u1 - u0]));
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

/** Gather the strided view `x` (at byte address px) into contiguous memory at `dst` (same format); false beyond 4 collapsed dims. */
function gather(ctx: NativeContext, x: KernelTensor, px: number, dst: number, shape: readonly number[]): boolean {
  const size = x.dtype.itemsize;
  const c = collapse(shape, [x.strides]);
  if (c.dims.length > 4) return false;
  const pad = 4 - c.dims.length;
  const d = [...new Array<number>(pad).fill(1), ...c.dims];
  const s = [...new Array<number>(pad).fill(0), ...c.strides[0]!];
  const rows = d[0]! * d[1]! * d[2]!;
  const parts = ctx.pool.split(rows, Math.ceil(MIN_ELEMENTS_PER_PART / d[3]!));
  ctx.pool.run(`gather${size * 8}`, parts.map(([r0, r1]) => [px, dst, r0, r1, d[1]!, d[2]!, d[3]!, s[0]!, s[1]!, s[2]!, s[3]!]));
  return true;
}

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
  ctx.pool.run(kernel, elementParts(ctx, n).map(([u0, u1]) => [po + u0 * size, u1 - u0, ...bits]));
}

const fill: NativeKernel = (ctx, _inputs, [o], params) => {
  if (!o || !contiguous(o)) return false;
  if (numel(o.shape) > 0) fillWith(ctx, o, params['value'] as number);
  return true;
};

/* ------------------------------------------------------------------ reductions */

/**
 * sum (and mean: sum with `scale`) of float32/float16/bfloat16, accumulated in float64: when the
 * reduced dimensions are [leading] [kept] [trailing] in that order (any of them absent).
 */
const sum: NativeKernel = (ctx, [x], [o], params) => {
  if (!x || !o) return false;
  const fmt = fmtOf(x.dtype);
  if (!fmt || o.dtype !== x.dtype || !contiguous(x) || !contiguous(o) || unsafeAlias(x, o)) return false;
  const n = numel(x.shape);
  if (n === 0) return false;
  const dims = new Set((params['dims'] as readonly number[] | undefined) ?? []);
  const scale = (params['scale'] as number | undefined) ?? 1;
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
  if (B === 1) {
    const K = Math.ceil(n / SUM_CHUNK);
    ctx.heap.withScratch(K * 8, (acc) => {
      const parts = ctx.pool.split(K, Math.ceil(MIN_ELEMENTS_PER_PART / SUM_CHUNK));
      ctx.pool.run(`sumchunks_${fmt}`, parts.map(([k0, k1]) => [px, acc, k0, k1, n, SUM_CHUNK]));
      const f64 = ctx.heap.views().f64;
      let s = 0;
      for (let i = 0; i < K; i++) s += f64[acc / 8 + i]!;
      f64[acc / 8] = s;
      ctx.pool.call(`finish_${fmt}`, acc, po, 1, scale);
    });
    return true;
  }
  ctx.heap.withScratch(B * 8, (acc) => {
    const parts = ctx.pool.split(B, Math.ceil(MIN_ELEMENTS_PER_PART / (A * C)), 8);
    ctx.pool.run(`sum3_${fmt}`, parts.map(([b0, b1]) => [px, acc, b0, b1, A, B, C]));
    ctx.pool.call(`finish_${fmt}`, acc, po, B, scale);
  });
  return true;
};

/* ------------------------------------------------------------------ SGD */

/** Parameters of the `sgdUpdate` kernel (PyTorch's SGD; see `sgdUpdateReference`). */
export interface SgdUpdateParams extends SGDOptions {
  /** First step with momentum: the buffer starts as the gradient (its old content is ignored). */
  first: boolean;
}

const SGD_MOMENTUM = 1;
const SGD_FIRST = 2;
const SGD_NESTEROV = 4;
const SGD_MAXIMIZE = 8;
const SGD_WEIGHT_DECAY = 16;

/**
 * sgdUpdate: inputs [param, grad] or [param, grad, momentumBuffer], outputs [param] or
 * [param, momentumBuffer] (the same views: updated in place). Native when everything is contiguous,
 * param float32/float16/bfloat16, grad any of those, buffer float32.
 */
const sgdUpdate: NativeKernel = (ctx, [w, g, buf], [ow, obuf], params) => {
  const p = params as unknown as SgdUpdateParams;
  if (!w || !g || !ow) return false;
  const wf = fmtOf(w.dtype);
  const gf = fmtOf(g.dtype);
  const kernel = `sgd_${wf}_${gf}`;
  if (!wf || !gf || !ctx.pool.hasKernel(kernel)) return false;
  const hasMomentum = p.momentum !== 0;
  if (hasMomentum && (!buf || !obuf || buf.dtype.name !== 'float32' || obuf.buffer !== buf.buffer || obuf.offset !== buf.offset || !contiguous(buf) || !contiguous(obuf))) return false;
  if (ow.buffer !== w.buffer || ow.offset !== w.offset || !contiguous(w) || !contiguous(ow) || !contiguous(g)) return false;
  const n = numel(w.shape);
  if (numel(g.shape) !== n || (hasMomentum && numel(buf!.shape) !== n)) return false;
  if (unsafeAlias(g, ow) || (hasMomentum && (unsafeAlias(g, obuf!) || unsafeAlias(buf!, ow) || unsafeAlias(w, obuf!)))) return false;
  const flags =
    (hasMomentum ? SGD_MOMENTUM : 0) |
    (p.first ? SGD_FIRST : 0) |
    (p.nesterov ? SGD_NESTEROV : 0) |
    (p.maximize ? SGD_MAXIMIZE : 0) |
    (p.weightDecay !== 0 ? SGD_WEIGHT_DECAY : 0);
  const pw = ctx.address(w);
  const pg = ctx.address(g);
  const pb = hasMomentum ? ctx.address(buf!) : 0;
  const sw = w.dtype.itemsize;
  const sg = g.dtype.itemsize;
  const lr = Math.fround(p.lr);
  const mom = Math.fround(p.momentum);
  const damp1 = Math.fround(1 - p.dampening);
  const wd = Math.fround(p.weightDecay);
  ctx.pool.run(kernel, elementParts(ctx, n).map(([u0, u1]) => [pw + u0 * sw, pg + u0 * sg, pb + u0 * 4, u1 - u0, lr, mom, damp1, wd, flags]));
  return true;
};

/**
 * The definition of sgdUpdate, over float64 copies like every reference kernel: each step rounded
 * to float32 as the op-by-op optimizer rounds it (src/optim/sgd.ts), so the result is bit for bit
 * the same. Used by the wasm backend for the cases its native kernel does not cover.
 */
export const sgdUpdateReference: RefKernel = (inputs, params: SgdUpdateParams) => {
  const f = Math.fround;
  const w = inputs[0]!.data;
  const g = inputs[1]!.data;
  const buf = inputs[2]?.data;
  const hasMomentum = params.momentum !== 0;
  const lr = f(params.lr);
  const mom = f(params.momentum);
  const damp1 = f(1 - params.dampening);
  const wd = f(params.weightDecay);
  const outW = new Float64Array(w.length);
  const outB = new Float64Array(hasMomentum ? w.length : 0);
  for (let i = 0; i < w.length; i++) {
    const wv = f(w[i]!);
    let d = f(g[i]!);
    if (params.maximize) d = -d;
    if (params.weightDecay !== 0) d = f(d + f(wv * wd));
    if (hasMomentum) {
      const b = params.first ? d : f(f(f(buf![i]!) * mom) + f(d * damp1));
      outB[i] = b;
      d = params.nesterov ? f(d + f(b * mom)) : b;
    }
    outW[i] = f(wv - f(d * lr));
  }
  return hasMomentum ? [outW, outB] : [outW];
};

/** Kernels the wasm backend has beyond the reference table, with their definitions. */
export const EXTRA_REFERENCE_KERNELS: Record<string, RefKernel> = { sgdUpdate: sgdUpdateReference };

/** Native handlers by kernel name (extend with `registerNativeKernel`). */
export const NATIVE_KERNELS: Record<string, NativeKernel> = {
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
};

/**
 * Plug a native handler in for `kernel` (GEMM, convolution, ...): it runs first and returns false
 * for the cases it does not cover. A kernel the reference backend lacks also needs its
 * `reference` definition, which runs for those cases.
 */
export function registerNativeKernel(kernel: string, native: NativeKernel, reference?: RefKernel): void {
  NATIVE_KERNELS[kernel] = native;
  if (reference) EXTRA_REFERENCE_KERNELS[kernel] = reference;
}
