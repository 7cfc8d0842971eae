/**
 * Native handlers of the training hot spots: `bmm` on the GEMM kernel, `conv2d` and its two
 * gradients on the convolution kernels, `maxPool2d` / `maxPool2dBackward` on the pooling kernels
 * (assembly/kernels/{gemm,conv,pool}.ts; their ABI is docs/kernels.md). float32, float16 and
 * bfloat16 storage in any mix, float32 accumulation, every output element rounded once.
 *
 * - bmm reads strided views without a copy: a matrix whose columns are contiguous is passed as
 *   stored row-major with its row stride as `ld`, one whose rows are contiguous (a transpose, as
 *   autograd's backward makes them) as the transposed operand (the kernel's A^T / B^T flags), and a
 *   batch stride 0 (an expanded operand) broadcasts. The output must be contiguous.
 * - convolutions and pooling need contiguous NCHW tensors; geometry goes in a 16-int descriptor.
 * - Scratch (GEMM panels, padded images, packed weights) is one block from the allocator, kept
 *   between calls and grown when a geometry needs more (WasmHeap.cachedBlock); the per-geometry
 *   scratch size the conv kernels report is cached here.
 * - Threads: a call is split into `parts` (the kernels' `(..., part, parts)` convention, results
 *   bit-identical for any split) when it has enough work per thread; small calls run on the
 *   calling thread alone.
 *
 * Everything else returns false (reference kernel): other dtypes, non-contiguous convolution or
 * pooling operands, max-pool dilation, ceil-mode windows past the floor size, layouts the GEMM
 * cannot express (neither stride 1), aliasing between an input and the output.
 */
import type { KernelTensor } from '../backend.js';
import type { Conv2dParams, Pool2dParams } from '../kernels.js';
import { numel, sameShape } from '../../shape/strides.js';
import { contiguous, dtCode, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { gemmScratchBytes, MIN_MACS_PER_PART, partsFor, scratch, scratchAndSync, writeDesc } from './native_scratch.js';

export { MIN_MACS_PER_PART };
import { convGemmApplies, convGemmBackwardInput, convGemmBackwardWeight, convGemmForward } from './native_conv_gemm.js';

const GEMM_TRANS_A = 1;
const GEMM_TRANS_B = 2;

/**
 * Input elements per thread below which max-pooling runs on the calling thread alone: the 2x2 SIMD
 * paths take ~0.2 ns per input element, so a part is ~50 us of work, worth a dispatch to a worker
 * that may have gone to sleep (see MIN_ELEMENTS_PER_PART in native_rows.ts).
 */
export const MIN_POOL_ELEMENTS_PER_PART = 1 << 18;

const I32_MAX = 0x7fffffff;

/**
 * Scratch bytes a geometry needs, by kernel family and descriptor (cached): per part for
 * 'maxpool2d_scratch_bytes', in all for `parts` parts for 'conv2d_scratch_bytes'.
 */
const scratchSizes = new Map<string, number>();
function descScratchBytes(ctx: NativeContext, fn: 'conv2d_scratch_bytes' | 'maxpool2d_scratch_bytes', desc: number, values: readonly number[], parts = 1): number {
  const key = `${fn}:${parts}:${values.join(',')}`;
  let bytes = scratchSizes.get(key);
  if (bytes === undefined) {
    bytes = (fn === 'conv2d_scratch_bytes' ? ctx.pool.call(fn, desc, parts) : ctx.pool.call(fn, desc)) as number;
    if (scratchSizes.size > 256) scratchSizes.clear(); // bounded: a handful of shapes per model
    scratchSizes.set(key, bytes);
  }
  return bytes;
}

/* ------------------------------------------------------------------ bmm */

/** A matrix view as the GEMM stores it: row-major with row stride `ld`, or transposed (stored [cols, rows]). */
export interface MatrixLayout {
  trans: boolean;
  ld: number;
}

/**
 * How the GEMM reads a [rows, cols] view with strides (sr, sc): unit column stride → row-major,
 * ld = sr (any ld ≥ 0: a row stride 0 repeats one row); unit row stride → transposed, ld = sc;
 * null when neither stride is 1 (the view needs a copy).
 */
export function matrixLayout(rows: number, cols: number, sr: number, sc: number): MatrixLayout | null {
  if (cols <= 1 || sc === 1) {
    const ld = rows <= 1 ? Math.max(cols, 1) : sr;
    return ld >= 0 && ld <= I32_MAX ? { trans: false, ld } : null;
  }
  if (rows <= 1 || sr === 1) {
    const ld = sc;
    return ld >= 0 && ld <= I32_MAX ? { trans: true, ld } : null;
  }
  return null;
}

/** bmm: [B,M,K] x [B,K,N] -> [B,M,N] contiguous. */
const bmm: NativeKernel = (ctx, { 0: a, 1: b }, { 0: c }) => {
  if (!a || !b || !c) return false;
  const da = dtCode(a.dtype);
  const db = dtCode(b.dtype);
  const dc = dtCode(c.dtype);
  if (da === undefined || db === undefined || dc === undefined) return false;
  if (a.shape.length !== 3 || b.shape.length !== 3 || c.shape.length !== 3) return false;
  const { 0: B, 1: M, 2: K } = a.shape as [number, number, number];
  const N = b.shape[2]!;
  if (b.shape[0] !== B || b.shape[1] !== K || c.shape[0] !== B || c.shape[1] !== M || c.shape[2] !== N) return false;
  if (B * M * N === 0) return true;
  if (!contiguous(c) || unsafeAlias(a, c) || unsafeAlias(b, c)) return false;
  const la = matrixLayout(M, K, a.strides[1]!, a.strides[2]!);
  const lb = matrixLayout(K, N, b.strides[1]!, b.strides[2]!);
  if (!la || !lb) return false;
  const sA = B === 1 ? 0 : a.strides[0]!;
  const sB = B === 1 ? 0 : b.strides[0]!;
  if (sA < 0 || sB < 0 || sA > I32_MAX || sB > I32_MAX) return false;
  const flags = (la.trans ? GEMM_TRANS_A : 0) | (lb.trans ? GEMM_TRANS_B : 0);
  const dtypes = da | (db << 4) | (dc << 8);
  const rowTiles = B * Math.ceil(M / 4);
  const colTiles = Math.ceil(N / 8);
  const parts = partsFor(ctx, B * M * N * Math.max(K, 1), MIN_MACS_PER_PART, Math.max(rowTiles, colTiles));
  const { ws, sync } = scratchAndSync(ctx, parts * gemmScratchBytes(ctx), parts);
  ctx.pool.runParts(
    'gemm',
    [flags, dtypes, B, M, N, K, ctx.address(a), la.ld, sA, ctx.address(b), lb.ld, sB, ctx.address(c), N, M * N, 0, ws, sync],
    parts,
  );
  return true;
};

/* ------------------------------------------------------------------ convolution */

/** [a, b] when `v` is a pair of integers >= min (or one integer, used twice). */
function intPair(v: unknown, min: number): [number, number] | null {
  const p = typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length === 2 ? v : null;
  if (!p || !p.every((x) => Number.isInteger(x) && x >= min)) return null;
  return [p[0] as number, p[1] as number];
}

interface ConvGeometry {
  /** The kernels' descriptor: N, Cin, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw, groups. */
  desc: number[];
  OH: number;
  OW: number;
  /** Multiply-adds of one product (forward, grad-input and grad-weight are the same count). */
  macs: number;
  /** grad-weight's work tiles (2 out-channels x 4 taps per group). */
  weightTiles: number;
}

/** Geometry of x [N,Cin,H,W] * w [Cout,Cin/g,KH,KW] with the op's params, or null when unsupported. */
function convGeometry(xShape: readonly number[], wShape: readonly number[], params: Conv2dParams): ConvGeometry | null {
  if (xShape.length !== 4 || wShape.length !== 4) return null;
  const stride = intPair(params['stride'], 1);
  const padding = intPair(params['padding'], 0);
  const dilation = intPair(params['dilation'] ?? 1, 1);
  const groups = params['groups'] ?? 1;
  if (!stride || !padding || !dilation || !Number.isInteger(groups) || (groups as number) < 1) return null;
  const g = groups as number;
  const { 0: N, 1: C, 2: H, 3: W } = xShape as [number, number, number, number];
  const { 0: O, 1: Cg, 2: KH, 3: KW } = wShape as [number, number, number, number];
  if (C % g !== 0 || O % g !== 0 || Cg * g !== C) return null;
  const spanH = H + 2 * padding[0] - dilation[0] * (KH - 1) - 1;
  const spanW = W + 2 * padding[1] - dilation[1] * (KW - 1) - 1;
  if (spanH < 0 || spanW < 0) return null;
  const OH = Math.floor(spanH / stride[0]) + 1;
  const OW = Math.floor(spanW / stride[1]) + 1;
  const desc = [N, C, H, W, O, KH, KW, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], g];
  if (desc.some((v) => v > I32_MAX)) return null;
  const macs = N * O * OH * OW * Cg * KH * KW;
  const weightTiles = g * Math.ceil(O / g / 2) * Math.ceil((Cg * KH * KW) / 4);
  return { desc, OH, OW, macs, weightTiles };
}


/** Run one of the conv2d_* kernels (args between the descriptor/dtypes/flags and the scratch). */
function runConv(ctx: NativeContext, kernel: string, geo: ConvGeometry, dtypes: number, pointers: readonly number[], parts: number): void {
  const desc = writeDesc(ctx, geo.desc);
  const { ws, sync } = scratchAndSync(ctx, descScratchBytes(ctx, 'conv2d_scratch_bytes', desc, geo.desc, parts), parts);
  ctx.pool.runParts(kernel, [desc, dtypes, 0, ...pointers, ws, sync], parts);
}

/** conv2d (x, w, bias?) -> y. */
const conv2d: NativeKernel<'conv2d'> = (ctx, { 0: x, 1: w, 2: bias }, { 0: y }, params) => {
  if (!x || !w || !y) return false;
  const dx = dtCode(x.dtype);
  const dw = dtCode(w.dtype);
  const dy = dtCode(y.dtype);
  const dbias = bias ? dtCode(bias.dtype) : 0;
  if (dx === undefined || dw === undefined || dy === undefined || dbias === undefined) return false;
  const geo = convGeometry(x.shape, w.shape, params);
  if (!geo || !sameShape(y.shape, [x.shape[0]!, w.shape[0]!, geo.OH, geo.OW])) return false;
  if (bias && (numel(bias.shape) !== w.shape[0] || !contiguous(bias) || unsafeAlias(bias, y))) return false;
  if (!contiguous(x) || !contiguous(w) || !contiguous(y) || unsafeAlias(x, y) || unsafeAlias(w, y)) return false;
  if (numel(y.shape) === 0) return true;
  const dtypes = dx | (dw << 4) | (dy << 8) | (dbias << 12);
  if (convGemmApplies(geo.desc, geo.OH, geo.OW, 'forward')) {
    convGemmForward(ctx, geo.desc, geo.OH, geo.OW, dtypes, ctx.address(x), ctx.address(w), bias ? ctx.address(bias) : 0, ctx.address(y));
    return true;
  }
  const units = geo.desc[0]! * geo.desc[13]!;
  const parts = partsFor(ctx, geo.macs, MIN_MACS_PER_PART, Math.max(units, Math.ceil((geo.OH * geo.OW) / 8)));
  runConv(ctx, 'conv2d_forward', geo, dtypes, [ctx.address(x), ctx.address(w), bias ? ctx.address(bias) : 0, ctx.address(y)], parts);
  return true;
};

/**
 * grad-input of a convolution whose window covers the whole padding-free input (a 1x1 dY, one
 * group: convTranspose2d from 1x1, as a DCGAN generator's first layer) is one GEMM:
 * dx[N, Cin*KH*KW] = dY[N, Cout] x W[Cout, Cin*KH*KW]. False when the geometry is not that.
 */
function gradInputAsGemm(ctx: NativeContext, geo: ConvGeometry, gy: KernelTensor, w: KernelTensor, dx: KernelTensor, dtypes: number): boolean {
  const { 0: N, 1: C, 2: H, 3: W, 4: O, 5: KH, 6: KW, 9: ph, 10: pw, 11: dh, 12: dwl, 13: g } = geo.desc as number[];
  if (geo.OH !== 1 || geo.OW !== 1 || g !== 1 || ph !== 0 || pw !== 0 || dh !== 1 || dwl !== 1 || H !== KH || W !== KW) return false;
  const cols = C! * KH! * KW!;
  const parts = partsFor(ctx, N! * O! * cols, MIN_MACS_PER_PART, Math.max(Math.ceil(N! / 4), Math.ceil(cols / 8)));
  const { ws, sync } = scratchAndSync(ctx, parts * gemmScratchBytes(ctx), parts);
  ctx.pool.runParts(
    'gemm',
    [0, dtypes, 1, N!, cols, O!, ctx.address(gy), O!, 0, ctx.address(w), cols, 0, ctx.address(dx), cols, N! * cols, 0, ws, sync],
    parts,
  );
  return true;
}

/** conv2dBackwardInput (gy, w) -> dx (also convTranspose2d's forward). */
const conv2dBackwardInput: NativeKernel<'conv2dBackwardInput'> = (ctx, { 0: gy, 1: w }, { 0: dx }, params) => {
  if (!gy || !w || !dx) return false;
  const dgy = dtCode(gy.dtype);
  const dw = dtCode(w.dtype);
  const ddx = dtCode(dx.dtype);
  if (dgy === undefined || dw === undefined || ddx === undefined) return false;
  const geo = convGeometry(dx.shape, w.shape, params);
  // the output size must be the one the forward formula gives (not so for some convTranspose2d output paddings)
  if (!geo || !sameShape(gy.shape, [dx.shape[0]!, w.shape[0]!, geo.OH, geo.OW])) return false;
  if (!contiguous(gy) || !contiguous(w) || !contiguous(dx) || unsafeAlias(gy, dx) || unsafeAlias(w, dx)) return false;
  if (numel(dx.shape) === 0) return true;
  if (gradInputAsGemm(ctx, geo, gy, w, dx, dgy | (dw << 4) | (ddx << 8))) return true;
  if (convGemmApplies(geo.desc, geo.OH, geo.OW, 'input')) {
    convGemmBackwardInput(ctx, geo.desc, geo.OH, geo.OW, dgy | (dw << 4) | (ddx << 8), ctx.address(gy), ctx.address(w), ctx.address(dx));
    return true;
  }
  const units = geo.desc[0]! * geo.desc[13]!;
  const parts = partsFor(ctx, geo.macs, MIN_MACS_PER_PART, Math.max(units, Math.ceil((dx.shape[2]! * dx.shape[3]!) / 8)));
  runConv(ctx, 'conv2d_grad_input', geo, dgy | (dw << 4) | (ddx << 8), [ctx.address(gy), ctx.address(w), ctx.address(dx)], parts);
  return true;
};

/** conv2dBackwardWeight (x, gy) -> dw. */
const conv2dBackwardWeight: NativeKernel<'conv2dBackwardWeight'> = (ctx, { 0: x, 1: gy }, { 0: dw }, params) => {
  if (!x || !gy || !dw) return false;
  const dx = dtCode(x.dtype);
  const dgy = dtCode(gy.dtype);
  const ddw = dtCode(dw.dtype);
  if (dx === undefined || dgy === undefined || ddw === undefined) return false;
  const geo = convGeometry(x.shape, dw.shape, params);
  if (!geo || !sameShape(gy.shape, [x.shape[0]!, dw.shape[0]!, geo.OH, geo.OW])) return false;
  if (!contiguous(x) || !contiguous(gy) || !contiguous(dw) || unsafeAlias(x, dw) || unsafeAlias(gy, dw)) return false;
  if (numel(dw.shape) === 0) return true;
  if (convGemmApplies(geo.desc, geo.OH, geo.OW, 'weight')) {
    convGemmBackwardWeight(ctx, geo.desc, geo.OH, geo.OW, dx | (dgy << 4) | (ddw << 8), ctx.address(x), ctx.address(gy), ctx.address(dw));
    return true;
  }
  const parts = partsFor(ctx, geo.macs, MIN_MACS_PER_PART, geo.weightTiles);
  runConv(ctx, 'conv2d_grad_weight', geo, dx | (dgy << 4) | (ddw << 8), [ctx.address(x), ctx.address(gy), ctx.address(dw)], parts);
  return true;
};

/* ------------------------------------------------------------------ max-pool */

interface PoolGeometry {
  /** N, C, H, W, KH, KW, sh, sw, ph, pw. */
  desc: number[];
  OH: number;
  OW: number;
  planes: number;
}

/**
 * Geometry of a max-pool over x ([C,H,W] or [N,C,H,W]; leading dims are planes), or null: the kernels
 * have no dilation and compute floor-mode sizes, so a ceil-mode output with an extra window falls back.
 */
function poolGeometry(xShape: readonly number[], params: Pool2dParams): PoolGeometry | null {
  if (xShape.length !== 3 && xShape.length !== 4) return null;
  const kernel = intPair(params['kernel'], 1);
  const stride = intPair(params['stride'] ?? params['kernel'], 1);
  const padding = intPair(params['padding'] ?? 0, 0);
  const dilation = intPair(params['dilation'] ?? 1, 1);
  if (!kernel || !stride || !padding || !dilation || dilation[0] !== 1 || dilation[1] !== 1) return null;
  // every window must hold an input element (PyTorch requires padding <= kernel / 2)
  if (2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1]) return null;
  const H = xShape[xShape.length - 2]!;
  const W = xShape[xShape.length - 1]!;
  const planes = numel(xShape.slice(0, -2));
  const spanH = H + 2 * padding[0] - kernel[0];
  const spanW = W + 2 * padding[1] - kernel[1];
  if (spanH < 0 || spanW < 0) return null;
  const OH = Math.floor(spanH / stride[0]) + 1;
  const OW = Math.floor(spanW / stride[1]) + 1;
  const desc = [1, planes, H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]];
  if (desc.some((v) => v > I32_MAX)) return null;
  return { desc, OH, OW, planes };
}

const pooledShape = (xShape: readonly number[], g: PoolGeometry): number[] => [...xShape.slice(0, -2), g.OH, g.OW];

const maxPool2d: NativeKernel<'maxPool2d'> = (ctx, { 0: x }, { 0: y }, params) => {
  if (!x || !y) return false;
  const dx = dtCode(x.dtype);
  const dy = dtCode(y.dtype);
  if (dx === undefined || dy === undefined) return false;
  const geo = poolGeometry(x.shape, params);
  if (!geo || !sameShape(y.shape, pooledShape(x.shape, geo))) return false;
  if (!contiguous(x) || !contiguous(y) || unsafeAlias(x, y)) return false;
  if (numel(y.shape) === 0) return true;
  const parts = partsFor(ctx, numel(x.shape), MIN_POOL_ELEMENTS_PER_PART, geo.planes);
  const desc = writeDesc(ctx, geo.desc);
  ctx.pool.runParts('maxpool2d_forward', [desc, dx | (dy << 8), ctx.address(x), ctx.address(y)], parts);
  return true;
};

/** maxPool2dBackward (x, gy) -> dx (the arg-max recomputed from x, as the reference does). */
const maxPool2dBackward: NativeKernel<'maxPool2dBackward'> = (ctx, { 0: x, 1: gy }, { 0: dx }, params) => {
  if (!x || !gy || !dx) return false;
  const cx = dtCode(x.dtype);
  const cgy = dtCode(gy.dtype);
  const cdx = dtCode(dx.dtype);
  if (cx === undefined || cgy === undefined || cdx === undefined) return false;
  const geo = poolGeometry(x.shape, params);
  if (!geo || !sameShape(gy.shape, pooledShape(x.shape, geo)) || !sameShape(dx.shape, x.shape)) return false;
  if (!contiguous(x) || !contiguous(gy) || !contiguous(dx) || unsafeAlias(x, dx) || unsafeAlias(gy, dx)) return false;
  if (numel(dx.shape) === 0) return true;
  const parts = partsFor(ctx, numel(x.shape), MIN_POOL_ELEMENTS_PER_PART, geo.planes);
  const desc = writeDesc(ctx, geo.desc);
  const perPart = descScratchBytes(ctx, 'maxpool2d_scratch_bytes', desc, geo.desc);
  const ws = scratch(ctx, parts * perPart);
  ctx.pool.runParts('maxpool2d_backward', [desc, cx | (cgy << 4) | (cdx << 8), 0, ctx.address(x), ctx.address(gy), ctx.address(dx), ws], parts);
  return true;
};

/** The handlers of this file by kernel name (merged into NATIVE_KERNELS by native.ts). */
export const LINALG_KERNELS = {
  bmm,
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  maxPool2d,
  maxPool2dBackward,
} satisfies NativeKernels;
