/**
 * The fused attention for short sequences (at most STRIP_MAX_KEYS keys; a GPT's block), without a
 * mask tensor or dropout and with head sizes multiples of 4: attention.ts calls these before the
 * online-softmax tiles of attention_tiles.ts. A work unit takes up to STRIP_ROWS queries (the
 * forward) or a whole batch entry (the backward) and keeps every score of its queries in one
 * float32 strip, transposed: S^T[j][i], a row per key, a column per query. That layout puts four
 * queries in a vector, so
 * - each key's K and V rows are widened once per unit (not once per query tile), and only Q and
 *   dO are transposed (once per unit);
 * - the softmax needs no running rescale: its maximum and sum per query are plain vertical
 *   max/add over key rows (exact two-pass softmax instead of the online one);
 * - under a causal mask every product skips the masked triangle at the granularity of its 4 x 8
 *   register blocks: a key row block starts at the first query that sees it, a query block stops
 *   summing at the last key it sees.
 * Products are `rowBlock`s: 4 x 8 blocks in registers, one multiply-add per lane and step through
 * gemm.ts's `madd` (fused in the relaxed-SIMD build), sums over the inner dimension in order,
 * float32 throughout, every output rounded once; results do not depend on the thread split. They
 * differ from the tiles' in float32 summation order only.
 */
import { F32 } from './convert16';
import { rowBlock } from './attention_block';
import { expNormal4 } from './vexp';
import { word, wordF, batchBase, elem, at, round4, load4, loadRow, loadRows, store4, storeRow } from './attention_desc';

/** Queries per forward work unit and per backward pass over the keys (a multiple of 8). */
export const STRIP_ROWS: i32 = 64;
/** The most keys the strips take (larger S: the tiles); bounds the scratch to ~0.5 MB per part. */
export const STRIP_MAX_KEYS: i32 = 256;

/** No mask tensor, no dropout, head sizes multiples of 4, at most STRIP_MAX_KEYS keys. */
// @ts-ignore: decorator
@inline export function stripsFit(desc: usize): bool {
  return word(desc, 21) == 0 && word(desc, 27) == 0 && (word(desc, 2) & 3) == 0 && (word(desc, 3) & 3) == 0 && word(desc, 1) <= STRIP_MAX_KEYS;
}

/**
 * The transpose of a float32 [rows4, n] block (rows4 a multiple of 4, n a multiple of 4) at src:
 * float32 [n, rows4] at dst, by 4 x 4 blocks transposed in registers.
 */
// @ts-ignore: decorator
@inline function transpose(src: usize, rows4: i32, n: i32, dst: usize): void {
  const ldd = <usize>rows4 << 2;
  for (let r = 0; r < rows4; r += 4) {
    const s0 = at(src, r * n);
    const s1 = s0 + (<usize>n << 2);
    const s2 = s1 + (<usize>n << 2);
    const s3 = s2 + (<usize>n << 2);
    for (let e = 0; e < n; e += 4) {
      const o = <usize>e << 2;
      const r0 = v128.load(s0 + o), r1 = v128.load(s1 + o), r2 = v128.load(s2 + o), r3 = v128.load(s3 + o);
      const t0 = v128.shuffle<u32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<u32>(r0, r1, 2, 6, 3, 7);
      const t2 = v128.shuffle<u32>(r2, r3, 0, 4, 1, 5), t3 = v128.shuffle<u32>(r2, r3, 2, 6, 3, 7);
      const d = dst + <usize>e * ldd + (<usize>r << 2);
      v128.store(d, v128.shuffle<u64>(t0, t2, 0, 2));
      v128.store(d + ldd, v128.shuffle<u64>(t0, t2, 1, 3));
      v128.store(d + 2 * ldd, v128.shuffle<u64>(t1, t3, 0, 2));
      v128.store(d + 3 * ldd, v128.shuffle<u64>(t1, t3, 1, 3));
    }
  }
}

/** Lanes of the 4 queries c..c+3 (of the unit's qn) that key j does not reach: padding, or causal j > i0 + c + lane. */
// @ts-ignore: decorator
@inline function maskedLanes(j: i32, i0: i32, c: i32, qn: i32, causal: bool): v128 {
  const cs = i32x4.add(i32x4.splat(c), v128(0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0));
  let m = i32x4.ge_s(cs, i32x4.splat(qn));
  if (causal) m = v128.or(m, i32x4.gt_s(i32x4.splat(j - i0), cs));
  return m;
}

/** First query column (relative to i0, a multiple of 8) that key row block r..r+3 reaches: 0 unless causal. */
// @ts-ignore: decorator
@inline function firstColumn(r: i32, i0: i32, causal: bool): i32 {
  return causal ? max(0, r - i0) & ~7 : 0;
}

/** Scratch floats of forwardStrips / backwardStrips (the larger). */
export function stripsScratch(S: i32, E: i32, Ev: i32): i32 {
  const QB = STRIP_ROWS;
  const S4 = round4(S);
  const fwd = S4 * E + S4 * Ev + 2 * QB * E + S4 * QB + QB * Ev + 2 * QB;
  const bwd = 2 * S4 * E + 2 * S4 * Ev + 2 * QB * E + 2 * QB * Ev + 2 * S4 * QB + 2 * QB + QB * E + Ev;
  return max(fwd, bwd);
}

/** Forward (attention.ts's contract); work unit u = b * nQB + qb: queries [qb * STRIP_ROWS, +STRIP_ROWS) of batch b. */
// @ts-ignore: decorator
@inline export function forwardStrips(fmt: i32, desc: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const nQB = word(desc, 5);
  const causal = word(desc, 26) != 0;
  const scale = f32x4.splat(wordF(desc, 30));
  const QB = STRIP_ROWS;
  const S4 = round4(S);
  // scratch: K [S4, E], V [S4, Ev], Q [QB, E], Q^T [E, QB], P^T [S4, QB], O [QB, Ev], m [QB], l [QB]
  const Ks = ws;
  const Vs = at(Ks, S4 * E);
  const Qs = at(Vs, S4 * Ev);
  const Qt = at(Qs, QB * E);
  const Pt = at(Qt, QB * E);
  const Os = at(Pt, S4 * QB);
  const Ms = at(Os, QB * Ev);
  const Ls = at(Ms, QB);
  let batch = -1;
  let loaded = 0; // key rows of `batch` in Ks, Vs
  for (let u = u0; u < u1; u++) {
    const b = u / nQB;
    const i0 = (u % nQB) * QB;
    const qn = min(QB, L - i0);
    const qn4 = round4(qn);
    const keyEnd = causal ? min(S, i0 + qn) : S;
    const kr4 = round4(keyEnd);
    if (b != batch) {
      batch = b;
      loaded = 0;
    }
    if (loaded < keyEnd) {
      // the unit's keys (rows an earlier unit of the batch loaded stay), padding rows up to kr4 zeroed
      const kb = batchBase(desc, 9, b);
      const vb = batchBase(desc, 12, b);
      for (let j = loaded; j < keyEnd; j++) {
        loadRow(fmt, k, kb + j * word(desc, 11), E, at(Ks, j * E));
        loadRow(fmt, v, vb + j * word(desc, 14), Ev, at(Vs, j * Ev));
      }
      memory.fill(at(Ks, keyEnd * E), 0, <usize>((kr4 - keyEnd) * E) << 2);
      memory.fill(at(Vs, keyEnd * Ev), 0, <usize>((kr4 - keyEnd) * Ev) << 2);
      loaded = keyEnd;
    }
    loadRows(fmt, q, batchBase(desc, 6, b) + i0 * word(desc, 8), word(desc, 8), qn, E, Qs);
    transpose(Qs, qn4, E, Qt);
    // scores S^T = K Q^T, a key row block from the first query it reaches
    for (let r = 0; r < kr4; r += 4) {
      const n0 = firstColumn(r, i0, causal);
      rowBlock(at(Ks, r * E), <usize>E << 2, 4, Qt, qn4, at(Pt, r * qn4), qn4, n0, qn4, 0, E, false);
    }
    // the softmax down each column: four queries a vector, their keys j < the last one's + 1
    const ld = <usize>qn4 << 2;
    for (let c = 0; c < qn4; c += 4) {
      const jEnd = causal ? min(keyEnd, i0 + c + 4) : keyEnd;
      const jFull = causal ? min(jEnd, i0 + c + 1) : jEnd; // keys every lane reaches
      const col = at(Pt, c);
      let mv = f32x4.splat(-Infinity);
      for (let j = 0; j < jEnd; j++) {
        const p = col + <usize>j * ld;
        let s = f32x4.mul(v128.load(p), scale);
        if (j >= jFull) s = v128.bitselect(f32x4.splat(-Infinity), s, maskedLanes(j, i0, c, qn, causal));
        v128.store(p, s);
        mv = f32x4.max(mv, s);
      }
      let sv = f32x4.splat(0);
      for (let j = 0; j < jEnd; j++) {
        const p = col + <usize>j * ld;
        const s = v128.load(p);
        const e = v128.andnot(expNormal4(f32x4.sub(s, mv)), f32x4.eq(s, f32x4.splat(-Infinity)));
        v128.store(p, e);
        sv = f32x4.add(sv, e);
      }
      v128.store(at(Ms, c), mv);
      v128.store(at(Ls, c), sv);
    }
    // O = P V, a query block summing over the keys it reaches
    for (let c = 0; c < qn4; c += 4) {
      const jEnd = causal ? min(keyEnd, i0 + c + 4) : keyEnd;
      rowBlock(at(Pt, c), 4, ld, Vs, Ev, at(Os, c * Ev), Ev, 0, Ev, 0, jEnd, false);
    }
    const ob = b * L + i0;
    for (let r = 0; r < qn; r++) {
      const l = load<f32>(at(Ls, r));
      const f = f32x4.splat(<f32>1 / l);
      const src = at(Os, r * Ev);
      const po = elem(fmt, out, (ob + r) * Ev);
      for (let e = 0; e < Ev; e += 4) store4(fmt, elem(fmt, po, e), f32x4.mul(v128.load(at(src, e)), f));
      store<f32>(at(lse, ob + r), load<f32>(at(Ms, r)) + Mathf.log(l));
    }
  }
}

/** Backward (attention.ts's contract); work unit u = batch b, its queries by blocks of STRIP_ROWS. */
// @ts-ignore: decorator
@inline export function backwardStrips(fmt: i32, desc: usize, q: usize, k: usize, v: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const causal = word(desc, 26) != 0;
  const scale = f32x4.splat(wordF(desc, 30));
  const QB = STRIP_ROWS;
  const S4 = round4(S);
  // scratch: K [S4, E], V [S4, Ev], dK [S4, E], dV [S4, Ev], Q [QB, E], Q^T [E, QB], dO [QB, Ev],
  // dO^T [Ev, QB], P^T [S4, QB], dS^T [S4, QB], lse [QB], D [QB], dQ [QB, E], a row of o [Ev]
  const Ks = ws;
  const Vs = at(Ks, S4 * E);
  const dKs = at(Vs, S4 * Ev);
  const dVs = at(dKs, S4 * E);
  const Qs = at(dVs, S4 * Ev);
  const Qt = at(Qs, QB * E);
  const Gs = at(Qt, QB * E);
  const Gt = at(Gs, QB * Ev);
  const Pt = at(Gt, QB * Ev);
  const dSt = at(Pt, S4 * QB);
  const Lse = at(dSt, S4 * QB);
  const Ds = at(Lse, QB);
  const dQs = at(Ds, QB);
  const Orow = at(dQs, QB * E);
  for (let b = u0; b < u1; b++) {
    const qb = batchBase(desc, 6, b);
    const ob = batchBase(desc, 15, b);
    const gb = batchBase(desc, 18, b);
    // the keys this batch's queries reach (all of them unless causal with L < S)
    const keysUsed = causal ? min(S, L) : S;
    loadRows(fmt, k, batchBase(desc, 9, b), word(desc, 11), keysUsed, E, Ks);
    loadRows(fmt, v, batchBase(desc, 12, b), word(desc, 14), keysUsed, Ev, Vs);
    memory.fill(dKs, 0, <usize>(round4(keysUsed) * E) << 2);
    memory.fill(dVs, 0, <usize>(round4(keysUsed) * Ev) << 2);
    for (let i0 = 0; i0 < L; i0 += QB) {
      const qn = min(QB, L - i0);
      const qn4 = round4(qn);
      const ld = <usize>qn4 << 2;
      const keyEnd = causal ? min(S, i0 + qn) : S;
      const kr4 = round4(keyEnd);
      loadRows(fmt, q, qb + i0 * word(desc, 8), word(desc, 8), qn, E, Qs);
      transpose(Qs, qn4, E, Qt);
      loadRows(fmt, g, gb + i0 * word(desc, 20), word(desc, 20), qn, Ev, Gs);
      transpose(Gs, qn4, Ev, Gt);
      for (let r = 0; r < qn4; r++) {
        let D: f32 = 0;
        let rowLse: f32 = 0;
        if (r < qn) {
          loadRow(fmt, o, ob + (i0 + r) * word(desc, 17), Ev, Orow);
          const gr = at(Gs, r * Ev);
          let d4 = f32x4.splat(0);
          for (let e = 0; e < Ev; e += 4) d4 = f32x4.add(d4, f32x4.mul(v128.load(at(Orow, e)), v128.load(at(gr, e))));
          D = f32x4.extract_lane(d4, 0) + f32x4.extract_lane(d4, 1) + (f32x4.extract_lane(d4, 2) + f32x4.extract_lane(d4, 3));
          rowLse = load<f32>(at(lse, b * L + i0 + r));
        }
        store<f32>(at(Ds, r), D);
        store<f32>(at(Lse, r), rowLse);
      }
      // per key row block: S^T = K Q^T and dP^T = V dO^T from the first query it reaches, then
      // P^T = exp(S^T * scale - lse) and dS^T = P^T (dP^T - D) * scale in place
      for (let r = 0; r < kr4; r += 4) {
        const n0 = firstColumn(r, i0, causal);
        const pr = at(Pt, r * qn4);
        const dr = at(dSt, r * qn4);
        rowBlock(at(Ks, r * E), <usize>E << 2, 4, Qt, qn4, pr, qn4, n0, qn4, 0, E, false);
        rowBlock(at(Vs, r * Ev), <usize>Ev << 2, 4, Gt, qn4, dr, qn4, n0, qn4, 0, Ev, false);
        for (let j = r; j < r + 4; j++) {
          const prow = pr + <usize>(j - r) * ld;
          const drow = dr + <usize>(j - r) * ld;
          if (j >= keyEnd) {
            // a padding key row: no weight (read by dV and dK over these columns)
            memory.fill(prow + (<usize>n0 << 2), 0, <usize>(qn4 - n0) << 2);
            memory.fill(drow + (<usize>n0 << 2), 0, <usize>(qn4 - n0) << 2);
            continue;
          }
          for (let c = n0; c < qn4; c += 4) {
            let p = expNormal4(f32x4.sub(f32x4.mul(v128.load(at(prow, c)), scale), v128.load(at(Lse, c))));
            p = v128.andnot(p, maskedLanes(j, i0, c, qn, causal));
            v128.store(at(prow, c), p);
            v128.store(at(drow, c), f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(at(drow, c)), v128.load(at(Ds, c)))), scale));
          }
        }
        // dV += P^T dO and dK += dS^T Q over the queries this row block reaches
        rowBlock(pr, ld, 4, Gs, Ev, at(dVs, r * Ev), Ev, 0, Ev, n0, qn4, true);
        rowBlock(dr, ld, 4, Qs, E, at(dKs, r * E), E, 0, E, n0, qn4, true);
      }
      // dQ = dS K, a query block summing over the keys it reaches
      for (let c = 0; c < qn4; c += 4) {
        const jEnd = causal ? min(keyEnd, i0 + c + 4) : keyEnd;
        rowBlock(at(dSt, c), 4, ld, Ks, E, at(dQs, c * E), E, 0, E, 0, jEnd, false);
      }
      for (let r = 0; r < qn; r++) storeRow(fmt, elem(fmt, dq, (b * L + i0 + r) * E), at(dQs, r * E), E);
    }
    for (let j = 0; j < S; j++) {
      if (j < keysUsed) {
        storeRow(fmt, elem(fmt, dk, (b * S + j) * E), at(dKs, j * E), E);
        storeRow(fmt, elem(fmt, dv, (b * S + j) * Ev), at(dVs, j * Ev), Ev);
      } else {
        // keys no query reaches (causal, L < S): zero gradients
        memory.fill(elem(fmt, dk, (b * S + j) * E), 0, <usize>E << (fmt == F32 ? 2 : 1));
        memory.fill(elem(fmt, dv, (b * S + j) * Ev), 0, <usize>Ev << (fmt == F32 ? 2 : 1));
      }
    }
  }
}
