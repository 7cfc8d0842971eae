// Convolutions over a whole batch as single GEMMs (groups = 1): the data movement around
// gemm.ts's `gemm`, for the shapes where conv.ts's per-image products are too small to keep
// the 4x8 tile busy (ResNet's 8x8 .. 1x1 maps with hundreds of channels, its stride-2 convs).
//
// With L = nImg * OH * OW columns (the images n0 .. n0 + nImg of the batch side by side) and
// K = Cin * KH * KW rows (tap k = (ci, kh, kw)):
//   forward      Ycm[Cout][L] = W[Cout][K] * Col[K][L] (+ bias),  Y = Ycm scattered to NCHW
//   grad-input   dCol[K][L]   = W^T * dYcm[Cout][L] (f32),        dX = col2im(dCol), rounded once
//   grad-weight  dW[Cout][K]  = dYcm * Col^T
// Col (im2col) and Ycm / dYcm ("channel-major": [C][n*P + p]) keep the tensors' dtype: the
// GEMM widens 16-bit values to float32 once, while it packs, and accumulates in float32.
// The driver (src/backend/wasm/native_conv_gemm.ts) runs each step as its own parallel call;
// these kernels split their rows between parts, so results do not depend on the split.
//
// Geometry: the same 16-i32 descriptor as conv.ts (docs/kernels.md):
//   N, Cin, H, W, Cout, KH, KW, strideH, strideW, padH, padW, dilH, dilW, groups

import { DT_F16, DT_F32, dtSize, f32x4ToBf16x4, f32x4ToF16x4, loadF, storeF } from './gemm';

// @ts-ignore: decorator
@inline function outSize(len: i32, pad: i32, k: i32, s: i32, d: i32): i32 {
  const span = len + 2 * pad - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

/** The rows [r0, r1) of `rows` that part `part` of `parts` owns. */
// @ts-ignore: decorator
@inline function share(rows: i32, part: i32, parts: i32, hi: bool): i32 {
  const p = hi ? part + 1 : part;
  return <i32>(<i64>rows * <i64>p / <i64>max(parts, 1));
}

/** The first output index o whose input index o * s + off is >= 0. */
// @ts-ignore: decorator
@inline function firstInside(off: i32, s: i32): i32 {
  return off < 0 ? (-off + s - 1) / s : 0;
}

/** One past the last output index o (< outLen) whose input index o * s + off is < len. */
// @ts-ignore: decorator
@inline function endInside(off: i32, s: i32, len: i32, outLen: i32): i32 {
  return len - off <= 0 ? 0 : min(outLen, (len - off + s - 1) / s);
}

/**
 * Copy / zero `bytes` (a multiple of 2) at short runs inline: V8 makes memory.copy and memory.fill
 * calls into the runtime, which cost more than moving the 8 .. 128 bytes of a ResNet map row.
 */
// @ts-ignore: decorator
@inline function copyRun(dst: usize, src: usize, bytes: usize): void {
  if (bytes >= 256) {
    memory.copy(dst, src, bytes);
    return;
  }
  let i: usize = 0;
  for (; i + 16 <= bytes; i += 16) v128.store(dst + i, v128.load(src + i));
  for (; i + 4 <= bytes; i += 4) store<u32>(dst + i, load<u32>(src + i));
  if (i < bytes) store<u16>(dst + i, load<u16>(src + i));
}

// @ts-ignore: decorator
@inline function zeroRun(dst: usize, bytes: usize): void {
  if (bytes >= 256) {
    memory.fill(dst, 0, bytes);
    return;
  }
  let i: usize = 0;
  for (; i + 16 <= bytes; i += 16) v128.store(dst + i, i32x4.splat(0));
  for (; i + 4 <= bytes; i += 4) store<u32>(dst + i, 0);
  if (i < bytes) store<u16>(dst + i, 0);
}

/**
 * One im2col row (tap offsets offH, offW) of a stride-1 convolution whose output map is the input's
 * size: each image's H x W block is its input plane shifted by offH * W + offW elements, with the
 * rows and columns whose source falls outside the image zeroed. One contiguous copy per image (the
 * rows in between come along, their wrapped-around edge columns zeroed after), instead of one
 * copy per output row: ResNet's 8x8 .. 2x2 rows are 2 .. 16 bytes long.
 */
// @ts-ignore: decorator
@inline function im2colShiftedPlanes(x: usize, rowBase: usize, es: usize, n0: i32, nImg: i32, C: i32, ci: i32, H: i32, W: i32, offH: i32, offW: i32): void {
  const P = H * W;
  const ohLo = min(max(0, -offH), H), ohHi = max(ohLo, min(H, H - offH));
  const owLo = min(max(0, -offW), W), owHi = max(owLo, min(W, W - offW));
  const planeBytes = <usize>P * es;
  if (ohLo == ohHi || owLo == owHi) {
    zeroRun(rowBase, <usize>nImg * planeBytes);
    return;
  }
  // dst [a, b) reads src [a + shift, b + shift), inside the plane (first and last live elements)
  const a = ohLo * W + owLo, b = (ohHi - 1) * W + owHi;
  const shift = offH * W + offW;
  const headBytes = <usize>a * es, copyBytes = <usize>(b - a) * es, tail = <usize>b * es;
  const leftBytes = <usize>owLo * es, rightBytes = <usize>(W - owHi) * es, rowBytes = <usize>W * es;
  let plane = x + (<usize>n0 * <usize>C + <usize>ci) * planeBytes;
  const planeStep = <usize>C * planeBytes;
  for (let n = 0; n < nImg; n++) {
    const dst = rowBase + <usize>n * planeBytes;
    zeroRun(dst, headBytes);
    copyRun(dst + headBytes, plane + <usize>(a + shift) * es, copyBytes);
    zeroRun(dst + tail, planeBytes - tail);
    // the edge columns of the rows in between hold neighbouring rows' values: zero them
    if (leftBytes != 0) for (let oh = ohLo + 1; oh < ohHi; oh++) zeroRun(dst + <usize>oh * rowBytes, leftBytes);
    if (rightBytes != 0) for (let oh = ohLo; oh < ohHi - 1; oh++) zeroRun(dst + <usize>oh * rowBytes + <usize>owHi * es, rightBytes);
    plane += planeStep;
  }
}

/**
 * The bits of one `es`-byte element of a plane kept (all ones) or zeroed by a same-map im2col row:
 * element p = oh * W + ow is live when its source p + shift lies inside the image, i.e. when
 * ohLo <= oh < ohHi and owLo <= ow < owHi.
 */
// @ts-ignore: decorator
@inline function liveBits(p: i32, W: i32, ohLo: i32, ohHi: i32, owLo: i32, owHi: i32, es: usize): u64 {
  const oh = p / W, ow = p - oh * W;
  if (oh < ohLo || oh >= ohHi || ow < owLo || ow >= owHi) return 0;
  return es == 4 ? <u64>0xffffffff : <u64>0xffff;
}

/** The live-element mask of the 16 bytes of a plane from element p0 (lanes of `es` bytes). */
// @ts-ignore: decorator
@inline function liveMask16(p0: i32, W: i32, ohLo: i32, ohHi: i32, owLo: i32, owHi: i32, es: usize): v128 {
  const half = <i32>(8 / es);
  let lo: u64 = 0, hi: u64 = 0;
  for (let l = 0; l < half; l++) {
    lo |= liveBits(p0 + l, W, ohLo, ohHi, owLo, owHi, es) << (<u64>l * <u64>es * 8);
    hi |= liveBits(p0 + half + l, W, ohLo, ohHi, owLo, owHi, es) << (<u64>l * <u64>es * 8);
  }
  return i64x2.replace_lane(i64x2.splat(lo), 1, hi);
}

/**
 * The masked form of im2colShiftedPlanes, for the plane sizes of ResNet's maps (8x8 .. 1x1 in 16
 * bits, 8x8 .. 1x1 in float32): each image's block is its plane read at the shift, one load per
 * 2 .. 16 bytes, ANDed with the row's live-element mask (the same for every image), instead of a
 * zero fill, a copy and edge fixes per plane (8 .. 128 bytes: their loop overheads were most of
 * the time). Exact: live lanes are copied bit for bit and the others are 0, as the plane-by-plane
 * version writes them. The masked lanes read the neighbouring plane (|shift| < P), so this runs
 * on images nLo .. nHi, whose reads the caller keeps inside x. Images outer, so each source plane
 * is read once while it is in L1 (the planes are C * P elements apart: a multiple of 4 KB, one L1
 * set, for layer1). Returns false where the plane size or row is not one of those handled.
 */
// @ts-ignore: decorator
@inline function im2colMaskedPlanes(x: usize, rowBase: usize, es: usize, n0: i32, nLo: i32, nHi: i32, C: i32, ci: i32, H: i32, W: i32, offH: i32, offW: i32): bool {
  const P = H * W;
  const planeBytes = <usize>P * es, rowBytes = <usize>W * es;
  const small = planeBytes == 2 || planeBytes == 4 || planeBytes == 8;
  const vectors = planeBytes == 16 || planeBytes == 32;
  // whole rows of one or two vectors (8x8 in 16 bits; 4x4 and 8x8 in float32)
  const byRows = (rowBytes == 16 || rowBytes == 32) && planeBytes <= 256;
  if (!small && !vectors && !byRows) return false;
  const ohLo = min(max(0, -offH), H), ohHi = max(ohLo, min(H, H - offH));
  const owLo = min(max(0, -offW), W), owHi = max(owLo, min(W, W - offW));
  // an all-padding row is a fill; otherwise |offH| < H and |offW| < W, so |shift| < P
  if (ohLo == ohHi || owLo == owHi) return false;
  const planeStep = <usize>C * planeBytes;
  let src = <usize>(<isize>(x + (<usize>(n0 + nLo) * <usize>C + <usize>ci) * planeBytes) + <isize>(offH * W + offW) * <isize>es);
  let dst = rowBase + <usize>nLo * planeBytes;
  if (small) {
    let mask: u64 = 0;
    for (let p = 0; p < P; p++) mask |= liveBits(p, W, ohLo, ohHi, owLo, owHi, es) << (<u64>p * <u64>es * 8);
    for (let n = nLo; n < nHi; n++, src += planeStep, dst += planeBytes) {
      if (planeBytes == 8) store<u64>(dst, load<u64>(src) & mask);
      else if (planeBytes == 4) store<u32>(dst, load<u32>(src) & <u32>mask);
      else store<u16>(dst, load<u16>(src) & <u16>mask);
    }
  } else if (vectors) {
    const lanes = <i32>(16 / es);
    const m0 = liveMask16(0, W, ohLo, ohHi, owLo, owHi, es);
    const m1 = planeBytes == 32 ? liveMask16(lanes, W, ohLo, ohHi, owLo, owHi, es) : m0;
    for (let n = nLo; n < nHi; n++, src += planeStep, dst += planeBytes) {
      v128.store(dst, v128.and(v128.load(src), m0));
      if (planeBytes == 32) v128.store(dst, v128.and(v128.load(src, 16), m1), 16);
    }
  } else {
    // a row is live or not as a whole; a live row keeps columns owLo .. owHi (the same mask per row)
    const lanes = <i32>(16 / es);
    const c0 = liveMask16(ohLo * W, W, ohLo, ohHi, owLo, owHi, es);
    const c1 = rowBytes == 32 ? liveMask16(ohLo * W + lanes, W, ohLo, ohHi, owLo, owHi, es) : c0;
    const zero = i32x4.splat(0);
    for (let n = nLo; n < nHi; n++, src += planeStep, dst += planeBytes) {
      let d = dst, q = src;
      for (let oh = 0; oh < H; oh++, d += rowBytes, q += rowBytes) {
        const live = oh >= ohLo && oh < ohHi;
        v128.store(d, live ? v128.and(v128.load(q), c0) : zero);
        if (rowBytes == 32) v128.store(d, live ? v128.and(v128.load(q, 16), c1) : zero, 16);
      }
    }
  }
  return true;
}

/**
 * One im2col row (tap offsets offH, offW) of a strided convolution on maps whose input rows fit in
 * 16 bytes (ResNet's stride-2 convolutions on 8x8 .. 2x2 maps in 16 bits; 4x4 .. 1x1 in float32)
 * and whose output rows are 4, 8 or 16 bytes, or whose output is one pixel: each output row is one 16-byte load of its input
 * row and one i8x16.swizzle picking the strided elements, the taps that read the padding getting
 * index 0xff (swizzle writes 0 for indices >= 16), instead of a scalar load and store per element
 * and fills at the edges. A copy, bit for bit. The load may read past the input row into the next
 * rows (discarded lanes), so a row whose last image's last load would pass `xEnd` (the end of x:
 * the last channels of the batch's last image) is left to the element loop, as are sizes that do
 * not fit (the function returns false).
 */
// @ts-ignore: decorator
@inline function im2colSwizzledRows(x: usize, xEnd: usize, rowBase: usize, es: usize, n0: i32, nImg: i32, C: i32, ci: i32, H: i32, W: i32, OH: i32, OW: i32, SH: i32, SW: i32, offH: i32, offW: i32): bool {
  const planeBytes = <usize>(H * W) * es, P = OH * OW;
  const planeStep = <usize>C * planeBytes;
  if (P == 1) {
    // one output per image (2x2 -> 1x1): one element of each plane, or a fill
    let dst = rowBase;
    const dstEnd = rowBase + <usize>nImg * es;
    if (offH < 0 || offH >= H || offW < 0 || offW >= W) {
      zeroRun(rowBase, <usize>nImg * es);
      return true;
    }
    let src = x + (<usize>n0 * <usize>C + <usize>ci) * planeBytes + <usize>(offH * W + offW) * es;
    if (es == 2) for (; dst < dstEnd; dst += 2, src += planeStep) store<u16>(dst, load<u16>(src));
    else for (; dst < dstEnd; dst += 4, src += planeStep) store<u32>(dst, load<u32>(src));
    return true;
  }
  const inBytes = <usize>W * es, outBytes = <usize>OW * es;
  if (inBytes > 16 || !(outBytes == 4 || outBytes == 8 || outBytes == 16)) return false;
  // the swizzle: output byte b takes input byte idx[b] (0xff: zero)
  let lo: u64 = 0, hi: u64 = 0;
  for (let b = 0; b < 16; b++) {
    const j = b / <i32>es, within = b - j * <i32>es;
    const iw = j * SW + offW;
    const idx: u64 = j < OW && iw >= 0 && iw < W ? <u64>(iw * <i32>es + within) : 0xff;
    if (b < 8) lo |= idx << (<u64>b * 8);
    else hi |= idx << (<u64>(b - 8) * 8);
  }
  const pick = i64x2.replace_lane(i64x2.splat(lo), 1, hi);
  if (x + (<usize>(n0 + nImg - 1) * <usize>C + <usize>ci) * planeBytes + <usize>(H - 1) * inBytes + 16 > xEnd) return false;
  for (let n = 0; n < nImg; n++) {
    const plane = x + (<usize>(n0 + n) * <usize>C + <usize>ci) * planeBytes;
    let dst = rowBase + <usize>(n * P) * es;
    for (let oh = 0; oh < OH; oh++, dst += outBytes) {
      const ih = oh * SH + offH;
      const v = ih >= 0 && ih < H ? i8x16.swizzle(v128.load(plane + <usize>ih * inBytes), pick) : i32x4.splat(0);
      if (outBytes == 4) store<u32>(dst, i32x4.extract_lane(v, 0));
      else if (outBytes == 8) store<u64>(dst, i64x2.extract_lane(v, 0));
      else v128.store(dst, v);
    }
  }
  return true;
}

/**
 * One im2col row (tap offsets offH, offW) by the general loop: any stride, fills at the edges.
 * A function of its own (not inlined): compiled inside conv_im2col beside the faster paths, its
 * loop ran ~20% slower (2x2 -> 1x1 at stride 2, the 7x7 stem).
 */
function im2colRowGeneric(x: usize, rowBase: usize, es: usize, n0: i32, nImg: i32, C: i32, ci: i32, H: i32, W: i32, OH: i32, OW: i32, SH: i32, SW: i32, offH: i32, offW: i32): void {
  const P = OH * OW;
  // the ow range whose iw = ow * SW + offW falls inside [0, W)
  const owHi = endInside(offW, SW, W, OW);
  const owLo = min(firstInside(offW, SW), owHi);
  for (let n = 0; n < nImg; n++) {
    const plane = x + (<usize>(n0 + n) * <usize>C + <usize>ci) * <usize>(H * W) * es;
    for (let oh = 0; oh < OH; oh++) {
      const dst = rowBase + <usize>(n * P + oh * OW) * es;
      const ih = oh * SH + offH;
      if (ih < 0 || ih >= H) {
        zeroRun(dst, <usize>OW * es);
        continue;
      }
      if (owLo > 0) zeroRun(dst, <usize>owLo * es);
      if (owHi < OW) zeroRun(dst + <usize>owHi * es, <usize>(OW - owHi) * es);
      const src = plane + <usize>(ih * W + owLo * SW + offW) * es;
      const cnt = owHi - owLo;
      const d = dst + <usize>owLo * es;
      if (SW == 1) copyRun(d, src, <usize>cnt * es);
      else if (es == 4) {
        for (let j = 0; j < cnt; j++) store<u32>(d + (<usize>j << 2), load<u32>(src + <usize>(j * SW) * 4));
      } else {
        for (let j = 0; j < cnt; j++) store<u16>(d + (<usize>j << 1), load<u16>(src + <usize>(j * SW) * 2));
      }
    }
  }
}

/**
 * im2col of images n0 .. n0 + nImg: col[k][(n - n0) * P + oh * OW + ow] = x[n][ci][ih][iw] with
 * ih = oh * sh - ph + kh * dh (0 outside the image), in x's dtype `dt` (a copy, no rounding).
 * Parts split the K rows.
 */
export function conv_im2col(desc: usize, dt: i32, x: usize, col: usize, n0: i32, nImg: i32, part: i32, parts: i32): void {
  const N = load<i32>(desc, 0), C = load<i32>(desc, 4), H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  const KH = load<i32>(desc, 20), KW = load<i32>(desc, 24);
  const SH = load<i32>(desc, 28), SW = load<i32>(desc, 32), PH = load<i32>(desc, 36), PW = load<i32>(desc, 40);
  const DH = load<i32>(desc, 44), DW = load<i32>(desc, 48);
  const OH = outSize(H, PH, KH, SH, DH), OW = outSize(W, PW, KW, SW, DW);
  const P = OH * OW, L = nImg * P, K = C * KH * KW;
  const es = dtSize(dt);
  const k0 = share(K, part, parts, false), k1 = share(K, part, parts, true);
  // stride 1 with the output map the input's size ("same" padding: ResNet's 3x3 convolutions)
  const sameMap = SH == 1 && SW == 1 && OH == H && OW == W;
  for (let k = k0; k < k1; k++) {
    const ci = k / (KH * KW), kk = k - ci * (KH * KW);
    const kh = kk / KW, kw = kk - kh * KW;
    const offW = kw * DW - PW, offH = kh * DH - PH;
    const rowBase = col + <usize>k * <usize>L * es;
    if (sameMap) {
      // the masked copy reads up to a plane before / after each source plane: x's first plane
      // (with a shift back) and last plane (a shift forward) go plane by plane
      const shift = offH * W + offW;
      const nLo = shift < 0 && n0 == 0 && ci == 0 ? 1 : 0;
      const nHi = shift > 0 && n0 + nImg == N && ci == C - 1 ? nImg - 1 : nImg;
      if (nLo < nHi && im2colMaskedPlanes(x, rowBase, es, n0, nLo, nHi, C, ci, H, W, offH, offW)) {
        if (nLo > 0) im2colShiftedPlanes(x, rowBase, es, n0, 1, C, ci, H, W, offH, offW);
        if (nHi < nImg) im2colShiftedPlanes(x, rowBase + <usize>nHi * <usize>(H * W) * es, es, n0 + nHi, 1, C, ci, H, W, offH, offW);
      } else im2colShiftedPlanes(x, rowBase, es, n0, nImg, C, ci, H, W, offH, offW);
      continue;
    }
    const xEnd = x + <usize>N * <usize>C * <usize>(H * W) * es;
    if (SW > 1 && im2colSwizzledRows(x, xEnd, rowBase, es, n0, nImg, C, ci, H, W, OH, OW, SH, SW, offH, offW)) continue;
    im2colRowGeneric(x, rowBase, es, n0, nImg, C, ci, H, W, OH, OW, SH, SW, offH, offW);
  }
}

/** One run of 2, 4, 8, 16 or 32 bytes as one or two loads and stores (`bytes` a constant). */
// @ts-ignore: decorator
@inline function moveRun(dst: usize, src: usize, bytes: usize): void {
  if (bytes == 2) store<u16>(dst, load<u16>(src));
  else if (bytes == 4) store<u32>(dst, load<u32>(src));
  else if (bytes == 8) store<u64>(dst, load<u64>(src));
  else {
    v128.store(dst, v128.load(src));
    if (bytes == 32) v128.store(dst, v128.load(src, 16), 16);
  }
}

/** `count` runs of `bytes` (a constant: one loop per run size) from src, srcStep apart, to dst, dstStep apart. */
// @ts-ignore: decorator
@inline function moveRuns(dst: usize, dstStep: usize, src: usize, srcStep: usize, count: i32, bytes: usize): void {
  for (let i = 0; i < count; i++, dst += dstStep, src += srcStep) moveRun(dst, src, bytes);
}

/** moveRuns with the run size dispatched once to its own loop. */
// @ts-ignore: decorator
@inline function moveShortRuns(dst: usize, dstStep: usize, src: usize, srcStep: usize, count: i32, bytes: usize): void {
  if (bytes == 2) moveRuns(dst, dstStep, src, srcStep, count, 2);
  else if (bytes == 4) moveRuns(dst, dstStep, src, srcStep, count, 4);
  else if (bytes == 8) moveRuns(dst, dstStep, src, srcStep, count, 8);
  else if (bytes == 16) moveRuns(dst, dstStep, src, srcStep, count, 16);
  else moveRuns(dst, dstStep, src, srcStep, count, 32);
}

/**
 * Move whole runs between NCHW (nchw[n][c][p]) and channel-major (cm[c][(n - n0) * P + p]) for
 * images n0 .. n0 + nImg, dtype dt (a copy); toCm picks the direction. Parts split the channels.
 */
// @ts-ignore: decorator
@inline function channelMajorCopy(dt: i32, nchw: usize, cm: usize, n0: i32, nImg: i32, C: i32, P: i32, toCm: bool, part: i32, parts: i32): void {
  const es = dtSize(dt);
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const run = <usize>P * es;
  const step = <usize>C * run;
  // runs of 2 .. 32 bytes (ResNet's 1x1, 2x2 and 4x4 maps) as one or two loads and stores each
  // (copyRun's loop tests cost more than the bytes they move), in the order that makes the writes
  // sequential: the strided side (C * run bytes apart, a multiple of 4 KB for 4x4 maps, one L1 set)
  // is then only read. 1 thread, fp16, 64 images, min of 200: [512 ch][1 px] to / from 49-76 /
  // 41-56 -> 22-27 / 15-18 us, [256][4] 30-46 / 26-37 -> 19-20 / 14-16, [128][16] from 47-72 -> 11
  if (run == 2 || run == 4 || run == 8 || run == 16 || run == 32) {
    const cmRow = <usize>(nImg * P) * es;
    if (toCm) {
      for (let c = c0; c < c1; c++) moveShortRuns(cm + <usize>c * cmRow, run, nchw + (<usize>n0 * <usize>C + <usize>c) * run, step, nImg, run);
    } else {
      for (let n = 0; n < nImg; n++) {
        moveShortRuns(nchw + (<usize>(n0 + n) * <usize>C + <usize>c0) * run, run, cm + <usize>c0 * cmRow + <usize>n * run, cmRow, c1 - c0, run);
      }
    }
    return;
  }
  for (let c = c0; c < c1; c++) {
    let q = cm + <usize>c * <usize>(nImg * P) * es;
    let t = nchw + (<usize>n0 * <usize>C + <usize>c) * run;
    for (let n = 0; n < nImg; n++) {
      if (toCm) copyRun(q, t, run);
      else copyRun(t, q, run);
      q += run;
      t += step;
    }
  }
}

/** NCHW src -> channel-major dst: dst[c][(n - n0) * P + p] = src[n][c][p]. */
export function conv_to_channel_major(dt: i32, src: usize, dst: usize, n0: i32, nImg: i32, C: i32, P: i32, part: i32, parts: i32): void {
  channelMajorCopy(dt, src, dst, n0, nImg, C, P, true, part, parts);
}

/** Channel-major src -> NCHW dst (the inverse of conv_to_channel_major). */
export function conv_from_channel_major(dt: i32, src: usize, dst: usize, n0: i32, nImg: i32, C: i32, P: i32, part: i32, parts: i32): void {
  channelMajorCopy(dt, dst, src, n0, nImg, C, P, false, part, parts);
}

/**
 * col2im of images n0 .. n0 + nImg, the adjoint of conv_im2col: dx[n][ci][ih][iw] = the sum, in
 * tap order (kh, kw), of dcol[(ci, kh, kw)][(n - n0) * P + oh * OW + ow] over the taps whose
 * window puts (oh, ow) on (ih, iw); dcol is float32, dx (dtype dt) is rounded once. Each plane is
 * summed in a float32 buffer (scratch: H * W floats per part) tap by tap, row runs at a time.
 * Parts split the (image, channel) planes; scratch holds one 64-byte aligned H * W float32 plane per part.
 */
export function conv_col2im(desc: usize, dt: i32, dcol: usize, dx: usize, n0: i32, nImg: i32, scratch: usize, part: i32, parts: i32): void {
  const C = load<i32>(desc, 4), H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  const KH = load<i32>(desc, 20), KW = load<i32>(desc, 24);
  const SH = load<i32>(desc, 28), SW = load<i32>(desc, 32), PH = load<i32>(desc, 36), PW = load<i32>(desc, 40);
  const DH = load<i32>(desc, 44), DW = load<i32>(desc, 48);
  const OH = outSize(H, PH, KH, SH, DH), OW = outSize(W, PW, KW, SW, DW);
  const P = OH * OW, L = nImg * P, HW = H * W;
  const acc = scratch + <usize>part * <usize>((HW * 4 + 63) & ~63);
  const planes = nImg * C;
  const q0 = share(planes, part, parts, false), q1 = share(planes, part, parts, true);
  for (let q = q0; q < q1; q++) {
    const n = q / C, ci = q - n * C;
    zeroRun(acc, <usize>HW * 4);
    for (let kh = 0; kh < KH; kh++) {
      const offH = kh * DH - PH;
      for (let kw = 0; kw < KW; kw++) {
        const offW = kw * DW - PW;
        const owLo = firstInside(offW, SW), owHi = endInside(offW, SW, W, OW);
        if (owLo >= owHi) continue;
        const cnt = owHi - owLo;
        const row = dcol + (<usize>((ci * KH + kh) * KW + kw) * <usize>L + <usize>(n * P)) * 4;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * SH + offH;
          if (ih < 0 || ih >= H) continue;
          const s = row + <usize>(oh * OW + owLo) * 4;
          const d = acc + <usize>(ih * W + owLo * SW + offW) * 4;
          if (SW == 1) {
            let j = 0;
            for (; j + 4 <= cnt; j += 4) {
              const o = <usize>j * 4;
              v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
            }
            for (; j < cnt; j++) store<f32>(d + <usize>j * 4, load<f32>(d + <usize>j * 4) + load<f32>(s + <usize>j * 4));
          } else {
            for (let j = 0; j < cnt; j++) {
              const dj = d + <usize>(j * SW) * 4;
              store<f32>(dj, load<f32>(dj) + load<f32>(s + <usize>j * 4));
            }
          }
        }
      }
    }
    const out = dx + (<usize>(n0 + n) * <usize>C + <usize>ci) * <usize>HW * dtSize(dt);
    for (let i = 0; i < HW; i++) storeF(out, i, dt, load<f32>(acc + <usize>i * 4));
  }
}

/** dst[i] = src[i] (float32) rounded once to dtype dt, for i in this part's share of [0, n). */
export function conv_round_f32(dt: i32, src: usize, dst: usize, n: i32, part: i32, parts: i32): void {
  const i0 = share(n, part, parts, false), i1 = share(n, part, parts, true);
  if (dt == DT_F32) {
    memory.copy(dst + <usize>i0 * 4, src + <usize>i0 * 4, <usize>(i1 - i0) * 4);
    return;
  }
  for (let i = i0; i < i1; i++) storeF(dst, i, dt, loadF(src, i, DT_F32));
}

/**
 * Crop a weight to the taps that touch the image (dtype dt, a copy): dst[r][a][b] =
 * src[r][kh0 + a][kw0 + b] for r < rows (= Cout * Cin), a < khN, b < kwN. A convolution whose
 * output window never reads the input through the other taps (ResNet's 3x3 on 1x1 maps: only the
 * centre; 2x2 -> 1x1 at stride 2: 4 of 9) is the cropped convolution with less padding, and
 * skipping those taps skips multiply-adds of the zero padding. Parts split the rows.
 */
export function conv_crop_taps(dt: i32, src: usize, dst: usize, rows: i32, KH: i32, KW: i32, kh0: i32, khN: i32, kw0: i32, kwN: i32, part: i32, parts: i32): void {
  const es = dtSize(dt);
  const r0 = share(rows, part, parts, false), r1 = share(rows, part, parts, true);
  const rowIn = <usize>(KH * KW) * es, rowOut = <usize>(khN * kwN) * es, lineIn = <usize>KW * es;
  const runBytes = <usize>kwN * es;
  let s = src + <usize>r0 * rowIn + <usize>(kh0 * KW + kw0) * es, d = dst + <usize>r0 * rowOut;
  // runs of 2, 4 or 8 bytes (ResNet's 2x2 windows of a 3x3 kernel: 4 bytes in 16 bits; the centre
  // tap: 2) as one load and store each: copyRun's loops cost more than the bytes they move
  if (runBytes == 2 || runBytes == 4 || runBytes == 8) {
    for (let r = r0; r < r1; r++, s += rowIn) {
      let sa = s;
      const dEnd = d + rowOut;
      for (; d < dEnd; d += runBytes, sa += lineIn) {
        if (runBytes == 2) store<u16>(d, load<u16>(sa));
        else if (runBytes == 4) store<u32>(d, load<u32>(sa));
        else store<u64>(d, load<u64>(sa));
      }
    }
    return;
  }
  for (let r = r0; r < r1; r++, s += rowIn, d += rowOut) {
    for (let a = 0; a < khN; a++) copyRun(d + <usize>a * runBytes, s + <usize>a * lineIn, runBytes);
  }
}

/**
 * The adjoint of conv_crop_taps for a weight gradient: dst[r][kh][kw] (dtype dt) = src[r][kh -
 * kh0][kw - kw0] (float32, rounded once) inside the cropped taps, 0 outside (those taps only ever
 * multiplied the zero padding). Parts split the rows.
 */
export function conv_uncrop_taps(dt: i32, src: usize, dst: usize, rows: i32, KH: i32, KW: i32, kh0: i32, khN: i32, kw0: i32, kwN: i32, part: i32, parts: i32): void {
  const r0 = share(rows, part, parts, false), r1 = share(rows, part, parts, true);
  const es = dtSize(dt);
  const taps = KH * KW, live = khN * kwN;
  // zero the part's rows in one fill, then write the live window of each row
  memory.fill(dst + <usize>r0 * <usize>taps * es, 0, <usize>(r1 - r0) * <usize>taps * es);
  if (live == 1 && dt != DT_F32) {
    uncropOneTap16(dt, src, dst, taps, kh0 * KW + kw0, r0, r1);
    return;
  }
  for (let r = r0; r < r1; r++) {
    const s = r * live;
    const d = r * taps + kh0 * KW + kw0;
    for (let a = 0; a < khN; a++) {
      for (let b = 0; b < kwN; b++) storeF(dst, d + a * KW + b, dt, load<f32>(src + <usize>(s + a * kwN + b) * 4));
    }
  }
}

/**
 * conv_uncrop_taps with one live tap into a 16-bit weight (ResNet-18's layer4 at 32x32: the 3x3
 * kernels on 1x1 maps keep their centre tap; 512 x 512 rows): the rows' float32 values are
 * contiguous, so four are rounded per vector by convert16's f32x4 narrowing (the cast kernels'
 * rounding, the same bits as storeF's scalar one: round to nearest even, Inf on overflow, NaN
 * quieted with its payload's top bits) and their four patterns stored `taps` elements apart,
 * instead of one scalar rounding per value (~1 ms per 512 x 512 call that way).
 */
function uncropOneTap16(dt: i32, src: usize, dst: usize, taps: i32, tap: i32, r0: i32, r1: i32): void {
  const step = <usize>taps << 1;
  let d = dst + ((<usize>r0 * <usize>taps + <usize>tap) << 1);
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const v = v128.load(src + (<usize>r << 2));
    const h = dt == DT_F16 ? f32x4ToF16x4(v) : f32x4ToBf16x4(v);
    store<u16>(d, <u16>i32x4.extract_lane(h, 0));
    store<u16>(d + step, <u16>i32x4.extract_lane(h, 1));
    store<u16>(d + 2 * step, <u16>i32x4.extract_lane(h, 2));
    store<u16>(d + 3 * step, <u16>i32x4.extract_lane(h, 3));
    d += 4 * step;
  }
  for (; r < r1; r++) storeF(dst, r * taps + tap, dt, load<f32>(src + (<usize>r << 2)));
}

/** Input channels per block of flipOneTap: its source rows (one per output channel) stay in L1 across them. */
const ONE_TAP_CB: i32 = 64;

/** The 32-bit values at p, p + step, p + 2 step, p + 3 step in one vector (lane indices must be constants). */
// @ts-ignore: decorator
@inline function fourRows32(p: usize, step: usize): v128 {
  let v = i32x4.splat(0);
  v = v128.load32_lane(p, v, 0);
  v = v128.load32_lane(p + step, v, 1);
  v = v128.load32_lane(p + 2 * step, v, 2);
  return v128.load32_lane(p + 3 * step, v, 3);
}

/**
 * conv_flip_weight with a one-tap window (ResNet-18's layer4 at 32x32: the 3x3 kernels on 1x1 maps
 * keep their centre tap): dst[ci][co] = src[co][ci][tap], a transpose of a strided matrix. Eight
 * output channels at a time go into one vector (one lane load each, C * taps elements apart) and
 * out with one store, instead of a scalar load and store per element (a 512 x 512 weight:
 * ~1.2 ms per call that way).
 */
function flipOneTap(es: usize, src: usize, dst: usize, O: i32, C: i32, taps: i32, tap: i32, c0: i32, c1: i32): void {
  const rowBytes = <usize>C * <usize>taps * es; // one output channel's whole kernel
  const O8 = O & ~7;
  for (let cb = c0; cb < c1; cb += ONE_TAP_CB) {
    const ce = min(cb + ONE_TAP_CB, c1);
    for (let co = 0; co < O8; co += 8) {
      let s = src + (<usize>co * <usize>C * <usize>taps + <usize>cb * <usize>taps + <usize>tap) * es;
      let d = dst + (<usize>cb * <usize>O + <usize>co) * es;
      const sStep = <usize>taps * es, dStep = <usize>O * es;
      for (let ci = cb; ci < ce; ci++, s += sStep, d += dStep) {
        if (es == 2) {
          let v = i16x8.splat(0);
          v = v128.load16_lane(s, v, 0);
          v = v128.load16_lane(s + rowBytes, v, 1);
          v = v128.load16_lane(s + 2 * rowBytes, v, 2);
          v = v128.load16_lane(s + 3 * rowBytes, v, 3);
          v = v128.load16_lane(s + 4 * rowBytes, v, 4);
          v = v128.load16_lane(s + 5 * rowBytes, v, 5);
          v = v128.load16_lane(s + 6 * rowBytes, v, 6);
          v = v128.load16_lane(s + 7 * rowBytes, v, 7);
          v128.store(d, v);
        } else {
          v128.store(d, fourRows32(s, rowBytes));
          v128.store(d, fourRows32(s + 4 * rowBytes, rowBytes), 16);
        }
      }
    }
    for (let co = O8; co < O; co++) {
      for (let ci = cb; ci < ce; ci++) {
        const s = src + (<usize>(co * C + ci) * <usize>taps + <usize>tap) * es;
        const d = dst + (<usize>ci * <usize>O + <usize>co) * es;
        if (es == 2) store<u16>(d, load<u16>(s));
        else store<u32>(d, load<u32>(s));
      }
    }
  }
}

/** Input channels flipped together by conv_flip_weight. */
const FLIP_CB: i32 = 8;

/**
 * The weight of grad-input as a forward convolution (stride 1, dilation 1): dst[ci][co][a][b] =
 * src[co][ci][kh0 + khN - 1 - a][kw0 + kwN - 1 - b] (dtype dt, a copy), i.e. the live window
 * [kh0, kh0 + khN) x [kw0, kw0 + kwN) of each tap plane, flipped, with the channel axes swapped.
 * Parts split the input channels ci.
 */
export function conv_flip_weight(dt: i32, src: usize, dst: usize, O: i32, C: i32, KH: i32, KW: i32, kh0: i32, khN: i32, kw0: i32, kwN: i32, part: i32, parts: i32): void {
  const es = dtSize(dt);
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const live = khN * kwN;
  if (live == 1) {
    flipOneTap(es, src, dst, O, C, KH * KW, kh0 * KW + kw0, c0, c1);
    return;
  }
  // a whole 3x3 plane flipped is its 9 values reversed: two or three vector moves
  const whole9 = khN == 3 && kwN == 3 && KH == 3 && KW == 3;
  // FLIP_CB input channels at a time, so each source cache line (several ci of one co) is read
  // once for all of them instead of once per ci (the co loop strides C * KH * KW apart)
  for (let cb = c0; cb < c1; cb += FLIP_CB) {
    const ce = min(cb + FLIP_CB, c1);
    for (let co = 0; co < O; co++) {
      for (let ci = cb; ci < ce; ci++) {
        const s = src + <usize>((co * C + ci) * KH * KW) * es;
        const d = dst + <usize>((ci * O + co) * live) * es;
        if (whole9) {
          if (es == 2) {
            store<u16>(d, load<u16>(s, 16));
            v128.store(d, v128.shuffle<u16>(v128.load(s), v128.load(s), 7, 6, 5, 4, 3, 2, 1, 0), 2);
          } else {
            store<u32>(d, load<u32>(s, 32));
            v128.store(d, v128.shuffle<u32>(v128.load(s, 16), v128.load(s, 16), 3, 2, 1, 0), 4);
            v128.store(d, v128.shuffle<u32>(v128.load(s), v128.load(s), 3, 2, 1, 0), 20);
          }
          continue;
        }
        for (let a = 0; a < khN; a++) {
          const sr = s + <usize>((kh0 + khN - 1 - a) * KW + kw0 + kwN - 1) * es;
          const dr = d + <usize>(a * kwN) * es;
          if (es == 4) {
            for (let b = 0; b < kwN; b++) store<u32>(dr + (<usize>b << 2), load<u32>(sr - (<usize>b << 2)));
          } else {
            for (let b = 0; b < kwN; b++) store<u16>(dr + (<usize>b << 1), load<u16>(sr - (<usize>b << 1)));
          }
        }
      }
    }
  }
}

/**
 * im2col of one output pixel (oh, ow) over images n0 .. n0 + nImg, its taps cropped to the window
 * [kh0, kh0 + khN) x [kw0, kw0 + kwN) that reads the image: col[(ci * khN + a) * kwN + b][n - n0] =
 * x[n][ci][oh * SH - PH + (kh0 + a) * DH][ow * SW - PW + (kw0 + b) * DW] (every index inside the
 * image, by the caller's choice of window), in x's dtype (a copy). Parts split the rows.
 */
export function conv_im2col_pixel(desc: usize, dt: i32, x: usize, col: usize, n0: i32, nImg: i32, oh: i32, ow: i32, kh0: i32, khN: i32, kw0: i32, kwN: i32, part: i32, parts: i32): void {
  const C = load<i32>(desc, 4), H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  const SH = load<i32>(desc, 28), SW = load<i32>(desc, 32), PH = load<i32>(desc, 36), PW = load<i32>(desc, 40);
  const DH = load<i32>(desc, 44), DW = load<i32>(desc, 48);
  const es = dtSize(dt);
  const win = khN * kwN, K = C * win;
  const k0 = share(K, part, parts, false), k1 = share(K, part, parts, true);
  const imageStep = <usize>C * <usize>(H * W) * es;
  for (let k = k0; k < k1; k++) {
    const ci = k / win, t = k - ci * win;
    const a = t / kwN, b = t - a * kwN;
    const ih = oh * SH - PH + (kh0 + a) * DH, iw = ow * SW - PW + (kw0 + b) * DW;
    let src = x + <usize>n0 * imageStep + <usize>((ci * H + ih) * W + iw) * es;
    const dst = col + <usize>k * <usize>nImg * es;
    if (es == 4) {
      for (let n = 0; n < nImg; n++) {
        store<u32>(dst + (<usize>n << 2), load<u32>(src));
        src += imageStep;
      }
    } else {
      for (let n = 0; n < nImg; n++) {
        store<u16>(dst + (<usize>n << 1), load<u16>(src));
        src += imageStep;
      }
    }
  }
}

/**
 * One output pixel's GEMM result into NCHW: dst[n][c][p] = src[c][n - n0] for images n0 .. n0 +
 * nImg, channels c < C, P pixels per plane (dtype dt, a copy). Parts split the channels.
 * Image by image, the channels inner: the stores of one image land P elements apart in a few
 * cache lines, and the reads (src is C x nImg, ~32 KB) stay in L1. Channels outer put each store
 * of a channel's run C * P elements after the last (2 KB for layer3's 256 x 2x2 planes), one
 * cache line per store: ~6 ns per element.
 */
export function conv_pixel_from_channel_major(dt: i32, src: usize, dst: usize, n0: i32, nImg: i32, C: i32, P: i32, p: i32, part: i32, parts: i32): void {
  const es = dtSize(dt);
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const imageStep = <usize>C * <usize>P * es;
  const srcStep = <usize>nImg * es, dstStep = <usize>P * es;
  for (let n = 0; n < nImg; n++) {
    let s = src + <usize>c0 * srcStep + <usize>n * es;
    let d = dst + <usize>(n0 + n) * imageStep + <usize>(c0 * P + p) * es;
    if (es == 4) {
      for (let c = c0; c < c1; c++) {
        store<u32>(d, load<u32>(s));
        s += srcStep;
        d += dstStep;
      }
    } else {
      for (let c = c0; c < c1; c++) {
        store<u16>(d, load<u16>(s));
        s += srcStep;
        d += dstStep;
      }
    }
  }
}
