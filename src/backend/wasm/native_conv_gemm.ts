/**
 * Convolutions with small output maps as whole-batch GEMMs (assembly/kernels/conv_gemm.ts): the
 * images of the batch side by side in one product, so ResNet's 8x8 .. 1x1 maps with hundreds of
 * channels run on the GEMM's full 4x8 tiles instead of one tiny product per image.
 *
 *   forward      im2col(x) -> Col[K][L];  Ycm[Cout][L] = W * Col (+ bias);  Ycm -> y (NCHW)
 *   grad-input   gy -> dYcm[Cout][L];     dCol[K][L] = W^T * dYcm (f32);    col2im(dCol) -> dx
 *   grad-weight  im2col(x), gy -> dYcm;   dW = dYcm * Col^T
 *
 * with K = Cin*KH*KW and L = images * OH*OW. Col and the channel-major copies keep the tensors'
 * dtype (the GEMM widens 16-bit values once, while packing, and accumulates in float32); dCol is
 * float32, so every output element is rounded once. A batch whose columns would pass
 * COL_CAP_ELEMENTS runs in chunks of images (grad-weight sums the chunks in float32), the chunk
 * size a function of the geometry alone, so results do not depend on the thread count.
 * Col, the channel-major copy and the float32 weight sums live in the kernels' one scratch block
 * (native_scratch.ts), after the room for the GEMM's per-thread panels, so the heap keeps one
 * cached scratch whichever convolution path ran.
 *
 * Taps that only ever read the zero padding are cropped away first (cropTaps), so the GEMMs do
 * not multiply zeros: ResNet-18's layer4 at 32x32 (1x1 maps) keeps 1 of 9 taps, 4 of 9 at stride 2.
 */
import type { NativeContext } from './native.js';
import { gemmScratchBytes, MIN_MACS_PER_PART, partsFor, scratchAndSync, writeDesc } from './native_scratch.js';

const GEMM_TRANS_A = 1;
const GEMM_TRANS_B = 2;
const GEMM_ACCUMULATE = 4;
const GEMM_BIAS_ROW = 1 << 8;
const DT_F32 = 0;

/** Elements of the column matrix per chunk of images (16 MiB in float32). */
const COL_CAP_ELEMENTS = 1 << 22;
/**
 * Elements moved per thread below which a copy step runs on the calling thread alone: ~15-25 us of
 * copying (im2col of one pixel ~1.5 ns per element), against the 1-2 us a part costs to hand to a
 * worker that is spinning (pool.ts: waiting threads spin by time). 1 << 16 when a part cost 40-60
 * us (the worker asleep): layer3's by-pixel im2col and scatters (64K elements) ran on one thread.
 */
const MIN_COPY_PER_PART = 1 << 14;

const bytesOf = (dt: number): number => (dt === DT_F32 ? 4 : 2);

/**
 * Whether a convolution pass takes this path: one group and an output map of at most 64 pixels
 * (ResNet's 8x8 .. 1x1 maps at 32x32), where conv.ts's per-image products are a few columns wide;
 * also grad-weight of a strided convolution up to 256 output pixels (a 7x7 stride-2 stem on
 * 32x32), where conv.ts has only its general tap-by-tap loop. Larger maps stay on conv.ts, whose
 * implicit GEMM needs no column matrix and is faster there (A/B in bench/README.md).
 */
export function convGemmApplies(desc: readonly number[], OH: number, OW: number, pass: 'forward' | 'input' | 'weight'): boolean {
  const [, , , , , , , sh, sw, , , , , g] = desc as number[];
  const P = OH * OW;
  if (g !== 1) return false;
  return P <= 64 || (pass === 'weight' && (sh! > 1 || sw! > 1) && P <= 256);
}

/** Output length of a convolution along one axis (conv.ts's outSize). */
const outSize = (len: number, pad: number, k: number, s: number, d: number): number => {
  const span = len + 2 * pad - d * (k - 1) - 1;
  return span < 0 ? 0 : Math.floor(span / s) + 1;
};

/** The taps [lo, hi) along one axis that read the image for some output (null: not one run). */
function liveTaps(len: number, pad: number, k: number, s: number, d: number, outLen: number): [number, number] | null {
  const live = (t: number): boolean => {
    for (let o = 0; o < outLen; o++) {
      const i = o * s - pad + t * d;
      if (i >= 0 && i < len) return true;
    }
    return false;
  };
  let lo = 0;
  while (lo < k && !live(lo)) lo++;
  let hi = k;
  while (hi > lo && !live(hi - 1)) hi--;
  for (let t = lo; t < hi; t++) if (!live(t)) return null;
  return lo < hi ? [lo, hi] : null;
}

/**
 * A convolution some of whose taps only ever read the zero padding (ResNet-18 at 32x32: the 3x3
 * convolutions on layer4's 1x1 maps use only the centre tap, its stride-2 2x2 -> 1x1 one 4 of 9)
 * equals the convolution with its weight cropped to the live taps and the padding reduced by the
 * taps cut in front: the GEMMs then skip the multiply-adds of zeros (K shrinks 9x / 2.25x there).
 */
export interface TapCrop {
  /** The descriptor of the cropped convolution (KH, KW, padding changed). */
  desc: number[];
  kh0: number;
  khN: number;
  kw0: number;
  kwN: number;
}

export function cropTaps(desc: readonly number[], OH: number, OW: number): TapCrop | null {
  const [, , H, W, , KH, KW, sh, sw, ph, pw, dh, dw] = desc as number[];
  const rh = liveTaps(H!, ph!, KH!, sh!, dh!, OH), rw = liveTaps(W!, pw!, KW!, sw!, dw!, OW);
  if (!rh || !rw) return null;
  const khN = rh[1] - rh[0], kwN = rw[1] - rw[0];
  if (khN === KH && kwN === KW) return null;
  const ph2 = ph! - rh[0] * dh!, pw2 = pw! - rw[0] * dw!;
  // the cropped geometry must give the same output map with non-negative padding
  if (ph2 < 0 || pw2 < 0 || outSize(H!, ph2, khN, sh!, dh!) !== OH || outSize(W!, pw2, kwN, sw!, dw!) !== OW) return null;
  const cropped = [...desc];
  cropped[5] = khN;
  cropped[6] = kwN;
  cropped[9] = ph2;
  cropped[10] = pw2;
  return { desc: cropped, kh0: rh[0], khN, kw0: rw[0], kwN };
}

/** Crop args after (dt, src, dst): rows = Cout * Cin, the full kernel and the live window. */
const cropArgs = (desc: readonly number[], c: TapCrop): number[] => [desc[4]! * desc[1]!, desc[5]!, desc[6]!, c.kh0, c.khN, c.kw0, c.kwN];

interface Plan {
  descAddr: number;
  N: number;
  Cout: number;
  K: number;
  P: number;
  /** Images per chunk. */
  chunk: number;
}

function plan(ctx: NativeContext, desc: readonly number[], OH: number, OW: number): Plan {
  const [N, C, , , O, KH, KW] = desc as number[];
  const K = C! * KH! * KW!;
  const P = OH * OW;
  const chunk = Math.max(1, Math.min(N!, Math.floor(COL_CAP_ELEMENTS / Math.max(1, K * P))));
  return { descAddr: writeDesc(ctx, desc), N: N!, Cout: O!, K, P, chunk };
}

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

interface Regions {
  /** Bytes asked of the scratch block (the same for every step of a call, so its address stays). */
  total: number;
  /** The GEMM's per-thread panels, also col2im's per-part planes once the GEMM is done. */
  work: number;
  /** Addresses of the regions asked for, in order. */
  at: number[];
}

/** Lay out the scratch block: room for `threads` GEMM slots (or `planeBytes` per thread), then `sizes` (bytes). */
function regions(ctx: NativeContext, sizes: readonly number[], planeBytes = 0): Regions {
  const workBytes = align64(ctx.pool.threads * Math.max(gemmScratchBytes(ctx), planeBytes));
  const total = sizes.reduce((t, b) => t + align64(b), workBytes);
  const { ws } = scratchAndSync(ctx, total, 1);
  const at: number[] = [];
  let off = ws + workBytes;
  for (const b of sizes) {
    at.push(off);
    off += align64(b);
  }
  return { total, work: ws, at };
}

/** A copy step split over its `rows` (channels, taps or planes) when it moves enough elements. */
function runCopy(ctx: NativeContext, kernel: string, args: readonly number[], elements: number, rows: number): void {
  ctx.pool.runParts(kernel, args, partsFor(ctx, elements, MIN_COPY_PER_PART, rows));
}

/** One GEMM C[M,N] (+)= op(A) op(B) (+ bias) on gemm.ts, split over the threads. */
function runGemm(
  ctx: NativeContext, r: Regions, flags: number, dtypes: number, M: number, N: number, K: number,
  a: number, lda: number, b: number, ldb: number, c: number, ldc: number, bias = 0,
): void {
  const parts = partsFor(ctx, M * N * K, MIN_MACS_PER_PART, Math.max(Math.ceil(M / 4), Math.ceil(N / 8)));
  const { ws, sync } = scratchAndSync(ctx, r.total, parts); // the same block: ws === r.work
  ctx.pool.runParts('gemm', [flags, dtypes, 1, M, N, K, a, lda, 0, b, ldb, 0, c, ldc, 0, bias, ws, sync], parts);
}

/**
 * The forward pipeline (im2col, GEMM, scatter to NCHW) of the convolution `desc` with output map
 * OH x OW; `placeWeight` returns the address of its [Cout][K] weight, given a scratch region of
 * `weightBytes` where it may write one (a cropped or flipped copy).
 */
function forwardPipeline(
  ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, x: number, bias: number, y: number,
  weightBytes: number, placeWeight: (at: number) => number,
): void {
  const dx = dtypes & 15, dw = (dtypes >> 4) & 15, dy = (dtypes >> 8) & 15, db = (dtypes >> 12) & 15;
  const pl = plan(ctx, desc, OH, OW);
  const r = regions(ctx, [pl.K * pl.chunk * pl.P * bytesOf(dx), pl.Cout * pl.chunk * pl.P * bytesOf(dy), weightBytes]);
  const [col, ycm, wAt] = r.at as [number, number, number];
  const w = placeWeight(wAt);
  for (let n0 = 0; n0 < pl.N; n0 += pl.chunk) {
    const nImg = Math.min(pl.chunk, pl.N - n0);
    const L = nImg * pl.P;
    runCopy(ctx, 'conv_im2col', [pl.descAddr, dx, x, col, n0, nImg], pl.K * L, pl.K);
    runGemm(ctx, r, bias ? GEMM_BIAS_ROW : 0, dw | (dx << 4) | (dy << 8) | (db << 12), pl.Cout, L, pl.K, w, pl.K, col, L, ycm, L, bias);
    runCopy(ctx, 'conv_from_channel_major', [dy, ycm, y, n0, nImg, pl.Cout, pl.P], pl.Cout * L, pl.Cout);
  }
}

/** The live tap window of one output pixel (oh, ow): taps [kh0, kh0 + khN) x [kw0, kw0 + kwN). */
export interface PixelWindow {
  oh: number;
  ow: number;
  kh0: number;
  khN: number;
  kw0: number;
  kwN: number;
}

/** The taps [lo, hi) along one axis whose input index o * s - pad + t * d falls inside [0, len). */
function pixelTaps(o: number, len: number, pad: number, k: number, s: number, d: number): [number, number] {
  let lo = 0;
  while (lo < k && o * s - pad + lo * d < 0) lo++;
  let hi = lo;
  while (hi < k && o * s - pad + hi * d < len) hi++;
  return [lo, hi];
}

/**
 * Each output pixel's live tap window, when on maps this small most taps of most pixels read the
 * zero padding (ResNet-18's 3x3 convolutions on layer3's 2x2 maps: each pixel reads 4 of the 9
 * taps) and cropTaps cannot cut them (a tap live for one pixel is dead for another): forward then
 * runs one GEMM per output pixel over its window, with 16 of the 36 multiply-adds per 2x2 plane
 * instead of 36. Null where at least half the taps are live (no gain worth P smaller products).
 */
export function pixelWindows(desc: readonly number[], OH: number, OW: number): PixelWindow[] | null {
  const [, , H, W, , KH, KW, sh, sw, ph, pw, dh, dw, g] = desc as number[];
  if (g !== 1 || OH * OW > 16) return null;
  const out: PixelWindow[] = [];
  let live = 0;
  for (let oh = 0; oh < OH; oh++) {
    const [kh0, kh1] = pixelTaps(oh, H!, ph!, KH!, sh!, dh!);
    for (let ow = 0; ow < OW; ow++) {
      const [kw0, kw1] = pixelTaps(ow, W!, pw!, KW!, sw!, dw!);
      if (kh1 <= kh0 || kw1 <= kw0) return null;
      out.push({ oh, ow, kh0, khN: kh1 - kh0, kw0, kwN: kw1 - kw0 });
      live += (kh1 - kh0) * (kw1 - kw0);
    }
  }
  return live * 2 <= OH * OW * KH! * KW! ? out : null;
}

/**
 * Forward by output pixel (pixelWindows): per pixel, the weight cropped to its window, that pixel's
 * columns of every image (im2col of one pixel), one GEMM [Cout][C * window] x [C * window][images]
 * and its row scattered into y. `w` is [Cout][C][KH][KW].
 */
function forwardByPixel(
  ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, x: number, bias: number, y: number,
  wins: readonly PixelWindow[], weightBytes: number, placeWeight: (at: number) => number,
): void {
  const dx = dtypes & 15, dw = (dtypes >> 4) & 15, dy = (dtypes >> 8) & 15, db = (dtypes >> 12) & 15;
  const [N, C, , , O, KH, KW] = desc as number[];
  const P = OH * OW;
  const maxK = C! * Math.max(...wins.map((v) => v.khN * v.kwN));
  const chunk = Math.max(1, Math.min(N!, Math.floor(COL_CAP_ELEMENTS / maxK)));
  const descAddr = writeDesc(ctx, desc);
  const r = regions(ctx, [maxK * chunk * bytesOf(dx), O! * chunk * bytesOf(dy), O! * maxK * bytesOf(dw), weightBytes]);
  const [col, ycm, wCrop, wAt] = r.at as [number, number, number, number];
  const w = placeWeight(wAt);
  for (const v of wins) {
    const K = C! * v.khN * v.kwN;
    runCopy(ctx, 'conv_crop_taps', [dw, w, wCrop, O! * C!, KH!, KW!, v.kh0, v.khN, v.kw0, v.kwN], O! * K, O!);
    for (let n0 = 0; n0 < N!; n0 += chunk) {
      const nImg = Math.min(chunk, N! - n0);
      runCopy(ctx, 'conv_im2col_pixel', [descAddr, dx, x, col, n0, nImg, v.oh, v.ow, v.kh0, v.khN, v.kw0, v.kwN], K * nImg, K);
      runGemm(ctx, r, bias ? GEMM_BIAS_ROW : 0, dw | (dx << 4) | (dy << 8) | (db << 12), O!, nImg, K, wCrop, K, col, nImg, ycm, nImg, bias);
      runCopy(ctx, 'conv_pixel_from_channel_major', [dy, ycm, y, n0, nImg, O!, P, v.oh * OW + v.ow], O! * nImg, O!);
    }
  }
}

/** y = conv2d(x, w) (+ bias); dtypes as the conv kernels' (x | w << 4 | y << 8 | bias << 12). */
export function convGemmForward(ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, x: number, w: number, bias: number, y: number): void {
  const dw = (dtypes >> 4) & 15;
  const crop = cropTaps(desc, OH, OW);
  if (!crop) {
    const wins = pixelWindows(desc, OH, OW);
    if (wins) forwardByPixel(ctx, desc, OH, OW, dtypes, x, bias, y, wins, 0, () => w);
    else forwardPipeline(ctx, desc, OH, OW, dtypes, x, bias, y, 0, () => w);
    return;
  }
  const weightElements = desc[4]! * desc[1]! * crop.khN * crop.kwN;
  forwardPipeline(ctx, crop.desc, OH, OW, dtypes, x, bias, y, weightElements * bytesOf(dw), (at) => {
    runCopy(ctx, 'conv_crop_taps', [dw, w, at, ...cropArgs(desc, crop)], weightElements, desc[4]!);
    return at;
  });
}

/**
 * grad-input of a stride-1, undilated convolution is a forward convolution of gy with the weight
 * flipped and its channel axes swapped (padding KH - 1 - ph): dx comes out of the GEMM rounded
 * once, with no float32 column matrix to write and fold back (col2im) and im2col's copy of gy in
 * gy's dtype. `desc` may be cropped (cropTaps): kh0 / kw0 place its window in the full weight.
 * Null when the geometry is not that.
 */
function gradInputAsForward(desc: readonly number[], OH: number, OW: number): number[] | null {
  const [N, C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dwl, g] = desc as number[];
  if (sh !== 1 || sw !== 1 || dh !== 1 || dwl !== 1 || g !== 1) return null;
  const padH = KH! - 1 - ph!, padW = KW! - 1 - pw!;
  if (padH < 0 || padW < 0 || outSize(OH, padH, KH!, 1, 1) !== H || outSize(OW, padW, KW!, 1, 1) !== W) return null;
  return [N!, O!, OH, OW, C!, KH!, KW!, 1, 1, padH, padW, 1, 1, 1];
}

/** dx from gy and w; dtypes gy | w << 4 | dx << 8. */
export function convGemmBackwardInput(ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, gy: number, w: number, dx: number): void {
  const dgy = dtypes & 15, dw = (dtypes >> 4) & 15, ddx = (dtypes >> 8) & 15;
  const crop = cropTaps(desc, OH, OW);
  const used = crop ? crop.desc : desc;
  const [, C, H, W, O, KH, KW] = desc as number[];
  const asForward = gradInputAsForward(used, OH, OW);
  if (asForward) {
    const kh0 = crop ? crop.kh0 : 0, khN = used[5]!, kw0 = crop ? crop.kw0 : 0, kwN = used[6]!;
    const weightElements = O! * C! * khN * kwN;
    const flipped = (at: number): number => {
      runCopy(ctx, 'conv_flip_weight', [dw, w, at, O!, C!, KH!, KW!, kh0, khN, kw0, kwN], weightElements, C!);
      return at;
    };
    const forwardDtypes = dgy | (dw << 4) | (ddx << 8);
    const wins = crop ? null : pixelWindows(asForward, H!, W!);
    if (wins) forwardByPixel(ctx, asForward, H!, W!, forwardDtypes, gy, 0, dx, wins, weightElements * bytesOf(dw), flipped);
    else forwardPipeline(ctx, asForward, H!, W!, forwardDtypes, gy, 0, dx, weightElements * bytesOf(dw), flipped);
    return;
  }
  const pl = plan(ctx, used, OH, OW);
  const planeBytes = align64(H! * W! * 4);
  const r = regions(ctx, [pl.K * pl.chunk * pl.P * 4, pl.Cout * pl.chunk * pl.P * bytesOf(dgy), crop ? pl.Cout * pl.K * bytesOf(dw) : 0], planeBytes);
  const [dcol, dycm, wCrop] = r.at as [number, number, number];
  if (crop) {
    runCopy(ctx, 'conv_crop_taps', [dw, w, wCrop, ...cropArgs(desc, crop)], pl.Cout * pl.K, pl.Cout);
    w = wCrop;
  }
  for (let n0 = 0; n0 < pl.N; n0 += pl.chunk) {
    const nImg = Math.min(pl.chunk, pl.N - n0);
    const L = nImg * pl.P;
    runCopy(ctx, 'conv_to_channel_major', [dgy, gy, dycm, n0, nImg, pl.Cout, pl.P], pl.Cout * L, pl.Cout);
    runGemm(ctx, r, GEMM_TRANS_A, dw | (dgy << 4) | (DT_F32 << 8), pl.K, L, pl.Cout, w, pl.K, dycm, L, dcol, L);
    // col2im's per-part float32 planes take the GEMM's room (the GEMM is done with it)
    const parts = partsFor(ctx, pl.K * L, MIN_COPY_PER_PART, nImg * C!);
    ctx.pool.runParts('conv_col2im', [pl.descAddr, ddx, dcol, dx, n0, nImg, r.work], parts);
  }
}

/** dw from x and gy; dtypes x | gy << 4 | dw << 8. */
export function convGemmBackwardWeight(ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, x: number, gy: number, dw: number): void {
  const dx = dtypes & 15, dgy = (dtypes >> 4) & 15, ddw = (dtypes >> 8) & 15;
  const crop = cropTaps(desc, OH, OW);
  const pl = plan(ctx, crop ? crop.desc : desc, OH, OW);
  const chunks = Math.ceil(pl.N / pl.chunk);
  // several chunks: their sums add up in float32 (in dw itself when it is float32), rounded once at the end;
  // a cropped weight's gradient is summed in float32 too, then spread over the whole kernel
  const sumInScratch = crop !== null || (chunks > 1 && ddw !== DT_F32);
  const r = regions(ctx, [pl.K * pl.chunk * pl.P * bytesOf(dx), pl.Cout * pl.chunk * pl.P * bytesOf(dgy), sumInScratch ? pl.Cout * pl.K * 4 : 0]);
  const [col, dycm, sums] = r.at as [number, number, number];
  const target = sumInScratch ? sums : dw;
  const dTarget = sumInScratch ? DT_F32 : ddw;
  for (let n0 = 0, i = 0; n0 < pl.N; n0 += pl.chunk, i++) {
    const nImg = Math.min(pl.chunk, pl.N - n0);
    const L = nImg * pl.P;
    runCopy(ctx, 'conv_im2col', [pl.descAddr, dx, x, col, n0, nImg], pl.K * L, pl.K);
    runCopy(ctx, 'conv_to_channel_major', [dgy, gy, dycm, n0, nImg, pl.Cout, pl.P], pl.Cout * L, pl.Cout);
    const flags = GEMM_TRANS_B | (i > 0 ? GEMM_ACCUMULATE : 0);
    runGemm(ctx, r, flags, dgy | (dx << 4) | (dTarget << 8), pl.Cout, pl.K, L, dycm, L, col, L, target, pl.K);
  }
  if (crop) runCopy(ctx, 'conv_uncrop_taps', [ddw, target, dw, ...cropArgs(desc, crop)], pl.Cout * pl.K, pl.Cout);
  else if (sumInScratch) runCopy(ctx, 'conv_round_f32', [ddw, target, dw, pl.Cout * pl.K], pl.Cout * pl.K, pl.Cout * pl.K);
}
