// The LSTM recurrence of one layer over a whole sequence, fused: the per-step gate GEMM against a
// weight packed once per call, the gates' nonlinearities and the state update in one pass, forward
// and backward (src/backend/wasm/native_lstm.ts; the definitions are
// src/backend/reference/kernels/lstm.ts, op 'lstmLayerFused' in src/nn/lstm_layer.ts).
//
// Why: run op by op, every time step is ~10 kernel calls (a [B, H] x [H, 4H] GEMM that repacks
// the whole weight, sigmoid, tanh, products, sums) and as many JavaScript dispatches; here a
// layer's whole sequence is one call per direction.
//
// Threads split the batch: rows are independent through the whole recurrence, so a part takes a
// block of G groups of MR = 4 rows (from the sync counter, as the GEMM takes its blocks) and runs
// every time step for it, with no barrier between steps; the groups of a block step together so
// that each weight panel is read once per step for all of them. The weight is packed first by `lstm_pack` (a call of
// its own, split across the parts) into NR-column panels of float32 that every part reads.
//
// Numerics are the reference kernel's: the gate product accumulates in float32 by 4x8 tiles
// (gemm.ts's micro-kernel, K in KC blocks added as the GEMM adds them) and is rounded to the
// storage dtype; gate inputs, nonlinearities (float64 rounded once, unary.ts's bits: lstm_gates.ts)
// and state updates in float32, h and c rounded to the storage dtype after every step. dtype codes: 0 f32, 1 f16, 2 bf16.
//
//   lstm_scratch_bytes(H, G, parts)                       shared packed weight + per-part state
//   lstm_pack(dt, w, H, backward, ws, part, parts)        w [4H, H] -> panels at ws
//   lstm_forward(dt, T, B, H, reverse, G, gx, bias, h0, c0, out, acts, ws, sync, part, parts)
//   lstm_backward(dt, T, B, H, reverse, G, gOut, out, c0, acts, dGates, dh0, dc0, dBias, ws, sync, part, parts)

import { f16x4ToF32, f32x4ToF16, f32x4ToBf16 } from './convert16';
import { kernel4x8, load4F, store4, packB, KC, MR, NR, takeUnit } from './gemm';
import { sigmoid4, tanh4 } from './lstm_gates';

const DT_F32: i32 = 0;
const DT_F16: i32 = 1;

// @ts-ignore: decorator
@inline function dtBytes(dt: i32): usize {
  return dt == DT_F32 ? 4 : 2;
}

/** Panels of 8 hidden units per gate. */
// @ts-ignore: decorator
@inline function blocks(H: i32): i32 {
  return (H + NR - 1) / NR;
}

/** Bytes of the packed weight: 4 * blocks(H) panels of [H][NR] floats (= blocks(H) of [4H][NR]). */
// @ts-ignore: decorator
@inline function packedBytes(H: i32): usize {
  return <usize>(4 * blocks(H) * H * NR) * 4;
}

// per-part region (bytes): the 4x8 tiles of every (row group, gate), one for later K blocks, then
// each row group's float32 state
// @ts-ignore: decorator
@inline function tmpOffset(G: i32): usize {
  return <usize>(G * 4 * MR * NR) * 4;
}
// @ts-ignore: decorator
@inline function stateOffset(G: i32): usize {
  return tmpOffset(G) + <usize>(MR * NR) * 4;
}

/** State bytes per row group: forward A, A' [H][MR] and c [MR][H]; backward A [4H][MR], dh, dc [MR][H]. */
// @ts-ignore: decorator
@inline function groupBytes(H: i32): usize {
  return <usize>(6 * H * MR) * 4;
}

// @ts-ignore: decorator
@inline function partBytes(H: i32, G: i32): usize {
  return stateOffset(G) + <usize>G * groupBytes(H);
}

/** Part `part`'s region of the scratch (after the shared packed weight). */
// @ts-ignore: decorator
@inline function partRegion(ws: usize, H: i32, G: i32, part: i32): usize {
  return ws + packedBytes(H) + <usize>part * partBytes(H, G);
}

/** Where part `part` of `parts` starts in a static split of `units` (part = parts: the end). */
// @ts-ignore: decorator
@inline function shareStart(units: i32, part: i32, parts: i32): i32 {
  return <i32>(<i64>units * part / parts);
}

/** Scratch for `parts` parts taking blocks of G row groups (G * MR rows). */
export function lstm_scratch_bytes(H: i32, G: i32, parts: i32): i32 {
  return <i32>(packedBytes(H) + <usize>parts * partBytes(H, G));
}

/**
 * Pack w [4H, H] (dtype dt, contiguous) as float32 panels at ws. Forward (backward = 0): the B
 * operand of h [MR, H] x w^T, panel (q, jb) = columns q*H + jb*NR .. of w^T, [H][NR], at
 * (jb * 4 + q) * H * NR floats (a block's four gates side by side: one sequential stream). Backward: the B operand of dGates [MR, 4H] x w, panel jb =
 * columns jb*NR .. of w, [4H][NR], at jb * 4H * NR floats. Columns past H are zero.
 */
export function lstm_pack(dt: i32, w: usize, H: i32, backward: i32, ws: usize, part: i32, parts: i32): void {
  const nb = blocks(H);
  const panels = backward != 0 ? nb : 4 * nb;
  const p0 = shareStart(panels, part, parts), p1 = shareStart(panels, part + 1, parts);
  for (let p = p0; p < p1; p++) {
    if (backward != 0) {
      packB(w, H, false, dt, 0, p * NR, 4 * H, min(NR, H - p * NR), ws + <usize>(p * 4 * H * NR) * 4);
    } else {
      const jb = p >> 2, q = p & 3;
      packB(w, H, true, dt, 0, q * H + jb * NR, H, min(NR, H - jb * NR), ws + <usize>(p * H * NR) * 4);
    }
  }
}

/**
 * v rounded to float16's grid, kept in float32: the value f16x4ToF32(f32x4ToF16(v)) gives, in a
 * third of its operations (this rounding runs ~10 times per element and step, forward and
 * backward). Adding m = 2^(e + 13), e the exponent of |v| (at least -14: the subnormal grid), makes
 * the float32 adder round |v| to nearest even at float16's spacing 2^(e - 10); subtracting m is
 * exact. |v| >= 65520 rounds to Inf; NaN takes the pattern path (its payload as f32x4ToF16 keeps it).
 */
// @ts-ignore: decorator
@inline function roundF16(v: v128): v128 {
  const abs = v128.and(v, i32x4.splat(0x7fffffff));
  if (v128.any_true(i32x4.gt_s(abs, i32x4.splat(0x7f800000)))) return f16x4ToF32(f32x4ToF16(v));
  // 2^(e + 13) from the exponent bits (an exponent past 2^115 wraps negative and takes 2^-1: those round to Inf below)
  const m = i32x4.max_s(i32x4.add(v128.and(abs, i32x4.splat(0x7f800000)), i32x4.splat(13 << 23)), i32x4.splat(0x3f000000));
  const r = f32x4.sub(f32x4.add(abs, m), m);
  const big = f32x4.ge(abs, f32x4.splat(65520));
  return v128.or(v128.bitselect(f32x4.splat(Infinity), r, big), v128.xor(v, abs));
}

/** v rounded to dtype dt and widened back (exact for f32). */
// @ts-ignore: decorator
@inline function roundDt(v: v128, dt: i32): v128 {
  if (dt == DT_F32) return v;
  if (dt == DT_F16) return roundF16(v);
  return i32x4.shl(f32x4ToBf16(v), 16);
}

/**
 * t[MR][NR] = Ap[K][MR] x Bp[K][NR] in float32, K in KC blocks, each block's tile added to the
 * sum of the earlier ones (tile + sum), the GEMM's order.
 */
function tileProduct(ap: usize, bp: usize, K: i32, t: usize, tmp: usize): void {
  kernel4x8(ap, bp, min(K, KC), t);
  for (let pc = KC; pc < K; pc += KC) {
    kernel4x8(ap + <usize>(pc * MR) * 4, bp + <usize>(pc * NR) * 4, min(KC, K - pc), tmp);
    for (let i = 0; i < MR * NR; i += 4) {
      const o = <usize>i * 4;
      v128.store(t + o, f32x4.add(v128.load(tmp + o), v128.load(t + o)));
    }
  }
}

/** Store the 4 lanes of v as rows r of columns n..n+3 of a packed [K][MR] operand. */
// @ts-ignore: decorator
@inline function scatterA(ap: usize, n: i32, r: i32, v: v128): void {
  const p = ap + <usize>(n * MR + r) * 4;
  v128.store32_lane(p, v, 0);
  v128.store32_lane(p, v, 1, MR * 4);
  v128.store32_lane(p, v, 2, 2 * MR * 4);
  v128.store32_lane(p, v, 3, 3 * MR * 4);
}

// @ts-ignore: decorator
@inline function timeOf(k: i32, T: i32, reverse: i32): i32 {
  return reverse != 0 ? T - 1 - k : k;
}

/**
 * Forward. gx [T, B, 4H] (x W_ih^T), h0, c0 [B, H], out [T, B, 2H] (h | c), all dtype dt and
 * contiguous; bias: 0 or float32 [4H] (b_ih + b_hh); acts: 0 or float32 [T, B, 5H] (i, f, g, o,
 * tanh(c) of every step, for the backward). H % 4 == 0. A part takes blocks of G row groups of MR
 * rows and steps them together, so that each weight panel, read once per step, serves G * MR rows
 * from the L1 cache. Per step and unit:
 *   pre = (gx + bias) + round(h W^T); i, f, o = sigmoid, g = tanh; c' = f c + i g;
 *   h' = round(o tanh(c')); c' rounded.
 */
export function lstm_forward(
  dt: i32, T: i32, B: i32, H: i32, reverse: i32, G: i32,
  gx: usize, bias: usize, h0: usize, c0: usize, out: usize, acts: usize,
  ws: usize, sync: usize, part: i32, parts: i32,
): void {
  const es = dtBytes(dt);
  const nb = blocks(H);
  const wp = ws;
  const tiles = partRegion(ws, H, G, part), tmp = tiles + tmpOffset(G), state = tiles + stateOffset(G);
  const aBytes = <usize>(H * MR) * 4;
  const rowsPerBlock = G * MR;
  const units = (B + rowsPerBlock - 1) / rowsPerBlock;
  const dynamic = sync != 0 && parts > 1;
  let u = dynamic ? 0 : shareStart(units, part, parts);
  const uEnd = dynamic ? units : shareStart(units, part + 1, parts);
  for (;;) {
    u = takeUnit(dynamic ? sync : 0, u);
    if (u >= uEnd) break;
    const rb = u * rowsPerBlock;
    const groups = min(G, (B - rb + MR - 1) / MR);
    // each group's initial state: h0's rows packed as the A operand (rows past the batch zero), c0 widened
    let flip: usize = 0; // which of the group's two A buffers holds h
    for (let gi = 0; gi < groups; gi++) {
      const st = state + <usize>gi * groupBytes(H);
      memory.fill(st, 0, 2 * aBytes);
      const r0 = rb + gi * MR, mr = min(MR, B - r0);
      for (let r = 0; r < mr; r++) {
        for (let n = 0; n < H; n += 4) {
          const o = <usize>((r0 + r) * H + n) * es;
          scatterA(st, n, r, load4F(h0 + o, dt));
          v128.store(st + 2 * aBytes + <usize>(r * H + n) * 4, load4F(c0 + o, dt));
        }
      }
    }
    for (let k = 0; k < T; k++) {
      const t = timeOf(k, T, reverse);
      for (let jb = 0; jb < nb; jb++) {
        for (let q = 0; q < 4; q++) {
          const panel = wp + <usize>((jb * 4 + q) * H * NR) * 4;
          for (let gi = 0; gi < groups; gi++) {
            const st = state + <usize>gi * groupBytes(H);
            tileProduct(st + flip, panel, H, tiles + <usize>((gi * 4 + q) * MR * NR) * 4, tmp);
          }
        }
        const width = min(NR, H - jb * NR);
        for (let gi = 0; gi < groups; gi++) {
          const st = state + <usize>gi * groupBytes(H);
          const aNext = st + (aBytes - flip);
          const cs = st + 2 * aBytes;
          const tile = tiles + <usize>(gi * 4 * MR * NR) * 4;
          const r0 = rb + gi * MR, mr = min(MR, B - r0);
          for (let r = 0; r < mr; r++) {
            const row = <usize>(t * B + r0 + r);
            const gxRow = gx + row * <usize>(4 * H) * es;
            const outRow = out + row * <usize>(2 * H) * es;
            const actRow = acts + row * <usize>(5 * H) * 4;
            for (let jj = 0; jj < width; jj += 4) {
              const n = jb * NR + jj;
              const tr = tile + <usize>(r * NR + jj) * 4;
              const q1 = <usize>(MR * NR) * 4;
              let p0 = load4F(gxRow + <usize>n * es, dt);
              let p1 = load4F(gxRow + <usize>(H + n) * es, dt);
              let p2 = load4F(gxRow + <usize>(2 * H + n) * es, dt);
              let p3 = load4F(gxRow + <usize>(3 * H + n) * es, dt);
              if (bias != 0) {
                p0 = f32x4.add(p0, v128.load(bias + <usize>n * 4));
                p1 = f32x4.add(p1, v128.load(bias + <usize>(H + n) * 4));
                p2 = f32x4.add(p2, v128.load(bias + <usize>(2 * H + n) * 4));
                p3 = f32x4.add(p3, v128.load(bias + <usize>(3 * H + n) * 4));
              }
              p0 = f32x4.add(p0, roundDt(v128.load(tr), dt));
              p1 = f32x4.add(p1, roundDt(v128.load(tr + q1), dt));
              p2 = f32x4.add(p2, roundDt(v128.load(tr + 2 * q1), dt));
              p3 = f32x4.add(p3, roundDt(v128.load(tr + 3 * q1), dt));
              const ig = sigmoid4(p0), fg = sigmoid4(p1), gg = tanh4(p2), og = sigmoid4(p3);
              const cp = cs + <usize>(r * H + n) * 4;
              const cNew = f32x4.add(f32x4.mul(fg, v128.load(cp)), f32x4.mul(ig, gg));
              const tc = tanh4(cNew);
              const h = roundDt(f32x4.mul(og, tc), dt);
              const c = roundDt(cNew, dt);
              store4(outRow + <usize>n * es, h, dt);
              store4(outRow + <usize>(H + n) * es, c, dt);
              v128.store(cp, c);
              scatterA(aNext, n, r, h);
              if (acts != 0) {
                v128.store(actRow + <usize>n * 4, ig);
                v128.store(actRow + <usize>(H + n) * 4, fg);
                v128.store(actRow + <usize>(2 * H + n) * 4, gg);
                v128.store(actRow + <usize>(3 * H + n) * 4, og);
                v128.store(actRow + <usize>(4 * H + n) * 4, tc);
              }
            }
          }
        }
      }
      flip = aBytes - flip;
    }
    if (!dynamic) u++;
  }
}

/**
 * Backward through time, from the forward's out and acts, in blocks of G row groups as the
 * forward. gOut [T, B, 2H] (gradients of h | c), out [T, B, 2H], c0 [B, H], dGates [T, B, 4H]:
 * dtype dt; acts float32 [T, B, 5H]; dh0, dc0 float32 [B, H]; dBias 0 or float32 [B, 4H] (each
 * row's gate gradients summed over time, before rounding). Per step, latest first:
 *   dh = gH + dh'; dc = gC + dh o (1 - tanh(c)^2) + dc';
 *   d = [dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2), dh tanh(c) o(1-o)], dGates = round(d);
 *   dc' = dc f; dh' = round(dGates W).
 */
export function lstm_backward(
  dt: i32, T: i32, B: i32, H: i32, reverse: i32, G: i32,
  gOut: usize, out: usize, c0: usize, acts: usize, dGates: usize, dh0: usize, dc0: usize, dBias: usize,
  ws: usize, sync: usize, part: i32, parts: i32,
): void {
  const es = dtBytes(dt);
  const nb = blocks(H);
  const wp = ws;
  const tiles = partRegion(ws, H, G, part), tmp = tiles + tmpOffset(G), state = tiles + stateOffset(G);
  const one = f32x4.splat(1);
  const rowsPerBlock = G * MR;
  const blockCount = (B + rowsPerBlock - 1) / rowsPerBlock;
  const dynamic = sync != 0 && parts > 1;
  let u = dynamic ? 0 : shareStart(blockCount, part, parts);
  const uEnd = dynamic ? blockCount : shareStart(blockCount, part + 1, parts);
  for (;;) {
    u = takeUnit(dynamic ? sync : 0, u);
    if (u >= uEnd) break;
    const rb = u * rowsPerBlock;
    const groups = min(G, (B - rb + MR - 1) / MR);
    const rows = min(rowsPerBlock, B - rb);
    for (let gi = 0; gi < groups; gi++) memory.fill(state + <usize>gi * groupBytes(H), 0, <usize>(4 * H * MR) * 4);
    if (dBias != 0) memory.fill(dBias + <usize>(rb * 4 * H) * 4, 0, <usize>(rows * 4 * H) * 4);
    for (let k = T - 1; k >= 0; k--) {
      const t = timeOf(k, T, reverse);
      const first = k == T - 1;
      for (let rr = 0; rr < rows; rr++) {
        const gi = rr / MR, r = rr - gi * MR;
        const ap = state + <usize>gi * groupBytes(H); // dGates rows [4H][MR]
        const dhs = ap + <usize>(4 * H * MR) * 4; // dh' [MR][H]
        const dcs = dhs + <usize>(H * MR) * 4; // dc' [MR][H]
        const b = rb + rr;
        const row = <usize>(t * B + b);
        const gRow = gOut + row * <usize>(2 * H) * es;
        const actRow = acts + row * <usize>(5 * H) * 4;
        const dRow = dGates + row * <usize>(4 * H) * es;
        // the cell state before this step: the previous step's output, or c0
        const cPrevRow = k > 0
          ? out + (<usize>(timeOf(k - 1, T, reverse) * B + b) * <usize>(2 * H) + <usize>H) * es
          : c0 + <usize>(b * H) * es;
        const bRow = dBias + <usize>(b * 4 * H) * 4;
        for (let n = 0; n < H; n += 4) {
          const sp = <usize>(r * H + n) * 4;
          let dh = load4F(gRow + <usize>n * es, dt);
          if (!first) dh = f32x4.add(dh, v128.load(dhs + sp));
          const ig = v128.load(actRow + <usize>n * 4);
          const fg = v128.load(actRow + <usize>(H + n) * 4);
          const gg = v128.load(actRow + <usize>(2 * H + n) * 4);
          const og = v128.load(actRow + <usize>(3 * H + n) * 4);
          const tc = v128.load(actRow + <usize>(4 * H + n) * 4);
          const dcdh = f32x4.mul(og, f32x4.sub(one, f32x4.mul(tc, tc)));
          let dc = f32x4.add(load4F(gRow + <usize>(H + n) * es, dt), f32x4.mul(dh, dcdh));
          if (!first) dc = f32x4.add(dc, v128.load(dcs + sp));
          const cPrev = load4F(cPrevRow + <usize>n * es, dt);
          const d0 = f32x4.mul(dc, f32x4.mul(gg, f32x4.mul(ig, f32x4.sub(one, ig))));
          const d1 = f32x4.mul(dc, f32x4.mul(cPrev, f32x4.mul(fg, f32x4.sub(one, fg))));
          const d2 = f32x4.mul(dc, f32x4.mul(ig, f32x4.sub(one, f32x4.mul(gg, gg))));
          const d3 = f32x4.mul(dh, f32x4.mul(tc, f32x4.mul(og, f32x4.sub(one, og))));
          const r0v = roundDt(d0, dt), r1v = roundDt(d1, dt), r2v = roundDt(d2, dt), r3v = roundDt(d3, dt);
          store4(dRow + <usize>n * es, r0v, dt);
          store4(dRow + <usize>(H + n) * es, r1v, dt);
          store4(dRow + <usize>(2 * H + n) * es, r2v, dt);
          store4(dRow + <usize>(3 * H + n) * es, r3v, dt);
          scatterA(ap, n, r, r0v);
          scatterA(ap, H + n, r, r1v);
          scatterA(ap, 2 * H + n, r, r2v);
          scatterA(ap, 3 * H + n, r, r3v);
          if (dBias != 0) {
            const bp = bRow + <usize>n * 4;
            v128.store(bp, f32x4.add(v128.load(bp), d0));
            v128.store(bp + <usize>H * 4, f32x4.add(v128.load(bp + <usize>H * 4), d1));
            v128.store(bp + <usize>(2 * H) * 4, f32x4.add(v128.load(bp + <usize>(2 * H) * 4), d2));
            v128.store(bp + <usize>(3 * H) * 4, f32x4.add(v128.load(bp + <usize>(3 * H) * 4), d3));
          }
          v128.store(dcs + sp, f32x4.mul(dc, fg));
        }
      }
      // dh' = round(dGates W): [MR, 4H] x [4H, H] per group, each weight panel serving every group
      for (let jb = 0; jb < nb; jb++) {
        const panel = wp + <usize>(jb * 4 * H * NR) * 4;
        const width = min(NR, H - jb * NR);
        for (let gi = 0; gi < groups; gi++) {
          const ap = state + <usize>gi * groupBytes(H);
          const dhs = ap + <usize>(4 * H * MR) * 4;
          const tile = tiles + <usize>(gi * MR * NR) * 4;
          tileProduct(ap, panel, 4 * H, tile, tmp);
          const mr = min(MR, B - rb - gi * MR);
          for (let r = 0; r < mr; r++) {
            for (let jj = 0; jj < width; jj += 4) {
              v128.store(dhs + <usize>(r * H + jb * NR + jj) * 4, roundDt(v128.load(tile + <usize>(r * NR + jj) * 4), dt));
            }
          }
        }
      }
    }
    for (let rr = 0; rr < rows; rr++) {
      const gi = rr / MR, r = rr - gi * MR;
      const dhs = state + <usize>gi * groupBytes(H) + <usize>(4 * H * MR) * 4;
      const dcs = dhs + <usize>(H * MR) * 4;
      const o = <usize>((rb + rr) * H) * 4;
      memory.copy(dh0 + o, dhs + <usize>(r * H) * 4, <usize>H * 4);
      memory.copy(dc0 + o, dcs + <usize>(r * H) * 4, <usize>H * 4);
    }
    if (!dynamic) u++;
  }
}
