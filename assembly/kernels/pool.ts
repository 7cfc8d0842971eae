// Max-pooling (NCHW) and fused bias + ReLU kernels for the wasm CPU backend.
//
// Semantics are the reference backend's (src/backend/reference/kernels/pool.ts):
// windows padded with -Inf (padded taps are skipped), the gradient goes to the
// FIRST maximum in scan order (kh, kw), and a window holding NaN outputs NaN
// and routes its gradient to its FIRST NaN. 16-bit tensors are widened to f32
// and every output rounded once.
//
// Pool geometry: descriptor of 16 i32 at `desc`:
//   N, C, H, W, KH, KW, strideH, strideW, padH, padW  (rest unused)
// Output size OH = floor((H + 2 padH - KH) / strideH) + 1 (no ceil_mode, no dilation).
//
// Fast paths (2x2 windows, stride 2, no padding; x, y / dy, dx of one format,
// no accumulation): SIMD over 4 (float32) or 8 (float16 / bfloat16) windows
// per step. The 16-bit paths never widen: a float16 / bfloat16 bit pattern is
// mapped to an int16 that orders like its value (the maximum is an integer
// maximum) and the gradient is routed as raw bits (it is not rounded: dy and
// dx have one format). A block holding NaN goes through the scalar rule.
// Row tails are covered by one more step that overlaps the previous one (it
// writes the same values again), so LeNet's 14- and 5-wide outputs stay SIMD.

import { F32, F16, BF16, shiftOf, load1, store1, load8lo, load8hi, store8, kv, K_SIGN16X8, K_ABS16X8, K_INF16X8, K_INFBF16X8 } from "./convert16";

/** flags bit: add to the output instead of overwriting it (GEMM_ACCUMULATE). */
const ACCUMULATE: i32 = 4;

// @ts-ignore: decorator
@inline function splitLo(units: i32, part: i32, parts: i32): i32 {
  return <i32>(<i64>units * part / parts);
}

/* ------------------------------------------------------------------ 16-bit order keys */

/**
 * int16 lanes that order like the float16 / bfloat16 values (sign-magnitude to two's
 * complement, -0 just below +0): the map is its own inverse.
 */
// @ts-ignore: decorator
@inline function orderKey(v: v128): v128 {
  return v128.xor(v, v128.and(i16x8.shr_s(v, 15), kv(K_ABS16X8)));
}

/** int16 lanes ordering like the values with -0 == +0 (for the arg-max: equal values tie). */
// @ts-ignore: decorator
@inline function valueKey(v: v128): v128 {
  const s = i16x8.shr_s(v, 15);
  return i16x8.sub(v128.xor(v128.and(v, kv(K_ABS16X8)), s), s);
}

/** Lanes that hold a NaN pattern (magnitude above the format's Inf `inf`). */
// @ts-ignore: decorator
@inline function nan16(v: v128, inf: i32): v128 {
  return i16x8.gt_s(v128.and(v, kv(K_ABS16X8)), kv(inf == 0x7c00 ? K_INF16X8 : K_INFBF16X8));
}

// @ts-ignore: decorator
@inline function evens16(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
}

// @ts-ignore: decorator
@inline function odds16(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
}

// @ts-ignore: decorator
@inline function zipLo16(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}

// @ts-ignore: decorator
@inline function zipHi16(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

/* ------------------------------------------------------------------ scalar windows */

/** The reference's pick: a later value wins when larger, or when NaN over a non-NaN. */
// @ts-ignore: decorator
@inline function beats(v: f32, m: f32): bool {
  return v > m || (v != v && m == m);
}

/** One 2x2 window (columns at r0, r1 in `fmt`): its maximum. */
// @ts-ignore: decorator
@inline function window2x2(fmt: i32, r0: usize, r1: usize): f32 {
  const es = <usize>1 << shiftOf(fmt);
  let m = load1(fmt, r0);
  let v = load1(fmt, r0 + es);
  if (beats(v, m)) m = v;
  v = load1(fmt, r1);
  if (beats(v, m)) m = v;
  v = load1(fmt, r1 + es);
  if (beats(v, m)) m = v;
  return m;
}

/** One 2x2 window's gradient: g to the arg-max tap, 0 to the others (dx in the format of x and g). */
// @ts-ignore: decorator
@inline function windowGrad2x2(fmt: i32, r0: usize, r1: usize, g: usize, d0: usize, d1: usize): void {
  const es = <usize>1 << shiftOf(fmt);
  let m = load1(fmt, r0);
  let best = 0;
  let v = load1(fmt, r0 + es);
  if (beats(v, m)) { m = v; best = 1; }
  v = load1(fmt, r1);
  if (beats(v, m)) { m = v; best = 2; }
  v = load1(fmt, r1 + es);
  if (beats(v, m)) best = 3;
  const gv = load1(fmt, g) + 0; // -0 + 0 = +0: the reference adds the gradient to zeros
  store1(fmt, d0, best == 0 ? gv : 0);
  store1(fmt, d0 + es, best == 1 ? gv : 0);
  store1(fmt, d1, best == 2 ? gv : 0);
  store1(fmt, d1 + es, best == 3 ? gv : 0);
}

/* ------------------------------------------------------------------ 2x2 forward */

/** 4 float32 windows: inputs at r0, r1 (8 columns each), outputs at o. */
// @ts-ignore: decorator
@inline function fwd4F32(r0: usize, r1: usize, o: usize): void {
  const a0 = v128.load(r0), a1 = v128.load(r0, 16);
  const b0 = v128.load(r1), b1 = v128.load(r1, 16);
  const nan = v128.or(v128.or(f32x4.ne(a0, a0), f32x4.ne(a1, a1)), v128.or(f32x4.ne(b0, b0), f32x4.ne(b1, b1)));
  if (v128.any_true(nan)) {
    for (let k: usize = 0; k < 4; k++) store<f32>(o + (k << 2), window2x2(F32, r0 + (k << 3), r1 + (k << 3)));
    return;
  }
  // pmax(m, v) = m < v ? v : m: the reference's scan (the first of equal values, -0 / +0 included)
  let m = f32x4.pmax(v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), v128.shuffle<f32>(a0, a1, 1, 3, 5, 7));
  m = f32x4.pmax(m, v128.shuffle<f32>(b0, b1, 0, 2, 4, 6));
  m = f32x4.pmax(m, v128.shuffle<f32>(b0, b1, 1, 3, 5, 7));
  v128.store(o, m);
}

/**
 * 8 (`wide`) or 4 16-bit windows: inputs at r0, r1 (16 or 8 columns each), outputs at o.
 * An integer maximum of order keys (a window of -0 and +0 gives +0: equal values).
 */
// @ts-ignore: decorator
@inline function fwd16(fmt: i32, inf: i32, wide: bool, r0: usize, r1: usize, o: usize): void {
  const a0 = v128.load(r0), b0 = v128.load(r1);
  const a1 = wide ? v128.load(r0, 16) : i16x8.splat(0);
  const b1 = wide ? v128.load(r1, 16) : i16x8.splat(0);
  const nan = v128.or(v128.or(nan16(a0, inf), nan16(a1, inf)), v128.or(nan16(b0, inf), nan16(b1, inf)));
  if (v128.any_true(nan)) {
    const n: usize = wide ? 8 : 4;
    for (let k: usize = 0; k < n; k++) store1(fmt, o + (k << 1), window2x2(fmt, r0 + (k << 2), r1 + (k << 2)));
    return;
  }
  const lo = i16x8.max_s(orderKey(a0), orderKey(b0));
  const hi = i16x8.max_s(orderKey(a1), orderKey(b1));
  const m = orderKey(i16x8.max_s(evens16(lo, hi), odds16(lo, hi)));
  if (wide) v128.store(o, m);
  else v128.store64_lane(o, m, 0);
}

/** Planes p0..p1 of 2x2 / stride-2 max-pooling, x and y of one format. */
// @ts-ignore: decorator
@inline function forward2x2(fmt: i32, inf: i32, x: usize, y: usize, p0: i32, p1: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sh = shiftOf(fmt);
  for (let pl = p0; pl < p1; pl++) {
    const xp = x + ((<usize>pl * <usize>(H * W)) << sh);
    const yp = y + ((<usize>pl * <usize>(OH * OW)) << sh);
    for (let oh = 0; oh < OH; oh++) {
      const r0 = xp + (<usize>(2 * oh * W) << sh), r1 = r0 + (<usize>W << sh);
      const yo = yp + (<usize>(oh * OW) << sh);
      if (fmt == F32) {
        if (OW >= 4) {
          for (let ow = 0; ; ow += 4) {
            if (ow + 4 > OW) ow = OW - 4; // the tail: one overlapping step
            fwd4F32(r0 + (<usize>(2 * ow) << 2), r1 + (<usize>(2 * ow) << 2), yo + (<usize>ow << 2));
            if (ow + 4 >= OW) break;
          }
          continue;
        }
      } else if (OW >= 8) {
        for (let ow = 0; ; ow += 8) {
          if (ow + 8 > OW) ow = OW - 8;
          fwd16(fmt, inf, true, r0 + (<usize>(2 * ow) << 1), r1 + (<usize>(2 * ow) << 1), yo + (<usize>ow << 1));
          if (ow + 8 >= OW) break;
        }
        continue;
      } else if (OW >= 4) {
        for (let ow = 0; ; ow += 4) {
          if (ow + 4 > OW) ow = OW - 4;
          fwd16(fmt, inf, false, r0 + (<usize>(2 * ow) << 1), r1 + (<usize>(2 * ow) << 1), yo + (<usize>ow << 1));
          if (ow + 4 >= OW) break;
        }
        continue;
      }
      for (let ow = 0; ow < OW; ow++) {
        store1(fmt, yo + (<usize>ow << sh), window2x2(fmt, r0 + (<usize>(2 * ow) << sh), r1 + (<usize>(2 * ow) << sh)));
      }
    }
  }
}

/** Scratch bytes per part for maxpool2d_backward (a float64 plane, used only by the general path). */
export function maxpool2d_scratch_bytes(desc: usize): i32 {
  const H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  return (H * W * 8 + 63) & ~63;
}

/**
 * y[n][c][oh][ow] = max over the window of x. dtypes: xDt | yDt << 8.
 * Threads split the N*C planes.
 */
export function maxpool2d_forward(desc: usize, dtypes: i32, x: usize, y: usize, part: i32, parts: i32): void {
  const N = load<i32>(desc, 0), C = load<i32>(desc, 4), H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  const KH = load<i32>(desc, 16), KW = load<i32>(desc, 20);
  const SH = max(1, load<i32>(desc, 24)), SW = max(1, load<i32>(desc, 28));
  const PH = load<i32>(desc, 32), PW = load<i32>(desc, 36);
  if (H + 2 * PH < KH || W + 2 * PW < KW) return;
  const OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
  if (OH <= 0 || OW <= 0) return;
  const xDt = dtypes & 15, yDt = (dtypes >> 8) & 15;
  const planes = N * C;
  const p0 = splitLo(planes, part, parts), p1 = splitLo(planes, part + 1, parts);
  if (KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0 && xDt == yDt) {
    if (xDt == F32) forward2x2(F32, 0, x, y, p0, p1, H, W, OH, OW);
    else if (xDt == F16) forward2x2(F16, 0x7c00, x, y, p0, p1, H, W, OH, OW);
    else forward2x2(BF16, 0x7f80, x, y, p0, p1, H, W, OH, OW);
    return;
  }
  const xs = shiftOf(xDt), ys = shiftOf(yDt);
  const fast = KH == 3 && KW == 3 && SH == 2 && SW == 2 && PH == 1 && PW == 1 && xDt == yDt && fast3x3s2(xDt, H, W, OH, OW);
  const inf = xDt == F16 ? 0x7c00 : 0x7f80;
  for (let pl = p0; pl < p1; pl++) {
    const xp = x + ((<usize>pl * <usize>(H * W)) << xs);
    const yp = y + ((<usize>pl * <usize>(OH * OW)) << ys);
    if (fast && !planeHasNaN(xDt, inf, xp, H * W)) {
      if (xDt == F32) plane3x3s2f32(true, xp, yp, 0, F32, 0, W, OH, OW);
      else plane3x3s2x16(true, xp, yp, 0, F16, 0, W, OH, OW);
      continue;
    }
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let m: f32 = -Infinity;
        let any = false;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PW + kw;
            if (iw < 0 || iw >= W) continue;
            const v = load1(xDt, xp + (<usize>(ih * W + iw) << xs));
            if (!any || beats(v, m)) m = v;
            any = true;
          }
        }
        store1(yDt, yp + (<usize>(oh * OW + ow) << ys), m);
      }
    }
  }
}

/* ------------------------------------------------------------------ 2x2 backward */

/** 4 float32 windows: x rows at r0, r1, gradients at g, dx rows at d0, d1. */
// @ts-ignore: decorator
@inline function bwd4F32(r0: usize, r1: usize, g: usize, d0: usize, d1: usize): void {
  const a0 = v128.load(r0), a1 = v128.load(r0, 16);
  const b0 = v128.load(r1), b1 = v128.load(r1, 16);
  const nan = v128.or(v128.or(f32x4.ne(a0, a0), f32x4.ne(a1, a1)), v128.or(f32x4.ne(b0, b0), f32x4.ne(b1, b1)));
  if (v128.any_true(nan)) {
    for (let k: usize = 0; k < 4; k++) windowGrad2x2(F32, r0 + (k << 3), r1 + (k << 3), g + (k << 2), d0 + (k << 3), d1 + (k << 3));
    return;
  }
  const ae = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), ao = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
  const be = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6), bo = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
  const m = f32x4.pmax(f32x4.pmax(ae, ao), f32x4.pmax(be, bo));
  // the first tap equal to the maximum (float compares: -0 == +0)
  const eA = f32x4.eq(ae, m);
  const eB = v128.andnot(f32x4.eq(ao, m), eA);
  const t = v128.or(eA, eB);
  const eC = v128.andnot(f32x4.eq(be, m), t);
  const eD = v128.not(v128.or(t, eC));
  const gv = f32x4.add(v128.load(g), f32x4.splat(0)); // -0 -> +0, as the reference's 0 + g
  const oA = v128.and(gv, eA), oB = v128.and(gv, eB), oC = v128.and(gv, eC), oD = v128.and(gv, eD);
  v128.store(d0, v128.shuffle<f32>(oA, oB, 0, 4, 1, 5));
  v128.store(d0, v128.shuffle<f32>(oA, oB, 2, 6, 3, 7), 16);
  v128.store(d1, v128.shuffle<f32>(oC, oD, 0, 4, 1, 5));
  v128.store(d1, v128.shuffle<f32>(oC, oD, 2, 6, 3, 7), 16);
}

/** 8 (`wide`) or 4 16-bit windows; the gradient routed as raw bits. */
// @ts-ignore: decorator
@inline function bwd16(fmt: i32, inf: i32, wide: bool, r0: usize, r1: usize, g: usize, d0: usize, d1: usize): void {
  const a0 = v128.load(r0), b0 = v128.load(r1);
  const a1 = wide ? v128.load(r0, 16) : i16x8.splat(0);
  const b1 = wide ? v128.load(r1, 16) : i16x8.splat(0);
  const nan = v128.or(v128.or(nan16(a0, inf), nan16(a1, inf)), v128.or(nan16(b0, inf), nan16(b1, inf)));
  if (v128.any_true(nan)) {
    const n: usize = wide ? 8 : 4;
    for (let k: usize = 0; k < n; k++) windowGrad2x2(fmt, r0 + (k << 2), r1 + (k << 2), g + (k << 1), d0 + (k << 2), d1 + (k << 2));
    return;
  }
  const ka0 = valueKey(a0), ka1 = valueKey(a1), kb0 = valueKey(b0), kb1 = valueKey(b1);
  const ae = evens16(ka0, ka1), ao = odds16(ka0, ka1);
  const be = evens16(kb0, kb1), bo = odds16(kb0, kb1);
  const m = i16x8.max_s(i16x8.max_s(ae, ao), i16x8.max_s(be, bo));
  const eA = i16x8.eq(ae, m);
  const eB = v128.andnot(i16x8.eq(ao, m), eA);
  const t = v128.or(eA, eB);
  const eC = v128.andnot(i16x8.eq(be, m), t);
  const eD = v128.not(v128.or(t, eC));
  let gv = wide ? v128.load(g) : v128.load64_zero(g);
  gv = v128.andnot(gv, i16x8.eq(gv, kv(K_SIGN16X8))); // -0 -> +0, as the reference's 0 + g
  const oA = v128.and(gv, eA), oB = v128.and(gv, eB), oC = v128.and(gv, eC), oD = v128.and(gv, eD);
  v128.store(d0, zipLo16(oA, oB));
  v128.store(d1, zipLo16(oC, oD));
  if (wide) {
    v128.store(d0, zipHi16(oA, oB), 16);
    v128.store(d1, zipHi16(oC, oD), 16);
  }
}

/** Planes p0..p1 of the 2x2 / stride-2 gradient, x, dy and dx of one format, dx overwritten. */
// @ts-ignore: decorator
@inline function backward2x2(fmt: i32, inf: i32, x: usize, dy: usize, dx: usize, p0: i32, p1: i32, H: i32, W: i32, OH: i32, OW: i32): void {
  const sh = shiftOf(fmt);
  for (let pl = p0; pl < p1; pl++) {
    const xp = x + ((<usize>pl * <usize>(H * W)) << sh);
    const gp = dy + ((<usize>pl * <usize>(OH * OW)) << sh);
    const dp = dx + ((<usize>pl * <usize>(H * W)) << sh);
    for (let oh = 0; oh < OH; oh++) {
      const off = <usize>(2 * oh * W) << sh;
      const r0 = xp + off, r1 = r0 + (<usize>W << sh);
      const d0 = dp + off, d1 = d0 + (<usize>W << sh);
      const go = gp + (<usize>(oh * OW) << sh);
      if (fmt == F32) {
        if (OW >= 4) {
          for (let ow = 0; ; ow += 4) {
            if (ow + 4 > OW) ow = OW - 4; // the tail: one overlapping step (same values written again)
            const c = <usize>(2 * ow) << 2;
            bwd4F32(r0 + c, r1 + c, go + (<usize>ow << 2), d0 + c, d1 + c);
            if (ow + 4 >= OW) break;
          }
          continue;
        }
      } else if (OW >= 8) {
        for (let ow = 0; ; ow += 8) {
          if (ow + 8 > OW) ow = OW - 8;
          const c = <usize>(2 * ow) << 1;
          bwd16(fmt, inf, true, r0 + c, r1 + c, go + (<usize>ow << 1), d0 + c, d1 + c);
          if (ow + 8 >= OW) break;
        }
        continue;
      } else if (OW >= 4) {
        for (let ow = 0; ; ow += 4) {
          if (ow + 4 > OW) ow = OW - 4;
          const c = <usize>(2 * ow) << 1;
          bwd16(fmt, inf, false, r0 + c, r1 + c, go + (<usize>ow << 1), d0 + c, d1 + c);
          if (ow + 4 >= OW) break;
        }
        continue;
      }
      for (let ow = 0; ow < OW; ow++) {
        const c = <usize>(2 * ow) << sh;
        windowGrad2x2(fmt, r0 + c, r1 + c, go + (<usize>ow << sh), d0 + c, d1 + c);
      }
    }
    // an odd last column / row belongs to no window
    if (W > 2 * OW) for (let ih = 0; ih < 2 * OH; ih++) store1(fmt, dp + (<usize>(ih * W + W - 1) << sh), 0);
    if (H > 2 * OH) memory.fill(dp + (<usize>(2 * OH * W) << sh), 0, <usize>((H - 2 * OH) * W) << sh);
  }
}

/* ------------------------------------------------------------------ 3x3 / stride 2 / padding 1 */

// ResNet's stem pool. Fast path for W = 2 OW, H = 2 OH (every window's centre tap at (2 oh, 2 ow)),
// output rows cut in blocks of 8 (16-bit) or 4 (float32) windows: each input row is split into its
// even columns E (iw = 2 ow), odd columns O (2 ow + 1) and O shifted by one window (2 ow - 1), and
// the 9 taps are compared in the reference's scan order (kh, kw): the first tap equal to the
// window's maximum wins (-0 equals +0), so the output keeps that tap's bits and the gradient goes
// to it, as in the scalar scan. Planes holding a NaN take the scalar scan.

/** Whether the fast path applies (the caller checked K = 3, S = 2, P = 1 and one format). */
// @ts-ignore: decorator
@inline function fast3x3s2(fmt: i32, H: i32, W: i32, OH: i32, OW: i32): bool {
  return W == 2 * OW && H == 2 * OH && (OW & (fmt == F32 ? 3 : 7)) == 0;
}

/** Whether the plane of n (a multiple of 8) elements at p holds a NaN. */
// @ts-ignore: decorator
@inline function planeHasNaN(fmt: i32, inf: i32, p: usize, n: i32): bool {
  let any = i32x4.splat(0);
  if (fmt == F32) {
    for (let i = 0; i < n; i += 4) {
      const v = v128.load(p + (<usize>i << 2));
      any = v128.or(any, f32x4.ne(v, v));
    }
  } else {
    for (let i = 0; i < n; i += 8) any = v128.or(any, nan16(v128.load(p + (<usize>i << 1)), inf));
  }
  return v128.any_true(any);
}

/**
 * One plane of the 16-bit fast path. fwd: y[oh][ow] = the bits of each window's first maximal
 * tap; else: each window's dy added (float64) at its first maximal tap in buf (the plane's H x W
 * float64 sums, scan order of the windows).
 */
// @ts-ignore: decorator
@inline function plane3x3s2x16(fwd: bool, xp: usize, yp: usize, gp: usize, gFmt: i32, buf: usize, W: i32, OH: i32, OW: i32): void {
  const MINKEY = i16x8.splat(-32768); // below every value's key: padding never wins
  const rowBytes = <usize>W << 1;
  for (let oh = 0; oh < OH; oh++) {
    for (let ow0 = 0; ow0 < OW; ow0 += 8) {
      let m = MINKEY;
      // taps of the three rows 2oh-1, 2oh, 2oh+1 (the first is padding for oh = 0): bits and keys
      let b0 = i16x8.splat(0), b1 = b0, b2 = b0, b3 = b0, b4 = b0, b5 = b0, b6 = b0, b7 = b0, b8 = b0;
      let k0 = MINKEY, k1 = MINKEY, k2 = MINKEY, k3 = MINKEY, k4 = MINKEY, k5 = MINKEY, k6 = MINKEY, k7 = MINKEY, k8 = MINKEY;
      for (let r = 0; r < 3; r++) {
        const ih = 2 * oh - 1 + r;
        if (ih < 0) continue;
        const row = xp + <usize>ih * rowBytes + (<usize>(2 * ow0) << 1);
        const lo = v128.load(row), hi = v128.load(row, 16);
        const E = evens16(lo, hi), O = odds16(lo, hi);
        const prev = ow0 > 0 ? i16x8.splat(load<u16>(row - 2)) : i16x8.splat(0);
        const Om = i8x16.shuffle(prev, O, 0, 1, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29);
        let kOm = valueKey(Om);
        if (ow0 == 0) kOm = i16x8.replace_lane(kOm, 0, -32768);
        const kE = valueKey(E), kO = valueKey(O);
        m = i16x8.max_s(m, i16x8.max_s(kOm, i16x8.max_s(kE, kO)));
        if (r == 0) { b0 = Om; b1 = E; b2 = O; k0 = kOm; k1 = kE; k2 = kO; }
        else if (r == 1) { b3 = Om; b4 = E; b5 = O; k3 = kOm; k4 = kE; k5 = kO; }
        else { b6 = Om; b7 = E; b8 = O; k6 = kOm; k7 = kE; k8 = kO; }
      }
      // scan order: the first tap equal to the maximum
      const e0 = i16x8.eq(k0, m), e1 = i16x8.eq(k1, m), e2 = i16x8.eq(k2, m), e3 = i16x8.eq(k3, m), e4 = i16x8.eq(k4, m);
      const e5 = i16x8.eq(k5, m), e6 = i16x8.eq(k6, m), e7 = i16x8.eq(k7, m), e8 = i16x8.eq(k8, m);
      if (fwd) {
        v128.store(yp + (<usize>(oh * OW + ow0) << 1), firstSet(e0, e1, e2, e3, e4, e5, e6, e7, e8, b0, b1, b2, b3, b4, b5, b6, b7, b8));
      } else {
        const tap = firstSet(e0, e1, e2, e3, e4, e5, e6, e7, e8, i16x8.splat(0), i16x8.splat(1), i16x8.splat(2), i16x8.splat(3), i16x8.splat(4), i16x8.splat(5), i16x8.splat(6), i16x8.splat(7), i16x8.splat(8));
        scatter3x3s2(tap, 8, gp, gFmt, buf, W, OW, oh, ow0);
      }
    }
  }
}

/** The float32 fast path's plane (4 windows at a time), as plane3x3s2x16. */
// @ts-ignore: decorator
@inline function plane3x3s2f32(fwd: bool, xp: usize, yp: usize, gp: usize, gFmt: i32, buf: usize, W: i32, OH: i32, OW: i32): void {
  const NEGINF = f32x4.splat(-Infinity);
  const rowBytes = <usize>W << 2;
  const notLane0 = i32x4(0, -1, -1, -1);
  for (let oh = 0; oh < OH; oh++) {
    for (let ow0 = 0; ow0 < OW; ow0 += 4) {
      let m = NEGINF;
      let b0 = NEGINF, b1 = NEGINF, b2 = NEGINF, b3 = NEGINF, b4 = NEGINF, b5 = NEGINF, b6 = NEGINF, b7 = NEGINF, b8 = NEGINF;
      for (let r = 0; r < 3; r++) {
        const ih = 2 * oh - 1 + r;
        if (ih < 0) continue;
        const row = xp + <usize>ih * rowBytes + (<usize>(2 * ow0) << 2);
        const lo = v128.load(row), hi = v128.load(row, 16);
        const E = v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), O = v128.shuffle<f32>(lo, hi, 1, 3, 5, 7);
        const prev = ow0 > 0 ? f32x4.splat(load<f32>(row - 4)) : NEGINF;
        const Om = v128.shuffle<f32>(prev, O, 0, 4, 5, 6);
        m = f32x4.max(m, f32x4.max(Om, f32x4.max(E, O)));
        if (r == 0) { b0 = Om; b1 = E; b2 = O; }
        else if (r == 1) { b3 = Om; b4 = E; b5 = O; }
        else { b6 = Om; b7 = E; b8 = O; }
      }
      // padding taps (row -1, column -1) never count: the maximum is a real value
      const row0 = oh == 0 ? i32x4.splat(0) : i32x4.splat(-1);
      const col0 = ow0 == 0 ? notLane0 : i32x4.splat(-1);
      const e0 = v128.and(f32x4.eq(b0, m), v128.and(row0, col0)), e1 = v128.and(f32x4.eq(b1, m), row0), e2 = v128.and(f32x4.eq(b2, m), row0);
      const e3 = v128.and(f32x4.eq(b3, m), col0), e4 = f32x4.eq(b4, m), e5 = f32x4.eq(b5, m);
      const e6 = v128.and(f32x4.eq(b6, m), col0), e7 = f32x4.eq(b7, m), e8 = f32x4.eq(b8, m);
      if (fwd) {
        v128.store(yp + (<usize>(oh * OW + ow0) << 2), firstSet(e0, e1, e2, e3, e4, e5, e6, e7, e8, b0, b1, b2, b3, b4, b5, b6, b7, b8));
      } else {
        const tap = firstSet(e0, e1, e2, e3, e4, e5, e6, e7, e8, i32x4.splat(0), i32x4.splat(1), i32x4.splat(2), i32x4.splat(3), i32x4.splat(4), i32x4.splat(5), i32x4.splat(6), i32x4.splat(7), i32x4.splat(8));
        // i32 tap lanes -> i16 lanes 0..3 for the shared scatter
        scatter3x3s2(i16x8.narrow_i32x4_s(tap, tap), 4, gp, gFmt, buf, W, OW, oh, ow0);
      }
    }
  }
}

/**
 * Per lane, the first of v0..v8 (the 9 taps in scan order) whose mask e0..e8 is set: masks are whole
 * lanes, so one selection serves 16- and 32-bit lanes, tap bits or tap indices. Every lane has a set
 * mask (a window's maximum is one of its real taps), so selecting from the last tap back leaves the
 * first set one.
 */
// @ts-ignore: decorator
@inline function firstSet(e0: v128, e1: v128, e2: v128, e3: v128, e4: v128, e5: v128, e6: v128, e7: v128, e8: v128, v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128, v8: v128): v128 {
  let r = v128.bitselect(v7, v8, e7);
  r = v128.bitselect(v6, r, e6);
  r = v128.bitselect(v5, r, e5);
  r = v128.bitselect(v4, r, e4);
  r = v128.bitselect(v3, r, e3);
  r = v128.bitselect(v2, r, e2);
  r = v128.bitselect(v1, r, e1);
  return v128.bitselect(v0, r, e0);
}

/** buf[tap's input pixel] += dy[oh][ow0 + l] (float64) for the n windows l of a block, in order. */
// @ts-ignore: decorator
@inline function scatter3x3s2(tap: v128, n: i32, gp: usize, gFmt: i32, buf: usize, W: i32, OW: i32, oh: i32, ow0: i32): void {
  const gs = shiftOf(gFmt);
  for (let l = 0; l < n; l++) {
    const t = <i32>i16x8.extract_lane_u(tap, 0);
    tap = i8x16.shuffle(tap, tap, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1);
    const kh = t / 3, kw = t - kh * 3;
    const ih = 2 * oh - 1 + kh, iw = 2 * (ow0 + l) - 1 + kw;
    const p = buf + (<usize>(ih * W + iw) << 3);
    store<f64>(p, load<f64>(p) + <f64>load1(gFmt, gp + (<usize>(oh * OW + ow0 + l) << gs)));
  }
}

/**
 * dx (+)= scatter of dy to each window's arg-max (see the file comment).
 * dtypes: xDt | dyDt << 4 | dxDt << 8; flags: ACCUMULATE (4) adds to dx.
 * scratch: parts * maxpool2d_scratch_bytes(desc) (used only by the general path).
 * Threads split the N*C planes.
 */
export function maxpool2d_backward(desc: usize, dtypes: i32, flags: i32, x: usize, dy: usize, dx: usize, scratch: usize, part: i32, parts: i32): void {
  const N = load<i32>(desc, 0), C = load<i32>(desc, 4), H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  const KH = load<i32>(desc, 16), KW = load<i32>(desc, 20);
  const SH = max(1, load<i32>(desc, 24)), SW = max(1, load<i32>(desc, 28));
  const PH = load<i32>(desc, 32), PW = load<i32>(desc, 36);
  let OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
  if (H + 2 * PH < KH || W + 2 * PW < KW) { OH = 0; OW = 0; }
  const xDt = dtypes & 15, dyDt = (dtypes >> 4) & 15, dxDt = (dtypes >> 8) & 15;
  const acc = (flags & ACCUMULATE) != 0;
  const planes = N * C;
  const p0 = splitLo(planes, part, parts), p1 = splitLo(planes, part + 1, parts);
  if (KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0 && !acc && xDt == dyDt && xDt == dxDt) {
    if (xDt == F32) backward2x2(F32, 0, x, dy, dx, p0, p1, H, W, OH, OW);
    else if (xDt == F16) backward2x2(F16, 0x7c00, x, dy, dx, p0, p1, H, W, OH, OW);
    else backward2x2(BF16, 0x7f80, x, dy, dx, p0, p1, H, W, OH, OW);
    return;
  }
  // general path: a float64 plane in scratch (windows may overlap: their gradients add up in scan
  // order, as the reference adds them), then one rounding per element
  const xs = shiftOf(xDt), gs = shiftOf(dyDt), ds = shiftOf(dxDt);
  const buf = scratch + <usize>part * <usize>maxpool2d_scratch_bytes(desc);
  const fast = KH == 3 && KW == 3 && SH == 2 && SW == 2 && PH == 1 && PW == 1 && fast3x3s2(xDt, H, W, OH, OW);
  const inf = xDt == F16 ? 0x7c00 : 0x7f80;
  for (let pl = p0; pl < p1; pl++) {
    const xp = x + ((<usize>pl * <usize>(H * W)) << xs);
    const gp = dy + ((<usize>pl * <usize>(OH * OW)) << gs);
    const dp = dx + ((<usize>pl * <usize>(H * W)) << ds);
    memory.fill(buf, 0, <usize>(H * W) * 8);
    if (fast && !planeHasNaN(xDt, inf, xp, H * W)) {
      if (xDt == F32) plane3x3s2f32(false, xp, 0, gp, dyDt, buf, W, OH, OW);
      else plane3x3s2x16(false, xp, 0, gp, dyDt, buf, W, OH, OW);
    } else for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let m: f32 = -Infinity, bi = -1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PW + kw;
            if (iw < 0 || iw >= W) continue;
            const v = load1(xDt, xp + (<usize>(ih * W + iw) << xs));
            if (bi < 0 || beats(v, m)) { m = v; bi = ih * W + iw; }
          }
        }
        if (bi >= 0) {
          const p = buf + (<usize>bi << 3);
          store<f64>(p, load<f64>(p) + <f64>load1(dyDt, gp + (<usize>(oh * OW + ow) << gs)));
        }
      }
    }
    const n = H * W;
    let i = 0;
    if (!acc) {
      // 8 at a time: float64 -> float32 (demote, round to nearest even) -> dx's format, as below
      for (; i + 8 <= n; i += 8) {
        const q = buf + (<usize>i << 3);
        const v0 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(q)), f32x4.demote_f64x2_zero(v128.load(q, 16)), 0, 1, 4, 5);
        const v1 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(q, 32)), f32x4.demote_f64x2_zero(v128.load(q, 48)), 0, 1, 4, 5);
        store8(dxDt, dp + (<usize>i << ds), v0, v1);
      }
    }
    for (; i < n; i++) {
      let v = load<f64>(buf + (<usize>i << 3));
      if (acc) v += <f64>load1(dxDt, dp + (<usize>i << ds));
      store1(dxDt, dp + (<usize>i << ds), <f32>v);
    }
  }
}

/* ------------------------------------------------------------------ ReLU */

/**
 * y = relu(x + bias[row % C]) over x viewed as [rows][hw]: NCHW with per-channel
 * bias is rows = N*C, hw = H*W. Plain ReLU of n elements: bias = 0, rows = 1,
 * hw = n (a linear layer's bias belongs in the GEMM: GEMM_BIAS_COL).
 * relu(NaN) = NaN, relu(-0) = +0. dtypes: xDt | biasDt << 4 | yDt << 8.
 * Threads split rows (so give rows >= threads; rows = 1 runs on part 0 only).
 */
export function bias_relu_forward(dtypes: i32, rows: i32, C: i32, hw: i32, x: usize, bias: usize, y: usize, part: i32, parts: i32): void {
  const xDt = dtypes & 15, bDt = (dtypes >> 4) & 15, yDt = (dtypes >> 8) & 15;
  const xs = shiftOf(xDt), ys = shiftOf(yDt);
  const r1 = splitLo(rows, part + 1, parts);
  const zero = f32x4.splat(0);
  for (let r = splitLo(rows, part, parts); r < r1; r++) {
    const b: f32 = bias != 0 ? load1(bDt, bias + (<usize>(r % C) << shiftOf(bDt))) : 0;
    const bv = f32x4.splat(b);
    const xp = x + (<usize>(r * hw) << xs), yp = y + (<usize>(r * hw) << ys);
    let j = 0;
    for (; j + 8 <= hw; j += 8) {
      const q = xp + (<usize>j << xs);
      // f32x4.max propagates NaN
      const v0 = f32x4.max(f32x4.add(load8lo(xDt, q), bv), zero);
      const v1 = f32x4.max(f32x4.add(load8hi(xDt, q), bv), zero);
      store8(yDt, yp + (<usize>j << ys), v0, v1);
    }
    for (; j < hw; j++) {
      const v = load1(xDt, xp + (<usize>j << xs)) + b;
      store1(yDt, yp + (<usize>j << ys), v != v ? v : (v > 0 ? v : 0));
    }
  }
}

/**
 * dx (+)= (y <= 0 ? 0 : dy) elementwise over n elements (y: the ReLU output, or
 * its input; as ATen's threshold_backward, a NaN y passes the gradient).
 * dtypes: yDt | dyDt << 4 | dxDt << 8; flags: ACCUMULATE adds to dx. Threads split ranges of 8.
 */
export function relu_backward(dtypes: i32, flags: i32, n: i32, y: usize, dy: usize, dx: usize, part: i32, parts: i32): void {
  const yDt = dtypes & 15, gDt = (dtypes >> 4) & 15, dDt = (dtypes >> 8) & 15;
  const ys = shiftOf(yDt), gs = shiftOf(gDt), ds = shiftOf(dDt);
  const acc = (flags & ACCUMULATE) != 0;
  const chunks = (n + 7) >> 3;
  const i0 = splitLo(chunks, part, parts) * 8, i1 = min(n, splitLo(chunks, part + 1, parts) * 8);
  const zero = f32x4.splat(0);
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    const yq = y + (<usize>i << ys), gq = dy + (<usize>i << gs), dq = dx + (<usize>i << ds);
    let v0 = v128.andnot(load8lo(gDt, gq), f32x4.le(load8lo(yDt, yq), zero));
    let v1 = v128.andnot(load8hi(gDt, gq), f32x4.le(load8hi(yDt, yq), zero));
    if (acc) { v0 = f32x4.add(v0, load8lo(dDt, dq)); v1 = f32x4.add(v1, load8hi(dDt, dq)); }
    store8(dDt, dq, v0, v1);
  }
  for (; i < i1; i++) {
    let v: f32 = load1(yDt, y + (<usize>i << ys)) <= 0 ? 0 : load1(gDt, dy + (<usize>i << gs));
    if (acc) v += load1(dDt, dx + (<usize>i << ds));
    store1(dDt, dx + (<usize>i << ds), v);
  }
}
