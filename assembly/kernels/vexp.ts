/**
 * e^x on four float32 lanes (Cephes' expf: a degree-6 polynomial after reducing by ln 2; about
 * one unit in the last place), shared by the SIMD kernels (gelu16.ts, attention_tiles.ts).
 * Module-internal like convert16.ts: not re-exported by assembly/index.ts.
 *
 * The constants come from a table in static data (`ek`), not f32x4.splat of a literal: V8
 * materialises a v128.const at every use inside a loop (several instructions each), while a load
 * from memory is one (often folded into the arithmetic).
 */
const LOG2E: f32 = 1.4426950408889634;
// ln 2 split in two (Cephes expf): n * LN2_HI is exact for |n| < 2^9
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

/** Constants of exp4 / expNormal4 , each repeated in 4 lanes. */
const ETAB: usize = memory.data<f32>([
  -150, -150, -150, -150, // 0
  LOG2E, LOG2E, LOG2E, LOG2E, // 1
  LN2_HI, LN2_HI, LN2_HI, LN2_HI, // 2
  LN2_LO, LN2_LO, LN2_LO, LN2_LO, // 3
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, // 4
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, // 5
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, // 6
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, // 7
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, // 8
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, // 9
  1, 1, 1, 1, // 10
  -87, -87, -87, -87, // 11
], 16);

/** Lane-splatted constant `i` of ETAB. */
// @ts-ignore: decorator
@inline function ek(i: usize): v128 {
  return v128.load(ETAB + (i << 4));
}

/** e^a for a <= ~88, underflowing gradually to 0 (a clamped at -150 first; NaN in: unspecified). */
// @ts-ignore: decorator
@inline export function exp4(a: v128): v128 {
  a = f32x4.max(a, ek(0));
  const n = f32x4.nearest(f32x4.mul(a, ek(1)));
  const r = f32x4.sub(f32x4.sub(a, f32x4.mul(n, ek(2))), f32x4.mul(n, ek(3)));
  // the polynomial by Estrin's scheme (shorter dependency chains than Horner's)
  const r2 = f32x4.mul(r, r);
  const pa = f32x4.add(f32x4.mul(ek(4), r), ek(5));
  const pb = f32x4.add(f32x4.mul(ek(6), r), ek(7));
  const pc = f32x4.add(f32x4.mul(ek(8), r), ek(9));
  const p = f32x4.add(f32x4.mul(f32x4.add(f32x4.mul(pa, r2), pb), r2), pc);
  const y = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), ek(10));
  // 2^n as 2^n1 * 2^n2, each a normal float32 for n >= -252: results below 2^-126 round gradually
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  // (n + 127) << 23 = (n << 23) + the bits of 1.0f
  const s1 = i32x4.add(i32x4.shl(n1, 23), ek(10));
  const s2 = i32x4.add(i32x4.shl(n2, 23), ek(10));
  return f32x4.mul(f32x4.mul(y, s1), s2);
}


/**
 * e^a without subnormal results: a clamped at -87 first (e^-87 ~ 1.6e-38, the smallest normal
 * float32 is 1.2e-38), for weights that are summed with one of at least 1 (a softmax) where the
 * difference is far below a rounding error. An underflowing product costs x86 CPUs a microcode
 * assist per lane; callers zero masked lanes themselves.
 */
// @ts-ignore: decorator
@inline export function expNormal4(a: v128): v128 {
  return exp4(f32x4.max(a, ek(11)));
}
