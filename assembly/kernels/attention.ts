/**
 * Fused scaled dot-product attention (FlashAttention's algorithm) for float32, float16 and
 * bfloat16 storage: the native form of src/backend/reference/kernels/attention.ts, whose comment
 * defines what is computed. Scores, softmax and sums in float32; every output rounded once.
 *
 *   attention_forward_<fmt>(desc, q, k, v, mask, out, lse, u0, u1, ws)
 *     work unit u = b * nQB + qb: query rows [qb * BR, qb * BR + BR) of batch b. Keys go by tiles of
 *     BC: the tile's scores S = Q K^T * scale (+ mask), then per row the running maximum m and sum l
 *     are updated (the accumulator rescaled by exp(m_old - m_new)) and acc += P V (dropped-out
 *     weights left out of acc, not of l). out = acc / l * dropoutScale, lse = m + log(l): no L x S
 *     matrix exists, only one BR x BC tile per thread.
 *   attention_backward_<fmt>(desc, q, k, v, mask, o, lse, g, dq, dk, dv, u0, u1, ws)
 *     work unit u = batch b: D_i = dO_i . o_i, then per key tile (its dK, dV accumulated in float32
 *     over every query tile) and query tile the scores are recomputed, P = exp(S - lse_i),
 *     dV += P^T dO, dP = dO V^T, dS = P (dP - D) * scale, dQ += dS K, dK += dS^T Q.
 *   attention_scratch_bytes(L, S, E, Ev) -> bytes of scratch per part (the largest of the kernels')
 *   attention_block_rows(desc) -> query rows per forward work unit (desc words 0..4, 21, 27 set)
 * Without a mask tensor or dropout and with head sizes multiples of 4 (a GPT's attention) both run
 * register-blocked products instead of the per-score loops below: attention_strips.ts's key strips
 * for at most STRIP_MAX_KEYS keys (whole-strip softmax; forward work units of STRIP_ROWS queries),
 * else attention_tiles.ts's online-softmax tiles.
 *
 * desc: int32 words (src/backend/wasm/native_attention.ts writes them)
 *   0 L, 1 S, 2 E, 3 Ev, 4 B2 (batch b = b1 * B2 + b2), 5 nQB,
 *   6.. element strides (batch 1, batch 2, row) of q (6), k (9), v (12), o (15), g (18),
 *   21 mask kind (0 none, 1 bool bytes, 2 float in the storage format), 22..25 mask strides
 *   (batch 1, batch 2, row, column), 26 causal, 27 dropout threshold (0: none), 28 seed0, 29 seed1,
 *   30 scale (float32 bits), 31 dropout scale (float32 bits)
 * Outputs (out, lse, dq, dk, dv) are contiguous; the last dim of every input has stride 1.
 */
import { F32, F16, BF16, load1, store1 } from './convert16';
import { word, wordF, batchBase, elem, round4 } from './attention_desc';
import { TILE_ROWS, TILE_COLS, forwardTiled, backwardTiled, backwardTiledScratch } from './attention_tiles';
import { STRIP_ROWS, STRIP_MAX_KEYS, stripsFit, forwardStrips, backwardStrips, stripsScratch } from './attention_strips';

const BR: i32 = TILE_ROWS;
const BC: i32 = TILE_COLS;

/** No mask tensor, no dropout, head sizes multiples of 4: attention_tiles.ts's register-blocked tiles. */
// @ts-ignore: decorator
@inline function tiled(desc: usize): bool {
  return word(desc, 21) == 0 && word(desc, 27) == 0 && (word(desc, 2) & 3) == 0 && (word(desc, 3) & 3) == 0;
}

/** n elements of `fmt` at p -> float32 at dst. */
// @ts-ignore: decorator
@inline function widen(fmt: i32, p: usize, n: i32, dst: usize): void {
  if (fmt == F32) memory.copy(dst, p, <usize>n << 2);
  else for (let e = 0; e < n; e++) store<f32>(dst + (<usize>e << 2), load1(fmt, p + (<usize>e << 1)));
}

/** float32 dot product of n elements (4 lanes, then the rest; the lanes summed in a fixed order). */
// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let e = 0;
  for (; e + 4 <= n; e += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>e << 2)), v128.load(b + (<usize>e << 2))));
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; e < n; e++) s += load<f32>(a + (<usize>e << 2)) * load<f32>(b + (<usize>e << 2));
  return s;
}

/** y[0..n) += alpha * x[0..n) (float32). */
// @ts-ignore: decorator
@inline function axpy(y: usize, x: usize, alpha: f32, n: i32): void {
  const a = f32x4.splat(alpha);
  let e = 0;
  for (; e + 4 <= n; e += 4) {
    const py = y + (<usize>e << 2);
    v128.store(py, f32x4.add(v128.load(py), f32x4.mul(a, v128.load(x + (<usize>e << 2)))));
  }
  for (; e < n; e++) {
    const py = y + (<usize>e << 2);
    store<f32>(py, load<f32>(py) + alpha * load<f32>(x + (<usize>e << 2)));
  }
}

// @ts-ignore: decorator
@inline function fmix32(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** The counter-based dropout mask (src/random/counter_hash.ts; desc words 27..29): element `index` kept? */
// @ts-ignore: decorator
@inline function keep(desc: usize, index: u32): bool {
  const threshold = word(desc, 27);
  if (threshold == 0) return true;
  const x = fmix32(index * 0x9e3779b9 + <u32>word(desc, 28));
  return <i32>(fmix32(x ^ <u32>word(desc, 29)) >>> 8) >= threshold;
}

/** The score of query row i (float32 at qr) and key row j (float32 at kr), or -Infinity where masked. */
// @ts-ignore: decorator
@inline function score(fmt: i32, desc: usize, mask: usize, maskBase: i32, qr: usize, kr: usize, i: i32, j: i32, E: i32, scale: f32): f32 {
  if (word(desc, 26) != 0 && j > i) return -Infinity;
  const kind = word(desc, 21);
  let add: f32 = 0;
  if (kind != 0) {
    const at = maskBase + i * word(desc, 24) + j * word(desc, 25);
    if (kind == 1) {
      if (load<u8>(mask + <usize>at) == 0) return -Infinity;
    } else add = load1(fmt, elem(fmt, mask, at));
  }
  return dot(qr, kr, E) * scale + add;
}

// @ts-ignore: decorator
@inline function forward(fmt: i32, desc: usize, q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  if (stripsFit(desc)) return forwardStrips(fmt, desc, q, k, v, out, lse, u0, u1, ws);
  if (tiled(desc)) return forwardTiled(fmt, desc, q, k, v, out, lse, u0, u1, ws);
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const nQB = word(desc, 5);
  const causal = word(desc, 26) != 0;
  const scale = wordF(desc, 30);
  const dscale = wordF(desc, 31);
  // scratch: Q tile [BR, E], K tile [BC, E], V tile [BC, Ev], scores [BR, BC], acc [BR, Ev], m [BR], l [BR]
  const Qs = ws;
  const Ks = Qs + (<usize>(BR * E) << 2);
  const Vs = Ks + (<usize>(BC * E) << 2);
  const Ss = Vs + (<usize>(BC * Ev) << 2);
  const Acc = Ss + (<usize>(BR * BC) << 2);
  const Ms = Acc + (<usize>(BR * Ev) << 2);
  const Ls = Ms + (<usize>BR << 2);
  for (let u = u0; u < u1; u++) {
    const b = u / nQB;
    const i0 = (u % nQB) * BR;
    const rows = min(BR, L - i0);
    const qb = batchBase(desc, 6, b);
    const kb = batchBase(desc, 9, b);
    const vb = batchBase(desc, 12, b);
    const mb = batchBase(desc, 22, b);
    for (let r = 0; r < rows; r++) {
      widen(fmt, elem(fmt, q, qb + (i0 + r) * word(desc, 8)), E, Qs + (<usize>(r * E) << 2));
      store<f32>(Ms + (<usize>r << 2), -Infinity);
      store<f32>(Ls + (<usize>r << 2), 0);
    }
    memory.fill(Acc, 0, <usize>(rows * Ev) << 2);
    const jEnd = causal ? min(S, i0 + rows) : S;
    for (let j0 = 0; j0 < jEnd; j0 += BC) {
      const cols = min(BC, jEnd - j0);
      for (let c = 0; c < cols; c++) {
        widen(fmt, elem(fmt, k, kb + (j0 + c) * word(desc, 11)), E, Ks + (<usize>(c * E) << 2));
        widen(fmt, elem(fmt, v, vb + (j0 + c) * word(desc, 14)), Ev, Vs + (<usize>(c * Ev) << 2));
      }
      for (let r = 0; r < rows; r++) {
        const i = i0 + r;
        const qr = Qs + (<usize>(r * E) << 2);
        const srow = Ss + (<usize>(r * BC) << 2);
        let mx: f32 = -Infinity;
        for (let c = 0; c < cols; c++) {
          const s = score(fmt, desc, mask, mb, qr, Ks + (<usize>(c * E) << 2), i, j0 + c, E, scale);
          store<f32>(srow + (<usize>c << 2), s);
          mx = max(mx, s);
        }
        const mOld = load<f32>(Ms + (<usize>r << 2));
        const mNew = max(mOld, mx);
        if (mNew == -Infinity) continue; // every key so far masked
        const acc = Acc + (<usize>(r * Ev) << 2);
        const corr = Mathf.exp(mOld - mNew);
        if (corr != 1) for (let e = 0; e < Ev; e++) store<f32>(acc + (<usize>e << 2), load<f32>(acc + (<usize>e << 2)) * corr);
        let sum: f32 = 0;
        const index = (<u32>(b * L + i)) * <u32>S + <u32>j0;
        for (let c = 0; c < cols; c++) {
          const s = load<f32>(srow + (<usize>c << 2));
          if (s == -Infinity) continue;
          const p = Mathf.exp(s - mNew);
          sum += p;
          if (keep(desc, index + <u32>c)) axpy(acc, Vs + (<usize>(c * Ev) << 2), p, Ev);
        }
        store<f32>(Ls + (<usize>r << 2), load<f32>(Ls + (<usize>r << 2)) * corr + sum);
        store<f32>(Ms + (<usize>r << 2), mNew);
      }
    }
    for (let r = 0; r < rows; r++) {
      const i = i0 + r;
      const l = load<f32>(Ls + (<usize>r << 2));
      const f = dscale / l;
      const acc = Acc + (<usize>(r * Ev) << 2);
      const po = elem(fmt, out, (b * L + i) * Ev);
      for (let e = 0; e < Ev; e++) store1(fmt, elem(fmt, po, e), load<f32>(acc + (<usize>e << 2)) * f);
      store<f32>(lse + (<usize>(b * L + i) << 2), load<f32>(Ms + (<usize>r << 2)) + Mathf.log(l));
    }
  }
}

// @ts-ignore: decorator
@inline function backward(fmt: i32, desc: usize, q: usize, k: usize, v: usize, mask: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  if (stripsFit(desc)) return backwardStrips(fmt, desc, q, k, v, o, lse, g, dq, dk, dv, u0, u1, ws);
  if (tiled(desc)) return backwardTiled(fmt, desc, q, k, v, o, lse, g, dq, dk, dv, u0, u1, ws);
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const causal = word(desc, 26) != 0;
  const scale = wordF(desc, 30);
  const dscale = wordF(desc, 31);
  // scratch: K, V, dK, dV tiles [BC, E|Ev], Q and dO tiles [BR, E|Ev], a row of o, D [L], dQ [L, E]
  const Ks = ws;
  const Vs = Ks + (<usize>(BC * E) << 2);
  const dKs = Vs + (<usize>(BC * Ev) << 2);
  const dVs = dKs + (<usize>(BC * E) << 2);
  const Qs = dVs + (<usize>(BC * Ev) << 2);
  const Gs = Qs + (<usize>(BR * E) << 2);
  const Orow = Gs + (<usize>(BR * Ev) << 2);
  const Ds = Orow + (<usize>Ev << 2);
  const dQs = Ds + (<usize>L << 2);
  for (let b = u0; b < u1; b++) {
    const qb = batchBase(desc, 6, b);
    const kb = batchBase(desc, 9, b);
    const vb = batchBase(desc, 12, b);
    const ob = batchBase(desc, 15, b);
    const gb = batchBase(desc, 18, b);
    const mb = batchBase(desc, 22, b);
    for (let i = 0; i < L; i++) {
      widen(fmt, elem(fmt, o, ob + i * word(desc, 17)), Ev, Orow);
      widen(fmt, elem(fmt, g, gb + i * word(desc, 20)), Ev, Gs);
      store<f32>(Ds + (<usize>i << 2), dot(Orow, Gs, Ev));
    }
    memory.fill(dQs, 0, <usize>(L * E) << 2);
    const lseRow = lse + (<usize>(b * L) << 2);
    for (let j0 = 0; j0 < S; j0 += BC) {
      const cols = min(BC, S - j0);
      for (let c = 0; c < cols; c++) {
        widen(fmt, elem(fmt, k, kb + (j0 + c) * word(desc, 11)), E, Ks + (<usize>(c * E) << 2));
        widen(fmt, elem(fmt, v, vb + (j0 + c) * word(desc, 14)), Ev, Vs + (<usize>(c * Ev) << 2));
      }
      memory.fill(dKs, 0, <usize>(cols * E) << 2);
      memory.fill(dVs, 0, <usize>(cols * Ev) << 2);
      // causal: rows i < j0 see no key of this tile
      for (let i0 = causal ? (j0 / BR) * BR : 0; i0 < L; i0 += BR) {
        const rows = min(BR, L - i0);
        for (let r = 0; r < rows; r++) {
          widen(fmt, elem(fmt, q, qb + (i0 + r) * word(desc, 8)), E, Qs + (<usize>(r * E) << 2));
          widen(fmt, elem(fmt, g, gb + (i0 + r) * word(desc, 20)), Ev, Gs + (<usize>(r * Ev) << 2));
        }
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const qr = Qs + (<usize>(r * E) << 2);
          const gr = Gs + (<usize>(r * Ev) << 2);
          const rowLse = load<f32>(lseRow + (<usize>i << 2));
          const D = load<f32>(Ds + (<usize>i << 2));
          const dqr = dQs + (<usize>(i * E) << 2);
          const index = (<u32>(b * L + i)) * <u32>S + <u32>j0;
          for (let c = 0; c < cols; c++) {
            const kr = Ks + (<usize>(c * E) << 2);
            const s = score(fmt, desc, mask, mb, qr, kr, i, j0 + c, E, scale);
            if (s == -Infinity && rowLse != -Infinity) continue;
            const p = Mathf.exp(s - rowLse);
            let dp: f32 = 0;
            if (keep(desc, index + <u32>c)) {
              const vr = Vs + (<usize>(c * Ev) << 2);
              axpy(dVs + (<usize>(c * Ev) << 2), gr, p * dscale, Ev);
              dp = dot(gr, vr, Ev) * dscale;
            }
            const ds = p * (dp - D) * scale;
            axpy(dqr, kr, ds, E);
            axpy(dKs + (<usize>(c * E) << 2), qr, ds, E);
          }
        }
      }
      for (let c = 0; c < cols; c++) {
        const j = j0 + c;
        const pk = elem(fmt, dk, (b * S + j) * E);
        const pv = elem(fmt, dv, (b * S + j) * Ev);
        for (let e = 0; e < E; e++) store1(fmt, elem(fmt, pk, e), load<f32>(dKs + (<usize>(c * E + e) << 2)));
        for (let e = 0; e < Ev; e++) store1(fmt, elem(fmt, pv, e), load<f32>(dVs + (<usize>(c * Ev + e) << 2)));
      }
    }
    for (let i = 0; i < L; i++) {
      const pq = elem(fmt, dq, (b * L + i) * E);
      for (let e = 0; e < E; e++) store1(fmt, elem(fmt, pq, e), load<f32>(dQs + (<usize>(i * E + e) << 2)));
    }
  }
}

/** Scratch bytes per part (16-byte multiples): the largest of the kernels' that a call of this shape can run. */
export function attention_scratch_bytes(L: i32, S: i32, E: i32, Ev: i32): i32 {
  const fwd = BR * E + BC * E + BC * Ev + BR * BC + BR * Ev + 2 * BR;
  const bwd = 2 * BC * E + 2 * BC * Ev + BR * E + BR * Ev + Ev + L + L * E;
  const strips = S <= STRIP_MAX_KEYS ? stripsScratch(S, round4(E), round4(Ev)) : 0;
  return ((max(max(max(fwd, bwd), backwardTiledScratch(L, E, Ev)), strips) * 4 + 15) >> 4) << 4;
}

/** Query rows per forward work unit of the call described by `desc` (words 5 and up may be unset). */
export function attention_block_rows(desc: usize): i32 {
  return stripsFit(desc) ? STRIP_ROWS : BR;
}

export function attention_forward_f32(desc: usize, q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  forward(F32, desc, q, k, v, mask, out, lse, u0, u1, ws);
}
export function attention_forward_f16(desc: usize, q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  forward(F16, desc, q, k, v, mask, out, lse, u0, u1, ws);
}
export function attention_forward_bf16(desc: usize, q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  forward(BF16, desc, q, k, v, mask, out, lse, u0, u1, ws);
}
export function attention_backward_f32(desc: usize, q: usize, k: usize, v: usize, mask: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  backward(F32, desc, q, k, v, mask, o, lse, g, dq, dk, dv, u0, u1, ws);
}
export function attention_backward_f16(desc: usize, q: usize, k: usize, v: usize, mask: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  backward(F16, desc, q, k, v, mask, o, lse, g, dq, dk, dv, u0, u1, ws);
}
export function attention_backward_bf16(desc: usize, q: usize, k: usize, v: usize, mask: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  backward(BF16, desc, q, k, v, mask, o, lse, g, dq, dk, dv, u0, u1, ws);
}
