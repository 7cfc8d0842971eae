// The GEMM's packing of float16 operands (gemm.ts packA / packB) into 4-row A and 8-column B
// micro-panels, widening 8 values at a time in their 16-bit lanes (convert16.ts f16x8FiniteToF32:
// ~20 operations per 8 values instead of ~30, no branch). That path is exact for every finite value;
// each function tracks the magnitudes it widened and returns false when an Inf or NaN was among them
// (its output then is wrong): the caller packs that panel again with the general path. Either way the
// packed floats are the same bits as the general path's. The k tails (kc not a multiple of the step)
// are widened 4 at a time the same way, then one by one with the exact scalar codec.

import { f16ToF32, f16x8Zeros, f16x8Subnormals, f16x8High, f16x8FiniteLo, f16x8FiniteHi, f16x8FiniteTo, f16x8RunsFiniteToF32, f16x8Magnitudes, f16x8AnyInfNaN } from './convert16';

/** Store the 4x4 transpose of rows r0..r3 as 4 vectors at d, d + step, d + 2 step, d + 3 step. */
// @ts-ignore: decorator
@inline export function storeT4(d: usize, step: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(d + step, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(d + 2 * step, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(d + 3 * step, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * 4 rows of 8 finite float16 values (h0..h3) widened and transposed into 8 packed rows of 4 floats
 * at d, d + step, ..., d + 7 step. Row by row, so that only the 8 widened vectors stay live.
 */
// @ts-ignore: decorator
@inline function widen4x8T(d: usize, step: usize, h0: v128, h1: v128, h2: v128, h3: v128): void {
  let z = f16x8Zeros(h0), s = f16x8Subnormals(h0, z), g = f16x8High(h0, z, s);
  const a0 = f16x8FiniteLo(h0, g, s), b0 = f16x8FiniteHi(h0, g, s);
  z = f16x8Zeros(h1); s = f16x8Subnormals(h1, z); g = f16x8High(h1, z, s);
  const a1 = f16x8FiniteLo(h1, g, s), b1 = f16x8FiniteHi(h1, g, s);
  z = f16x8Zeros(h2); s = f16x8Subnormals(h2, z); g = f16x8High(h2, z, s);
  const a2 = f16x8FiniteLo(h2, g, s), b2 = f16x8FiniteHi(h2, g, s);
  z = f16x8Zeros(h3); s = f16x8Subnormals(h3, z); g = f16x8High(h3, z, s);
  const a3 = f16x8FiniteLo(h3, g, s), b3 = f16x8FiniteHi(h3, g, s);
  storeT4(d, step, a0, a1, a2, a3);
  storeT4(d + 4 * step, step, b0, b1, b2, b3);
}

/** 4 rows of 4 finite float16 values (the low halves of h0..h3) widened and transposed into 4 packed rows. */
// @ts-ignore: decorator
@inline function widen4x4T(d: usize, step: usize, h0: v128, h1: v128, h2: v128, h3: v128): void {
  storeT4(d, step, finiteLo(h0), finiteLo(h1), finiteLo(h2), finiteLo(h3));
}

/** Elements 0..3 of 8 finite float16 values, exact. */
// @ts-ignore: decorator
@inline function finiteLo(h: v128): v128 {
  const zero = f16x8Zeros(h), sub = f16x8Subnormals(h, zero);
  return f16x8FiniteLo(h, f16x8High(h, zero, sub), sub);
}

/** f16x8Magnitudes of four vectors. */
// @ts-ignore: decorator
@inline function magnitudes4(acc: v128, h0: v128, h1: v128, h2: v128, h3: v128): v128 {
  return f16x8Magnitudes(f16x8Magnitudes(f16x8Magnitudes(f16x8Magnitudes(acc, h0), h1), h2), h3);
}

/**
 * A's 4-row micro-panel, A not transposed: ap[k][r] = A[r][k] for k < kc, rows at src + r * rowStep
 * (bytes). 4 rows x 8 k per step: widened, then two 4x4 transposes. False: an Inf or NaN was met.
 */
export function packA4F16(src: usize, rowStep: usize, kc: i32, dst: usize): bool {
  const s1 = src + rowStep, s2 = s1 + rowStep, s3 = s2 + rowStep;
  let mags = i16x8.splat(0);
  let k = 0;
  for (; k + 8 <= kc; k += 8) {
    const o = <usize>k << 1;
    const h0 = v128.load(src + o), h1 = v128.load(s1 + o), h2 = v128.load(s2 + o), h3 = v128.load(s3 + o);
    mags = magnitudes4(mags, h0, h1, h2, h3);
    widen4x8T(dst + (<usize>k << 4), 16, h0, h1, h2, h3);
  }
  if (k + 4 <= kc) {
    const o = <usize>k << 1;
    const h0 = v128.load64_zero(src + o), h1 = v128.load64_zero(s1 + o), h2 = v128.load64_zero(s2 + o), h3 = v128.load64_zero(s3 + o);
    mags = magnitudes4(mags, h0, h1, h2, h3);
    widen4x4T(dst + (<usize>k << 4), 16, h0, h1, h2, h3);
    k += 4;
  }
  for (; k < kc; k++) {
    const o = <usize>k << 1, d = dst + (<usize>k << 4);
    store<f32>(d, f16ToF32(<u32>load<u16>(src + o)));
    store<f32>(d, f16ToF32(<u32>load<u16>(s1 + o)), 4);
    store<f32>(d, f16ToF32(<u32>load<u16>(s2 + o)), 8);
    store<f32>(d, f16ToF32(<u32>load<u16>(s3 + o)), 12);
  }
  return !f16x8AnyInfNaN(mags);
}

/**
 * A's 4-row micro-panel, A transposed (stored [K, M]): ap[k][r] = A[k][r], row k of the stored matrix
 * at src + k * rowStep. Two k per vector (4 contiguous values each), stored contiguously.
 */
export function packA4TF16(src: usize, rowStep: usize, kc: i32, dst: usize): bool {
  let mags = i16x8.splat(0);
  let k = 0;
  for (; k + 2 <= kc; k += 2) {
    const h = v128.load64_lane(src + rowStep, v128.load64_zero(src), 1);
    mags = f16x8Magnitudes(mags, h);
    f16x8FiniteTo(dst + (<usize>k << 4), 16, h);
    src += rowStep << 1;
  }
  if (k < kc) {
    const h = v128.load64_zero(src);
    mags = f16x8Magnitudes(mags, h);
    v128.store(dst + (<usize>k << 4), finiteLo(h));
  }
  return !f16x8AnyInfNaN(mags);
}

/** B's 8-column micro-panel, B not transposed: bp[k][j] = B[k][j], row k at src + k * rowStep. */
export function packB8F16(src: usize, rowStep: usize, kc: i32, dst: usize): bool {
  return f16x8RunsFiniteToF32(src, rowStep, kc, dst);
}

/**
 * B's 8-column micro-panel, B transposed (stored [N, K]): bp[k][j] = B[j][k], row j of the stored
 * matrix at src + j * rowStep. 8 rows x 8 k per step, four rows at a time: widened, then 4x4 transposes.
 */
export function packB8TF16(src: usize, rowStep: usize, kc: i32, dst: usize): bool {
  let mags = i16x8.splat(0);
  let k = 0;
  for (; k + 8 <= kc; k += 8) {
    const o = <usize>k << 1, d = dst + (<usize>k << 5);
    for (let g = 0; g < 2; g++) {
      // rows 4g .. 4g + 3 -> columns 4g .. 4g + 3 of packed rows k .. k + 7
      const r0 = src + <usize>(g << 2) * rowStep + o, r1 = r0 + rowStep, r2 = r1 + rowStep, r3 = r2 + rowStep;
      const h0 = v128.load(r0), h1 = v128.load(r1), h2 = v128.load(r2), h3 = v128.load(r3);
      mags = magnitudes4(mags, h0, h1, h2, h3);
      widen4x8T(d + (<usize>g << 4), 32, h0, h1, h2, h3);
    }
  }
  if (k + 4 <= kc) {
    const o = <usize>k << 1, d = dst + (<usize>k << 5);
    for (let g = 0; g < 2; g++) {
      const r0 = src + <usize>(g << 2) * rowStep + o, r1 = r0 + rowStep, r2 = r1 + rowStep, r3 = r2 + rowStep;
      const h0 = v128.load64_zero(r0), h1 = v128.load64_zero(r1), h2 = v128.load64_zero(r2), h3 = v128.load64_zero(r3);
      mags = magnitudes4(mags, h0, h1, h2, h3);
      widen4x4T(d + (<usize>g << 4), 32, h0, h1, h2, h3);
    }
    k += 4;
  }
  for (; k < kc; k++) {
    const o = <usize>k << 1, d = dst + (<usize>k << 5);
    for (let j = 0; j < 8; j++) store<f32>(d + (<usize>j << 2), f16ToF32(<u32>load<u16>(src + <usize>j * rowStep + o)));
  }
  return !f16x8AnyInfNaN(mags);
}
