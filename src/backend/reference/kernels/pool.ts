/** 2-D pooling over NCHW (any leading dims folded into planes) and the gradients. */
import type { NoParams, Pool2dParams as PoolParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';

function planes(shape: readonly number[]): [number, number, number] {
  const H = shape[shape.length - 2]!;
  const W = shape[shape.length - 1]!;
  let P = 1;
  for (let d = 0; d < shape.length - 2; d++) P *= shape[d]!;
  return [P, H, W];
}

/** Calls `visit(plane, outIndex, inIndexOfMax)` with the first maximum of each window (NaN wins). */
function forEachMax(
  X: Float64Array,
  inShape: readonly number[],
  outShape: readonly number[],
  p: PoolParams,
  visit: (outIndex: number, inIndex: number) => void,
): void {
  const [P, H, W] = planes(inShape);
  const [, OH, OW] = planes(outShape);
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation ?? [1, 1];
  for (let pl = 0; pl < P; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = -1;
        let bestVal = -Infinity;
        for (let i = 0; i < kh; i++) {
          const ih = oh * sh - ph + i * dh;
          if (ih < 0 || ih >= H) continue;
          for (let j = 0; j < kw; j++) {
            const iw = ow * sw - pw + j * dw;
            if (iw < 0 || iw >= W) continue;
            const idx = (pl * H + ih) * W + iw;
            const v = X[idx]!;
            if (best < 0 || v > bestVal || (Number.isNaN(v) && !Number.isNaN(bestVal))) {
              best = idx;
              bestVal = v;
            }
          }
        }
        visit((pl * OH + oh) * OW + ow, best);
      }
    }
  }
}

const maxPool2d: RefKernel<PoolParams> = ([x], p, [out]) => {
  const Y = new Float64Array(out!.shape.reduce((a, b) => a * b, 1));
  forEachMax(x!.data, x!.shape, out!.shape, p, (o, i) => (Y[o] = i < 0 ? -Infinity : x!.data[i]!));
  return [Y];
};

/** inputs (input, gradOut): routes each output gradient to its window's first maximum. */
const maxPool2dBackward: RefKernel<PoolParams> = ([x, gy], p) => {
  const GX = new Float64Array(x!.data.length);
  forEachMax(x!.data, x!.shape, gy!.shape, p, (o, i) => {
    if (i >= 0) GX[i]! += gy!.data[o]!;
  });
  return [GX];
};

/** Calls visit(outIndex, inIndex, weight) for every input element of each average window. */
function forEachAvgTap(
  inShape: readonly number[],
  outShape: readonly number[],
  p: PoolParams,
  visit: (o: number, i: number, weight: number) => void,
): void {
  const [P, H, W] = planes(inShape);
  const [, OH, OW] = planes(outShape);
  const [kh, kw] = p.kernel;
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  for (let pl = 0; pl < P; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let h0 = oh * sh - ph;
        let w0 = ow * sw - pw;
        let h1 = Math.min(h0 + kh, H + ph);
        let w1 = Math.min(w0 + kw, W + pw);
        const poolSize = (h1 - h0) * (w1 - w0);
        h0 = Math.max(h0, 0);
        w0 = Math.max(w0, 0);
        h1 = Math.min(h1, H);
        w1 = Math.min(w1, W);
        const divisor = p.divisorOverride ?? (p.countIncludePad ? poolSize : (h1 - h0) * (w1 - w0));
        const o = (pl * OH + oh) * OW + ow;
        for (let ih = h0; ih < h1; ih++)
          for (let iw = w0; iw < w1; iw++) visit(o, (pl * H + ih) * W + iw, 1 / divisor);
      }
    }
  }
}

const avgPool2d: RefKernel<PoolParams> = ([x], p, [out]) => {
  const Y = new Float64Array(out!.shape.reduce((a, b) => a * b, 1));
  forEachAvgTap(x!.shape, out!.shape, p, (o, i, w) => (Y[o]! += x!.data[i]! * w));
  return [Y];
};

/** inputs (gradOut); output shape is the input's. */
const avgPool2dBackward: RefKernel<PoolParams> = ([gy], p, [out]) => {
  const GX = new Float64Array(out!.shape.reduce((a, b) => a * b, 1));
  forEachAvgTap(out!.shape, gy!.shape, p, (o, i, w) => (GX[i]! += gy!.data[o]! * w));
  return [GX];
};

/** Adaptive windows: rows floor(i*H/OH) .. ceil((i+1)*H/OH), as PyTorch. */
function forEachAdaptiveTap(
  inShape: readonly number[],
  outShape: readonly number[],
  visit: (o: number, i: number, weight: number) => void,
): void {
  const [P, H, W] = planes(inShape);
  const [, OH, OW] = planes(outShape);
  for (let pl = 0; pl < P; pl++) {
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.floor((oh * H) / OH);
      const h1 = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.floor((ow * W) / OW);
        const w1 = Math.ceil(((ow + 1) * W) / OW);
        const weight = 1 / ((h1 - h0) * (w1 - w0));
        const o = (pl * OH + oh) * OW + ow;
        for (let ih = h0; ih < h1; ih++)
          for (let iw = w0; iw < w1; iw++) visit(o, (pl * H + ih) * W + iw, weight);
      }
    }
  }
}

const adaptiveAvgPool2d: RefKernel<NoParams> = ([x], _p, [out]) => {
  const Y = new Float64Array(out!.shape.reduce((a, b) => a * b, 1));
  forEachAdaptiveTap(x!.shape, out!.shape, (o, i, w) => (Y[o]! += x!.data[i]! * w));
  return [Y];
};

const adaptiveAvgPool2dBackward: RefKernel<NoParams> = ([gy], _p, [out]) => {
  const GX = new Float64Array(out!.shape.reduce((a, b) => a * b, 1));
  forEachAdaptiveTap(out!.shape, gy!.shape, (o, i, w) => (GX[i]! += gy!.data[o]! * w));
  return [GX];
};

export const poolKernels = {
  maxPool2d,
  maxPool2dBackward,
  avgPool2d,
  avgPool2dBackward,
  adaptiveAvgPool2d,
  adaptiveAvgPool2dBackward,
} satisfies RefKernels;
