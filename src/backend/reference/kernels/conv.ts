/**
 * 2-D convolution and its two gradients, NCHW, with stride, padding, dilation and groups, as
 * im2col + matrix products: for each image and group, cols[C/g*KH*KW, OH*OW] holds the input
 * patches, and the forward is W_g[O/g, C/g*KH*KW] * cols. conv2dBackwardInput (also convTranspose2d's
 * forward) is W_g^T * dY scattered back by col2im; conv2dBackwardWeight accumulates dY * cols^T.
 */
import type { Conv2dParams as ConvParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';
import { gemmNN, gemmNT, gemmTN } from './gemm.js';

interface Geometry {
  N: number; C: number; H: number; W: number;
  O: number; OH: number; OW: number; KH: number; KW: number;
  cPerG: number; oPerG: number;
  /** rows of a group's column matrix: C/g * KH * KW */
  rows: number;
  /** columns: OH * OW */
  cols: number;
}

function geometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], groups: number): Geometry {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  const cPerG = C / groups;
  return { N, C, H, W, O, OH, OW, KH, KW, cPerG, oPerG: O / groups, rows: cPerG * KH * KW, cols: OH * OW };
}

/**
 * For one image and group, the input offset (relative to the group's first channel) of every
 * element of the column matrix, or -1 where the patch lies in the padding. Cached per geometry:
 * training repeats the same shapes every step.
 */
const patchIndexCache = new Map<string, Int32Array>();

function patchIndex(g: Geometry, p: ConvParams): Int32Array {
  const key = JSON.stringify([g.cPerG, g.H, g.W, g.KH, g.KW, g.OH, g.OW, p.stride, p.padding, p.dilation]);
  let index = patchIndexCache.get(key);
  if (index) return index;
  index = new Int32Array(g.rows * g.cols).fill(-1);
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  for (let c = 0; c < g.cPerG; c++)
    for (let kh = 0; kh < g.KH; kh++)
      for (let kw = 0; kw < g.KW; kw++) {
        const row = (c * g.KH + kh) * g.KW + kw;
        for (let oh = 0; oh < g.OH; oh++) {
          const ih = oh * sh - ph + kh * dh;
          if (ih < 0 || ih >= g.H) continue;
          for (let ow = 0; ow < g.OW; ow++) {
            const iw = ow * sw - pw + kw * dw;
            if (iw >= 0 && iw < g.W) index[row * g.cols + oh * g.OW + ow] = (c * g.H + ih) * g.W + iw;
          }
        }
      }
  if (patchIndexCache.size > 64) patchIndexCache.clear(); // bounded: a handful of shapes per model
  patchIndexCache.set(key, index);
  return index;
}

function im2col(X: Float64Array, g: Geometry, p: ConvParams, n: number, group: number, cols: Float64Array): void {
  const index = patchIndex(g, p);
  const base = (n * g.C + group * g.cPerG) * g.H * g.W;
  for (let i = 0; i < index.length; i++) {
    const src = index[i]!;
    cols[i] = src >= 0 ? X[base + src]! : 0;
  }
}

function col2imAdd(cols: Float64Array, g: Geometry, p: ConvParams, n: number, group: number, GX: Float64Array): void {
  const index = patchIndex(g, p);
  const base = (n * g.C + group * g.cPerG) * g.H * g.W;
  for (let i = 0; i < index.length; i++) {
    const dst = index[i]!;
    if (dst >= 0) GX[base + dst]! += cols[i]!;
  }
}

const conv2d: RefKernel<ConvParams> = ([x, w, b], p, [out]) => {
  const g = geometry(x!.shape, w!.shape, out!.shape, p.groups);
  const Y = new Float64Array(g.N * g.O * g.cols);
  const cols = new Float64Array(g.rows * g.cols);
  for (let n = 0; n < g.N; n++) {
    for (let group = 0; group < p.groups; group++) {
      im2col(x!.data, g, p, n, group, cols);
      const y0 = (n * g.O + group * g.oPerG) * g.cols;
      gemmNN(w!.data, group * g.oPerG * g.rows, cols, 0, Y, y0, g.oPerG, g.cols, g.rows);
    }
  }
  if (b) {
    for (let plane = 0; plane < g.N * g.O; plane++) {
      const bias = b.data[plane % g.O]!;
      for (let i = plane * g.cols; i < (plane + 1) * g.cols; i++) Y[i]! += bias;
    }
  }
  return [Y];
};

/** Gradient w.r.t. the input: inputs (gradOut, weight); output shape is the input's. */
const conv2dBackwardInput: RefKernel<ConvParams> = ([gy, w], p, [out]) => {
  const g = geometry(out!.shape, w!.shape, gy!.shape, p.groups);
  const GX = new Float64Array(g.N * g.C * g.H * g.W);
  const cols = new Float64Array(g.rows * g.cols);
  for (let n = 0; n < g.N; n++) {
    for (let group = 0; group < p.groups; group++) {
      cols.fill(0);
      const y0 = (n * g.O + group * g.oPerG) * g.cols;
      gemmTN(w!.data, group * g.oPerG * g.rows, gy!.data, y0, cols, 0, g.rows, g.cols, g.oPerG);
      col2imAdd(cols, g, p, n, group, GX);
    }
  }
  return [GX];
};

/** Gradient w.r.t. the weight: inputs (input, gradOut); output shape is the weight's. */
const conv2dBackwardWeight: RefKernel<ConvParams> = ([x, gy], p, [out]) => {
  const g = geometry(x!.shape, out!.shape, gy!.shape, p.groups);
  const GW = new Float64Array(g.O * g.rows);
  const cols = new Float64Array(g.rows * g.cols);
  for (let n = 0; n < g.N; n++) {
    for (let group = 0; group < p.groups; group++) {
      im2col(x!.data, g, p, n, group, cols);
      const y0 = (n * g.O + group * g.oPerG) * g.cols;
      gemmNT(gy!.data, y0, cols, 0, GW, group * g.oPerG * g.rows, g.oPerG, g.rows, g.cols);
    }
  }
  return [GW];
};

export const convKernels = { conv2d, conv2dBackwardInput, conv2dBackwardWeight } satisfies RefKernels;
