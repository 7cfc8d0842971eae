// 2-D convolution kernels (NCHW, weights [Cout, Cin/groups, KH, KW]) for the
// wasm CPU backend: forward, grad-input, grad-weight, grad-bias.
//
// All three products are computed as GEMMs on gemm.ts's register tiles (4x8,
// or, in the relaxed-SIMD build, 3x12 when a row count such as 6 pads less in panels of 3) with
// float32 accumulation, and every output is rounded once at the end:
//
// * forward, stride 1 ("wide" implicit GEMM): the image (one group's channels)
//   is copied once into a zero-padded f32 buffer Xp[Cg][Hp][Wp]. For output
//   column p' = oh*Wp + ow, tap k = (ci, kh, kw) reads Xp[off[k] + p'] with
//   off[k] = ci*Hp*Wp + kh*dh*Wp + kw*dw, so a row of B is CONTIGUOUS in Xp
//   and the micro-kernel loads it straight from there (no im2col, no packing
//   of B). Columns with ow >= OW are computed and dropped at the store.
// * forward, stride > 1: an im2col block [kc][NC] is gathered into scratch and
//   fed to the same micro-kernel.
// * grad-input: dX = stride-1 correlation of Z with the flipped, transposed
//   weights, where Z is dY dilated by the stride and padded by
//   dil*(K-1) - pad (so it is the forward path again; any stride). With a
//   stride > 1 (dilation 1, K >= stride) it runs by phases instead: the outputs
//   (ih mod sh, iw mod sw) = (py, px) are a stride-1 correlation of padded dY
//   with that phase's sub-kernel, computed into f32 scratch and spread into dX
//   (no multiplications by the zeros of Z; gradInputPhased).
// * grad-weight: dW[co][k] = sum_n sum_p dY[co][p] * X_k[p]: dot products
//   along contiguous pixel runs (2 out-channels x 4 taps per register tile,
//   lanes over pixels), accumulated image by image in f32 scratch. Stride 1:
//   the batch is cut into chunks of NB images (NB fixed by the geometry), and
//   the chunk sums are added in chunk order, so the result does not depend on
//   which thread took which chunk.
//
// Threads: forward and grad-input split images, grad-weight chunks (or, with
// no sync block, tiles of the output); with a sync block (docs/kernels.md) the
// parts take units from a shared counter.
//
// Geometry comes in a descriptor of 16 i32 at `desc` (see docs/kernels.md):
//   N, Cin, H, W, Cout, KH, KW, strideH, strideW, padH, padW, dilH, dilW, groups

import {
  DT_F32, DT_F16, dtSize, loadF, storeF, load8to, load4of8, load4F, madd, storeTile, f16x4ToF32x4,
  MR, NR, KC, MC, NC, packA, fillBias, finalizeBlock, GEMM_ACCUMULATE, takeUnit,
} from "./gemm";

/** Width of the 3-row tile (relaxed SIMD builds only: without FMA a 3x12 tile spills, and 3x8 was no faster than 4x8). */
const NR3: i32 = 12;
/** Row block of the 3-row panels (a multiple of 3, <= MC). */
const MC3: i32 = 126;
/** grad-weight: images per chunk (the unit of its dynamic split). */
const NB_MAX: i32 = 4;
/** grad-weight: the shared per-chunk partial sums are used while they fit in this many f32. */
const PARTIAL_CAP: i32 = 1 << 20;

// geometry of the current call (module globals are per instance = per thread)
let N_ = 0, CI = 0, H_ = 0, W_ = 0, CO = 0, KH = 0, KW = 0;
let SH = 1, SW = 1, PH = 0, PW = 0, DH = 1, DW = 1, G = 1;
let CG = 0, OCG = 0, OH = 0, OW = 0, HP = 0, WP = 0, HZ = 0, WZ = 0;
let KCV = 0; // Cg*KH*KW   (forward / grad-weight reduction length)
let KCB = 0; // OCg*KH*KW  (grad-input reduction length)
// grad-weight chunks (stride 1): images per chunk, chunks
let NB = 1, NCH = 0;
let SHARED: usize = 0; // bytes before the per-part slots (the chunks' partial sums), 0 when they do not fit

// per-thread scratch offsets (bytes, relative to the thread's slot)
let S_T: usize = 0, S_BB: usize = 0, S_OFF: usize = 0, S_PERM: usize = 0, S_PIX: usize = 0, S_OFFG: usize = 0;
let S_A: usize = 0, S_B: usize = 0, S_CW: usize = 0, S_SRC: usize = 0, S_DY: usize = 0, S_COL: usize = 0, S_DW: usize = 0, S_CP: usize = 0;
let SLOT: usize = 0;
let A_CAP: usize = 0; // floats of the S_A region
let packedKey: i32 = -1; // (group, mode) whose whole packed A is in S_A, -1 none
// grad-input by phases (stride > 1, docs/kernels.md): padded dY Yp[OCg][HQ][WQ] with dY's (0, 0) at (PQT, PQL)
let PHASED = false, HQ = 0, WQ = 0, PQT = 0, PQL = 0, PHI_MAX = 0;
let S_PHB: usize = 0; // the phase's f32 output [Cg][nI*nJ]
// the current phase: per axis its first kernel tap r, tap count T, dY row of (i = 0, t' = 0), output count
let PRH = 0, PTH = 0, PBH = 0, PNH = 0, PRW = 0, PTW = 0, PBW = 0, PNW = 0;
let ypKey: i32 = -1; // (image, group) whose Yp is built, -1 none

const LCG: i32 = 64; // pixel chunk of the general (strided) grad-weight path

// @ts-ignore: decorator
@inline function al64(x: usize): usize {
  return (x + 63) & ~(<usize>63);
}

function readDesc(desc: usize): void {
  N_ = load<i32>(desc, 0); CI = load<i32>(desc, 4); H_ = load<i32>(desc, 8); W_ = load<i32>(desc, 12);
  CO = load<i32>(desc, 16); KH = load<i32>(desc, 20); KW = load<i32>(desc, 24);
  SH = load<i32>(desc, 28); SW = load<i32>(desc, 32); PH = load<i32>(desc, 36); PW = load<i32>(desc, 40);
  DH = load<i32>(desc, 44); DW = load<i32>(desc, 48); G = load<i32>(desc, 52);
  if (SH < 1) SH = 1;
  if (SW < 1) SW = 1;
  if (DH < 1) DH = 1;
  if (DW < 1) DW = 1;
  if (G < 1) G = 1;
  CG = CI / G; OCG = CO / G;
  HP = H_ + 2 * PH; WP = W_ + 2 * PW;
  OH = (HP - DH * (KH - 1) - 1) / SH + 1;
  OW = (WP - DW * (KW - 1) - 1) / SW + 1;
  if (HP - DH * (KH - 1) - 1 < 0) OH = 0;
  if (WP - DW * (KW - 1) - 1 < 0) OW = 0;
  HZ = H_ + DH * (KH - 1); WZ = W_ + DW * (KW - 1);
  KCV = CG * KH * KW; KCB = OCG * KH * KW;
  const slack = <usize>(padSlack());
  PHASED = (SH > 1 || SW > 1) && DH == 1 && DW == 1 && KH >= SH && KW >= SW && OH > 0 && OW > 0 && H_ > 0 && W_ > 0 && OCG > 0 && CG > 0;
  HQ = 0; WQ = 0; PQT = 0; PQL = 0; PHI_MAX = 0; ypKey = -1;
  if (PHASED) {
    // Yp covers every phase's reads: rows base .. base + nI + T - 2 of dY (zero outside dY)
    let lo = 0, hi = OH;
    for (let py = 0; py < SH; py++) {
      phaseAxis(py, SH, PH, KH, H_);
      lo = min(lo, PBH); hi = max(hi, PBH + PNH + PTH - 1);
    }
    PQT = -lo; HQ = hi - lo;
    lo = 0; hi = OW;
    for (let px = 0; px < SW; px++) {
      phaseAxis(px, SW, PW, KW, W_);
      lo = min(lo, PBH); hi = max(hi, PBH + PNH + PTH - 1);
    }
    PQL = -lo; WQ = hi - lo;
    PHI_MAX = CG * ((H_ + SH - 1) / SH) * ((W_ + SW - 1) / SW);
  }
  const srcElems = <usize>max(max(CG * HP * WP, OCG * HZ * WZ), OCG * HQ * WQ) + slack;
  const lr = wideLen();
  const dyElems = <usize>OCG * <usize>max(lr, LCG);
  // grad-weight chunks (stride 1 only; NB depends on the geometry alone)
  NB = 1; NCH = 0; SHARED = 0;
  if (SH == 1 && SW == 1 && N_ > 0) {
    NB = min(N_, NB_MAX);
    NCH = (N_ + NB - 1) / NB;
    const partials = <i64>NCH * <i64>CO * <i64>KCV;
    if (partials <= <i64>PARTIAL_CAP) SHARED = al64(<usize>partials * 4);
  }
  S_T = 0;
  S_BB = 256;
  S_OFF = al64(S_BB + <usize>MC * 4);
  S_PERM = al64(S_OFF + <usize>max(KCV, KCB) * 4 + 64);
  S_PIX = al64(S_PERM + <usize>KCV * 4 + 64);
  S_OFFG = al64(S_PIX + <usize>NC * 4);
  S_A = al64(S_OFFG + <usize>KC * 4);
  // S_A holds the whole packed weight matrix of one group when it fits in 1 MiB
  // (then it is packed once per call instead of once per image and block)
  const fullA = <usize>max(((OCG + 3) & ~3) * KCV, ((CG + 3) & ~3) * KCB);
  A_CAP = max(<usize>(MC * KC), min(fullA, <usize>262144));
  packedKey = -1;
  S_B = al64(S_A + A_CAP * 4);
  S_CW = al64(S_B + <usize>(KC * NC) * 4);
  S_SRC = al64(S_CW + <usize>(MC * NC) * 4);
  S_DY = al64(S_SRC + srcElems * 4);
  S_COL = al64(S_DY + dyElems * 4 + 64);
  S_DW = al64(S_COL + (SH == 1 && SW == 1 ? 0 : <usize>KCV * <usize>LCG * 4));
  S_CP = al64(S_DW + <usize>CO * <usize>KCV * 4 + 64);
  S_PHB = al64(S_CP + (SHARED != 0 ? <usize>CO * <usize>KCV * 4 : 0));
  SLOT = al64(S_PHB + <usize>PHI_MAX * 4);
}

/**
 * One axis of a grad-input phase p (outputs p, p + s, ...; len of them in all): the kernel taps
 * r, r + s, ... (T of them) reach it, and output i, flipped tap t' = T-1-t reads dY index
 * i + t' + base. Sets PRH, PTH, PBH, PNH (the W axis copies them).
 */
function phaseAxis(p: i32, s: i32, pad: i32, k: i32, len: i32): void {
  const r = (p + pad) % s;
  const T = r < k ? (k - r + s - 1) / s : 0;
  const c0 = (p + pad - r) / s;
  PRH = r; PTH = T; PBH = c0 - T + 1; PNH = p < len ? (len - p + s - 1) / s : 0;
}

/** Make phase ph (= py*SW + px) current: PRH..PNH for rows, PRW..PNW for columns. */
function setPhase(ph: i32): void {
  const py = ph / SW, px = ph - (ph / SW) * SW;
  phaseAxis(px, SW, PW, KW, W_);
  PRW = PRH; PTW = PTH; PBW = PBH; PNW = PNH;
  phaseAxis(py, SH, PH, KH, H_);
}

/** Zeroed f32 after a padded buffer: covers the widest tile's over-read past the last column. */
function padSlack(): i32 {
  return (KW - 1) * DW + 64 + 16;
}

/** Columns of the stride-1 "wide" layout, rounded up to a multiple of 4. */
function wideLen(): i32 {
  if (OH <= 0 || OW <= 0) return 0;
  return ((OH - 1) * WP + OW + 3) & ~3;
}

/**
 * Scratch bytes for any of the conv2d_* kernels with this geometry run as `parts` parts: a
 * region shared by the parts (grad-weight's chunk sums), then one slot per part.
 */
export function conv2d_scratch_bytes(desc: usize, parts: i32): i32 {
  readDesc(desc);
  return <i32>(SHARED + <usize>max(parts, 1) * SLOT);
}

// ------------------------------------------------------------- helpers ----

/** Convert n elements (dtype dt) at src to f32 at dst. */
function copyRowF32(dst: usize, src: usize, dt: i32, n: i32): void {
  const es = dtSize(dt);
  let j = 0;
  for (; j + 8 <= n; j += 8) load8to(dst + <usize>j * 4, src + <usize>j * es, dt);
  if (j + 4 <= n) {
    v128.store(dst + <usize>j * 4, load4F(src + <usize>j * es, dt));
    j += 4;
  }
  const rem = n - j;
  if (rem > 0 && dt == DT_F16) {
    // 1..3 float16 values: widened together by the SIMD codec (no reads or writes past the row)
    let h = i32x4.splat(0);
    h = i32x4.replace_lane(h, 0, <i32>load<u16>(src + <usize>j * 2));
    if (rem > 1) h = i32x4.replace_lane(h, 1, <i32>load<u16>(src + <usize>j * 2, 2));
    if (rem > 2) h = i32x4.replace_lane(h, 2, <i32>load<u16>(src + <usize>j * 2, 4));
    const v = f16x4ToF32x4(h), d = dst + <usize>j * 4;
    v128.store32_lane(d, v, 0);
    if (rem > 1) v128.store32_lane(d, v, 1, 4);
    if (rem > 2) v128.store32_lane(d, v, 2, 8);
    return;
  }
  for (; j < n; j++) store<f32>(dst + <usize>j * 4, loadF(src, j, dt));
}

/**
 * Copy `ch` channels of an image (planes of h x w, dtype dt, at src) into a
 * zero-padded f32 buffer dst[ch][h + 2ph][w + 2pw], zeroing `slack` floats after.
 */
function buildPadded(dst: usize, src: usize, dt: i32, ch: i32, h: i32, w: i32, ph: i32, pw: i32, slack: i32): void {
  const hp = h + 2 * ph, wp = w + 2 * pw;
  const es = dtSize(dt);
  const total = <usize>(ch * hp * wp);
  if (ph != 0 || pw != 0) memory.fill(dst, 0, total * 4);
  for (let c = 0; c < ch; c++) {
    for (let i = 0; i < h; i++) {
      copyRowF32(dst + <usize>((c * hp + i + ph) * wp + pw) * 4, src + <usize>((c * h + i) * w) * es, dt, w);
    }
  }
  memory.fill(dst + total * 4, 0, <usize>slack * 4);
}

/** Fill off[k] (bytes) for taps k = (c, kh, kw) over planes hp x wp. */
function fillTapOffsets(off: usize, ch: i32, hp: i32, wp: i32): void {
  let k = 0;
  for (let c = 0; c < ch; c++)
    for (let i = 0; i < KH; i++)
      for (let j = 0; j < KW; j++) {
        store<i32>(off + <usize>k * 4, ((c * hp + i * DH) * wp + j * DW) * 4);
        k++;
      }
}

/** 4x8 micro-kernel with B rows read in place: B[k][0..8] = f32 at xb + off[k]. */
function kernel4x8off(ap: usize, xb: usize, offp: usize, kc: i32, t: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = offp + <usize>kc * 4;
  while (offp < end) {
    const p = xb + <usize>load<i32>(offp);
    const b0 = v128.load(p), b1 = v128.load(p, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    ap += 16;
    offp += 4;
  }
  v128.store(t, c00, 0); v128.store(t, c01, 16);
  v128.store(t, c10, 32); v128.store(t, c11, 48);
  v128.store(t, c20, 64); v128.store(t, c21, 80);
  v128.store(t, c30, 96); v128.store(t, c31, 112);
}

/** 2x8 variant for a last row panel with <= 2 live rows (same packed layout, MR floats per k). */
function kernel2x8off(ap: usize, xb: usize, offp: usize, kc: i32, t: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  const end = offp + <usize>kc * 4;
  while (offp < end) {
    const p = xb + <usize>load<i32>(offp);
    const b0 = v128.load(p), b1 = v128.load(p, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    ap += 16;
    offp += 4;
  }
  v128.store(t, c00, 0); v128.store(t, c01, 16);
  v128.store(t, c10, 32); v128.store(t, c11, 48);
}

/** 3x12 micro-kernel (fused multiply-add builds): B[k][0..12] = f32 at xb + off[k]; A panels of 3 rows. */
// @ts-ignore: decorator
@inline function kernel3x12off(ap: usize, xb: usize, offp: usize, kc: i32, t: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0);
  const end = offp + <usize>kc * 4;
  while (offp < end) {
    const p = xb + <usize>load<i32>(offp);
    const b0 = v128.load(p), b1 = v128.load(p, 16), b2 = v128.load(p, 32);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01); c02 = madd(a, b2, c02);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11); c12 = madd(a, b2, c12);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21); c22 = madd(a, b2, c22);
    ap += 12;
    offp += 4;
  }
  v128.store(t, c00, 0); v128.store(t, c01, 16); v128.store(t, c02, 32);
  v128.store(t, c10, 48); v128.store(t, c11, 64); v128.store(t, c12, 80);
  v128.store(t, c20, 96); v128.store(t, c21, 112); v128.store(t, c22, 128);
}

/**
 * cw[mc][nc] (ld NC) (+)= Ap[mc x kc] * B, B[k][j] = f32 at xb + off[k] + 4j.
 * pr: the panel height of Ap (4: 4x8 tiles, 2x8 for a last panel of <= 2 rows; 3: 3x12 tiles).
 */
function macroOff(ap: usize, xb: usize, offp: usize, mc: i32, nc: i32, kc: i32, cw: usize, addC: bool, t: usize, pr: i32): void {
  if (pr == 3) {
    for (let jr = 0; jr < nc; jr += NR3) {
      const nr = min(NR3, nc - jr);
      for (let ir = 0; ir < mc; ir += 3) {
        const mr = min(3, mc - ir);
        kernel3x12off(ap + <usize>(ir * kc) * 4, xb + <usize>jr * 4, offp, kc, t);
        const cb = cw + <usize>(ir * NC + jr) * 4;
        if (addC) storeTile(t, cb, NC, mr, nr, true, 0, 0, NR3);
        else storeTile(t, cb, NC, mr, nr, false, 0, 0, NR3);
      }
    }
    return;
  }
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    for (let ir = 0; ir < mc; ir += MR) {
      const mr = min(MR, mc - ir);
      if (mr <= 2) kernel2x8off(ap + <usize>(ir * kc) * 4, xb + <usize>jr * 4, offp, kc, t);
      else kernel4x8off(ap + <usize>(ir * kc) * 4, xb + <usize>jr * 4, offp, kc, t);
      const cb = cw + <usize>(ir * NC + jr) * 4;
      if (addC) storeTile(t, cb, NC, mr, nr, true, 0, 0);
      else storeTile(t, cb, NC, mr, nr, false, 0, 0);
    }
  }
}

/**
 * Panel height for `rows` output rows: with fused multiply-add, 3 (the 3x12 tile) when panels of 3
 * pad fewer rows than panels of 4 (6 rows: 6 vs 8); otherwise 4.
 */
// @ts-ignore: decorator
@inline function panelRows(rows: i32): i32 {
  if (!ASC_FEATURE_RELAXED_SIMD) return 4;
  return ((rows + 2) / 3) * 3 < ((rows + 3) / 4) * 4 ? 3 : 4;
}

/**
 * Pack rows [i0, i0+mc) x taps [k0, k0+kc) of the grad-input weight matrix
 * A'[ci][(co, kh', kw')] = W[g*OCg + co][ci][KH-1-kh'][KW-1-kw'] into MR-row panels.
 */
function packAFlip(w: usize, dt: i32, g: i32, i0: i32, k0: i32, mc: i32, kc: i32, ap: usize, pr: i32): void {
  const khw = KH * KW;
  for (let p = 0; p < mc; p += pr) {
    const mr = min(pr, mc - p);
    const dst = ap + <usize>(p * kc) * 4;
    for (let r = 0; r < pr; r++) {
      const d = dst + <usize>r * 4;
      if (r >= mr) {
        for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * pr) * 4, 0);
        continue;
      }
      const ci = i0 + p + r;
      let co = (k0) / khw;
      let rem = k0 - co * khw;
      for (let k = 0; k < kc; k++) {
        const kh = rem / KW, kw = rem - (rem / KW) * KW;
        const idx = ((g * OCG + co) * CG + ci) * khw + (KH - 1 - kh) * KW + (KW - 1 - kw);
        store<f32>(d + <usize>(k * pr) * 4, loadF(w, idx, dt));
        rem++;
        if (rem == khw) { rem = 0; co++; }
      }
    }
  }
}

/**
 * packAFlip for the current grad-input phase: taps k = (co, t', u') of the sub-kernel,
 * A[ci][k] = W[g*OCg + co][ci][PRH + SH*(PTH-1-t')][PRW + SW*(PTW-1-u')].
 */
function packAPhase(w: usize, dt: i32, g: i32, i0: i32, k0: i32, mc: i32, kc: i32, ap: usize, pr: i32): void {
  const khw = KH * KW, tt = PTH * PTW;
  for (let p = 0; p < mc; p += pr) {
    const mr = min(pr, mc - p);
    const dst = ap + <usize>(p * kc) * 4;
    for (let r = 0; r < pr; r++) {
      const d = dst + <usize>r * 4;
      if (r >= mr) {
        for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * pr) * 4, 0);
        continue;
      }
      const ci = i0 + p + r;
      let co = k0 / tt;
      let rem = k0 - co * tt;
      for (let k = 0; k < kc; k++) {
        const t = rem / PTW, u = rem - (rem / PTW) * PTW;
        const idx = ((g * OCG + co) * CG + ci) * khw + (PRH + SH * (PTH - 1 - t)) * KW + PRW + SW * (PTW - 1 - u);
        store<f32>(d + <usize>(k * pr) * 4, loadF(w, idx, dt));
        rem++;
        if (rem == tt) { rem = 0; co++; }
      }
    }
  }
}

/**
 * Implicit-GEMM core shared by forward and grad-input:
 *   out[r][col] = sum_k A[r][k] * B[k][col]   for rows [0, rows), cols [j0, j1)
 * aMode 0: A = weights of group g ([OCg][Kc] row-major), 1: flipped (grad-input).
 * wide:  B[k][p'] = src[off[k] + p'], output pixel of column p' = (p'/srcW, p'%srcW), kept if p'%srcW < outW
 * !wide: B[k][p]  = src[off[k] + pix(p)], p = oh*outW + ow, pix = oh*SH*srcW + ow*SW (gathered into S_B)
 * y: output channel 0 of this (image, group); channel stride outH*outW.
 */
function convCore(
  aMode: i32, w: usize, wDt: i32, g: i32, rows: i32, Kc: i32,
  wide: bool, src: usize, srcW: i32, outH: i32, outW: i32, j0: i32, j1: i32,
  y: usize, yDt: i32, acc: bool, bias: usize, biasDt: i32, ws: usize,
): void {
  const t = ws + S_T, bb = ws + S_BB, off = ws + S_OFF, pix = ws + S_PIX, offg = ws + S_OFFG;
  const ap0 = ws + S_A, bp = ws + S_B, cw = ws + S_CW;
  // 3-row panels need wide B rows read in place (the gathered S_B rows are NC floats)
  const pr = wide ? panelRows(rows) : 4;
  const mcb = pr == 3 ? MC3 : MC;
  const cacheA = <usize>(((rows + pr - 1) / pr) * pr * Kc) <= A_CAP;
  const key = aMode < 2 ? g * 2 + aMode : 2 * G + (aMode - 2) * G + g;
  const es = dtSize(yDt);
  const ldY = outH * outW;
  const wg = w + <usize>(g * OCG * Kc) * dtSize(wDt);
  if (!wide) for (let k = 0; k < KC; k++) store<i32>(offg + <usize>k * 4, k * NC * 4);
  const sh = aMode >= 2 ? 1 : SH, sw = aMode >= 2 ? 1 : SW; // the grad-input phases: stride 1
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    if (!wide) {
      for (let j = 0; j < nc; j++) {
        const p = jc + j, oh = p / outW, ow = p - (p / outW) * outW;
        store<i32>(pix + <usize>j * 4, (oh * sh * srcW + ow * sw) * 4);
      }
    }
    for (let ic = 0; ic < rows; ic += mcb) {
      const mc = min(mcb, rows - ic);
      let pc = 0;
      do {
        const kc = min(KC, Kc - pc);
        // cached layout: block (ic, pc) at ic*Kc + pc*roundup(mc, pr) floats
        const ap = cacheA ? ap0 + <usize>(ic * Kc + pc * (((mc + pr - 1) / pr) * pr)) * 4 : ap0;
        if (!cacheA || packedKey != key) {
          if (aMode == 0) packA(wg, Kc, false, wDt, ic, pc, mc, kc, ap, pr);
          else if (aMode == 1) packAFlip(w, wDt, g, ic, pc, mc, kc, ap, pr);
          else packAPhase(w, wDt, g, ic, pc, mc, kc, ap, pr);
        }
        if (wide) {
          macroOff(ap, src + <usize>jc * 4, off + <usize>pc * 4, mc, nc, kc, cw, pc != 0, t, pr);
        } else {
          for (let k = 0; k < kc; k++) {
            const s = src + <usize>load<i32>(off + <usize>(pc + k) * 4);
            const d = bp + <usize>(k * NC) * 4;
            for (let j = 0; j < nc; j++) store<f32>(d + <usize>j * 4, load<f32>(s + <usize>load<i32>(pix + <usize>j * 4)));
          }
          macroOff(ap, bp, offg, mc, nc, kc, cw, pc != 0, t, 4);
        }
        pc += KC;
      } while (pc < Kc);
      if (cacheA && ic + mcb >= rows && jc == j0) packedKey = key;
      const biasMode = bias != 0 ? 1 : 0;
      if (biasMode) fillBias(bb, bias, biasDt, g * OCG + ic, mc);
      const yb = y + <usize>(ic * ldY) * es;
      if (wide) {
        // runs of valid columns, one per output row
        let oh = jc / srcW;
        while (oh * srcW < jc + nc && oh < outH) {
          const r0 = max(jc, oh * srcW), r1 = min(jc + nc, oh * srcW + outW);
          if (r1 > r0) {
            finalizeBlock(cw + <usize>(r0 - jc) * 4, NC, yb + <usize>(oh * outW + r0 - oh * srcW) * es, ldY, yDt, mc, r1 - r0, acc, biasMode, bb);
          }
          oh++;
        }
      } else {
        finalizeBlock(cw, NC, yb + <usize>jc * es, ldY, yDt, mc, nc, acc, biasMode, bb);
      }
    }
  }
}

/** Split `units` work items over parts: [lo, hi) of part. */
// @ts-ignore: decorator
@inline function splitLo(units: i32, part: i32, parts: i32): i32 {
  return <i32>(<i64>units * part / parts);
}

// ------------------------------------------------------------- forward ----

/**
 * y[n][co][oh][ow] (+)= sum_{ci in group, kh, kw} w[co][ci'][kh][kw] * x[n][ci][oh*sh-ph+kh*dh][ow*sw-pw+kw*dw] (+ bias[co])
 * dtypes: xDt | wDt << 4 | yDt << 8 | biasDt << 12; flags: GEMM_ACCUMULATE (4) adds to y.
 * bias: 0 for none. scratch: conv2d_scratch_bytes(desc, parts) bytes. sync: 0 or a zeroed
 * sync block (then the parts take images dynamically).
 */
export function conv2d_forward(desc: usize, dtypes: i32, flags: i32, x: usize, w: usize, bias: usize, y: usize, scratch: usize, sync: usize, part: i32, parts: i32): void {
  readDesc(desc);
  if (N_ <= 0 || OH <= 0 || OW <= 0 || OCG <= 0) return;
  const xDt = dtypes & 15, wDt = (dtypes >> 4) & 15, yDt = (dtypes >> 8) & 15, biasDt = (dtypes >> 12) & 15;
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  const ws = scratch + SHARED + <usize>part * SLOT;
  const wide = SH == 1 && SW == 1;
  const src = ws + S_SRC;
  fillTapOffsets(ws + S_OFF, CG, HP, WP);
  const cols = wide ? (OH - 1) * WP + OW : OH * OW;
  const units = N_ * G;
  const xEs = dtSize(xDt), yEs = dtSize(yDt);
  const slack = padSlack();
  if (units >= parts * 2 || parts <= 1) {
    // images (x groups): a static range, or taken from the sync block
    const dynamic = sync != 0 && parts > 1;
    let u = dynamic ? 0 : splitLo(units, part, parts);
    const uEnd = dynamic ? units : splitLo(units, part + 1, parts);
    for (;;) {
      u = takeUnit(dynamic ? sync : 0, u);
      if (u >= uEnd) break;
      const n = u / G, g = u - (u / G) * G;
      buildPadded(src, x + <usize>((n * CI + g * CG) * H_ * W_) * xEs, xDt, CG, H_, W_, PH, PW, slack);
      convCore(0, w, wDt, g, OCG, KCV, wide, src, WP, OH, OW, 0, cols,
        y + <usize>((n * CO + g * OCG) * OH * OW) * yEs, yDt, acc, bias, biasDt, ws);
      if (!dynamic) u++;
    }
  } else {
    // few images: split output columns (multiples of NR)
    const tiles = (cols + NR - 1) / NR;
    const c0 = splitLo(tiles, part, parts) * NR, c1 = min(cols, splitLo(tiles, part + 1, parts) * NR);
    if (c1 <= c0) return;
    for (let u = 0; u < units; u++) {
      const n = u / G, g = u - (u / G) * G;
      buildPadded(src, x + <usize>((n * CI + g * CG) * H_ * W_) * xEs, xDt, CG, H_, W_, PH, PW, slack);
      convCore(0, w, wDt, g, OCG, KCV, wide, src, WP, OH, OW, c0, c1,
        y + <usize>((n * CO + g * OCG) * OH * OW) * yEs, yDt, acc, bias, biasDt, ws);
    }
  }
}

// ---------------------------------------------------------- grad-input ----

/** Z[co][yy][xx] = dY[co][(yy-P0h)/sh][(xx-P0w)/sw] where divisible and in range, else 0. */
function buildZ(dst: usize, dy: usize, dt: i32, slack: i32): void {
  const p0h = DH * (KH - 1) - PH, p0w = DW * (KW - 1) - PW;
  const total = <usize>(OCG * HZ * WZ);
  memory.fill(dst, 0, (total + <usize>slack) * 4);
  const es = dtSize(dt);
  for (let c = 0; c < OCG; c++) {
    for (let oh = 0; oh < OH; oh++) {
      const yy = oh * SH + p0h;
      if (yy < 0 || yy >= HZ) continue;
      const srow = dy + <usize>((c * OH + oh) * OW) * es;
      const drow = dst + <usize>((c * HZ + yy) * WZ) * 4;
      if (SW == 1 && p0w >= 0 && p0w + OW <= WZ) {
        copyRowF32(drow + <usize>p0w * 4, srow, dt, OW);
      } else {
        for (let ow = 0; ow < OW; ow++) {
          const xx = ow * SW + p0w;
          if (xx >= 0 && xx < WZ) store<f32>(drow + <usize>xx * 4, loadF(srow, ow, dt));
        }
      }
    }
  }
}

/**
 * dx[n][ci][ih][iw] (+)= sum over (co, kh, kw) with ih = oh*sh - ph + kh*dh, ... of w[co][ci'][kh][kw] * dy[n][co][oh][ow]
 * dtypes: dyDt | wDt << 4 | dxDt << 8; flags: GEMM_ACCUMULATE adds to dx. scratch, sync: as conv2d_forward.
 */
export function conv2d_grad_input(desc: usize, dtypes: i32, flags: i32, dy: usize, w: usize, dx: usize, scratch: usize, sync: usize, part: i32, parts: i32): void {
  readDesc(desc);
  if (N_ <= 0 || CG <= 0 || H_ <= 0 || W_ <= 0) return;
  const dyDt = dtypes & 15, wDt = (dtypes >> 4) & 15, dxDt = (dtypes >> 8) & 15;
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  const ws = scratch + SHARED + <usize>part * SLOT;
  if (PHASED) {
    gradInputPhased(dyDt, wDt, dxDt, acc, dy, w, dx, ws, sync, part, parts);
    return;
  }
  const src = ws + S_SRC;
  // taps k' = (co, kh', kw') over Z planes HZ x WZ
  fillTapOffsets(ws + S_OFF, OCG, HZ, WZ);
  const cols = (H_ - 1) * WZ + W_;
  const units = N_ * G;
  const dyEs = dtSize(dyDt), dxEs = dtSize(dxDt);
  const slack = padSlack();
  let u = 0, uEnd = units, c0 = 0, c1 = cols;
  let dynamic = false;
  if (units >= parts * 2 || parts <= 1) {
    dynamic = sync != 0 && parts > 1;
    if (!dynamic) { u = splitLo(units, part, parts); uEnd = splitLo(units, part + 1, parts); }
  } else {
    const tiles = (cols + NR - 1) / NR;
    c0 = splitLo(tiles, part, parts) * NR; c1 = min(cols, splitLo(tiles, part + 1, parts) * NR);
    if (c1 <= c0) return;
  }
  for (;;) {
    u = takeUnit(dynamic ? sync : 0, u);
    if (u >= uEnd) break;
    const n = u / G, g = u - (u / G) * G;
    if (OH > 0 && OW > 0) {
      buildZ(src, dy + <usize>((n * CO + g * OCG) * OH * OW) * dyEs, dyDt, slack);
    } else {
      memory.fill(src, 0, <usize>(OCG * HZ * WZ + slack) * 4);
    }
    convCore(1, w, wDt, g, CG, KCB, true, src, WZ, H_, W_, c0, c1,
      dx + <usize>((n * CI + g * CG) * H_ * W_) * dxEs, dxDt, acc, 0, DT_F32, ws);
    if (!dynamic) u++;
  }
}

/** Yp[co][HQ][WQ] = dY[co][q - PQT][c - PQL] inside dY, else 0 (f32), and the slack after it. */
function buildYp(dst: usize, dy: usize, dt: i32, slack: i32): void {
  const total = <usize>(OCG * HQ * WQ);
  memory.fill(dst, 0, (total + <usize>slack) * 4);
  const es = dtSize(dt);
  for (let c = 0; c < OCG; c++)
    for (let oh = 0; oh < OH; oh++)
      copyRowF32(dst + <usize>((c * HQ + oh + PQT) * WQ + PQL) * 4, dy + <usize>((c * OH + oh) * OW) * es, dt, OW);
}

/**
 * One unit of the phased grad-input: phase ph (current, setPhase), image n, group g, wide columns
 * [c0, c1) of the phase. The phase is a stride-1 correlation of Yp with the phase's sub-kernel
 * (convCore, A mode 2 + ph) into f32 scratch, then spread to dx (rounded once, + dx with acc).
 */
function phaseUnit(ph: i32, n: i32, g: i32, c0: i32, c1: i32, dyDt: i32, wDt: i32, dxDt: i32, acc: bool, dy: usize, w: usize, dx: usize, ws: usize): void {
  const src = ws + S_SRC, off = ws + S_OFF, phb = ws + S_PHB;
  const key = n * G + g;
  if (ypKey != key) {
    buildYp(src, dy + <usize>((n * CO + g * OCG) * OH * OW) * dtSize(dyDt), dyDt, padSlack());
    ypKey = key;
  }
  // taps k = (co, t', u') over the Yp planes
  let k = 0;
  for (let co = 0; co < OCG; co++)
    for (let t = 0; t < PTH; t++)
      for (let u = 0; u < PTW; u++) {
        store<i32>(off + <usize>k * 4, ((co * HQ + t) * WQ + u) * 4);
        k++;
      }
  const org = src + <usize>((PQT + PBH) * WQ + PQL + PBW) * 4;
  const wide = phaseWide();
  convCore(2 + ph, w, wDt, g, CG, OCG * PTH * PTW, wide, org, WQ, PNH, PNW, c0, c1, phb, DT_F32, false, 0, DT_F32, ws);
  // spread: dx[ci][py + SH*i][px + SW*j] for the columns c = i*ld + j in [c0, c1)
  const ld = wide ? WQ : PNW;
  const py = ph / SW, px = ph - (ph / SW) * SW;
  const plane = PNH * PNW;
  const dxg = dx + <usize>((n * CI + g * CG) * H_ * W_) * dtSize(dxDt);
  const i0 = c0 / ld, i1 = min(PNH, (c1 + ld - 1) / ld);
  for (let ci = 0; ci < CG; ci++) {
    const srcp = phb + <usize>(ci * plane) * 4;
    const dstc = ci * H_ * W_;
    for (let i = i0; i < i1; i++) {
      const ja = max(0, c0 - i * ld), jb = min(PNW, c1 - i * ld);
      const rowo = dstc + (py + SH * i) * W_ + px;
      for (let j = ja; j < jb; j++) {
        let v = load<f32>(srcp + <usize>(i * PNW + j) * 4);
        const o = rowo + SW * j;
        if (acc) v += loadF(dxg, o, dxDt);
        storeF(dxg, o, dxDt, v);
      }
    }
  }
}

/**
 * Whether the current phase runs on the wide layout (B rows read in place, WQ - nJ junk columns
 * per row) or gathers its nI*nJ columns (as the forward's strided path): the gather when the wide
 * columns would waste more than a fifth.
 */
function phaseWide(): bool {
  const cols = (PNH - 1) * WQ + PNW;
  return PNH * PNW * 5 >= cols * 4;
}

/** Columns of the current phase (wide or gathered, as phaseWide says). */
function phaseCols(): i32 {
  return phaseWide() ? (PNH - 1) * WQ + PNW : PNH * PNW;
}

/** grad-input by phases (PHASED): units (phase, image, group), phase-major; few units: each phase's columns split. */
function gradInputPhased(dyDt: i32, wDt: i32, dxDt: i32, acc: bool, dy: usize, w: usize, dx: usize, ws: usize, sync: usize, part: i32, parts: i32): void {
  const NG = N_ * G, nPh = SH * SW, units = nPh * NG;
  let cur = -1;
  if (units >= parts * 2 || parts <= 1) {
    const dynamic = sync != 0 && parts > 1;
    let u = dynamic ? 0 : splitLo(units, part, parts);
    const uEnd = dynamic ? units : splitLo(units, part + 1, parts);
    for (;;) {
      u = takeUnit(dynamic ? sync : 0, u);
      if (u >= uEnd) break;
      const ph = u / NG, r = u - ph * NG;
      if (ph != cur) { setPhase(ph); cur = ph; }
      if (PNH > 0 && PNW > 0) phaseUnit(ph, r / G, r - (r / G) * G, 0, phaseCols(), dyDt, wDt, dxDt, acc, dy, w, dx, ws);
      if (!dynamic) u++;
    }
  } else {
    for (let u = 0; u < units; u++) {
      const ph = u / NG, r = u - ph * NG;
      setPhase(ph);
      if (PNH <= 0 || PNW <= 0) continue;
      const cols = phaseCols();
      const tiles = (cols + NR - 1) / NR;
      const c0 = splitLo(tiles, part, parts) * NR, c1 = min(cols, splitLo(tiles, part + 1, parts) * NR);
      if (c1 > c0) phaseUnit(ph, r / G, r - (r / G) * G, c0, c1, dyDt, wDt, dxDt, acc, dy, w, dx, ws);
    }
  }
}

// --------------------------------------------------------- grad-weight ----

/**
 * 2 rows x 4 taps of dot products over L (multiple of 4) lanes:
 * t[r*4 + c] = sum_i d_r[i] * x_c[i], d1 = d0 + dStride, x_c = xb + off_c.
 */
function dot2x4(d0: usize, d1: usize, x0: usize, x1: usize, x2: usize, x3: usize, L: i32, t: usize): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  for (let i: usize = 0; i < <usize>L * 4; i += 16) {
    const u = v128.load(d0 + i), v = v128.load(d1 + i);
    let xv = v128.load(x0 + i);
    a00 = madd(u, xv, a00); a10 = madd(v, xv, a10);
    xv = v128.load(x1 + i);
    a01 = madd(u, xv, a01); a11 = madd(v, xv, a11);
    xv = v128.load(x2 + i);
    a02 = madd(u, xv, a02); a12 = madd(v, xv, a12);
    xv = v128.load(x3 + i);
    a03 = madd(u, xv, a03); a13 = madd(v, xv, a13);
  }
  // horizontal sums: transpose-add 4 accumulators into one vector
  v128.store(t, hsum4(a00, a01, a02, a03));
  v128.store(t, hsum4(a10, a11, a12, a13), 16);
}

/**
 * dot2x4 for 4 consecutive taps (x_c = xp + 4c bytes): one address per stream instead of four,
 * a loop V8 keeps short.
 */
function dot2x4c(d0: usize, d1: usize, xp: usize, L: i32, t: usize): void {
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  const dd = d1 - d0, dx = xp - d0;
  const end = d0 + <usize>L * 4;
  let p = d0;
  while (p < end) {
    const u = v128.load(p), v = v128.load(p + dd);
    const q = p + dx;
    let xv = v128.load(q);
    a00 = madd(u, xv, a00); a10 = madd(v, xv, a10);
    xv = v128.load(q, 4);
    a01 = madd(u, xv, a01); a11 = madd(v, xv, a11);
    xv = v128.load(q, 8);
    a02 = madd(u, xv, a02); a12 = madd(v, xv, a12);
    xv = v128.load(q, 12);
    a03 = madd(u, xv, a03); a13 = madd(v, xv, a13);
    p += 16;
  }
  v128.store(t, hsum4(a00, a01, a02, a03));
  v128.store(t, hsum4(a10, a11, a12, a13), 16);
}

/**
 * grad-weight's tap order (stride 1): per (ci, kh) kernel row, its whole runs of 4 kw taps
 * first (4 consecutive floats in the padded image when dilW = 1: dot2x4c), then the rows'
 * leftover taps; padded to a multiple of 4 with the last one. off[pos]: byte offset of the tap at
 * position pos (as fillTapOffsets), perm[pos]: its index k in the weight row (KCV for padding).
 */
function fillGwTaps(off: usize, perm: usize, kQuads: i32): void {
  let pos = 0;
  const runs = DW == 1 ? KW >> 2 : 0;
  for (let c = 0; c < CG; c++)
    for (let i = 0; i < KH; i++)
      for (let q = 0; q < runs * 4; q++) {
        store<i32>(perm + <usize>pos * 4, (c * KH + i) * KW + q);
        store<i32>(off + <usize>pos * 4, ((c * HP + i * DH) * WP + q) * 4);
        pos++;
      }
  for (let c = 0; c < CG; c++)
    for (let i = 0; i < KH; i++)
      for (let j = runs * 4; j < KW; j++) {
        store<i32>(perm + <usize>pos * 4, (c * KH + i) * KW + j);
        store<i32>(off + <usize>pos * 4, ((c * HP + i * DH) * WP + j * DW) * 4);
        pos++;
      }
  for (; pos < kQuads * 4; pos++) {
    store<i32>(perm + <usize>pos * 4, KCV);
    store<i32>(off + <usize>pos * 4, load<i32>(off + <usize>(KCV - 1) * 4));
  }
}

// @ts-ignore: decorator
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  // [a0+a1, b0+b1, a2+a3, b2+b3] etc.
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 2, 6), v128.shuffle<f32>(a, b, 1, 5, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 2, 6), v128.shuffle<f32>(c, d, 1, 5, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** The weight-row index of grad-weight's tap position `pos` (perm: the wide path's tap order, 0: identity). */
// @ts-ignore: decorator
@inline function tapAt(perm: usize, pos: i32): i32 {
  return perm != 0 ? load<i32>(perm + <usize>pos * 4) : pos;
}

/** Zero out[(g*OCG + co)*KCV + k] for the elements of tiles [ta, tb) of group g. */
function zeroTiles(out: usize, g: i32, ta: i32, tb: i32, kQuads: i32, perm: usize): void {
  if (ta == 0 && tb == ((OCG + 1) >> 1) * kQuads) {
    memory.fill(out + <usize>(g * OCG * KCV) * 4, 0, <usize>(OCG * KCV) * 4);
    return;
  }
  for (let tt = ta; tt < tb; tt++) {
    const cp = tt / kQuads, kq = tt - cp * kQuads;
    for (let r = 0; r < 2; r++) {
      const co = cp * 2 + r;
      if (co >= OCG) continue;
      for (let q = 0; q < 4; q++) {
        const pos = kq * 4 + q;
        if (pos < KCV) store<f32>(out + <usize>((g * OCG + co) * KCV + tapAt(perm, pos)) * 4, 0);
      }
    }
  }
}

/**
 * One chunk of grad-weight (stride 1): out = 0, then + each image's tile sums, images
 * [c*NB, c*NB + NB) of group g, tiles [ta, tb) of the group (out: f32, laid out as dw).
 * The padded image goes to S_SRC, dY's rows spread to the wide layout (zeros where ow >= OW) to S_DY.
 */
function gwChunk(ws: usize, c: i32, g: i32, ta: i32, tb: i32, kQuads: i32, x: usize, xDt: i32, dy: usize, dyDt: i32, out: usize, zero: bool = true): void {
  const src = ws + S_SRC, dyw = ws + S_DY, off = ws + S_OFF, t = ws + S_T, perm = ws + S_PERM;
  const xEs = dtSize(xDt), dyEs = dtSize(dyDt);
  const L = wideLen(), P = OH * OW;
  const slack = padSlack();
  if (zero) zeroTiles(out, g, ta, tb, kQuads, perm);
  const n1 = min(N_, (c + 1) * NB);
  for (let n = c * NB; n < n1; n++) {
    buildPadded(src, x + <usize>((n * CI + g * CG) * H_ * W_) * xEs, xDt, CG, H_, W_, PH, PW, slack);
    const dyg = dy + <usize>((n * CO + g * OCG) * P) * dyEs;
    memory.fill(dyw, 0, <usize>(OCG * L) * 4);
    for (let co = 0; co < OCG; co++)
      for (let oh = 0; oh < OH; oh++)
        copyRowF32(dyw + <usize>(co * L + oh * WP) * 4, dyg + <usize>((co * OH + oh) * OW) * dyEs, dyDt, OW);
    gwTiles(g, ta, tb, kQuads, dyw, L, src, off, 0, L, out, t, perm);
  }
}

/**
 * dw[co][ci'][kh][kw] (+)= sum_n sum_{oh,ow} dy[n][co][oh][ow] * x[n][ci][oh*sh-ph+kh*dh][ow*sw-pw+kw*dw]
 * dtypes: xDt | dyDt << 4 | dwDt << 8; flags: GEMM_ACCUMULATE adds to dw. scratch: as conv2d_forward.
 * Stride 1: each element is the sum, in chunk order, of its per-chunk sums (chunks of NB images).
 * With a sync block (and parts > 1, and the chunk sums fitting in the shared scratch region) the
 * parts take (chunk, group) units from it and store each chunk's sums in the shared region; the
 * part that completes the last unit adds them up and writes dw. Otherwise (and for strides > 1)
 * the parts split the output into tiles of 2 out-channels x 4 taps and each reads the whole batch.
 */
export function conv2d_grad_weight(desc: usize, dtypes: i32, flags: i32, x: usize, dy: usize, dw: usize, scratch: usize, sync: usize, part: i32, parts: i32): void {
  readDesc(desc);
  if (OCG <= 0 || KCV <= 0) return;
  const xDt = dtypes & 15, dyDt = (dtypes >> 4) & 15, dwDt = (dtypes >> 8) & 15;
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  const ws = scratch + SHARED + <usize>part * SLOT;
  const t = ws + S_T, off = ws + S_OFF, src = ws + S_SRC, dyw = ws + S_DY, col = ws + S_COL, dacc = ws + S_DW;
  const coPairs = (OCG + 1) >> 1, kQuads = (KCV + 3) >> 2;
  const perG = coPairs * kQuads;
  const wide = SH == 1 && SW == 1;
  const P = OH * OW;
  // tap offsets (bytes) over the padded planes, padded to a multiple of 4 with the last tap (results dropped)
  if (wide) fillGwTaps(off, ws + S_PERM, kQuads);
  else {
    fillTapOffsets(off, CG, HP, WP);
    for (let k = KCV; k < kQuads * 4; k++) store<i32>(off + <usize>k * 4, load<i32>(off + <usize>(KCV - 1) * 4));
  }

  if (wide && sync != 0 && parts > 1 && SHARED != 0 && NCH > 0 && P > 0) {
    const units = NCH * G;
    const total = CO * KCV;
    for (;;) {
      const u = atomic.add<i32>(sync, 1);
      if (u >= units) break;
      const c = u / G, g = u - (u / G) * G;
      gwChunk(ws, c, g, 0, perG, kQuads, x, xDt, dy, dyDt, scratch + <usize>(c * total) * 4);
      // the part that completes the last unit adds up the chunks (every part's stores happen before its atomic add)
      if (atomic.add<i32>(sync, 1, 4) == units - 1) {
        for (let i = 0; i < total; i++) {
          let v: f32 = 0;
          for (let cc = 0; cc < NCH; cc++) v += load<f32>(scratch + <usize>(cc * total + i) * 4);
          if (acc) v += loadF(dw, i, dwDt);
          storeF(dw, i, dwDt, v);
        }
      }
    }
    return;
  }

  // static split: tiles of the output, every part reads the whole batch
  const tiles = G * perG;
  const t0 = splitLo(tiles, part, parts), t1 = splitLo(tiles, part + 1, parts);
  if (t1 <= t0) return;
  const gFirst = t0 / perG, gLast = (t1 - 1) / perG;
  const perm = wide ? ws + S_PERM : 0;
  for (let g = gFirst; g <= gLast; g++) zeroTiles(dacc, g, max(t0, g * perG) - g * perG, min(t1, (g + 1) * perG) - g * perG, kQuads, perm);
  const xEs = dtSize(xDt), dyEs = dtSize(dyDt);
  const slack = padSlack();
  if (N_ > 0 && P > 0) {
    if (wide) {
      // with room for the chunk sums (SHARED != 0, so a dynamic split may happen): dacc = 0, + each
      // chunk's sum in chunk order, the dynamic path's arithmetic; otherwise image by image into dacc
      const cp = ws + S_CP;
      for (let g = gFirst; g <= gLast; g++) {
        const ta = max(t0, g * perG) - g * perG, tb = min(t1, (g + 1) * perG) - g * perG;
        for (let c = 0; c < NCH; c++) {
          if (SHARED == 0) {
            gwChunk(ws, c, g, ta, tb, kQuads, x, xDt, dy, dyDt, dacc, false);
            continue;
          }
          gwChunk(ws, c, g, ta, tb, kQuads, x, xDt, dy, dyDt, cp);
          if (ta == 0 && tb == perG) {
            // the whole group: one SIMD pass
            const o = <usize>(g * OCG * KCV) * 4;
            const n = OCG * KCV;
            let i = 0;
            for (; i + 4 <= n; i += 4) v128.store(dacc + o + <usize>i * 4, f32x4.add(v128.load(dacc + o + <usize>i * 4), v128.load(cp + o + <usize>i * 4)));
            for (; i < n; i++) store<f32>(dacc + o + <usize>i * 4, load<f32>(dacc + o + <usize>i * 4) + load<f32>(cp + o + <usize>i * 4));
            continue;
          }
          for (let tt = ta; tt < tb; tt++) {
            const cpr = tt / kQuads, kq = tt - cpr * kQuads;
            for (let r = 0; r < 2; r++) {
              const co = cpr * 2 + r;
              if (co >= OCG) continue;
              for (let q = 0; q < 4; q++) {
                const pos = kq * 4 + q;
                if (pos >= KCV) continue;
                const o = <usize>((g * OCG + co) * KCV + tapAt(perm, pos)) * 4;
                store<f32>(dacc + o, load<f32>(dacc + o) + load<f32>(cp + o));
              }
            }
          }
        }
      }
    } else {
      for (let n = 0; n < N_; n++) {
        for (let g = gFirst; g <= gLast; g++) {
          const ta = max(t0, g * perG) - g * perG, tb = min(t1, (g + 1) * perG) - g * perG;
          buildPadded(src, x + <usize>((n * CI + g * CG) * H_ * W_) * xEs, xDt, CG, H_, W_, PH, PW, slack);
          const dyg = dy + <usize>((n * CO + g * OCG) * P) * dyEs;
          // chunks of LCG output pixels: dY chunk [OCg][LCG] and im2col chunk [KCV][LCG]
          for (let p0 = 0; p0 < P; p0 += LCG) {
            const lc = min(LCG, P - p0);
            const L = (lc + 3) & ~3;
            for (let c = 0; c < OCG; c++) {
              const d = dyw + <usize>(c * LCG) * 4;
              copyRowF32(d, dyg + <usize>(c * P + p0) * dyEs, dyDt, lc);
              for (let j = lc; j < L; j++) store<f32>(d + <usize>j * 4, 0);
            }
            for (let k = 0; k < KCV; k++) {
              const s = src + <usize>load<i32>(off + <usize>k * 4);
              const d = col + <usize>(k * LCG) * 4;
              let oh = p0 / OW, ow = p0 - (p0 / OW) * OW;
              for (let j = 0; j < lc; j++) {
                store<f32>(d + <usize>j * 4, load<f32>(s + <usize>((oh * SH * WP + ow * SW) * 4)));
                ow++;
                if (ow == OW) { ow = 0; oh++; }
              }
              for (let j = lc; j < L; j++) store<f32>(d + <usize>j * 4, 0);
            }
            gwTiles(g, ta, tb, kQuads, dyw, LCG, col, 0, LCG, L, dacc, t);
          }
        }
      }
    }
  }
  // write my tiles: dw = round(dacc (+ dw))
  for (let tt = t0; tt < t1; tt++) {
    const g = tt / perG, rem = tt - g * perG, cp = rem / kQuads, kq = rem - cp * kQuads;
    for (let r = 0; r < 2; r++) {
      const co = cp * 2 + r;
      if (co >= OCG) continue;
      for (let q = 0; q < 4; q++) {
        const pos = kq * 4 + q;
        if (pos >= KCV) continue;
        const idx = (g * OCG + co) * KCV + tapAt(perm, pos);
        let v = load<f32>(dacc + <usize>idx * 4);
        if (acc) v += loadF(dw, idx, dwDt);
        storeF(dw, idx, dwDt, v);
      }
    }
  }
}

/**
 * Tiles [ta, tb) of group g: dacc[co][k] += sum_i d[co][i] * X_k[i] for i < L,
 * d rows at dRows + co*dLd*4; X_k at xb + (offTab ? off[k] : k*xLd*4).
 */
function gwTiles(g: i32, ta: i32, tb: i32, kQuads: i32, dRows: usize, dLd: i32, xb: usize, offTab: usize, xLd: i32, L: i32, dacc: usize, t: usize, perm: usize = 0): void {
  for (let tt = ta; tt < tb; tt++) {
    const cp = tt / kQuads, kq = tt - cp * kQuads;
    const co0 = cp * 2, co1 = min(co0 + 1, OCG - 1);
    const k0 = kq * 4;
    const d0 = dRows + <usize>(co0 * dLd) * 4, d1 = dRows + <usize>(co1 * dLd) * 4;
    if (offTab != 0) {
      const o0 = load<i32>(offTab + <usize>k0 * 4), o1 = load<i32>(offTab + <usize>(k0 + 1) * 4);
      const o2 = load<i32>(offTab + <usize>(k0 + 2) * 4), o3 = load<i32>(offTab + <usize>(k0 + 3) * 4);
      if (o1 == o0 + 4 && o2 == o0 + 8 && o3 == o0 + 12) dot2x4c(d0, d1, xb + <usize>o0, L, t);
      else dot2x4(d0, d1, xb + <usize>o0, xb + <usize>o1, xb + <usize>o2, xb + <usize>o3, L, t);
    } else {
      const kl = KCV - 1;
      dot2x4(d0, d1, xb + <usize>(min(k0, kl) * xLd) * 4, xb + <usize>(min(k0 + 1, kl) * xLd) * 4,
        xb + <usize>(min(k0 + 2, kl) * xLd) * 4, xb + <usize>(min(k0 + 3, kl) * xLd) * 4, L, t);
    }
    for (let r = 0; r < 2; r++) {
      const co = co0 + r;
      if (co >= OCG) break;
      for (let c = 0; c < 4; c++) {
        const pos = k0 + c;
        if (pos >= KCV) break;
        const k = perm != 0 ? load<i32>(perm + <usize>pos * 4) : pos;
        const p = dacc + <usize>((g * OCG + co) * KCV + k) * 4;
        store<f32>(p, load<f32>(p) + load<f32>(t + <usize>(r * 4 + c) * 4));
      }
    }
  }
}

// ----------------------------------------------------------- grad-bias ----

/**
 * db[co] (+)= sum_n sum_{oh,ow} dy[n][co][oh][ow]; threads split channels.
 * dtypes: dyDt | dbDt << 8; flags: GEMM_ACCUMULATE adds to db. `desc` as above.
 */
export function conv2d_grad_bias(desc: usize, dtypes: i32, flags: i32, dy: usize, db: usize, part: i32, parts: i32): void {
  readDesc(desc);
  const dyDt = dtypes & 15, dbDt = (dtypes >> 8) & 15;
  channelSum(N_, CO, OH * OW, dy, dyDt, db, dbDt, (flags & GEMM_ACCUMULATE) != 0, part, parts);
}

/** out[c] (+)= sum_n sum_i x[n][c][i] (x: [n][ch][hw]); f32 accumulation, threads split channels. */
export function channelSum(n: i32, ch: i32, hw: i32, x: usize, xDt: i32, out: usize, outDt: i32, acc: bool, part: i32, parts: i32): void {
  const c1 = splitLo(ch, part + 1, parts);
  const es = dtSize(xDt);
  for (let c = splitLo(ch, part, parts); c < c1; c++) {
    let v0 = f32x4.splat(0), v1 = f32x4.splat(0);
    let s: f32 = 0;
    for (let i = 0; i < n; i++) {
      const p = x + <usize>((i * ch + c) * hw) * es;
      let j = 0;
      for (; j + 8 <= hw; j += 8) {
        const q = p + <usize>j * es;
        v0 = f32x4.add(v0, load4of8(q, xDt, false));
        v1 = f32x4.add(v1, load4of8(q, xDt, true));
      }
      for (; j < hw; j++) s += loadF(p, j, xDt);
    }
    const v = f32x4.add(v0, v1);
    let total = s + (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
    if (acc) total += loadF(out, c, outDt);
    storeF(out, c, outDt, total);
  }
}
