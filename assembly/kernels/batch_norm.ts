// Batch normalisation in training mode (src/nn/batch_norm_ops.ts; the definition is
// src/backend/reference/kernels/batch_norm.ts) for the wasm CPU backend: one pass per kernel
// over an [N, C, S] tensor (S = the spatial size), float32 arithmetic, every 16-bit output
// rounded once. The statistics are float32 [2, C] (mean, biased variance); sums [2, C] are
// sum(g * xhat) and sum(g). Parts split the channels, so results do not depend on the split.
// Each channel is N runs of S contiguous values, read 4 lanes at a time; the lanes are
// summed in a fixed order at the end.

import { loadF, storeF, load4F, store4 } from './gemm';

// @ts-ignore: decorator
@inline function share(rows: i32, part: i32, parts: i32, hi: bool): i32 {
  const p = hi ? part + 1 : part;
  return <i32>(<i64>rows * <i64>p / <i64>max(parts, 1));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** 1 / sqrt(var + eps) in float64, as float32. */
// @ts-ignore: decorator
@inline function invStd(variance: f32, eps: f64): f32 {
  return <f32>(1.0 / Math.sqrt(<f64>variance + eps));
}

/** stats[c] = mean, stats[C + c] = biased variance (two passes: the mean, then the squared deviations). */
export function bn_stats(N: i32, C: i32, S: i32, xDt: i32, x: usize, stats: usize, part: i32, parts: i32): void {
  const es: usize = xDt == 0 ? 4 : 2;
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const M = <f32>(<f64>N * <f64>S);
  const S4 = S & ~3;
  for (let c = c0; c < c1; c++) {
    let acc = f32x4.splat(0);
    let tail: f32 = 0;
    for (let n = 0; n < N; n++) {
      const p = x + (<usize>n * <usize>C + <usize>c) * <usize>S * es;
      for (let i = 0; i < S4; i += 4) acc = f32x4.add(acc, load4F(p + <usize>i * es, xDt));
      for (let i = S4; i < S; i++) tail += loadF(p, i, xDt);
    }
    const mean = (hsum(acc) + tail) / M;
    const mv = f32x4.splat(mean);
    acc = f32x4.splat(0);
    tail = 0;
    for (let n = 0; n < N; n++) {
      const p = x + (<usize>n * <usize>C + <usize>c) * <usize>S * es;
      for (let i = 0; i < S4; i += 4) {
        const d = f32x4.sub(load4F(p + <usize>i * es, xDt), mv);
        acc = f32x4.add(acc, f32x4.mul(d, d));
      }
      for (let i = S4; i < S; i++) {
        const d = loadF(p, i, xDt) - mean;
        tail += d * d;
      }
    }
    store<f32>(stats + <usize>c * 4, mean);
    store<f32>(stats + <usize>(C + c) * 4, (hsum(acc) + tail) / M);
  }
}

/** y = (x - mean) * invstd * w + b, rounded once to yDt (w = 0: weight 1; b = 0: bias 0). */
export function bn_train(N: i32, C: i32, S: i32, xDt: i32, x: usize, stats: usize, w: usize, wDt: i32, b: usize, bDt: i32, eps: f64, yDt: i32, y: usize, part: i32, parts: i32): void {
  const xs: usize = xDt == 0 ? 4 : 2, ys: usize = yDt == 0 ? 4 : 2;
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const S4 = S & ~3;
  for (let c = c0; c < c1; c++) {
    const mean = load<f32>(stats + <usize>c * 4);
    const scale = invStd(load<f32>(stats + <usize>(C + c) * 4), eps) * (w != 0 ? loadF(w, c, wDt) : <f32>1);
    const shift = b != 0 ? loadF(b, c, bDt) : <f32>0;
    const mv = f32x4.splat(mean), sv = f32x4.splat(scale), bv = f32x4.splat(shift);
    for (let n = 0; n < N; n++) {
      const o = (<usize>n * <usize>C + <usize>c) * <usize>S;
      const px = x + o * xs, py = y + o * ys;
      for (let i = 0; i < S4; i += 4) {
        const v = f32x4.add(f32x4.mul(f32x4.sub(load4F(px + <usize>i * xs, xDt), mv), sv), bv);
        store4(py + <usize>i * ys, v, yDt);
      }
      for (let i = S4; i < S; i++) storeF(py, i, yDt, (loadF(px, i, xDt) - mean) * scale + shift);
    }
  }
}

/** out[c] = sum(g * xhat), out[C + c] = sum(g) over channel c (float32). */
export function bn_grad_sums(N: i32, C: i32, S: i32, gDt: i32, g: usize, xDt: i32, x: usize, stats: usize, eps: f64, out: usize, part: i32, parts: i32): void {
  const gs: usize = gDt == 0 ? 4 : 2, xs: usize = xDt == 0 ? 4 : 2;
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const S4 = S & ~3;
  for (let c = c0; c < c1; c++) {
    const mean = load<f32>(stats + <usize>c * 4);
    const mv = f32x4.splat(mean);
    let agx = f32x4.splat(0), ag = f32x4.splat(0);
    let tgx: f32 = 0, tg: f32 = 0;
    for (let n = 0; n < N; n++) {
      const o = (<usize>n * <usize>C + <usize>c) * <usize>S;
      const pg = g + o * gs, px = x + o * xs;
      for (let i = 0; i < S4; i += 4) {
        const gv = load4F(pg + <usize>i * gs, gDt);
        agx = f32x4.add(agx, f32x4.mul(gv, f32x4.sub(load4F(px + <usize>i * xs, xDt), mv)));
        ag = f32x4.add(ag, gv);
      }
      for (let i = S4; i < S; i++) {
        const gv = loadF(pg, i, gDt);
        tgx += gv * (loadF(px, i, xDt) - mean);
        tg += gv;
      }
    }
    const inv = invStd(load<f32>(stats + <usize>(C + c) * 4), eps);
    store<f32>(out + <usize>c * 4, (hsum(agx) + tgx) * inv);
    store<f32>(out + <usize>(C + c) * 4, hsum(ag) + tg);
  }
}

/** dx = w * invstd * (g - sum(g) / M - xhat * sum(g * xhat) / M), rounded once to dxDt (w = 0: weight 1). */
export function bn_backward_input(N: i32, C: i32, S: i32, gDt: i32, g: usize, xDt: i32, x: usize, stats: usize, sums: usize, w: usize, wDt: i32, eps: f64, dxDt: i32, dx: usize, part: i32, parts: i32): void {
  const gs: usize = gDt == 0 ? 4 : 2, xs: usize = xDt == 0 ? 4 : 2, ds: usize = dxDt == 0 ? 4 : 2;
  const c0 = share(C, part, parts, false), c1 = share(C, part, parts, true);
  const M = <f32>(<f64>N * <f64>S);
  const S4 = S & ~3;
  for (let c = c0; c < c1; c++) {
    const mean = load<f32>(stats + <usize>c * 4);
    const inv = invStd(load<f32>(stats + <usize>(C + c) * 4), eps);
    const k = (w != 0 ? loadF(w, c, wDt) : <f32>1) * inv;
    const mg = load<f32>(sums + <usize>(C + c) * 4) / M; // mean of g
    const cx = inv * (load<f32>(sums + <usize>c * 4) / M); // xhat's coefficient, per (x - mean)
    const mv = f32x4.splat(mean), kv = f32x4.splat(k), mgv = f32x4.splat(mg), cxv = f32x4.splat(cx);
    for (let n = 0; n < N; n++) {
      const o = (<usize>n * <usize>C + <usize>c) * <usize>S;
      const pg = g + o * gs, px = x + o * xs, pd = dx + o * ds;
      for (let i = 0; i < S4; i += 4) {
        const d = f32x4.mul(f32x4.sub(load4F(px + <usize>i * xs, xDt), mv), cxv);
        const v = f32x4.mul(kv, f32x4.sub(f32x4.sub(load4F(pg + <usize>i * gs, gDt), mgv), d));
        store4(pd + <usize>i * ds, v, dxDt);
      }
      for (let i = S4; i < S; i++) {
        const v = k * ((loadF(pg, i, gDt) - mg) - (loadF(px, i, xDt) - mean) * cx);
        storeF(pd, i, dxDt, v);
      }
    }
  }
}
