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
/** Elements moved per thread below which a copy step runs on the calling thread alone. */
const MIN_COPY_PER_PART = 1 << 16;

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

/** y = conv2d(x, w) (+ bias); dtypes as the conv kernels' (x | w << 4 | y << 8 | bias << 12). */
export function convGemmForward(ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, x: number, w: number, bias: number, y: number): void {
  const dx = dtypes & 15, dw = (dtypes >> 4) & 15, dy = (dtypes >> 8) & 15, db = (dtypes >> 12) & 15;
  const pl = plan(ctx, desc, OH, OW);
  const r = regions(ctx, [pl.K * pl.chunk * pl.P * bytesOf(dx), pl.Cout * pl.chunk * pl.P * bytesOf(dy)]);
  const [col, ycm] = r.at as [number, number];
  for (let n0 = 0; n0 < pl.N; n0 += pl.chunk) {
    const nImg = Math.min(pl.chunk, pl.N - n0);
    const L = nImg * pl.P;
    runCopy(ctx, 'conv_im2col', [pl.descAddr, dx, x, col, n0, nImg], pl.K * L, pl.K);
    runGemm(ctx, r, bias ? GEMM_BIAS_ROW : 0, dw | (dx << 4) | (dy << 8) | (db << 12), pl.Cout, L, pl.K, w, pl.K, col, L, ycm, L, bias);
    runCopy(ctx, 'conv_from_channel_major', [dy, ycm, y, n0, nImg, pl.Cout, pl.P], pl.Cout * L, pl.Cout);
  }
}

/** dx from gy and w; dtypes gy | w << 4 | dx << 8. */
export function convGemmBackwardInput(ctx: NativeContext, desc: readonly number[], OH: number, OW: number, dtypes: number, gy: number, w: number, dx: number): void {
  const dgy = dtypes & 15, dw = (dtypes >> 4) & 15, ddx = (dtypes >> 8) & 15;
  const pl = plan(ctx, desc, OH, OW);
  const [, C, H, W] = desc as number[];
  const planeBytes = align64(H! * W! * 4);
  const r = regions(ctx, [pl.K * pl.chunk * pl.P * 4, pl.Cout * pl.chunk * pl.P * bytesOf(dgy)], planeBytes);
  const [dcol, dycm] = r.at as [number, number];
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
  const pl = plan(ctx, desc, OH, OW);
  const chunks = Math.ceil(pl.N / pl.chunk);
  // several chunks: their sums add up in float32 (in dw itself when it is float32), rounded once at the end
  const sumInScratch = chunks > 1 && ddw !== DT_F32;
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
  if (sumInScratch) runCopy(ctx, 'conv_round_f32', [ddw, target, dw, pl.Cout * pl.K], pl.Cout * pl.K, pl.Cout * pl.K);
}
