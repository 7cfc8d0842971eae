/**
 * Optimizer kernels: the fused Adam / AdamW update (src/backend/reference/kernels/optim.ts,
 * `adamUpdate`, is the definition; src/backend/wasm/native_optim.ts calls these), and the SGD
 * update, per tensor and multi-tensor (`sgdUpdate`, `sgdUpdateMulti`; native.ts and native_optim.ts).
 *
 *   adam_<wfmt>_<gfmt>(w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags)
 *       n elements from the given addresses (the runtime splits a call into ranges): parameters w
 *       (float32 master weights, or 16-bit), gradients g (float32, float16 or bfloat16, widened in
 *       registers), float32 state m (expAvg), v (expAvgSq) and vmax (maxExpAvgSq, AMSGrad only),
 *       all updated in place in one pass. Scalars as the reference computes them: b1 = f(beta1),
 *       omb1 = f(1 - beta1), b2 = f(beta2), omb2 = f(1 - beta2), eps = f(eps), wd = f(weightDecay),
 *       decay = f(1 - lr weightDecay), stepNeg = f(-lr / biasCorrection1), bc2 = f(sqrt(biasCorrection2)).
 *
 * Every step rounds as the reference does, so the results are bit for bit the reference's: float32
 * operations (correctly rounded, as the reference's float64 operation rounded once to float32), and
 * the two steps the op-by-op optimizer does as one float64 op (addcmul for v, addcdiv for w) in f64x2
 * lanes. No relaxed-SIMD operations, so both builds of the module agree.
 */
import { F32, F16, BF16, shiftOf, load1, store1, load8lo, load8hi, store8 } from './convert16';

/** `flags` bits (src/backend/wasm/native_optim.ts mirrors them). */
const ADAM_MAXIMIZE: i32 = 1;
const ADAM_AMSGRAD: i32 = 2;
const ADAM_DECOUPLED: i32 = 4;
const ADAM_WEIGHT_DECAY: i32 = 8;

/** Lanes 0, 1 / 2, 3 of an f32x4 as an f64x2 (exact). */
// @ts-ignore: decorator
@inline function low64(x: v128): v128 {
  return f64x2.promote_low_f32x4(x);
}

// @ts-ignore: decorator
@inline function high64(x: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1));
}

/** Two f64x2 rounded to float32 lanes 0, 1 and 2, 3 of one f32x4. */
// @ts-ignore: decorator
@inline function join32(lo: v128, hi: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** f(x + c y y) with x, y f32x4 and c a float32 in f64x2 (addcmul: the float64 result rounded once). */
// @ts-ignore: decorator
@inline function addcmulV(x: v128, y: v128, c: v128): v128 {
  const ylo = low64(y);
  const yhi = high64(y);
  const lo = f64x2.add(low64(x), f64x2.mul(f64x2.mul(c, ylo), ylo));
  const hi = f64x2.add(high64(x), f64x2.mul(f64x2.mul(c, yhi), yhi));
  return join32(lo, hi);
}

/** f(x + (c y) / z) (addcdiv: float64, rounded once). */
// @ts-ignore: decorator
@inline function addcdivV(x: v128, y: v128, z: v128, c: v128): v128 {
  const lo = f64x2.add(low64(x), f64x2.div(f64x2.mul(c, low64(y)), low64(z)));
  const hi = f64x2.add(high64(x), f64x2.div(f64x2.mul(c, high64(y)), high64(z)));
  return join32(lo, hi);
}

/** One 4-lane group of the update; returns the new parameters (float32, rounded on store by the caller). */
// @ts-ignore: decorator
@inline function adam4(
  w: v128, g: v128, pm: usize, pv: usize, pvmax: usize, flags: i32,
  b1: v128, omb1: v128, b2: v128, omb2d: v128, eps: v128, wd: v128, decay: v128, stepNegD: v128, bc2: v128,
): v128 {
  if ((flags & ADAM_MAXIMIZE) != 0) g = f32x4.neg(g);
  if ((flags & ADAM_WEIGHT_DECAY) != 0) {
    if ((flags & ADAM_DECOUPLED) != 0) w = f32x4.mul(w, decay);
    else g = f32x4.add(g, f32x4.mul(w, wd));
  }
  const m = f32x4.add(f32x4.mul(v128.load(pm), b1), f32x4.mul(g, omb1));
  const v = addcmulV(f32x4.mul(v128.load(pv), b2), g, omb2d);
  v128.store(pm, m);
  v128.store(pv, v);
  let s = v;
  if ((flags & ADAM_AMSGRAD) != 0) {
    s = f32x4.max(v128.load(pvmax), v); // NaN propagates, max(-0, +0) = +0: as Math.max
    v128.store(pvmax, s);
  }
  const denom = f32x4.add(f32x4.div(f32x4.sqrt(s), bc2), eps);
  return addcdivV(w, m, denom, stepNegD);
}

// @ts-ignore: decorator
@inline function adam(
  wfmt: i32, gfmt: i32, w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32,
  b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32,
): void {
  const sw = shiftOf(wfmt);
  const sg = shiftOf(gfmt);
  const amsgrad = (flags & ADAM_AMSGRAD) != 0;
  const vb1 = f32x4.splat(b1);
  const vomb1 = f32x4.splat(omb1);
  const vb2 = f32x4.splat(b2);
  const vomb2 = f64x2.splat(<f64>omb2);
  const veps = f32x4.splat(eps);
  const vwd = f32x4.splat(wd);
  const vdecay = f32x4.splat(decay);
  const vstep = f64x2.splat(<f64>stepNeg);
  const vbc2 = f32x4.splat(bc2);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const pw = w + (<usize>i << sw);
    const pg = g + (<usize>i << sg);
    const off = <usize>i << 2;
    const pvmax = amsgrad ? vmax + off : 0;
    const w0 = adam4(load8lo(wfmt, pw), load8lo(gfmt, pg), m + off, v + off, pvmax, flags, vb1, vomb1, vb2, vomb2, veps, vwd, vdecay, vstep, vbc2);
    const w1 = adam4(load8hi(wfmt, pw), load8hi(gfmt, pg), m + off + 16, v + off + 16, amsgrad ? pvmax + 16 : 0, flags, vb1, vomb1, vb2, vomb2, veps, vwd, vdecay, vstep, vbc2);
    store8(wfmt, pw, w0, w1);
  }
  const maximize = (flags & ADAM_MAXIMIZE) != 0;
  const hasDecay = (flags & ADAM_WEIGHT_DECAY) != 0;
  const decoupled = (flags & ADAM_DECOUPLED) != 0;
  for (; i < n; i++) {
    const pw = w + (<usize>i << sw);
    const off = <usize>i << 2;
    let wv = load1(wfmt, pw);
    let gv = load1(gfmt, g + (<usize>i << sg));
    if (maximize) gv = -gv;
    if (hasDecay) {
      if (decoupled) wv = wv * decay;
      else gv = gv + wv * wd;
    }
    const mv = load<f32>(m + off) * b1 + gv * omb1;
    const gd = <f64>gv;
    const vv = <f32>(<f64>(load<f32>(v + off) * b2) + <f64>omb2 * gd * gd);
    store<f32>(m + off, mv);
    store<f32>(v + off, vv);
    let s = vv;
    if (amsgrad) {
      s = max<f32>(load<f32>(vmax + off), vv);
      store<f32>(vmax + off, s);
    }
    const denom = sqrt<f32>(s) / bc2 + eps;
    store1(wfmt, pw, <f32>(<f64>wv + (<f64>stepNeg * <f64>mv) / <f64>denom));
  }
}

export function adam_f32_f32(w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adam(F32, F32, w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_f32_f16(w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adam(F32, F16, w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_f32_bf16(w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adam(F32, BF16, w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_f16_f16(w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adam(F16, F16, w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_bf16_bf16(w: usize, g: usize, m: usize, v: usize, vmax: usize, n: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adam(BF16, BF16, w, g, m, v, vmax, n, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}

/**
 * adam_multi_<wfmt>_<gfmt>(table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags)
 *     the multi-tensor update (PyTorch's foreach): `table` holds `count` records of six i32 words
 *     (w, g, m, v, vmax, n) as adam_<wfmt>_<gfmt> takes them; their elements, record after record,
 *     form one range, of which this call updates [u0, u1) (the runtime splits the whole range into
 *     one such part per thread). Every element is updated exactly as adam_<wfmt>_<gfmt> updates it.
 */
// @ts-ignore: decorator
@inline function adamMulti(
  wfmt: i32, gfmt: i32, table: usize, count: i32, u0: i32, u1: i32,
  b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32,
): void {
  const sw = shiftOf(wfmt);
  const sg = shiftOf(gfmt);
  let base = 0;
  for (let t = 0; t < count && base < u1; t++) {
    const r = table + <usize>t * 24;
    const n = load<i32>(r, 20);
    const lo = max(u0, base), hi = min(u1, base + n);
    if (lo < hi) {
      const o = <usize>(lo - base);
      const vmax = load<u32>(r, 16);
      adam(wfmt, gfmt, load<u32>(r) + (o << sw), load<u32>(r, 4) + (o << sg), load<u32>(r, 8) + (o << 2), load<u32>(r, 12) + (o << 2),
        vmax != 0 ? vmax + (o << 2) : 0, hi - lo, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
    }
    base += n;
  }
}

export function adam_multi_f32_f32(table: usize, count: i32, u0: i32, u1: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adamMulti(F32, F32, table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_multi_f32_f16(table: usize, count: i32, u0: i32, u1: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adamMulti(F32, F16, table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_multi_f32_bf16(table: usize, count: i32, u0: i32, u1: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adamMulti(F32, BF16, table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_multi_f16_f16(table: usize, count: i32, u0: i32, u1: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adamMulti(F16, F16, table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}
export function adam_multi_bf16_bf16(table: usize, count: i32, u0: i32, u1: i32, b1: f32, omb1: f32, b2: f32, omb2: f32, eps: f32, wd: f32, decay: f32, stepNeg: f32, bc2: f32, flags: i32): void {
  adamMulti(BF16, BF16, table, count, u0, u1, b1, omb1, b2, omb2, eps, wd, decay, stepNeg, bc2, flags);
}

/* ------------------------------------------------------------------ SGD */

/** `flags` bits of the sgd kernels (src/backend/wasm/native.ts and native_optim.ts mirror them). */
const SGD_MOMENTUM: i32 = 1;
const SGD_FIRST: i32 = 2;
const SGD_NESTEROV: i32 = 4;
const SGD_MAXIMIZE: i32 = 8;
const SGD_WEIGHT_DECAY: i32 = 16;

/**
 * PyTorch's SGD step for n parameters in one pass, every step rounded to float32 exactly as the
 * op-by-op optimizer does (so the result is bit for bit the same):
 *   d = g (widened); d = -d if maximize; d = d + wd w if weight decay;
 *   with momentum: buf = first ? d : momentum buf + damp1 d (damp1 = 1 - dampening);
 *                  d = nesterov ? d + momentum buf : buf;
 *   w = w - lr d, rounded into w's format.
 * w: parameters (float32 master weights, or 16-bit), g: gradients (any of the three formats),
 * buf: float32 momentum buffer (unused without momentum).
 */
// @ts-ignore: decorator
@inline function sgd(wfmt: i32, gfmt: i32, w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  const sw = shiftOf(wfmt);
  const sg = shiftOf(gfmt);
  const hasMomentum = (flags & SGD_MOMENTUM) != 0;
  const first = (flags & SGD_FIRST) != 0;
  const nesterov = (flags & SGD_NESTEROV) != 0;
  const maximize = (flags & SGD_MAXIMIZE) != 0;
  const decay = (flags & SGD_WEIGHT_DECAY) != 0;
  const vlr = f32x4.splat(lr);
  const vmom = f32x4.splat(momentum);
  const vdamp = f32x4.splat(damp1);
  const vwd = f32x4.splat(wd);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const pw = w + (<usize>i << sw);
    const pg = g + (<usize>i << sg);
    const pb = buf + (<usize>i << 2);
    let w0 = load8lo(wfmt, pw);
    let w1 = load8hi(wfmt, pw);
    let d0 = load8lo(gfmt, pg);
    let d1 = load8hi(gfmt, pg);
    if (maximize) {
      d0 = f32x4.neg(d0);
      d1 = f32x4.neg(d1);
    }
    if (decay) {
      d0 = f32x4.add(d0, f32x4.mul(w0, vwd));
      d1 = f32x4.add(d1, f32x4.mul(w1, vwd));
    }
    if (hasMomentum) {
      let b0 = d0;
      let b1 = d1;
      if (!first) {
        b0 = f32x4.add(f32x4.mul(v128.load(pb), vmom), f32x4.mul(d0, vdamp));
        b1 = f32x4.add(f32x4.mul(v128.load(pb, 16), vmom), f32x4.mul(d1, vdamp));
      }
      v128.store(pb, b0);
      v128.store(pb, b1, 16);
      if (nesterov) {
        d0 = f32x4.add(d0, f32x4.mul(b0, vmom));
        d1 = f32x4.add(d1, f32x4.mul(b1, vmom));
      } else {
        d0 = b0;
        d1 = b1;
      }
    }
    w0 = f32x4.sub(w0, f32x4.mul(d0, vlr));
    w1 = f32x4.sub(w1, f32x4.mul(d1, vlr));
    store8(wfmt, pw, w0, w1);
  }
  for (; i < n; i++) {
    const pw = w + (<usize>i << sw);
    const pb = buf + (<usize>i << 2);
    let wv = load1(wfmt, pw);
    let d = load1(gfmt, g + (<usize>i << sg));
    if (maximize) d = -d;
    if (decay) d = d + wv * wd;
    if (hasMomentum) {
      const b = first ? d : load<f32>(pb) * momentum + d * damp1;
      store<f32>(pb, b);
      d = nesterov ? d + b * momentum : b;
    }
    store1(wfmt, pw, wv - d * lr);
  }
}

export function sgd_f32_f32(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(F32, F32, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_f32_f16(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(F32, F16, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_f32_bf16(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(F32, BF16, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_f16_f16(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(F16, F16, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_f16_f32(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(F16, F32, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_bf16_bf16(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(BF16, BF16, w, g, buf, n, lr, momentum, damp1, wd, flags);
}
export function sgd_bf16_f32(w: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, damp1: f32, wd: f32, flags: i32): void {
  sgd(BF16, F32, w, g, buf, n, lr, momentum, damp1, wd, flags);
}


/**
 * sgd_multi_<wfmt>_<gfmt>(table, count, u0, u1, lr, momentum, damp1, wd)
 *     the multi-tensor update (PyTorch's foreach SGD): `table` holds `count` records of five i32
 *     words (w, g, buf, n, flags) as sgd_<wfmt>_<gfmt> takes them (flags per tensor: its first step
 *     may come from its own isFirst flag); their elements, record after record, form one range, of
 *     which this call updates [u0, u1) (the runtime splits the whole range into one part per thread).
 *     Every element is updated exactly as sgd_<wfmt>_<gfmt> updates it: the update is elementwise and
 *     the vector body and scalar tail round alike (float32 operations, one rounding into the
 *     parameter's format), so the bits do not depend on where a part starts or ends.
 */
// @ts-ignore: decorator
@inline function sgdMulti(wfmt: i32, gfmt: i32, table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  const sw = shiftOf(wfmt);
  const sg = shiftOf(gfmt);
  let base = 0;
  for (let t = 0; t < count && base < u1; t++) {
    const r = table + <usize>t * 20;
    const n = load<i32>(r, 12);
    const lo = max(u0, base), hi = min(u1, base + n);
    if (lo < hi) {
      const o = <usize>(lo - base);
      const buf = load<u32>(r, 8);
      sgd(wfmt, gfmt, load<u32>(r) + (o << sw), load<u32>(r, 4) + (o << sg), buf != 0 ? buf + (o << 2) : 0, hi - lo, lr, momentum, damp1, wd, load<i32>(r, 16));
    }
    base += n;
  }
}

export function sgd_multi_f32_f32(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(F32, F32, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_f32_f16(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(F32, F16, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_f32_bf16(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(F32, BF16, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_f16_f16(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(F16, F16, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_f16_f32(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(F16, F32, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_bf16_bf16(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(BF16, BF16, table, count, u0, u1, lr, momentum, damp1, wd);
}
export function sgd_multi_bf16_f32(table: usize, count: i32, u0: i32, u1: i32, lr: f32, momentum: f32, damp1: f32, wd: f32): void {
  sgdMulti(BF16, F32, table, count, u0, u1, lr, momentum, damp1, wd);
}

/**
 * amp_unscale_<fmt>(g, n, inv) -> 1 if any of the n incoming elements is inf or NaN, else 0; in
 * place g = g * inv (one float32 product, rounded once into the format): one gradient of the
 * multi-tensor `ampUnscale` (PyTorch's _amp_foreach_non_finite_check_and_unscale_), whose
 * native handler (src/backend/wasm/native_optim.ts) walks the list. The reference computes
 * f(x * inv) in float64: the correctly rounded float32 product, as here.
 */
// @ts-ignore: decorator
@inline function ampUnscale(fmt: i32, g: usize, n: i32, inv: f32): i32 {
  const iv = f32x4.splat(inv);
  const zero = f32x4.splat(0);
  let badv = zero;
  let i = 0;
  if (fmt == F32) {
    for (; i + 4 <= n; i += 4) {
      const p = g + (<usize>i << 2);
      const x = v128.load(p);
      badv = v128.or(badv, f32x4.ne(f32x4.sub(x, x), zero)); // x - x: NaN exactly for inf / NaN
      v128.store(p, f32x4.mul(x, iv));
    }
  } else {
    for (; i + 8 <= n; i += 8) {
      const p = g + (<usize>i << 1);
      const lo = load8lo(fmt, p);
      const hi = load8hi(fmt, p);
      badv = v128.or(badv, v128.or(f32x4.ne(f32x4.sub(lo, lo), zero), f32x4.ne(f32x4.sub(hi, hi), zero)));
      store8(fmt, p, f32x4.mul(lo, iv), f32x4.mul(hi, iv));
    }
  }
  let bad: i32 = v128.any_true(badv) ? 1 : 0;
  const s = shiftOf(fmt);
  for (; i < n; i++) {
    const p = g + (<usize>i << s);
    const x = load1(fmt, p);
    if (!isFinite(x)) bad = 1;
    store1(fmt, p, x * inv);
  }
  return bad;
}

export function amp_unscale_f32(g: usize, n: i32, inv: f32): i32 {
  return ampUnscale(F32, g, n, inv);
}
export function amp_unscale_f16(g: usize, n: i32, inv: f32): i32 {
  return ampUnscale(F16, g, n, inv);
}
export function amp_unscale_bf16(g: usize, n: i32, inv: f32): i32 {
  return ampUnscale(BF16, g, n, inv);
}

/**
 * sum_squares_<fmt>(x, n) -> the sum of x[i]^2 over n elements in float64: one input of the
 * multi-tensor `sumSquares` (gradient clipping's norm; src/backend/wasm/native_optim.ts walks the
 * list). Squares are summed in float32 lanes over blocks of 256 elements, the block sums in float64.
 */
// @ts-ignore: decorator
@inline function sumSquares(fmt: i32, x: usize, n: i32): f64 {
  let total: f64 = 0;
  let i = 0;
  const s = shiftOf(fmt);
  while (i + 8 <= n) {
    const end = min(n & ~7, i + 256);
    let a = f32x4.splat(0), b = f32x4.splat(0);
    for (; i < end; i += 8) {
      const p = x + (<usize>i << s);
      const lo = load8lo(fmt, p), hi = load8hi(fmt, p);
      a = f32x4.add(a, f32x4.mul(lo, lo));
      b = f32x4.add(b, f32x4.mul(hi, hi));
    }
    const c = f32x4.add(a, b);
    total += <f64>f32x4.extract_lane(c, 0) + <f64>f32x4.extract_lane(c, 1) + <f64>f32x4.extract_lane(c, 2) + <f64>f32x4.extract_lane(c, 3);
  }
  for (; i < n; i++) {
    const v = <f64>load1(fmt, x + (<usize>i << s));
    total += v * v;
  }
  return total;
}

export function sum_squares_f32(x: usize, n: i32): f64 {
  return sumSquares(F32, x, n);
}
export function sum_squares_f16(x: usize, n: i32): f64 {
  return sumSquares(F16, x, n);
}
export function sum_squares_bf16(x: usize, n: i32): f64 {
  return sumSquares(BF16, x, n);
}
