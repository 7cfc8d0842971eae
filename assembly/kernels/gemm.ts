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

import { f16ToF32, f32ToF16, f32ToBf16, f16x4ToF32, f16sx4ToF32, f32x4ToF16, f32x4ToBf16 } from './convert16';
import { packA4F16, packA4TF16, packB8F16, packB8TF16, storeT4 } from './gemm_pack_f16';

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

// The SIMD conversions are convert16.ts's (their constants come from a table in memory: a
// v128.const in a loop costs V8 a materialisation at every use).

/** 4 lanes of u16 float16 bits (in i32 lanes) -> f32x4 (exact). */
// @ts-ignore: decorator
@inline export function f16x4ToF32x4(h: v128): v128 {
  return f16x4ToF32(h);
}

/** f32x4 -> 4 float16 bit patterns in i32 lanes (RNE, Inf on overflow, NaN kept). */
// @ts-ignore: decorator
@inline export function f32x4ToF16x4(v: v128): v128 {
  return f32x4ToF16(v);
}

/** f32x4 -> 4 bfloat16 bit patterns in i32 lanes (RNE, NaN kept). */
// @ts-ignore: decorator
@inline export function f32x4ToBf16x4(v: v128): v128 {
  return f32x4ToBf16(v);
}

/** Load 8 consecutive elements of dtype dt at p as two f32x4 stored at dst, dst+16. */
// @ts-ignore: decorator
@inline export function load8to(dst: usize, p: usize, dt: i32): void {
  if (dt == DT_F32) {
    v128.store(dst, v128.load(p));
    v128.store(dst, v128.load(p, 16), 16);
  } else {
    const h = v128.load(p);
    if (dt == DT_F16) {
      // sign-extending widen: f16sx4ToF32 takes the sign from bit 31 as it is (no shift pair)
      v128.store(dst, f16sx4ToF32(i32x4.extend_low_i16x8_s(h)));
      v128.store(dst, f16sx4ToF32(i32x4.extend_high_i16x8_s(h)), 16);
    } else {
      v128.store(dst, i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
      v128.store(dst, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
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
/** Floats of the packed-B region: a whole K x nb panel stays packed while it fits (1 MiB). */
export const B_CAP: i32 = 262144;

// per-thread scratch layout (bytes, 64-aligned)
const OFF_T: usize = 0; // MR*NR f32 tile (up to 3x12 / 4x8: 192 bytes)
const OFF_BIAS: usize = 256; // max(MC, NC) f32
const OFF_A: usize = OFF_BIAS + <usize>NC * 4; // MC*KC f32
const OFF_B: usize = OFF_A + <usize>(MC * KC) * 4; // B_CAP f32
const OFF_CW: usize = OFF_B + <usize>B_CAP * 4; // MC*NC f32 (16-bit output only)
/** Floats of the packed-A region: all of op(A)'s row blocks stay packed while they fit (1 MiB). */
export const A_CAP: i32 = 262144;
/** Row blocks of op(A) that the packed-A region can hold (one key each). */
const A_KEYS: i32 = 64;
const OFF_AKEY: usize = OFF_CW + <usize>(MC * NC) * 4; // A_KEYS i32: the batch entry packed per row block
const OFF_AFULL: usize = OFF_AKEY + <usize>A_KEYS * 4; // A_CAP f32
export const GEMM_SCRATCH: usize = OFF_AFULL + <usize>A_CAP * 4;

/** Bytes of scratch each thread needs; `scratch` must hold parts * this. */
export function gemm_scratch_bytes(): i32 {
  return <i32>GEMM_SCRATCH;
}

/**
 * The next work unit of a call: with a sync block (an i32 the caller zeroed before the call,
 * shared by all parts) units are taken from it one at a time, so a thread that runs late (the OS
 * gave its core to another process) does less of the work; without one, `next` walks the static
 * range. Every unit is computed the same way whoever takes it, so results never depend on the split.
 */
// @ts-ignore: decorator
@inline export function takeUnit(sync: usize, next: i32): i32 {
  return sync != 0 ? atomic.add<i32>(sync, 1) : next;
}

/**
 * Work units per part a split call aims at (blocks halved until there are as many): a part's
 * last unit is what the other may wait for at the end of a call (the GPT's 768 x 128 x 512-class
 * products took 8-12 units of 150-350 us at 4 per part), and with owned ranges (takeRanged) smaller
 * units add no packing: a part still packs only its range's panels.
 */
const UNITS_PER_PART: i32 = 8;

/** Parts whose unit ranges fit the sync block (one i32 each) for takeRanged. */
const RANGED_MAX_PARTS: i32 = 16;

/**
 * The next work unit of part `part` when each part owns the static range [p U / parts, (p+1) U /
 * parts) of the `units` and may steal from the others': word p of the sync block (zeroed by the
 * caller) counts the units taken from the front of range p (low 16 bits, by its owner) and from
 * its back (high 16 bits, by the others), so a unit is taken once (compare-and-swap on the word).
 * A part works through its own range first, so it packs only the A row blocks and B panels of that
 * range (as the static split does: with one shared counter both threads took alternate units and
 * each packed nearly all of A and B); once its range is empty it takes the last units of another
 * range, so a part that starts late (its core was busy) still does less of the work. -1: none left.
 * Ranges must hold at most 65535 units (the caller checks).
 */
function takeRanged(sync: usize, part: i32, parts: i32, units: i32): i32 {
  for (let k = 0; k < parts; k++) {
    const p = part + k < parts ? part + k : part + k - parts;
    const start = <i32>(<i64>units * p / parts), end = <i32>(<i64>units * (p + 1) / parts);
    const word = sync + (<usize>p << 2);
    for (;;) {
      const w = atomic.load<i32>(word);
      const front = w & 0xffff, back = <i32>(<u32>w >> 16);
      if (front + back >= end - start) break;
      const next = k == 0 ? w + 1 : w + 0x10000;
      if (atomic.cmpxchg<i32>(word, w, next) == w) return k == 0 ? start + front : end - 1 - back;
    }
  }
  return -1;
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
 * Write the f32 tile T (MR x tw, row-major; tw = NR = 8, or 12 for conv.ts's 3x12
 * tile) to the f32 matrix at c (row stride ldc elements): c = T (+ c if addC)
 * (+ bias). Only mr x nr entries are written.
 * biasMode: 0 none, 1 per-row (biasBuf[row]), 2 per-column (biasBuf[col]);
 * biasBuf is f32, already offset to this tile's first row/column.
 */
// @ts-ignore: decorator
@inline export function storeTile(t: usize, c: usize, ldc: i32, mr: i32, nr: i32, addC: bool, biasMode: i32, biasBuf: usize, tw: i32 = NR): void {
  if (nr == tw && (tw == 8 || tw == 12)) {
    let bv0 = f32x4.splat(0), bv1 = f32x4.splat(0), bv2 = f32x4.splat(0);
    if (biasMode == 2) {
      bv0 = v128.load(biasBuf); bv1 = v128.load(biasBuf, 16);
      if (tw == 12) bv2 = v128.load(biasBuf, 32);
    }
    for (let r = 0; r < mr; r++) {
      const dst = c + <usize>(r * ldc) * 4;
      const src = t + <usize>(r * tw) * 4;
      let v0 = v128.load(src), v1 = v128.load(src, 16), v2 = f32x4.splat(0);
      if (tw == 12) v2 = v128.load(src, 32);
      if (addC) {
        v0 = f32x4.add(v0, v128.load(dst)); v1 = f32x4.add(v1, v128.load(dst, 16));
        if (tw == 12) v2 = f32x4.add(v2, v128.load(dst, 32));
      }
      if (biasMode == 1) {
        const s = v128.load32_splat(biasBuf + <usize>r * 4);
        v0 = f32x4.add(v0, s); v1 = f32x4.add(v1, s);
        if (tw == 12) v2 = f32x4.add(v2, s);
      } else if (biasMode == 2) {
        v0 = f32x4.add(v0, bv0); v1 = f32x4.add(v1, bv1);
        if (tw == 12) v2 = f32x4.add(v2, bv2);
      }
      v128.store(dst, v0); v128.store(dst, v1, 16);
      if (tw == 12) v128.store(dst, v2, 32);
    }
  } else {
    for (let r = 0; r < mr; r++) {
      const dst = c + <usize>(r * ldc) * 4;
      for (let j = 0; j < nr; j++) {
        let v = load<f32>(t + <usize>(r * tw + j) * 4);
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

/** 4 consecutive elements of dtype dt at p as f32x4. */
// @ts-ignore: decorator
@inline export function load4F(p: usize, dt: i32): v128 {
  if (dt == DT_F32) return v128.load(p);
  if (dt == DT_F16) return f16sx4ToF32(v128.load16x4_s(p)); // sign-extended by the load
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/**
 * Pack the [mc x kc] block of op(A) starting at (i0, k0) into pr-row
 * micro-panels (pr = MR = 4, or 3 for the 3-row kernels of conv.ts):
 * ap[p][k][r] = op(A)[i0 + p*pr + r, k0 + k] as f32, rows past mc zero.
 * A: element (i,k) at a + (i*lda + k)*es, or (k*lda + i)*es when trans.
 */
export function packA(a: usize, lda: i32, trans: bool, dt: i32, i0: i32, k0: i32, mc: i32, kc: i32, ap: usize, pr: i32 = MR): void {
  const es = dtSize(dt);
  const rowStep = <usize>lda * es;
  for (let p = 0; p < mc; p += pr) {
    const mr = min(pr, mc - p);
    const dst = ap + <usize>(p * kc) * 4;
    if (dt == DT_F16 && mr == 4 && pr == 4) {
      // float16 widened 8 at a time in 16-bit lanes (gemm_pack_f16.ts); a panel holding an Inf or NaN
      // (only after an overflow) is packed again by the general path below
      const clean = trans
        ? packA4TF16(a + <usize>(k0 * lda + i0 + p) * 2, <usize>lda * 2, kc, dst)
        : packA4F16(a + <usize>((i0 + p) * lda + k0) * 2, rowStep, kc, dst);
      if (clean) continue;
    }
    if (!trans) {
      const src = a + <usize>((i0 + p) * lda + k0) * es;
      let k = 0;
      if (mr == 4 && pr == 4) {
        // 4 rows x 4 k at a time: load, transpose, store
        const s1 = src + rowStep, s2 = s1 + rowStep, s3 = s2 + rowStep;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k * es;
          storeT4(dst + <usize>k * 16, 16, load4F(src + o, dt), load4F(s1 + o, dt), load4F(s2 + o, dt), load4F(s3 + o, dt));
        }
      }
      for (let r = 0; r < mr; r++) {
        const sr = src + <usize>r * rowStep;
        const d = dst + <usize>r * 4;
        for (let kk = k; kk < kc; kk++) store<f32>(d + <usize>(kk * pr) * 4, loadF(sr, kk, dt));
      }
    } else {
      for (let k = 0; k < kc; k++) {
        const src = a + <usize>((k0 + k) * lda + i0 + p) * es;
        const d = dst + <usize>(k * pr) * 4;
        if (mr == 4 && pr == 4) v128.store(d, load4F(src, dt));
        else for (let r = 0; r < mr; r++) store<f32>(d + <usize>r * 4, loadF(src, r, dt));
      }
    }
    for (let r = mr; r < pr; r++) {
      for (let k = 0; k < kc; k++) store<f32>(dst + <usize>(k * pr + r) * 4, 0);
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
    if (dt == DT_F16 && nr == NR) {
      // float16 widened 8 at a time in 16-bit lanes (gemm_pack_f16.ts); a panel holding an Inf or NaN
      // (only after an overflow) is packed again by the general path below
      const clean = trans
        ? packB8TF16(b + <usize>((j0 + q) * ldb + k0) * 2, <usize>ldb * 2, kc, dst)
        : packB8F16(b + <usize>(k0 * ldb + j0 + q) * 2, <usize>ldb * 2, kc, dst);
      if (clean) continue;
    }
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
      const src = b + <usize>((j0 + q) * ldb + k0) * es;
      const rowStep = <usize>ldb * es;
      let k = 0;
      if (nr == NR) {
        // 8 rows (columns of op(B)) x 4 k at a time: two 4x4 transposes
        const s1 = src + rowStep, s2 = s1 + rowStep, s3 = s2 + rowStep;
        const s4 = s3 + rowStep, s5 = s4 + rowStep, s6 = s5 + rowStep, s7 = s6 + rowStep;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k * es;
          const d = dst + <usize>k * 32;
          storeT4(d, 32, load4F(src + o, dt), load4F(s1 + o, dt), load4F(s2 + o, dt), load4F(s3 + o, dt));
          storeT4(d + 16, 32, load4F(s4 + o, dt), load4F(s5 + o, dt), load4F(s6 + o, dt), load4F(s7 + o, dt));
        }
      }
      for (let j = 0; j < nr; j++) {
        const sj = src + <usize>j * rowStep;
        const d = dst + <usize>j * 4;
        for (let kk = k; kk < kc; kk++) store<f32>(d + <usize>kk * 32, loadF(sj, kk, dt));
      }
      for (let j = nr; j < NR; j++) {
        for (let kk = 0; kk < kc; kk++) store<f32>(dst + <usize>(kk * NR + j) * 4, 0);
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
  if (dt == DT_F16) return f16sx4ToF32(hi ? i32x4.extend_high_i16x8_s(h) : i32x4.extend_low_i16x8_s(h));
  const w = hi ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h);
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
    if (j + 4 <= nc) {
      let v = v128.load(src + <usize>j * 4);
      const d = dst + <usize>j * es;
      if (addC) v = f32x4.add(v, load4F(d, dt));
      if (biasMode == 1) v = f32x4.add(v, rb);
      else if (biasMode == 2) v = f32x4.add(v, v128.load(biasBuf + <usize>j * 4));
      store4(d, v, dt);
      j += 4;
    }
    const rem = nc - j;
    if (rem > 0) {
      // 1..3 columns: gathered into one vector (no reads past the row), rounded by the SIMD codec
      let v = f32x4.splat(0);
      v = f32x4.replace_lane(v, 0, load<f32>(src + <usize>j * 4));
      if (rem > 1) v = f32x4.replace_lane(v, 1, load<f32>(src + <usize>j * 4, 4));
      if (rem > 2) v = f32x4.replace_lane(v, 2, load<f32>(src + <usize>j * 4, 8));
      if (addC) {
        let o = f32x4.splat(0);
        o = f32x4.replace_lane(o, 0, loadF(dst, j, dt));
        if (rem > 1) o = f32x4.replace_lane(o, 1, loadF(dst, j + 1, dt));
        if (rem > 2) o = f32x4.replace_lane(o, 2, loadF(dst, j + 2, dt));
        v = f32x4.add(v, o);
      }
      if (biasMode == 1) v = f32x4.add(v, rb);
      else if (biasMode == 2) {
        let bv = f32x4.splat(0);
        bv = f32x4.replace_lane(bv, 0, load<f32>(biasBuf + <usize>j * 4));
        if (rem > 1) bv = f32x4.replace_lane(bv, 1, load<f32>(biasBuf + <usize>j * 4, 4));
        if (rem > 2) bv = f32x4.replace_lane(bv, 2, load<f32>(biasBuf + <usize>j * 4, 8));
        v = f32x4.add(v, bv);
      }
      storeLanes(dst + <usize>j * es, v, dt, rem);
    }
  }
}

/** Store 4 f32 as dtype dt at p (rounded once for 16-bit). */
// @ts-ignore: decorator
@inline export function store4(p: usize, v: v128, dt: i32): void {
  if (dt == DT_F32) v128.store(p, v);
  else {
    // converted once: passing the call twice to narrow inlined the conversion (its NaN branch too) twice
    const h = dt == DT_F16 ? f32x4ToF16x4(v) : f32x4ToBf16x4(v);
    v128.store64_lane(p, i16x8.narrow_i32x4_u(h, h), 0);
  }
}

/** Store lanes 0 .. n-1 (n = 1..3) of v as dtype dt at p (rounded once for 16-bit). */
function storeLanes(p: usize, v: v128, dt: i32, n: i32): void {
  if (dt == DT_F32) {
    v128.store32_lane(p, v, 0);
    if (n > 1) v128.store32_lane(p, v, 1, 4);
    if (n > 2) v128.store32_lane(p, v, 2, 8);
    return;
  }
  const h = dt == DT_F16 ? f32x4ToF16x4(v) : f32x4ToBf16x4(v);
  v128.store16_lane(p, h, 0);
  if (n > 1) v128.store16_lane(p, h, 2, 2);
  if (n > 2) v128.store16_lane(p, h, 4, 4);
}

// ---------------------------------------------------------------- driver ----

// @ts-ignore: decorator
@inline function cdiv(a: i32, b: i32): i32 {
  return (a + b - 1) / b;
}

/**
 * One block of one product: C[m0..m0+mc, n0..n0+nc] (+)= op(A) op(B) (+ bias), over all of K.
 * a, b, c, bias are already offset to this batch entry. `bpFull`: op(B)'s panel for these
 * columns is already packed at bp for all of K (block pc at bp + pc*ncPad floats); otherwise it
 * is packed here, one KC block at a time. The per-element arithmetic (KC blocks in order, the
 * 4x8 tile's k order) does not depend on the block bounds.
 */
function gemmBlock(
  flags: i32, aDt: i32, bDt: i32, cDt: i32, biasDt: i32,
  K: i32, a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, bias: usize,
  m0: i32, mc: i32, n0: i32, nc: i32, bpFull: bool, ws: usize, apFull: usize, apPacked: bool,
): void {
  const transA = (flags & GEMM_TRANS_A) != 0;
  const transB = (flags & GEMM_TRANS_B) != 0;
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  let biasMode = (flags >> 8) & 3;
  if (bias == 0) biasMode = 0;
  const t = ws + OFF_T, bb = ws + OFF_BIAS, ap = ws + OFF_A, bp0 = ws + OFF_B, cw = ws + OFF_CW;
  const ncPad = (nc + NR - 1) & ~(NR - 1);
  if (biasMode == 1) fillBias(bb, bias, biasDt, m0, mc);
  else if (biasMode == 2) fillBias(bb, bias, biasDt, n0, nc);
  const f32out = cDt == DT_F32;
  const cb = c + <usize>(m0 * ldc + n0) * 4;
  let pc = 0;
  do {
    const kc = min(KC, K - pc);
    let bp = bp0;
    if (bpFull) bp = bp0 + <usize>(pc * ncPad) * 4;
    else packB(b, ldb, transB, bDt, pc, n0, kc, nc, bp);
    let apc = ap;
    if (apFull != 0) {
      // op(A)'s row block stays packed for the whole call: KC block pc at pc * mcPad floats
      apc = apFull + <usize>(pc * ((mc + MR - 1) & ~(MR - 1))) * 4;
      if (!apPacked) packA(a, lda, transA, aDt, m0, pc, mc, kc, apc);
    } else packA(a, lda, transA, aDt, m0, pc, mc, kc, ap);
    if (f32out) {
      // C itself accumulates the KC blocks; the first one writes C (+ bias) (+ old C)
      const first = pc == 0;
      macroKernel(apc, bp, mc, nc, kc, cb, ldc, !first || acc, first ? biasMode : 0, bb, t);
    } else {
      // 16-bit output: accumulate in f32 (cw), round once below
      macroKernel(apc, bp, mc, nc, kc, cw, NC, pc != 0, 0, 0, t);
    }
    pc += KC;
  } while (pc < K);
  if (!f32out) {
    const es = dtSize(cDt);
    finalizeBlock(cw, NC, c + <usize>(m0 * ldc + n0) * es, ldc, cDt, mc, nc, acc, biasMode, bb);
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
 * thread `part` of `parts` uses slot `part`.
 * sync: 0, or the address of an i32 (4-byte aligned) that the caller set to 0
 * before the call: the parts then take work units from it dynamically instead
 * of a fixed share each. The result is bit-identical either way, for any parts.
 *
 * Work units are (batch entry, column block, row block) blocks of C, at most
 * MC x NC; with parts > 1 blocks are made smaller until there are at least
 * 4 per part (not below 16 x 32).
 */
export function gemm(
  flags: i32, dtypes: i32, batch: i32, M: i32, N: i32, K: i32,
  a: usize, lda: i32, strideA: i32,
  b: usize, ldb: i32, strideB: i32,
  c: usize, ldc: i32, strideC: i32,
  bias: usize, scratch: usize, sync: usize, part: i32, parts: i32,
): void {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const aDt = dtypes & 15, bDt = (dtypes >> 4) & 15, cDt = (dtypes >> 8) & 15, biasDt = (dtypes >> 12) & 15;
  const aEs = dtSize(aDt), bEs = dtSize(bDt), cEs = dtSize(cDt);
  const ws = scratch + <usize>part * GEMM_SCRATCH;
  const Kp = max(K, 1);
  // block sizes (depend on the shape and parts only, so every part agrees)
  let mb = min(MC, (M + MR - 1) & ~(MR - 1));
  let nb = min(NC, (N + NR - 1) & ~(NR - 1));
  // keep a whole K x nb panel of op(B) packed when possible (nb >= 64). Where K is too long for
  // even that (a 7x7 stem's weight gradient: K = 16384 columns of its 64 images), narrower column
  // blocks would only pack A once more each: keep them wide, and split the work just once per part
  // (each unit packs its A and B blocks once per KC block whatever its size).
  const canReside = Kp * 64 <= B_CAP;
  if (canReside) while (nb > 64 && Kp * nb > B_CAP) nb = ((nb >> 1) + NR - 1) & ~(NR - 1);
  if (parts > 1) {
    const want = canReside ? parts * UNITS_PER_PART : parts;
    while (batch * cdiv(M, mb) * cdiv(N, nb) < want) {
      const canM = mb > 16, canN = nb > 32;
      if (canM && (mb * 2 >= nb || !canN)) mb = ((mb >> 1) + MR - 1) & ~(MR - 1);
      else if (canN) nb = ((nb >> 1) + NR - 1) & ~(NR - 1);
      else break;
    }
  }
  const nI = cdiv(M, mb), nJ = cdiv(N, nb);
  const perBatch = nI * nJ;
  const units = batch * perBatch;
  const nbPad = (nb + NR - 1) & ~(NR - 1);
  const resident = Kp * nbPad <= B_CAP;
  const transB = (flags & GEMM_TRANS_B) != 0;
  const dynamic = sync != 0 && parts > 1;
  // owned ranges with stealing where the sync block holds them, else one shared counter
  const ranged = dynamic && parts <= RANGED_MAX_PARTS && cdiv(units, parts) <= 0xffff;
  let u = dynamic ? 0 : <i32>(<i64>units * part / parts);
  const uEnd = dynamic ? units : <i32>(<i64>units * (part + 1) / parts);
  let packedKey = -1; // the (batch entry, column block) whose whole B panel is packed in this slot
  // Keep every row block of op(A) packed once it is (a unit of each column block would pack it
  // again, widening 16-bit values each time): in this slot's packed-A region when all fit.
  const aResident = nI <= A_KEYS && <i64>nI * <i64>mb * <i64>Kp <= <i64>A_CAP;
  if (aResident) for (let i = 0; i < nI; i++) store<i32>(ws + OFF_AKEY + <usize>i * 4, -1);
  for (;;) {
    u = ranged ? takeRanged(sync, part, parts, units) : takeUnit(dynamic ? sync : 0, u);
    if (u < 0 || u >= uEnd) break;
    const bi = u / perBatch, rem = u - bi * perBatch;
    const jb = rem / nI, ib = rem - jb * nI;
    const m0 = ib * mb, mc = min(mb, M - m0);
    const n0 = jb * nb, nc = min(nb, N - n0);
    const bB = b + <usize>bi * <usize>strideB * bEs;
    if (resident) {
      const key = (strideB == 0 ? 0 : bi) * nJ + jb;
      if (key != packedKey) {
        const ncPad = (nc + NR - 1) & ~(NR - 1);
        let pc = 0;
        do {
          const kc = min(KC, K - pc);
          packB(bB, ldb, transB, bDt, pc, n0, kc, nc, ws + OFF_B + <usize>(pc * ncPad) * 4);
          pc += KC;
        } while (pc < K);
        packedKey = key;
      }
    }
    let apFull: usize = 0, apPacked = false;
    if (aResident) {
      const keyAt = ws + OFF_AKEY + <usize>ib * 4;
      const aKey = strideA == 0 ? 0 : bi;
      apFull = ws + OFF_AFULL + <usize>(ib * mb) * <usize>Kp * 4;
      apPacked = load<i32>(keyAt) == aKey;
      store<i32>(keyAt, aKey);
    }
    gemmBlock(flags, aDt, bDt, cDt, biasDt, K,
      a + <usize>bi * <usize>strideA * aEs, lda, bB, ldb,
      c + <usize>bi * <usize>strideC * cEs, ldc, bias,
      m0, mc, n0, nc, resident, ws, apFull, apPacked);
    if (!dynamic) u++;
  }
}
