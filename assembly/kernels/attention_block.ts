/**
 * The register-blocked product of the fused attention's float32 tiles and strips
 * (attention_tiles.ts, attention_strips.ts): 4 rows of C at a time as 4 x 8 blocks in registers
 * (one vector load of B and four splats of A per step of the inner dimension), multiply-adds through
 * gemm.ts's `madd` (fused in the relaxed-SIMD build, as the GEMM's). Module-internal (@inline).
 */
import { madd } from './gemm';

/**
 * Rows [0, 4) of C (row stride ldc floats) over columns [n0, n1) (n1 - n0 a multiple of 4):
 * C[i][n] (+)= sum over k in [k0, k1) of A(i, k) B[k][n], A(i, k) the float32 at
 * a + i * rowStep + k * kStep (bytes): rows of a row-major A, or columns of a transposed one.
 * Each 4 x 8 block (4 x 4 at a column tail) sums over k in order, so both widths give the same sums.
 */
// @ts-ignore: decorator
@inline export function rowBlock(a: usize, rowStep: usize, kStep: usize, b: usize, ldb: i32, c: usize, ldc: i32, n0: i32, n1: i32, k0: i32, k1: i32, accumulate: bool): void {
  const bStep = <usize>ldb << 2;
  const c0 = c;
  const c1 = c0 + (<usize>ldc << 2);
  const c2 = c1 + (<usize>ldc << 2);
  const c3 = c2 + (<usize>ldc << 2);
  const kn = <usize>max(0, k1 - k0);
  const a0 = a + <usize>k0 * kStep;
  const b0 = b + <usize>k0 * bStep;
  let n = n0;
  for (; n + 8 <= n1; n += 8) {
    const o = <usize>n << 2;
    let s0 = f32x4.splat(0), t0 = f32x4.splat(0);
    let s1 = f32x4.splat(0), t1 = f32x4.splat(0);
    let s2 = f32x4.splat(0), t2 = f32x4.splat(0);
    let s3 = f32x4.splat(0), t3 = f32x4.splat(0);
    if (accumulate) {
      s0 = v128.load(c0 + o); t0 = v128.load(c0 + o, 16);
      s1 = v128.load(c1 + o); t1 = v128.load(c1 + o, 16);
      s2 = v128.load(c2 + o); t2 = v128.load(c2 + o, 16);
      s3 = v128.load(c3 + o); t3 = v128.load(c3 + o, 16);
    }
    let pa = a0;
    let pb = b0 + o;
    const end = pb + kn * bStep; // (an end pointer: one op less per step than a counter)
    while (pb < end) {
      const bv = v128.load(pb), bw = v128.load(pb, 16);
      let x = v128.load32_splat(pa);
      s0 = madd(x, bv, s0); t0 = madd(x, bw, t0);
      x = v128.load32_splat(pa + rowStep);
      s1 = madd(x, bv, s1); t1 = madd(x, bw, t1);
      x = v128.load32_splat(pa + 2 * rowStep);
      s2 = madd(x, bv, s2); t2 = madd(x, bw, t2);
      x = v128.load32_splat(pa + 3 * rowStep);
      s3 = madd(x, bv, s3); t3 = madd(x, bw, t3);
      pa += kStep;
      pb += bStep;
    }
    v128.store(c0 + o, s0); v128.store(c0 + o, t0, 16);
    v128.store(c1 + o, s1); v128.store(c1 + o, t1, 16);
    v128.store(c2 + o, s2); v128.store(c2 + o, t2, 16);
    v128.store(c3 + o, s3); v128.store(c3 + o, t3, 16);
  }
  for (; n < n1; n += 4) {
    const o = <usize>n << 2;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    if (accumulate) {
      s0 = v128.load(c0 + o); s1 = v128.load(c1 + o);
      s2 = v128.load(c2 + o); s3 = v128.load(c3 + o);
    }
    let pa = a0;
    let pb = b0 + o;
    const end = pb + kn * bStep;
    while (pb < end) {
      const bv = v128.load(pb);
      s0 = madd(v128.load32_splat(pa), bv, s0);
      s1 = madd(v128.load32_splat(pa + rowStep), bv, s1);
      s2 = madd(v128.load32_splat(pa + 2 * rowStep), bv, s2);
      s3 = madd(v128.load32_splat(pa + 3 * rowStep), bv, s3);
      pa += kStep;
      pb += bStep;
    }
    v128.store(c0 + o, s0); v128.store(c1 + o, s1);
    v128.store(c2 + o, s2); v128.store(c3 + o, s3);
  }
}
