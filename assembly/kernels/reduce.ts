/**
 * Sums of float32 / float16 / bfloat16 storage, accumulated in float64 (f64x2 lanes) and rounded
 * once into the output format. Results depend only on the shapes, never on how a call is split
 * across threads: every output (or fixed-size chunk of a full sum) is summed by one thread.
 *
 *   sum3_<fmt>(x, acc, b0, b1, A, B, C)
 *       x contiguous [A, B, C]; acc[b] (float64) = sum over a, c of x[a, b, c] for b0 <= b < b1.
 *       Covers a sum over the last axis (A = 1), over the leading axes (C = 1), and over all axes
 *       but one in the middle (a convolution's bias gradient: [N, C, HW]).
 *   sum3c_<fmt>(x, acc, u0, u1, A, B, C, chunk)
 *       the same with the rows a cut into fixed chunks (C >= 8, few b: a convolution's bias
 *       gradient over a batch): acc[b nk + k] (nk = ceil(A / chunk)) sums chunk k of b's rows,
 *       for u0 <= b nk + k < u1; the caller adds each b's nk partial sums in order.
 *   sumchunks_<fmt>(x, acc, k0, k1, n, chunk)
 *       acc[k] = sum of x[k chunk .. min((k + 1) chunk, n)) for k0 <= k < k1: a full sum in
 *       fixed chunks, added in order by the caller.
 *   finish_<fmt>(acc, out, n, scale)
 *       out[i] = acc[i] * scale rounded to float32, then into fmt (the reference's rounding).
 */
import { F32, F16, BF16, shiftOf, load1, store1, widenLo, widenHi, kv, K_INF16X8, K_F16SCALED } from './convert16';

/**
 * The float64 sum of n contiguous elements of `fmt` at p.
 *
 * float16 is summed without widening: the pattern with its sign moved to bit 31 and its exponent and
 * mantissa to bits 27..13 is, as a float32, exactly the value times 2^-112 (subnormals included);
 * those are summed (exactly, as the values are: float16 values are multiples of 2^-24) and the sum
 * scaled back by 2^112 (exact). Blocks holding Inf or NaN take the widening path.
 */
// @ts-ignore: decorator
@inline function sumContig(fmt: i32, p: usize, n: i32): f64 {
  const sh = shiftOf(fmt);
  // 16 elements a step into independent float64 chains: float16 blocks summed scaled by 2^-112 in
  // t0..t3, everything else as it is in s0..s7
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  let s4 = f64x2.splat(0), s5 = f64x2.splat(0), s6 = f64x2.splat(0), s7 = f64x2.splat(0);
  let t0 = f64x2.splat(0), t1 = f64x2.splat(0), t2 = f64x2.splat(0), t3 = f64x2.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const q = p + (<usize>i << sh);
    let v0: v128, v1: v128, v2: v128, v3: v128;
    if (fmt == F32) {
      v0 = v128.load(q);
      v1 = v128.load(q, 16);
      v2 = v128.load(q, 32);
      v3 = v128.load(q, 48);
    } else {
      const r0 = v128.load(q), r1 = v128.load(q, 16);
      if (fmt == F16) {
        const inf = kv(K_INF16X8);
        if (!v128.any_true(v128.or(i16x8.eq(v128.and(r0, inf), inf), i16x8.eq(v128.and(r1, inf), inf)))) {
          const m = kv(K_F16SCALED);
          const w0 = v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(r0), 13), m);
          const w1 = v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(r0), 13), m);
          const w2 = v128.and(i32x4.shl(i32x4.extend_low_i16x8_s(r1), 13), m);
          const w3 = v128.and(i32x4.shl(i32x4.extend_high_i16x8_s(r1), 13), m);
          t0 = f64x2.add(t0, f64x2.add(f64x2.promote_low_f32x4(w0), f64x2.promote_low_f32x4(i64x2.shuffle(w0, w0, 1, 0))));
          t1 = f64x2.add(t1, f64x2.add(f64x2.promote_low_f32x4(w1), f64x2.promote_low_f32x4(i64x2.shuffle(w1, w1, 1, 0))));
          t2 = f64x2.add(t2, f64x2.add(f64x2.promote_low_f32x4(w2), f64x2.promote_low_f32x4(i64x2.shuffle(w2, w2, 1, 0))));
          t3 = f64x2.add(t3, f64x2.add(f64x2.promote_low_f32x4(w3), f64x2.promote_low_f32x4(i64x2.shuffle(w3, w3, 1, 0))));
          continue;
        }
      }
      v0 = widenLo(fmt, r0);
      v1 = widenHi(fmt, r0);
      v2 = widenLo(fmt, r1);
      v3 = widenHi(fmt, r1);
    }
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v0));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i64x2.shuffle(v0, v0, 1, 0)));
    s2 = f64x2.add(s2, f64x2.promote_low_f32x4(v1));
    s3 = f64x2.add(s3, f64x2.promote_low_f32x4(i64x2.shuffle(v1, v1, 1, 0)));
    s4 = f64x2.add(s4, f64x2.promote_low_f32x4(v2));
    s5 = f64x2.add(s5, f64x2.promote_low_f32x4(i64x2.shuffle(v2, v2, 1, 0)));
    s6 = f64x2.add(s6, f64x2.promote_low_f32x4(v3));
    s7 = f64x2.add(s7, f64x2.promote_low_f32x4(i64x2.shuffle(v3, v3, 1, 0)));
  }
  for (; i + 4 <= n; i += 4) {
    const q = p + (<usize>i << sh);
    const v = fmt == F32 ? v128.load(q) : widenLo(fmt, v128.load64_zero(q));
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(v));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i64x2.shuffle(v, v, 1, 0)));
  }
  const v = f64x2.add(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3)), f64x2.add(f64x2.add(s4, s5), f64x2.add(s6, s7)));
  let s = f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
  if (fmt == F16) {
    const t = f64x2.add(f64x2.add(t0, t1), f64x2.add(t2, t3));
    s += (f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1)) * reinterpret<f64>(0x46f0000000000000); // * 2^112
  }
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

/**
 * acc[u] for units u0 <= u < u1 of (b, k) = (u / nk, u % nk): the sum over c of x[a, b, c] for the
 * rows a of chunk k (rows k chunk .. min((k + 1) chunk, A)), C >= 8. The caller adds the nk chunks
 * of each b in order: a fixed grouping, so the result does not depend on the threads.
 */
// @ts-ignore: decorator
@inline function sum3c(fmt: i32, x: usize, acc: usize, u0: i32, u1: i32, A: i32, B: i32, C: i32, chunk: i32): void {
  const sh = shiftOf(fmt);
  const nk = (A + chunk - 1) / chunk;
  for (let u = u0; u < u1; u++) {
    const b = u / nk;
    const a1 = min(A, (u % nk + 1) * chunk);
    let s: f64 = 0;
    for (let a = (u % nk) * chunk; a < a1; a++) s += sumContig(fmt, x + ((<usize>(a * B + b) * <usize>C) << sh), C);
    store<f64>(acc + (<usize>u << 3), s);
  }
}

export function sum3c_f32(x: usize, acc: usize, u0: i32, u1: i32, A: i32, B: i32, C: i32, chunk: i32): void {
  sum3c(F32, x, acc, u0, u1, A, B, C, chunk);
}
export function sum3c_f16(x: usize, acc: usize, u0: i32, u1: i32, A: i32, B: i32, C: i32, chunk: i32): void {
  sum3c(F16, x, acc, u0, u1, A, B, C, chunk);
}
export function sum3c_bf16(x: usize, acc: usize, u0: i32, u1: i32, A: i32, B: i32, C: i32, chunk: i32): void {
  sum3c(BF16, x, acc, u0, u1, A, B, C, chunk);
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
