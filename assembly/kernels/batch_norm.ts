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
  let c = S == 1 ? stats1(N, C, xDt, x, stats, c0, c1) : c0;
  for (; c < c1; c++) {
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
  let c = S == 1 ? train1(N, C, xDt, x, stats, w, wDt, b, bDt, eps, yDt, y, c0, c1) : c0;
  for (; c < c1; c++) {
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
  let c = S == 1 ? gradSums1(N, C, gDt, g, xDt, x, stats, eps, out, c0, c1) : c0;
  for (; c < c1; c++) {
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
  let c = S == 1 ? backwardInput1(N, C, gDt, g, xDt, x, stats, sums, w, wDt, eps, dxDt, dx, c0, c1) : c0;
  for (; c < c1; c++) {
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

// ---- single spatial position (S = 1: BatchNorm1d's [N, C], a ResNet's 1x1 maps) ----
// A channel is then N values C apart: the per-channel loops above would run their scalar tail
// one value at a time. Instead four adjacent channels go in the four lanes of a vector, each lane
// doing exactly the scalar tail's operations in its order (the sums start at +0, as the scalar
// path's hsum(0) + tail does), so the results are the per-channel path's bit for bit.

/** Lanes c .. c+3 of invStd(var) * (w ? w[c] : 1) (f64 then f32, as the scalar path). */
// @ts-ignore: decorator
@inline function scale4(stats: usize, C: i32, c: i32, eps: f64, w: usize, wDt: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, invStd(load<f32>(stats + <usize>(C + c) * 4), eps) * (w != 0 ? loadF(w, c, wDt) : <f32>1));
  v = f32x4.replace_lane(v, 1, invStd(load<f32>(stats + <usize>(C + c + 1) * 4), eps) * (w != 0 ? loadF(w, c + 1, wDt) : <f32>1));
  v = f32x4.replace_lane(v, 2, invStd(load<f32>(stats + <usize>(C + c + 2) * 4), eps) * (w != 0 ? loadF(w, c + 2, wDt) : <f32>1));
  v = f32x4.replace_lane(v, 3, invStd(load<f32>(stats + <usize>(C + c + 3) * 4), eps) * (w != 0 ? loadF(w, c + 3, wDt) : <f32>1));
  return v;
}

/** Lanes c .. c+3 of an optional [C] vector of dtype dt (0 when absent). */
// @ts-ignore: decorator
@inline function load4Opt(b: usize, c: i32, dt: i32): v128 {
  if (b == 0) return f32x4.splat(0);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, loadF(b, c, dt));
  v = f32x4.replace_lane(v, 1, loadF(b, c + 1, dt));
  v = f32x4.replace_lane(v, 2, loadF(b, c + 2, dt));
  v = f32x4.replace_lane(v, 3, loadF(b, c + 3, dt));
  return v;
}

/** bn_stats for S = 1, channels c0 .. (the returned channel, where the per-channel loop goes on). */
function stats1(N: i32, C: i32, xDt: i32, x: usize, stats: usize, c0: i32, c1: i32): i32 {
  const es: usize = xDt == 0 ? 4 : 2;
  const step = <usize>C * es;
  const Mv = f32x4.splat(<f32>N);
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    let acc = f32x4.splat(0);
    let p = x + <usize>c * es;
    for (let n = 0; n < N; n++, p += step) acc = f32x4.add(acc, load4F(p, xDt));
    const mean = f32x4.div(f32x4.add(f32x4.splat(0), acc), Mv);
    acc = f32x4.splat(0);
    p = x + <usize>c * es;
    for (let n = 0; n < N; n++, p += step) {
      const d = f32x4.sub(load4F(p, xDt), mean);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    v128.store(stats + <usize>c * 4, mean);
    v128.store(stats + <usize>(C + c) * 4, f32x4.div(f32x4.add(f32x4.splat(0), acc), Mv));
  }
  return c;
}

/** bn_train for S = 1 (see stats1). */
function train1(N: i32, C: i32, xDt: i32, x: usize, stats: usize, w: usize, wDt: i32, b: usize, bDt: i32, eps: f64, yDt: i32, y: usize, c0: i32, c1: i32): i32 {
  const xs: usize = xDt == 0 ? 4 : 2, ys: usize = yDt == 0 ? 4 : 2;
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    const mv = v128.load(stats + <usize>c * 4);
    const sv = scale4(stats, C, c, eps, w, wDt);
    const bv = load4Opt(b, c, bDt);
    for (let n = 0; n < N; n++) {
      const o = <usize>n * <usize>C + <usize>c;
      store4(y + o * ys, f32x4.add(f32x4.mul(f32x4.sub(load4F(x + o * xs, xDt), mv), sv), bv), yDt);
    }
  }
  return c;
}

/** bn_grad_sums for S = 1 (see stats1). */
function gradSums1(N: i32, C: i32, gDt: i32, g: usize, xDt: i32, x: usize, stats: usize, eps: f64, out: usize, c0: i32, c1: i32): i32 {
  const gs: usize = gDt == 0 ? 4 : 2, xs: usize = xDt == 0 ? 4 : 2;
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    const mv = v128.load(stats + <usize>c * 4);
    let agx = f32x4.splat(0), ag = f32x4.splat(0);
    for (let n = 0; n < N; n++) {
      const o = <usize>n * <usize>C + <usize>c;
      const gv = load4F(g + o * gs, gDt);
      agx = f32x4.add(agx, f32x4.mul(gv, f32x4.sub(load4F(x + o * xs, xDt), mv)));
      ag = f32x4.add(ag, gv);
    }
    const inv = scale4(stats, C, c, eps, 0, 0);
    v128.store(out + <usize>c * 4, f32x4.mul(f32x4.add(f32x4.splat(0), agx), inv));
    v128.store(out + <usize>(C + c) * 4, f32x4.add(f32x4.splat(0), ag));
  }
  return c;
}

/** bn_backward_input for S = 1 (see stats1). */
function backwardInput1(N: i32, C: i32, gDt: i32, g: usize, xDt: i32, x: usize, stats: usize, sums: usize, w: usize, wDt: i32, eps: f64, dxDt: i32, dx: usize, c0: i32, c1: i32): i32 {
  const gs: usize = gDt == 0 ? 4 : 2, xs: usize = xDt == 0 ? 4 : 2, ds: usize = dxDt == 0 ? 4 : 2;
  const Mv = f32x4.splat(<f32>N);
  let c = c0;
  for (; c + 4 <= c1; c += 4) {
    const mv = v128.load(stats + <usize>c * 4);
    const inv = scale4(stats, C, c, eps, 0, 0);
    const kv = w != 0 ? f32x4.mul(load4Opt(w, c, wDt), inv) : inv; // (1 * inv = inv)
    const mgv = f32x4.div(v128.load(sums + <usize>(C + c) * 4), Mv);
    const cxv = f32x4.mul(inv, f32x4.div(v128.load(sums + <usize>c * 4), Mv));
    for (let n = 0; n < N; n++) {
      const o = <usize>n * <usize>C + <usize>c;
      const d = f32x4.mul(f32x4.sub(load4F(x + o * xs, xDt), mv), cxv);
      store4(dx + o * ds, f32x4.mul(kv, f32x4.sub(f32x4.sub(load4F(g + o * gs, gDt), mgv), d)), dxDt);
    }
  }
  return c;
}
