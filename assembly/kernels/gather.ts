/**
 * gather and scatterAdd along one axis with int32 indices (a classification loss picks its
 * targets' log-probabilities with gather; the gradient goes back with scatterAdd).
 *
 * Tensors are contiguous. Along the axis, the source / target has n entries and the index K;
 * the other axes are [outer] before and [inner] after, the same for the index and the data:
 *
 *   index_check(idx, count, n) -> i32
 *       the number of indices outside [-n, n) (negative ones count from the end); call it first:
 *       the kernels below assume valid indices.
 *   take<bits>(x, idx, out, r0, r1, n, K, inner)
 *       out[r][k][i] = x[r][idx[r][k][i]][i] for outer rows r0 <= r < r1: a bit copy of elements
 *       of 8, 16, 32 or 64 bits.
 *   scatter_add_<fmt>(src, idx, out, r0, r1, n, K, inner, scratch)
 *       out[r] = 0, then out[r][idx[r][k][i]][i] += src[r][k][i] in (k, i) order, accumulated in
 *       float64 and rounded once (the reference's order and rounding); scratch: n * inner float64
 *       per call (one thread's rows at a time).
 */
import { F32, F16, BF16, shiftOf, load1, store1 } from './convert16';

/** The index at p, wrapped into [0, n). */
// @ts-ignore: decorator
@inline function index(p: usize, n: i32): i32 {
  const v = load<i32>(p);
  return v < 0 ? v + n : v;
}

export function index_check(idx: usize, count: i32, n: i32): i32 {
  let bad = 0;
  for (let i = 0; i < count; i++) {
    const v = load<i32>(idx + (<usize>i << 2));
    if (v < -n || v >= n) bad++;
  }
  return bad;
}

// @ts-ignore: decorator
@inline function take<T>(x: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32): void {
  const size = <usize>sizeof<T>();
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * <usize>n * <usize>inner * size;
    let q = <usize>r * <usize>K * <usize>inner; // element index into idx and out
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < inner; i++, q++) {
        const src = xr + (<usize>index(idx + (q << 2), n) * <usize>inner + <usize>i) * size;
        store<T>(o + q * size, load<T>(src));
      }
    }
  }
}

export function take8(x: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32): void {
  take<u8>(x, idx, o, r0, r1, n, K, inner);
}
export function take16(x: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32): void {
  take<u16>(x, idx, o, r0, r1, n, K, inner);
}
export function take32(x: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32): void {
  take<u32>(x, idx, o, r0, r1, n, K, inner);
}
export function take64(x: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32): void {
  take<u64>(x, idx, o, r0, r1, n, K, inner);
}

// @ts-ignore: decorator
@inline function scatterAdd(fmt: i32, src: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32, acc: usize): void {
  const sh = shiftOf(fmt);
  const row = n * inner; // target elements per outer row
  for (let r = r0; r < r1; r++) {
    memory.fill(acc, 0, <usize>row << 3);
    let q = <usize>r * <usize>K * <usize>inner;
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < inner; i++, q++) {
        const t = acc + ((<usize>index(idx + (q << 2), n) * <usize>inner + <usize>i) << 3);
        store<f64>(t, load<f64>(t) + <f64>load1(fmt, src + (q << sh)));
      }
    }
    const or = o + ((<usize>r * <usize>row) << sh);
    for (let j = 0; j < row; j++) store1(fmt, or + (<usize>j << sh), <f32>load<f64>(acc + (<usize>j << 3)));
  }
}

export function scatter_add_f32(src: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32, scratch: usize): void {
  scatterAdd(F32, src, idx, o, r0, r1, n, K, inner, scratch);
}
export function scatter_add_f16(src: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32, scratch: usize): void {
  scatterAdd(F16, src, idx, o, r0, r1, n, K, inner, scratch);
}
export function scatter_add_bf16(src: usize, idx: usize, o: usize, r0: i32, r1: i32, n: i32, K: i32, inner: i32, scratch: usize): void {
  scatterAdd(BF16, src, idx, o, r0, r1, n, K, inner, scratch);
}
