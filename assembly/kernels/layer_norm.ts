/**
 * Fused layer normalisation over the last D elements of each of R rows (src/nn/layer_norm_ops.ts,
 * src/backend/wasm/native_layer_norm.ts): x, g, y, dx, w and b in one format `fmt` (float32,
 * float16, bfloat16), float32 arithmetic, 16-bit outputs rounded once; statistics and sums float32.
 * Each kernel handles rows [r0, r1) (gradient sums: columns [c0, c1)), so calls split across threads
 * with results independent of the split.
 *
 *   layer_norm_stats_<fmt>(x, stats, R, D, eps, r0, r1)             stats [2,R]: mean, 1/sqrt(var + eps)
 *   layer_norm_forward_<fmt>(x, stats, w, b, y, R, D, r0, r1)       y = (x - mean) * rstd * w + b (w, b: 0 = none)
 *   layer_norm_backward_input_<fmt>(g, x, stats, w, dx, R, D, r0, r1)
 *       dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)) over the row
 *   layer_norm_grad_sums_<fmt>(g, x, stats, sums, R, D, c0, c1)     sums [2,D]: sum over rows of g * xhat, g
 */
import { F32, F16, BF16, load1, store1, load8lo, load8hi, store8 } from './convert16';

// @ts-ignore: decorator
@inline function at(fmt: i32, p: usize, i: i32): usize {
  return p + (<usize>i << (fmt == F32 ? 2 : 1));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// @ts-ignore: decorator
@inline function stats(fmt: i32, x: usize, st: usize, R: i32, D: i32, eps: f32, r0: i32, r1: i32): void {
  const d8 = D & ~7;
  const invD = <f32>1 / <f32>D;
  for (let r = r0; r < r1; r++) {
    const row = at(fmt, x, r * D);
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let j = 0;
    for (; j < d8; j += 8) {
      const p = at(fmt, row, j);
      s0 = f32x4.add(s0, load8lo(fmt, p));
      s1 = f32x4.add(s1, load8hi(fmt, p));
    }
    let s = hsum(f32x4.add(s0, s1));
    for (let k = j; k < D; k++) s += load1(fmt, at(fmt, row, k));
    const mean = s * invD;
    // the variance around the mean (a second pass: no cancellation)
    const m = f32x4.splat(mean);
    let q0 = f32x4.splat(0), q1 = f32x4.splat(0);
    for (j = 0; j < d8; j += 8) {
      const p = at(fmt, row, j);
      const a = f32x4.sub(load8lo(fmt, p), m), b = f32x4.sub(load8hi(fmt, p), m);
      q0 = f32x4.add(q0, f32x4.mul(a, a));
      q1 = f32x4.add(q1, f32x4.mul(b, b));
    }
    let q = hsum(f32x4.add(q0, q1));
    for (let k = j; k < D; k++) {
      const a = load1(fmt, at(fmt, row, k)) - mean;
      q += a * a;
    }
    store<f32>(st + (<usize>r << 2), mean);
    store<f32>(st + (<usize>(R + r) << 2), <f32>(1 / Math.sqrt(<f64>(q * invD) + <f64>eps)));
  }
}

// @ts-ignore: decorator
@inline function forward(fmt: i32, x: usize, st: usize, w: usize, b: usize, y: usize, R: i32, D: i32, r0: i32, r1: i32): void {
  const d8 = D & ~7;
  for (let r = r0; r < r1; r++) {
    const mean = load<f32>(st + (<usize>r << 2));
    const rstd = load<f32>(st + (<usize>(R + r) << 2));
    const m = f32x4.splat(mean), s = f32x4.splat(rstd);
    const xr = at(fmt, x, r * D), yr = at(fmt, y, r * D);
    let j = 0;
    for (; j < d8; j += 8) {
      let lo = f32x4.mul(f32x4.sub(load8lo(fmt, at(fmt, xr, j)), m), s);
      let hi = f32x4.mul(f32x4.sub(load8hi(fmt, at(fmt, xr, j)), m), s);
      if (w != 0) {
        lo = f32x4.mul(lo, load8lo(fmt, at(fmt, w, j)));
        hi = f32x4.mul(hi, load8hi(fmt, at(fmt, w, j)));
      }
      if (b != 0) {
        lo = f32x4.add(lo, load8lo(fmt, at(fmt, b, j)));
        hi = f32x4.add(hi, load8hi(fmt, at(fmt, b, j)));
      }
      store8(fmt, at(fmt, yr, j), lo, hi);
    }
    for (; j < D; j++) {
      let v = (load1(fmt, at(fmt, xr, j)) - mean) * rstd;
      if (w != 0) v *= load1(fmt, at(fmt, w, j));
      if (b != 0) v += load1(fmt, at(fmt, b, j));
      store1(fmt, at(fmt, yr, j), v);
    }
  }
}

/** g * w (w = 0: none) of elements j..j+3 (hi: j+4..j+7) of 8 at row g. */
// @ts-ignore: decorator
@inline function gw4(fmt: i32, g: usize, w: usize, j: i32, hi: bool): v128 {
  let v = hi ? load8hi(fmt, at(fmt, g, j)) : load8lo(fmt, at(fmt, g, j));
  if (w != 0) v = f32x4.mul(v, hi ? load8hi(fmt, at(fmt, w, j)) : load8lo(fmt, at(fmt, w, j)));
  return v;
}

/** (x - mean) * rstd of elements j..j+3 (hi: j+4..j+7) of 8 at row x. */
// @ts-ignore: decorator
@inline function xhat4(fmt: i32, x: usize, j: i32, m: v128, s: v128, hi: bool): v128 {
  return f32x4.mul(f32x4.sub(hi ? load8hi(fmt, at(fmt, x, j)) : load8lo(fmt, at(fmt, x, j)), m), s);
}

// @ts-ignore: decorator
@inline function backwardInput(fmt: i32, g: usize, x: usize, st: usize, w: usize, dx: usize, R: i32, D: i32, r0: i32, r1: i32): void {
  const d8 = D & ~7;
  const invD = <f32>1 / <f32>D;
  for (let r = r0; r < r1; r++) {
    const mean = load<f32>(st + (<usize>r << 2));
    const rstd = load<f32>(st + (<usize>(R + r) << 2));
    const m = f32x4.splat(mean), s = f32x4.splat(rstd);
    const gr = at(fmt, g, r * D), xr = at(fmt, x, r * D), dr = at(fmt, dx, r * D);
    // the row's sums of g w and g w xhat
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), c0 = f32x4.splat(0), c1 = f32x4.splat(0);
    let j = 0;
    for (; j < d8; j += 8) {
      const glo = gw4(fmt, gr, w, j, false), ghi = gw4(fmt, gr, w, j, true);
      const hlo = xhat4(fmt, xr, j, m, s, false), hhi = xhat4(fmt, xr, j, m, s, true);
      a0 = f32x4.add(a0, glo); a1 = f32x4.add(a1, ghi);
      c0 = f32x4.add(c0, f32x4.mul(glo, hlo)); c1 = f32x4.add(c1, f32x4.mul(ghi, hhi));
    }
    let sa = hsum(f32x4.add(a0, a1)), sc = hsum(f32x4.add(c0, c1));
    for (let k = j; k < D; k++) {
      let gw = load1(fmt, at(fmt, gr, k));
      if (w != 0) gw *= load1(fmt, at(fmt, w, k));
      sa += gw;
      sc += gw * (load1(fmt, at(fmt, xr, k)) - mean) * rstd;
    }
    const ma = sa * invD, mc = sc * invD;
    const va = f32x4.splat(ma), vc = f32x4.splat(mc);
    for (j = 0; j < d8; j += 8) {
      const glo = gw4(fmt, gr, w, j, false), ghi = gw4(fmt, gr, w, j, true);
      const hlo = xhat4(fmt, xr, j, m, s, false), hhi = xhat4(fmt, xr, j, m, s, true);
      const lo = f32x4.mul(s, f32x4.sub(f32x4.sub(glo, va), f32x4.mul(hlo, vc)));
      const hi = f32x4.mul(s, f32x4.sub(f32x4.sub(ghi, va), f32x4.mul(hhi, vc)));
      store8(fmt, at(fmt, dr, j), lo, hi);
    }
    for (; j < D; j++) {
      let gw = load1(fmt, at(fmt, gr, j));
      if (w != 0) gw *= load1(fmt, at(fmt, w, j));
      const h = (load1(fmt, at(fmt, xr, j)) - mean) * rstd;
      store1(fmt, at(fmt, dr, j), rstd * (gw - ma - h * mc));
    }
  }
}

// @ts-ignore: decorator
@inline function gradSums(fmt: i32, g: usize, x: usize, st: usize, sums: usize, R: i32, D: i32, c0: i32, c1: i32): void {
  for (let j = c0; j < c1; j++) {
    store<f32>(sums + (<usize>j << 2), 0);
    store<f32>(sums + (<usize>(D + j) << 2), 0);
  }
  // rows outer (contiguous reads), the column range's sums accumulated in place
  for (let r = 0; r < R; r++) {
    const mean = load<f32>(st + (<usize>r << 2));
    const rstd = load<f32>(st + (<usize>(R + r) << 2));
    const gr = at(fmt, g, r * D), xr = at(fmt, x, r * D);
    let j = c0;
    if (((c1 - c0) & 7) == 0) {
      const m = f32x4.splat(mean), s = f32x4.splat(rstd);
      for (; j < c1; j += 8) {
        const glo = load8lo(fmt, at(fmt, gr, j)), ghi = load8hi(fmt, at(fmt, gr, j));
        const hlo = f32x4.mul(f32x4.sub(load8lo(fmt, at(fmt, xr, j)), m), s);
        const hhi = f32x4.mul(f32x4.sub(load8hi(fmt, at(fmt, xr, j)), m), s);
        const pw = sums + (<usize>j << 2), pb = sums + (<usize>(D + j) << 2);
        v128.store(pw, f32x4.add(v128.load(pw), f32x4.mul(glo, hlo)));
        v128.store(pw, f32x4.add(v128.load(pw, 16), f32x4.mul(ghi, hhi)), 16);
        v128.store(pb, f32x4.add(v128.load(pb), glo));
        v128.store(pb, f32x4.add(v128.load(pb, 16), ghi), 16);
      }
    }
    for (; j < c1; j++) {
      const gv = load1(fmt, at(fmt, gr, j));
      const h = (load1(fmt, at(fmt, xr, j)) - mean) * rstd;
      const pw = sums + (<usize>j << 2), pb = sums + (<usize>(D + j) << 2);
      store<f32>(pw, load<f32>(pw) + gv * h);
      store<f32>(pb, load<f32>(pb) + gv);
    }
  }
}

export function layer_norm_stats_f32(x: usize, st: usize, R: i32, D: i32, eps: f32, r0: i32, r1: i32): void { stats(F32, x, st, R, D, eps, r0, r1); }
export function layer_norm_stats_f16(x: usize, st: usize, R: i32, D: i32, eps: f32, r0: i32, r1: i32): void { stats(F16, x, st, R, D, eps, r0, r1); }
export function layer_norm_stats_bf16(x: usize, st: usize, R: i32, D: i32, eps: f32, r0: i32, r1: i32): void { stats(BF16, x, st, R, D, eps, r0, r1); }

export function layer_norm_forward_f32(x: usize, st: usize, w: usize, b: usize, y: usize, R: i32, D: i32, r0: i32, r1: i32): void { forward(F32, x, st, w, b, y, R, D, r0, r1); }
export function layer_norm_forward_f16(x: usize, st: usize, w: usize, b: usize, y: usize, R: i32, D: i32, r0: i32, r1: i32): void { forward(F16, x, st, w, b, y, R, D, r0, r1); }
export function layer_norm_forward_bf16(x: usize, st: usize, w: usize, b: usize, y: usize, R: i32, D: i32, r0: i32, r1: i32): void { forward(BF16, x, st, w, b, y, R, D, r0, r1); }

export function layer_norm_backward_input_f32(g: usize, x: usize, st: usize, w: usize, dx: usize, R: i32, D: i32, r0: i32, r1: i32): void { backwardInput(F32, g, x, st, w, dx, R, D, r0, r1); }
export function layer_norm_backward_input_f16(g: usize, x: usize, st: usize, w: usize, dx: usize, R: i32, D: i32, r0: i32, r1: i32): void { backwardInput(F16, g, x, st, w, dx, R, D, r0, r1); }
export function layer_norm_backward_input_bf16(g: usize, x: usize, st: usize, w: usize, dx: usize, R: i32, D: i32, r0: i32, r1: i32): void { backwardInput(BF16, g, x, st, w, dx, R, D, r0, r1); }

export function layer_norm_grad_sums_f32(g: usize, x: usize, st: usize, sums: usize, R: i32, D: i32, c0: i32, c1: i32): void { gradSums(F32, g, x, st, sums, R, D, c0, c1); }
export function layer_norm_grad_sums_f16(g: usize, x: usize, st: usize, sums: usize, R: i32, D: i32, c0: i32, c1: i32): void { gradSums(F16, g, x, st, sums, R, D, c0, c1); }
export function layer_norm_grad_sums_bf16(g: usize, x: usize, st: usize, sums: usize, R: i32, D: i32, c0: i32, c1: i32): void { gradSums(BF16, g, x, st, sums, R, D, c0, c1); }
