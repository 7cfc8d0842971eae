// Max-pooling (NCHW) and fused bias + ReLU kernels for the wasm CPU backend.
//
// Semantics follow PyTorch: windows padded with -Inf, NaN propagates (a window
// holding NaN outputs NaN and routes its gradient to the LAST NaN in scan
// order, as ATen's CPU kernel does), otherwise the gradient goes to the FIRST
// maximum in scan order (kh, kw). 16-bit tensors are widened to f32 and every
// output rounded once.
//
// Pool geometry: descriptor of 16 i32 at `desc`:
//   N, C, H, W, KH, KW, strideH, strideW, padH, padW  (rest unused)
// Output size OH = floor((H + 2 padH - KH) / strideH) + 1 (no ceil_mode, no dilation).

import { DT_F32, DT_F16, dtSize, loadF, storeF, load4of8, store8, f16x4ToF32x4, f32x4ToF16x4, f32x4ToBf16x4, GEMM_ACCUMULATE } from "./gemm";

// @ts-ignore: decorator
@inline function splitLo(units: i32, part: i32, parts: i32): i32 {
  return <i32>(<i64>units * part / parts);
}

// @ts-ignore: decorator
@inline function isNaN32(v: f32): bool {
  return v != v;
}

/** 4 consecutive elements of dtype dt at p as f32x4 (reads exactly 4 elements). */
// @ts-ignore: decorator
@inline function load4(p: usize, dt: i32): v128 {
  if (dt == DT_F32) return v128.load(p);
  const w = i32x4.extend_low_i16x8_u(v128.load64_zero(p));
  if (dt == DT_F16) return f16x4ToF32x4(w);
  return i32x4.shl(w, 16);
}

/** Store 4 f32 lanes as 4 elements of dtype dt (rounded once; writes exactly 4 elements). */
// @ts-ignore: decorator
@inline function store4(p: usize, v: v128, dt: i32): void {
  if (dt == DT_F32) { v128.store(p, v); return; }
  const h = dt == DT_F16 ? f32x4ToF16x4(v) : f32x4ToBf16x4(v);
  v128.store64_lane(p, i16x8.narrow_i32x4_u(h, h), 0);
}

/** Per-thread scratch for maxpool2d_backward (f32 plane, only with overlapping windows). */
export function maxpool2d_scratch_bytes(desc: usize): i32 {
  const H = load<i32>(desc, 8), W = load<i32>(desc, 12);
  return (H * W * 4 + 63) & ~63;
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
  const OH = (H + 2 * PH - KH) / SH + 1, OW = (W + 2 * PW - KW) / SW + 1;
  if (OH <= 0 || OW <= 0 || H + 2 * PH < KH || W + 2 * PW < KW) return;
  const xDt = dtypes & 15, yDt = (dtypes >> 8) & 15;
  const xEs = dtSize(xDt), yEs = dtSize(yDt);
  const planes = N * C;
  const p1 = splitLo(planes, part + 1, parts);
  const fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
  for (let pl = splitLo(planes, part, parts); pl < p1; pl++) {
    const xp = x + <usize>(pl * H * W) * xEs;
    const yp = y + <usize>(pl * OH * OW) * yEs;
    for (let oh = 0; oh < OH; oh++) {
      let ow = 0;
      if (fast) {
        const r0 = xp + <usize>(2 * oh * W) * xEs, r1 = r0 + <usize>W * xEs;
        // 4 outputs per step from 8 inputs of each row
        for (; ow + 4 <= OW; ow += 4) {
          const q0 = r0 + <usize>(2 * ow) * xEs, q1 = r1 + <usize>(2 * ow) * xEs;
          const m0 = f32x4.max(load4of8(q0, xDt, false), load4of8(q1, xDt, false));
          const m1 = f32x4.max(load4of8(q0, xDt, true), load4of8(q1, xDt, true));
          const v = f32x4.max(v128.shuffle<f32>(m0, m1, 0, 2, 4, 6), v128.shuffle<f32>(m0, m1, 1, 3, 5, 7));
          store4(yp + <usize>(oh * OW + ow) * yEs, v, yDt);
        }
        for (; ow < OW; ow++) {
          let m = loadF(r0, 2 * ow, xDt);
          let v = loadF(r0, 2 * ow + 1, xDt);
          if (v > m || isNaN32(v)) m = v;
          v = loadF(r1, 2 * ow, xDt);
          if (v > m || isNaN32(v)) m = v;
          v = loadF(r1, 2 * ow + 1, xDt);
          if (v > m || isNaN32(v)) m = v;
          storeF(yp, oh * OW + ow, yDt, m);
        }
        continue;
      }
      for (; ow < OW; ow++) {
        let m: f32 = -Infinity;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PW + kw;
            if (iw < 0 || iw >= W) continue;
            const v = loadF(xp, ih * W + iw, xDt);
            if (v > m || isNaN32(v)) m = v;
          }
        }
        storeF(yp, oh * OW + ow, yDt, m);
      }
    }
  }
}

/**
 * dx (+)= scatter of dy to each window's arg-max (see the file comment).
 * dtypes: xDt | dyDt << 4 | dxDt << 8; flags: GEMM_ACCUMULATE (4) adds to dx.
 * scratch: parts * maxpool2d_scratch_bytes(desc) (used only when windows overlap).
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
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  const xEs = dtSize(xDt), dyEs = dtSize(dyDt), dxEs = dtSize(dxDt);
  const planes = N * C;
  const p1 = splitLo(planes, part + 1, parts);
  const fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0;
  const buf = scratch + <usize>part * <usize>maxpool2d_scratch_bytes(desc);
  for (let pl = splitLo(planes, part, parts); pl < p1; pl++) {
    const xp = x + <usize>(pl * H * W) * xEs;
    const gp = dy + <usize>(pl * OH * OW) * dyEs;
    const dp = dx + <usize>(pl * H * W) * dxEs;
    if (fast) {
      // each input belongs to at most one window: write every dx element once
      for (let oh = 0; oh < OH; oh++) {
        const r0 = xp + <usize>(2 * oh * W) * xEs, r1 = r0 + <usize>W * xEs;
        const d0 = dp + <usize>(2 * oh * W) * dxEs, d1 = d0 + <usize>W * dxEs;
        let ow = 0;
        for (; ow + 4 <= OW; ow += 4) {
          const q0 = r0 + <usize>(2 * ow) * xEs, q1 = r1 + <usize>(2 * ow) * xEs;
          const a0 = load4of8(q0, xDt, false), a1 = load4of8(q0, xDt, true);
          const b0 = load4of8(q1, xDt, false), b1 = load4of8(q1, xDt, true);
          const ae = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), ao = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
          const be = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6), bo = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
          // first maximum in scan order (ae, ao, be, bo)
          const m = f32x4.max(f32x4.max(ae, ao), f32x4.max(be, bo));
          const eAe = f32x4.eq(ae, m);
          const eAo = v128.andnot(f32x4.eq(ao, m), eAe);
          const eBe = v128.andnot(f32x4.eq(be, m), v128.or(eAe, eAo));
          let sAe = eAe, sAo = eAo, sBe = eBe, sBo = v128.not(v128.or(v128.or(eAe, eAo), eBe));
          // NaN windows: the last NaN
          const nAe = f32x4.ne(ae, ae), nAo = f32x4.ne(ao, ao), nBe = f32x4.ne(be, be), nBo = f32x4.ne(bo, bo);
          const anyNaN = v128.or(v128.or(nAe, nAo), v128.or(nBe, nBo));
          if (v128.any_true(anyNaN)) {
            const tBo = nBo;
            const tBe = v128.andnot(nBe, nBo);
            const tAo = v128.andnot(nAo, v128.or(nBe, nBo));
            const tAe = v128.not(v128.or(v128.or(tBo, tBe), tAo));
            sAe = v128.bitselect(tAe, sAe, anyNaN); sAo = v128.bitselect(tAo, sAo, anyNaN);
            sBe = v128.bitselect(tBe, sBe, anyNaN); sBo = v128.bitselect(tBo, sBo, anyNaN);
          }
          const g = load4(gp + <usize>(oh * OW + ow) * dyEs, dyDt);
          let oAe = v128.and(g, sAe), oAo = v128.and(g, sAo), oBe = v128.and(g, sBe), oBo = v128.and(g, sBo);
          let w0 = v128.shuffle<f32>(oAe, oAo, 0, 4, 1, 5), w1 = v128.shuffle<f32>(oAe, oAo, 2, 6, 3, 7);
          let w2 = v128.shuffle<f32>(oBe, oBo, 0, 4, 1, 5), w3 = v128.shuffle<f32>(oBe, oBo, 2, 6, 3, 7);
          const e0 = d0 + <usize>(2 * ow) * dxEs, e1 = d1 + <usize>(2 * ow) * dxEs;
          if (acc) {
            w0 = f32x4.add(w0, load4of8(e0, dxDt, false)); w1 = f32x4.add(w1, load4of8(e0, dxDt, true));
            w2 = f32x4.add(w2, load4of8(e1, dxDt, false)); w3 = f32x4.add(w3, load4of8(e1, dxDt, true));
          }
          store8(e0, w0, w1, dxDt);
          store8(e1, w2, w3, dxDt);
        }
        for (; ow < OW; ow++) {
          const g = loadF(gp, oh * OW + ow, dyDt);
          let best = 0, m: f32 = -Infinity;
          for (let k = 0; k < 4; k++) {
            const v = loadF(xp, (2 * oh + (k >> 1)) * W + 2 * ow + (k & 1), xDt);
            if (v > m || isNaN32(v)) { m = v; best = k; }
          }
          for (let k = 0; k < 4; k++) {
            const i = (2 * oh + (k >> 1)) * W + 2 * ow + (k & 1);
            let v: f32 = k == best ? g : 0;
            if (acc) v += loadF(dp, i, dxDt);
            storeF(dp, i, dxDt, v);
          }
        }
      }
      // rows/columns not covered by any window
      for (let ih = 2 * OH; ih < H; ih++) for (let iw = 0; iw < W; iw++) if (!acc) storeF(dp, ih * W + iw, dxDt, 0);
      for (let ih = 0; ih < 2 * OH; ih++) for (let iw = 2 * OW; iw < W; iw++) if (!acc) storeF(dp, ih * W + iw, dxDt, 0);
      continue;
    }
    // general path: f32 plane in scratch (windows may overlap), then one rounding per element
    memory.fill(buf, 0, <usize>(H * W) * 4);
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let m: f32 = -Infinity, bi = -1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PW + kw;
            if (iw < 0 || iw >= W) continue;
            const v = loadF(xp, ih * W + iw, xDt);
            if (v > m || isNaN32(v) || bi < 0 && v == m) { m = v; bi = ih * W + iw; }
          }
        }
        if (bi >= 0) {
          const p = buf + <usize>bi * 4;
          store<f32>(p, load<f32>(p) + loadF(gp, oh * OW + ow, dyDt));
        }
      }
    }
    for (let i = 0; i < H * W; i++) {
      let v = load<f32>(buf + <usize>i * 4);
      if (acc) v += loadF(dp, i, dxDt);
      storeF(dp, i, dxDt, v);
    }
  }
}

/**
 * y = relu(x + bias[row % C]) over x viewed as [rows][hw]: NCHW with per-channel
 * bias is rows = N*C, hw = H*W. Plain ReLU of n elements: bias = 0, rows = 1,
 * hw = n (a linear layer's bias belongs in the GEMM: GEMM_BIAS_COL).
 * relu(NaN) = NaN, relu(-0) = +0. dtypes: xDt | biasDt << 4 | yDt << 8.
 * Threads split rows (so give rows >= threads; rows = 1 runs on part 0 only).
 */
export function bias_relu_forward(dtypes: i32, rows: i32, C: i32, hw: i32, x: usize, bias: usize, y: usize, part: i32, parts: i32): void {
  const xDt = dtypes & 15, bDt = (dtypes >> 4) & 15, yDt = (dtypes >> 8) & 15;
  const xEs = dtSize(xDt), yEs = dtSize(yDt);
  const r1 = splitLo(rows, part + 1, parts);
  const zero = f32x4.splat(0);
  for (let r = splitLo(rows, part, parts); r < r1; r++) {
    const b: f32 = bias != 0 ? loadF(bias, r % C, bDt) : 0;
    const bv = f32x4.splat(b);
    const xp = x + <usize>(r * hw) * xEs, yp = y + <usize>(r * hw) * yEs;
    let j = 0;
    for (; j + 8 <= hw; j += 8) {
      const q = xp + <usize>j * xEs;
      // f32x4.max propagates NaN
      const v0 = f32x4.max(f32x4.add(load4of8(q, xDt, false), bv), zero);
      const v1 = f32x4.max(f32x4.add(load4of8(q, xDt, true), bv), zero);
      store8(yp + <usize>j * yEs, v0, v1, yDt);
    }
    for (; j < hw; j++) {
      const v = loadF(xp, j, xDt) + b;
      storeF(yp, j, yDt, isNaN32(v) ? v : (v > 0 ? v : 0));
    }
  }
}

/**
 * dx (+)= (y <= 0 ? 0 : dy) elementwise over n elements (y: the ReLU output, or
 * its input; as ATen's threshold_backward, a NaN y passes the gradient).
 * dtypes: yDt | dyDt << 4 | dxDt << 8; flags: GEMM_ACCUMULATE adds to dx. Threads split ranges of 8.
 */
export function relu_backward(dtypes: i32, flags: i32, n: i32, y: usize, dy: usize, dx: usize, part: i32, parts: i32): void {
  const yDt = dtypes & 15, gDt = (dtypes >> 4) & 15, dDt = (dtypes >> 8) & 15;
  const yEs = dtSize(yDt), gEs = dtSize(gDt), dEs = dtSize(dDt);
  const acc = (flags & GEMM_ACCUMULATE) != 0;
  const chunks = (n + 7) >> 3;
  const i0 = splitLo(chunks, part, parts) * 8, i1 = min(n, splitLo(chunks, part + 1, parts) * 8);
  const zero = f32x4.splat(0);
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    const yq = y + <usize>i * yEs, gq = dy + <usize>i * gEs, dq = dx + <usize>i * dEs;
    let v0 = v128.andnot(load4of8(gq, gDt, false), f32x4.le(load4of8(yq, yDt, false), zero));
    let v1 = v128.andnot(load4of8(gq, gDt, true), f32x4.le(load4of8(yq, yDt, true), zero));
    if (acc) { v0 = f32x4.add(v0, load4of8(dq, dDt, false)); v1 = f32x4.add(v1, load4of8(dq, dDt, true)); }
    store8(dq, v0, v1, dDt);
  }
  for (; i < i1; i++) {
    let v: f32 = loadF(y, i, yDt) <= 0 ? 0 : loadF(dy, i, gDt);
    if (acc) v += loadF(dx, i, dDt);
    storeF(dx, i, dDt, v);
  }
}
