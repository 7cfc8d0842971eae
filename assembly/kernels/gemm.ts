// GEMM kernels for the wasm CPU backend (AssemblyScript, wasm SIMD128).
//
//   C[M,N] (+)= op(A)[M,K] * op(B)[K,N] (+ bias)
//
// Pointer ABI: every matrix argument is a byte address into the (shared) linear
// memory, leading dimensions and batch strides are in ELEMENTS. See
// docs/kernels.md for the full contract (dtypes, flags, scratch, partitioning).
//
// Structure (GotoBLAS/BLIS): the N dimension is cut into NC panels, K into KC
// blocks, M into MC blocks; A blocks are packed into MR-row micro-panels
// ([k][MR] f32), B blocks into NR-column micro-panels ([k][NR] f32). Packing is
// where float16/bfloat16 inputs are widened to float32, and where transposed
// operands are handled, so the 4x8 register-tiled micro-kernel only ever sees
// packed float32.

import { f16ToF32, f32ToF16, f32ToBf16 } from './convert16';

// ---------------------------------------------------------------- dtypes ----

export const DT_F32: i32 = 0;
export const DT_F16: i32 = 1;
export const DT_BF16: i32 = 2;

// @ts-ignore: decorator
@inline export function dtSize(dt: i32): usize {
  return dt == DT_F32 ? 4 : 2;
}

/** Element i (in elements) of an array of dtype dt at byte address p, as f32. */
// @ts-ignore: decorator
@inline export function loadF(p: usize, i: i32, dt: i32): f32 {
  if (dt == DT_F32) return load<f32>(p + (<usize>i << 2));
  const h = <u32>load<u16>(p + (<usize>i << 1));
  if (dt == DT_F16) return f16ToF32(h);
  return reinterpret<f32>(h << 16);
}

/** Store v (rounded once) as element i of an array of dtype dt. */
// @ts-ignore: decorator
@inline export function storeF(p: usize, i: i32, dt: i32, v: f32): void {
  if (dt == DT_F32) store<f32>(p + (<usize>i << 2), v);
  else if (dt == DT_F16) store<u16>(p + (<usize>i << 1), <u16>f32ToF16(v));
  else store<u16>(p + (<usize>i << 1), <u16>f32ToBf16(v));
}

/** 4 lanes of u16 float16 bits (in i32 lanes) -> f32x4. Pure integer/float SIMD. */
// @ts-ignore: decorator
@inline export function f16x4ToF32x4(h: v128): v128 {
  const m = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const f = f32x4.mul(m, f32x4.splat(reinterpret<f32>(0x77800000)));
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const r = v128.bitselect(v128.or(m, i32x4.splat(0x7f800000)), f, special);
  return v128.or(r, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** f32x4 -> 4 float16 bit patterns in i32 lanes (RNE, Inf on overflow, NaN kept). */
// @ts-ignore: decorator
@inline export function f32x4ToF16x4(v: v128): v128 {
  const x = v128.and(v, i32x4.splat(0x7fffffff));
  const sign = i32x4.shr_u(v128.and(v, i32x4.splat(0x80000000)), 16);
  const odd = v128.and(i32x4.shr_u(x, 13), i32x4.splat(1));
  const nrm = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0xc8000fff)), odd), 13);
  const sub = i32x4.sub(f32x4.add(x, f32x4.splat(0.5)), i32x4.splat(0x3f000000));
  const nan = v128.or(i32x4.splat(0x7e00), v128.and(i32x4.shr_u(x, 13), i32x4.splat(0x3ff)));
  // x has its sign bit cleared, so signed compares (native on x86) are exact
  let r = v128.bitselect(sub, nrm, i32x4.lt_s(x, i32x4.splat(0x38800000)));
  r = v128.bitselect(i32x4.splat(0x7c00), r, i32x4.gt_s(x, i32x4.splat(0x477fefff)));
  r = v128.bitselect(nan, r, i32x4.gt_s(x, i32x4.splat(0x7f800000)));
  return v128.or(r, sign);
}

/** f32x4 -> 4 bfloat16 bit patterns in i32 lanes (RNE, NaN kept). */
// @ts-ignore: decorator
@inline export function f32x4ToBf16x4(v: v128): v128 {
  const isnan = i32x4.gt_s(v128.and(v, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  const odd = v128.and(i32x4.shr_u(v, 16), i32x4.splat(1));
  const rnd = i32x4.shr_u(i32x4.add(i32x4.add(v, i32x4.splat(0x7fff)), odd), 16);
  const nan = v128.or(i32x4.shr_u(v, 16), i32x4.splat(0x40));
  return v128.bitselect(nan, rnd, isnan);
}

/** Load 8 consecutive elements of dtype dt at p as two f32x4 stored at dst, dst+16. */
// @ts-ignore: decorator
@inline export function load8to(dst: usize, p: usize, dt: i32): void {
  if (dt == DT_F32) {
    v128.store(dst, v128.load(p));
    v128.store(dst, v128.load(p, 16), 16);
  } else {
    const h = v128.load(p);
    const lo = i32x4.extend_low_i16x8_u(h);
    const hi = i32x4.extend_high_i16x8_u(h);
    if (dt == DT_F16) {
      v128.store(dst, f16x4ToF32x4(lo));
      v128.store(dst, f16x4ToF32x4(hi), 16);
    } else {
      v128.store(dst, i32x4.shl(lo, 16));
      v128.store(dst, i32x4.shl(hi, 16), 16);
    }
  }
}

/** Store 8 f32 from two vectors as dtype dt at p (rounded once for 16-bit). */
// @ts-ignore: decorator
@inline export function store8(p: usize, v0: v128, v1: v128, dt: i32): void {
  if (dt == DT_F32) {
    v128.store(p, v0);
    v128.store(p, v1, 16);
  } else if (dt == DT_F16) {
    v128.store(p, i16x8.narrow_i32x4_u(f32x4ToF16x4(v0), f32x4ToF16x4(v1)));
  } else {
    v128.store(p, i16x8.narrow_i32x4_u(f32x4ToBf16x4(v0), f32x4ToBf16x4(v1)));
  }
}

// ------------------------------------------------------------- blocking ----

export const MR: i32 = 4;
export const NR: i32 = 8;
export const KC: i32 = 256;
export const MC: i32 = 128; // multiple of MR
export const NC: i32 = 256; // multiple of NR

// per-thread scratch layout (bytes, 64-aligned)
const OFF_T: usize = 0; // MR*NR f32 tile
const OFF_BIAS: usize = 256; // max(MC, NC) f32
const OFF_A: usize = OFF_BIAS + <usize>NC * 4; // MC*KC f32
const OFF_B: usize = OFF_A + <usize>(MC * KC) * 4; // KC*NC f32
const OFF_CW: usize = OFF_B + <usize>(KC * NC) * 4; // MC*NC f32 (16-bit output only)
export const GEMM_SCRATCH: usize = OFF_CW + <usize>(MC * NC) * 4;

/** Bytes of scratch each thread needs; `scratch` must hold parts * this. */
export function gemm_scratch_bytes(): i32 {
  return <i32>GEMM_SCRATCH;
}

// flags
export const GEMM_TRANS_A: i32 = 1; // A stored as [K, M] (lda >= M)
export const GEMM_TRANS_B: i32 = 2; // B stored as [N, K] (ldb >= K)
export const GEMM_ACCUMULATE: i32 = 4; // C += ..., else C = ...
export const GEMM_BIAS_ROW: i32 = 1 << 8; // bias[M] added to each row i
export const GEMM_BIAS_COL: i32 = 2 << 8; // bias[N] added to each column j

// ---------------------------------------------------------- micro-kernel ----

// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * 4x8 micro-kernel: T[4][8] = sum_k Ap[k][0..4] (x) Bp[k][0..8].
 * Ap: packed A micro-panel ([k][MR] f32), Bp: packed B micro-panel ([k][NR] f32).
 * 8 f32x4 accumulators + 2 B vectors + 4 broadcasts = 14 of the 16 xmm
 * registers even when V8 hoists all loads of an iteration (a 6x8 tile or a 2x
 * unrolled loop made TurboFan spill accumulators and ran ~30% slower).
 */
export function kernel4x8(ap: usize, bp: usize, kc: i32, t: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = bp + <usize>kc * 32; // (an end pointer beats a counter: one op less per step)
  while (bp < end) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00); c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10); c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20); c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30); c31 = madd(a, b1, c31);
    ap += 16;
    bp += 32;
  }
  v128.store(t, c00, 0); v128.store(t, c01, 16);
  v128.store(t, c10, 32); v128.store(t, c11, 48);
  v128.store(t, c20, 64); v128.store(t, c21, 80);
  v128.store(t, c30, 96); v128.store(t, c31, 112);
}

/**
 * Write the f32 tile T (MR x NR, row-major) to the f32 matrix at c (row stride
 * ldc elements): c = T (+ c if addC) (+ bias). Only mr x nr entries are written.
 * biasMode: 0 none, 1 per-row (biasBuf[row]), 2 per-column (biasBuf[col]);
 * biasBuf is f32, already offset to this tile's first row/column.
 */
// @ts-ignore: decorator
@inline export function storeTile(t: usize, c: usize, ldc: i32, mr: i32, nr: i32, addC: bool, biasMode: i32, biasBuf: usize): void {
  if (nr == NR) {
    let bv0 = f32x4.splat(0), bv1 = f32x4.splat(0);
    if (biasMode == 2) { bv0 = v128.load(biasBuf); bv1 = v128.load(biasBuf, 16); }
    for (let r = 0; r < mr; r++) {
      const dst = c + <usize>(r * ldc) * 4;
      let v0 = v128.load(t + <usize>r * 32), v1 = v128.load(t + <usize>r * 32, 16);
      if (addC) { v0 = f32x4.add(v0, v128.load(dst)); v1 = f32x4.add(v1, v128.load(dst, 16)); }
      if (biasMode == 1) {
        const s = v128.load32_splat(biasBuf + <usize>r * 4);
        v0 = f32x4.add(v0, s); v1 = f32x4.add(v1, s);
      } else if (biasMode == 2) {
        v0 = f32x4.add(v0, bv0); v1 = f32x4.add(v1, bv1);
      }
      v128.store(dst, v0); v128.store(dst, v1, 16);
    }
  } else {
    for (let r = 0; r < mr; r++) {
      const dst = c + <usize>(r * ldc) * 4;
      for (let j = 0; j < nr; j++) {
        let v = load<f32>(t + <usize>(r * NR + j) * 4);
        if (addC) v += load<f32>(dst + <usize>j * 4);
        if (biasMode == 1) v += load<f32>(biasBuf + <usize>r * 4);
        else if (biasMode == 2) v += load<f32>(biasBuf + <usize>j * 4);
        store<f32>(dst + <usize>j * 4, v);
      }
    }
  }
}

/**
 * Macro-kernel over packed blocks: C[mc, nc] (f32, stride ldc) (+)= Ap * Bp.
 * Ap holds ceil(mc/MR) micro-panels of kc*MR floats, Bp ceil(nc/NR) of kc*NR.
 */
export function macroKernel(ap: usize, bp: usize, mc: i32, nc: i32, kc: i32, c: usize, ldc: i32, addC: bool, biasMode: i32, biasBuf: usize, t: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const bpp = bp + <usize>(jr * kc) * 4;
    for (let ir = 0; ir < mc; ir += MR) {
      const mr = min(MR, mc - ir);
      kernel4x8(ap + <usize>(ir * kc) * 4, bpp, kc, t);
      const cb = c + <usize>(ir * ldc + jr) * 4;
      const bb = biasMode == 1 ? biasBuf + <usize>ir * 4 : biasBuf + <usize>jr * 4;
      if (biasMode == 0) {
        if (addC) storeTile(t, cb, ldc, mr, nr, true, 0, 0);
        else storeTile(t, cb, ldc, mr, nr, false, 0, 0);
      } else {
        storeTile(t, cb, ldc, mr, nr, addC, biasMode, bb);
      }
    }
  }
}

// --------------------------------------------------------------- packing ----

/**
 * Pack the [mc x kc] block of op(A) starting at (i0, k0) into MR-row
 * micro-panels: ap[p][k][r] = op(A)[i0 + p*MR + r, k0 + k] as f32, rows past mc
 * zero. A: element (i,k) at a + (i*lda + k)*es, or (k*lda + i)*es when trans.
 */
export function packA(a: usize, lda: i32, trans: bool, dt: i32, i0: i32, k0: i32, mc: i32, kc: i32, ap: usize): void {
  const es = dtSize(dt);
  for (let p = 0; p < mc; p += MR) {
    const mr = min(MR, mc - p);
    const dst = ap + <usize>(p * kc) * 4;
    if (!trans) {
      for (let r = 0; r < mr; r++) {
        const src = a + <usize>((i0 + p + r) * lda + k0) * es;
        const d = dst + <usize>r * 4;
        if (dt == DT_F32) {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * MR) * 4, load<f32>(src + <usize>k * 4));
        } else if (dt == DT_F16) {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * MR) * 4, f16ToF32(load<u16>(src + <usize>k * 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>(k * MR) * 4, reinterpret<f32>(<u32>load<u16>(src + <usize>k * 2) << 16));
        }
      }
    } else {
      for (let k = 0; k < kc; k++) {
        const src = a + <usize>((k0 + k) * lda + i0 + p) * es;
        const d = dst + <usize>(k * MR) * 4;
        for (let r = 0; r < mr; r++) store<f32>(d + <usize>r * 4, loadF(src, r, dt));
      }
    }
    for (let r = mr; r < MR; r++) {
      for (let k = 0; k < kc; k++) store<f32>(dst + <usize>(k * MR + r) * 4, 0);
    }
  }
}

/**
 * Pack the [kc x nc] block of op(B) starting at (k0, j0) into NR-column
 * micro-panels: bp[q][k][j] = op(B)[k0 + k, j0 + q*NR + j] as f32, columns past
 * nc zero. B: element (k,j) at b + (k*ldb + j)*es, or (j*ldb + k)*es when trans.
 */
export function packB(b: usize, ldb: i32, trans: bool, dt: i32, k0: i32, j0: i32, kc: i32, nc: i32, bp: usize): void {
  const es = dtSize(dt);
  for (let q = 0; q < nc; q += NR) {
    const nr = min(NR, nc - q);
    const dst = bp + <usize>(q * kc) * 4;
    if (!trans) {
      if (nr == NR) {
        let src = b + <usize>(k0 * ldb + j0 + q) * es;
        const step = <usize>ldb * es;
        for (let k = 0; k < kc; k++) {
          load8to(dst + <usize>k * 32, src, dt);
          src += step;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const src = b + <usize>((k0 + k) * ldb + j0 + q) * es;
          const d = dst + <usize>k * 32;
          for (let j = 0; j < nr; j++) store<f32>(d + <usize>j * 4, loadF(src, j, dt));
          for (let j = nr; j < NR; j++) store<f32>(d + <usize>j * 4, 0);
        }
      }
    } else {
      for (let j = 0; j < nr; j++) {
        const src = b + <usize>((j0 + q + j) * ldb + k0) * es;
        const d = dst + <usize>j * 4;
        if (dt == DT_F32) {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>k * 32, load<f32>(src + <usize>k * 4));
        } else if (dt == DT_F16) {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>k * 32, f16ToF32(load<u16>(src + <usize>k * 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d + <usize>k * 32, reinterpret<f32>(<u32>load<u16>(src + <usize>k * 2) << 16));
        }
      }
      for (let j = nr; j < NR; j++) {
        for (let k = 0; k < kc; k++) store<f32>(dst + <usize>(k * NR + j) * 4, 0);
      }
    }
  }
}

/** biasBuf[0..n) = bias[off .. off+n) as f32. */
export function fillBias(buf: usize, bias: usize, dt: i32, off: i32, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(buf + <usize>i * 4, loadF(bias, off + i, dt));
}

/** Elements 0..3 (hi=false) or 4..7 (hi=true) of 8 consecutive dtype-dt values at p, as f32x4. */
// @ts-ignore: decorator
@inline export function load4of8(p: usize, dt: i32, hi: bool): v128 {
  if (dt == DT_F32) return hi ? v128.load(p, 16) : v128.load(p);
  const h = v128.load(p);
  const w = hi ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h);
  if (dt == DT_F16) return f16x4ToF32x4(w);
  return i32x4.shl(w, 16);
}

/**
 * Final store of an f32 block W[mc, nc] (row stride ldw) into C (dtype dt,
 * row stride ldc, already offset to the block): C = round(W (+ C) (+ bias)).
 * biasBuf: f32, offset to the block's first row (mode 1) or column (mode 2).
 */
export function finalizeBlock(w: usize, ldw: i32, c: usize, ldc: i32, dt: i32, mc: i32, nc: i32, addC: bool, biasMode: i32, biasBuf: usize): void {
  const es = dtSize(dt);
  const n8 = nc & ~7;
  for (let r = 0; r < mc; r++) {
    const src = w + <usize>(r * ldw) * 4;
    const dst = c + <usize>(r * ldc) * es;
    const rb = biasMode == 1 ? v128.load32_splat(biasBuf + <usize>r * 4) : f32x4.splat(0);
    let j = 0;
    for (; j < n8; j += 8) {
      let v0 = v128.load(src + <usize>j * 4), v1 = v128.load(src + <usize>j * 4, 16);
      const d = dst + <usize>j * es;
      if (addC) {
        v0 = f32x4.add(v0, load4of8(d, dt, false));
        v1 = f32x4.add(v1, load4of8(d, dt, true));
      }
      if (biasMode == 1) {
        v0 = f32x4.add(v0, rb); v1 = f32x4.add(v1, rb);
      } else if (biasMode == 2) {
        v0 = f32x4.add(v0, v128.load(biasBuf + <usize>j * 4));
        v1 = f32x4.add(v1, v128.load(biasBuf + <usize>j * 4, 16));
      }
      store8(d, v0, v1, dt);
    }
    for (; j < nc; j++) {
      let v = load<f32>(src + <usize>j * 4);
      if (addC) v += loadF(dst, j, dt);
      if (biasMode == 1) v += load<f32>(biasBuf + <usize>r * 4);
      else if (biasMode == 2) v += load<f32>(biasBuf + <usize>j * 4);
      storeF(dst, j, dt, v);
    }
  }
}

// ---------------------------------------------------------------- driver ----

/**
 * One matrix product on a sub-block of C: rows [m0, m1), columns [n0, n1).
 * a, b, c, bias are already offset to this batch entry.
 */
export function gemmBlock(
  flags: i32, aDt: i32, bDt: i32, cDt: i32, biasDt: i32,
  K: i32, a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, bias: usize,
  m0: i32, m1: i32, n0: i32, n1: i32, ws: usize,
): void {
  if (m1 <= m0 || n1 <= n0) return;
  const transA = (flags & GEMM_TRANS_A) != 0;
  const transB = (flags & GEMM_TRANS_B) != 0;
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  let biasMode = (flags >> 8) & 3;
  if (bias == 0) biasMode = 0;
  const t = ws + OFF_T, bb = ws + OFF_BIAS, ap = ws + OFF_A, bp = ws + OFF_B, cw = ws + OFF_CW;
  if (cDt == DT_F32) {
    // Goto order: jc, pc (pack B once), ic (pack A), macro-kernel into C.
    for (let jc = n0; jc < n1; jc += NC) {
      const nc = min(NC, n1 - jc);
      if (biasMode == 2) fillBias(bb, bias, biasDt, jc, nc);
      let pc = 0;
      do {
        const kc = min(KC, K - pc);
        const first = pc == 0;
        packB(b, ldb, transB, bDt, pc, jc, kc, nc, bp);
        for (let ic = m0; ic < m1; ic += MC) {
          const mc = min(MC, m1 - ic);
          packA(a, lda, transA, aDt, ic, pc, mc, kc, ap);
          if (first && biasMode == 1) fillBias(bb, bias, biasDt, ic, mc);
          macroKernel(ap, bp, mc, nc, kc, c + <usize>(ic * ldc + jc) * 4, ldc, !first || acc, first ? biasMode : 0, bb, t);
        }
        pc += KC;
      } while (pc < K);
    }
  } else {
    // 16-bit output: accumulate each MC x NC block over all of K in f32 (cw),
    // then round once into C.
    const es = dtSize(cDt);
    for (let jc = n0; jc < n1; jc += NC) {
      const nc = min(NC, n1 - jc);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        let pc = 0;
        do {
          const kc = min(KC, K - pc);
          packB(b, ldb, transB, bDt, pc, jc, kc, nc, bp);
          packA(a, lda, transA, aDt, ic, pc, mc, kc, ap);
          macroKernel(ap, bp, mc, nc, kc, cw, NC, pc != 0, 0, 0, t);
          pc += KC;
        } while (pc < K);
        if (biasMode == 1) fillBias(bb, bias, biasDt, ic, mc);
        else if (biasMode == 2) fillBias(bb, bias, biasDt, jc, nc);
        finalizeBlock(cw, NC, c + <usize>(ic * ldc + jc) * es, ldc, cDt, mc, nc, acc, biasMode, bb);
      }
    }
  }
}

/**
 * Batched GEMM, one thread's share:
 *   C[b] (+)= op(A[b]) * op(B[b]) (+ bias)   for b in [0, batch)
 *
 * flags:  GEMM_TRANS_A | GEMM_TRANS_B | GEMM_ACCUMULATE | GEMM_BIAS_ROW | GEMM_BIAS_COL
 * dtypes: aDt | bDt << 4 | cDt << 8 | biasDt << 12   (0 f32, 1 f16, 2 bf16)
 * a, b, c, bias: byte addresses; lda/ldb/ldc: row strides of the STORED
 * matrices in elements; strideA/B/C: batch strides in elements (0 = broadcast).
 * scratch: parts * gemm_scratch_bytes() bytes, 16-byte aligned (64 better);
 * thread `part` of `parts` uses slot `part` and writes a disjoint part of C.
 */
export function gemm(
  flags: i32, dtypes: i32, batch: i32, M: i32, N: i32, K: i32,
  a: usize, lda: i32, strideA: i32,
  b: usize, ldb: i32, strideB: i32,
  c: usize, ldc: i32, strideC: i32,
  bias: usize, scratch: usize, part: i32, parts: i32,
): void {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const aDt = dtypes & 15, bDt = (dtypes >> 4) & 15, cDt = (dtypes >> 8) & 15, biasDt = (dtypes >> 12) & 15;
  const aEs = dtSize(aDt), bEs = dtSize(bDt), cEs = dtSize(cDt);
  const ws = scratch + <usize>part * GEMM_SCRATCH;
  const rowTiles = (M + MR - 1) / MR;
  const total = batch * rowTiles;
  const colTiles = (N + NR - 1) / NR;
  if (parts <= 1 || total >= parts * 4 || colTiles < parts * 2) {
    // split the (batch, row-tile) space into contiguous ranges
    const t0 = <i32>(<i64>total * part / parts), t1 = <i32>(<i64>total * (part + 1) / parts);
    let tt = t0;
    while (tt < t1) {
      const bi = tt / rowTiles;
      const r0 = tt - bi * rowTiles;
      const r1 = min(rowTiles, r0 + (t1 - tt));
      gemmBlock(flags, aDt, bDt, cDt, biasDt, K,
        a + <usize>bi * <usize>strideA * aEs, lda,
        b + <usize>bi * <usize>strideB * bEs, ldb,
        c + <usize>bi * <usize>strideC * cEs, ldc, bias,
        r0 * MR, min(M, r1 * MR), 0, N, ws);
      tt += r1 - r0;
    }
  } else {
    // few rows: split columns
    const c0 = <i32>(<i64>colTiles * part / parts), c1 = <i32>(<i64>colTiles * (part + 1) / parts);
    for (let bi = 0; bi < batch; bi++) {
      gemmBlock(flags, aDt, bDt, cDt, biasDt, K,
        a + <usize>bi * <usize>strideA * aEs, lda,
        b + <usize>bi * <usize>strideB * bEs, ldb,
        c + <usize>bi * <usize>strideC * cEs, ldc, bias,
        0, M, c0 * NR, min(N, c1 * NR), ws);
    }
  }
}
