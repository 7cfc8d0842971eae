/**
 * Direct 2-D convolution and its two gradients, NCHW, with stride, padding, dilation, groups.
 * conv2dBackwardInput is also the forward of convTranspose2d.
 */
import type { RefKernel } from './types.js';

interface ConvParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

interface Geometry {
  N: number; C: number; H: number; W: number;
  O: number; OH: number; OW: number; KH: number; KW: number;
  cPerG: number; oPerG: number;
}

function geometry(xShape: readonly number[], wShape: readonly number[], yShape: readonly number[], groups: number): Geometry {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  return { N, C, H, W, O, OH, OW, KH, KW, cPerG: C / groups, oPerG: O / groups };
}

/**
 * Visits every (input element, weight element, output element) triple of the convolution once,
 * calling `f(xIndex, wIndex, yIndex)`. All three kernels are this loop with a different body.
 */
function forEachTap(g: Geometry, p: ConvParams, f: (xi: number, wi: number, yi: number) => void): void {
  const [sh, sw] = p.stride;
  const [ph, pw] = p.padding;
  const [dh, dw] = p.dilation;
  for (let n = 0; n < g.N; n++) {
    for (let o = 0; o < g.O; o++) {
      const group = Math.floor(o / g.oPerG);
      for (let cg = 0; cg < g.cPerG; cg++) {
        const c = group * g.cPerG + cg;
        const xPlane = (n * g.C + c) * g.H * g.W;
        const yPlane = (n * g.O + o) * g.OH * g.OW;
        for (let kh = 0; kh < g.KH; kh++) {
          for (let kw = 0; kw < g.KW; kw++) {
            const wi = ((o * g.cPerG + cg) * g.KH + kh) * g.KW + kw;
            for (let oh = 0; oh < g.OH; oh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= g.H) continue;
              const xRow = xPlane + ih * g.W;
              const yRow = yPlane + oh * g.OW;
              for (let ow = 0; ow < g.OW; ow++) {
                const iw = ow * sw - pw + kw * dw;
                if (iw < 0 || iw >= g.W) continue;
                f(xRow + iw, wi, yRow + ow);
              }
            }
          }
        }
      }
    }
  }
}

const conv2d: RefKernel = ([x, w, b], p: ConvParams, [out]) => {
  const g = geometry(x!.shape, w!.shape, out!.shape, p.groups);
  const X = x!.data;
  const Wt = w!.data;
  const Y = new Float64Array(g.N * g.O * g.OH * g.OW);
  forEachTap(g, p, (xi, wi, yi) => (Y[yi]! += X[xi]! * Wt[wi]!));
  if (b) {
    const plane = g.OH * g.OW;
    for (let i = 0; i < Y.length; i++) Y[i]! += b.data[Math.floor(i / plane) % g.O]!;
  }
  return [Y];
};

/** Gradient w.r.t. the input: inputs (gradOut, weight); output shape is the input's. */
const conv2dBackwardInput: RefKernel = ([gy, w], p: ConvParams, [out]) => {
  const g = geometry(out!.shape, w!.shape, gy!.shape, p.groups);
  const G = gy!.data;
  const Wt = w!.data;
  const GX = new Float64Array(g.N * g.C * g.H * g.W);
  forEachTap(g, p, (xi, wi, yi) => (GX[xi]! += G[yi]! * Wt[wi]!));
  return [GX];
};

/** Gradient w.r.t. the weight: inputs (input, gradOut); output shape is the weight's. */
const conv2dBackwardWeight: RefKernel = ([x, gy], p: ConvParams, [out]) => {
  const g = geometry(x!.shape, out!.shape, gy!.shape, p.groups);
  const X = x!.data;
  const G = gy!.data;
  const GW = new Float64Array(g.O * g.cPerG * g.KH * g.KW);
  forEachTap(g, p, (xi, wi, yi) => (GW[wi]! += X[xi]! * G[yi]!));
  return [GW];
};

export const convKernels: Record<string, RefKernel> = { conv2d, conv2dBackwardInput, conv2dBackwardWeight };
