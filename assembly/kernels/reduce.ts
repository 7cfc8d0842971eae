/**
 * Sums of float32 / float16 / bfloat16 storage, accumulated in float64 (f64x2 lanes) and rounded
 * once into the output format. Results depend only on the shapes, never on how a call is split
 * across threads: every output (or fixed-size chunk of a full sum) is summed by one thread.
 *
 *   sum3_<fmt>(x, acc, b0, b1, A, B, C)
 *       x contiguous [A, B, C]; acc[b] (float64) = sum over a, c of x[a, b, c] for b0 <= b < b1.
 *       Covers a sum over the last axis (A = 1), over the leading axes (C = 1), and over all axes
 *       but one in the middle (a convolution's bias gradient: [N, C, HW]).
 *   sumchunks_<fmt>(x, acc, k0, k1, n, chunk)
 *       acc[k] = sum of x[k chunk .. min((k + 1) chunk, n)) for k0 <= k < k1: a full sum in
 *       fixed chunks, added in order by the caller.
 *   finish_<fmt>(acc, out, n, scale)
 *       out[i] = acc[i] * scale rounded to float32, then into fmt (the reference's rounding).
 */
import { F32, F16, BF16, shiftOf, load1, store1, widenLo, widenHi } from './convert16';

/** The float64 sum of n contiguous elements of `fmt` at p. */
// @ts-ignore: decorator
@inline function sumContig(fmt: i32, p: usize, n: i32): f64 {
  const sh = shiftOf(fmt);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let s2 = f64x2.splat(0);
  let s3 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const q = p + (<usize>i << sh);
    let lo: v128;
    let hi: v128;
    if (fmt == F32) {
      lo = v128.load(q);
      hi = v128.load(q, 16);
    } else {
      const raw = v128.load(q);
      lo = widenLo(fmt, raw);
      hi = widenHi(fmt, raw);
    }
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(lo));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i64x2.shuffle(lo, lo, 1, 0)));
    s2 = f64x2.add(s2, f64x2.promote_low_f32x4(hi));
    s3 = f64x2.add(s3, f64x2.promote_low_f32x4(i64x2.shuffle(hi, hi, 1, 0)));
  }
  const v = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let s = f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
  for (; i < n; i++) s += <f64>load1(fmt, p + (<usize>i << sh));
  return s;
}

/** Four consecutive elements of `fmt` at p as f32x4. */
// @ts-ignore: decorator
@inline function load4(fmt: i32, p: usize): v128 {
  if (fmt == F32) return v128.load(p);
  return widenLo(fmt, v128.load64_zero(p));
}

// @ts-ignore: decorator
@inline function sum3(fmt: i32, x: usize, acc: usize, b0: i32, b1: i32, A: i32, B: i32, C: i32): void {
  const sh = shiftOf(fmt);
  if (C >= 8) {
    for (let b = b0; b < b1; b++) {
      let s: f64 = 0;
      for (let a = 0; a < A; a++) s += sumContig(fmt, x + ((<usize>(a * B + b) * <usize>C) << sh), C);
      store<f64>(acc + (<usize>b << 3), s);
    }
  } else if (C == 1) {
    // column sums: stream the rows, accumulating a block of columns in acc (kept in L1);
    // each column is still summed in row order, so the result does not depend on the blocking
    const rowBytes = <usize>B << sh;
    for (let blk = b0; blk < b1; blk += 512) {
      const end = min(blk + 512, b1);
      for (let b = blk; b < end; b++) store<f64>(acc + (<usize>b << 3), 0);
      let p = x + (<usize>blk << sh);
      for (let a = 0; a < A; a++, p += rowBytes) {
        let b = blk;
        let q = p;
        let r = acc + (<usize>blk << 3);
        for (; b + 4 <= end; b += 4, q += <usize>4 << sh, r += 32) {
          const v = load4(fmt, q);
          v128.store(r, f64x2.add(v128.load(r), f64x2.promote_low_f32x4(v)));
          v128.store(r, f64x2.add(v128.load(r, 16), f64x2.promote_low_f32x4(i64x2.shuffle(v, v, 1, 0))), 16);
        }
        for (; b < end; b++, q += <usize>1 << sh, r += 8) store<f64>(r, load<f64>(r) + <f64>load1(fmt, q));
      }
    }
  } else {
    for (let b = b0; b < b1; b++) {
      let s: f64 = 0;
      for (let a = 0; a < A; a++) {
        const p = x + ((<usize>(a * B + b) * <usize>C) << sh);
        for (let c = 0; c < C; c++) s += <f64>load1(fmt, p + (<usize>c << sh));
      }
      store<f64>(acc + (<usize>b << 3), s);
    }
  }
}

// @ts-ignore: decorator
@inline function sumchunks(fmt: i32, x: usize, acc: usize, k0: i32, k1: i32, n: i32, chunk: i32): void {
  const sh = shiftOf(fmt);
  for (let k = k0; k < k1; k++) {
    const start = k * chunk;
    const len = min(chunk, n - start);
    store<f64>(acc + (<usize>k << 3), sumContig(fmt, x + (<usize>start << sh), len));
  }
}

// @ts-ignore: decorator
@inline function finish(fmt: i32, acc: usize, o: usize, n: i32, scale: f64): void {
  const sh = shiftOf(fmt);
  for (let i = 0; i < n; i++) store1(fmt, o + (<usize>i << sh), <f32>(load<f64>(acc + (<usize>i << 3)) * scale));
}

export function sum3_f32(x: usize, acc: usize, b0: i32, b1: i32, A: i32, B: i32, C: i32): void {
  sum3(F32, x, acc, b0, b1, A, B, C);
}
export function sum3_f16(x: usize, acc: usize, b0: i32, b1: i32, A: i32, B: i32, C: i32): void {
  sum3(F16, x, acc, b0, b1, A, B, C);
}
export function sum3_bf16(x: usize, acc: usize, b0: i32, b1: i32, A: i32, B: i32, C: i32): void {
  sum3(BF16, x, acc, b0, b1, A, B, C);
}
export function sumchunks_f32(x: usize, acc: usize, k0: i32, k1: i32, n: i32, chunk: i32): void {
  sumchunks(F32, x, acc, k0, k1, n, chunk);
}
export function sumchunks_f16(x: usize, acc: usize, k0: i32, k1: i32, n: i32, chunk: i32): void {
  sumchunks(F16, x, acc, k0, k1, n, chunk);
}
export function sumchunks_bf16(x: usize, acc: usize, k0: i32, k1: i32, n: i32, chunk: i32): void {
  sumchunks(BF16, x, acc, k0, k1, n, chunk);
}
export function finish_f32(acc: usize, o: usize, n: i32, scale: f64): void {
  finish(F32, acc, o, n, scale);
}
export function finish_f16(acc: usize, o: usize, n: i32, scale: f64): void {
  finish(F16, acc, o, n, scale);
}
export function finish_bf16(acc: usize, o: usize, n: i32, scale: f64): void {
  finish(BF16, acc, o, n, scale);
}
