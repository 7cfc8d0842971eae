/**
 * The fused attention's tiles as small register-blocked products (attention.ts calls these when
 * there is no mask tensor and no dropout, and the head sizes E and Ev are multiples of 4: the
 * GPT's case). The scalar path of attention.ts computed every score as a horizontal dot product
 * and every weighted row as its own axpy with a scalar exp: ~150 instructions per (query, key)
 * pair for 64 multiply-adds. Here each tile product keeps a 4 x 4 block of the result in
 * registers (one vector load and four splats per step of the inner dimension), and the softmax's
 * exp runs on four lanes (vexp.ts). Sums run in float32 in a fixed order that does not depend on
 * the thread split, so results are deterministic; they differ from the scalar path's in rounding
 * only. Multiply-adds go through gemm.ts's `madd` (fused in the relaxed-SIMD build, as the GEMM's).
 *
 * Tile buffers are float32, row-major, rows and columns padded to multiples of 4 with zeros.
 */
import { F32 } from './convert16';
import { expNormal4 } from './vexp';
import { rowBlock } from './attention_block';
import { word, wordF, batchBase, elem, at, round4, load4, loadRow, loadRows, store4, storeRow } from './attention_desc';

export const TILE_ROWS: i32 = 16;
export const TILE_COLS: i32 = 32;

/**
 * C[R, N] (+)= op(A) B[K, N] (R, N multiples of 4; ldb, ldc in floats), op(A)[i, k] the float32 at
 * a + i * rowStep + k * kStep (bytes): row-major A[R, K] or a transposed A[K, R]. Each 4 x 8 block
 * of C (4 x 4 at a column tail) sums over k in order, so the two block widths give the same sums.
 */
// @ts-ignore: decorator
@inline function mm(a: usize, rowStep: usize, kStep: usize, b: usize, ldb: i32, c: usize, ldc: i32, R: i32, N: i32, K: i32, accumulate: bool): void {
  for (let r = 0; r < R; r += 4) rowBlock(a + <usize>r * rowStep, rowStep, kStep, b, ldb, c + (<usize>(r * ldc) << 2), ldc, 0, N, 0, K, accumulate);
}

/** C[R, N] (+)= A[R, K] B[K, N] (R, N multiples of 4; lda, ldb, ldc in floats). */
function mmAB(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, R: i32, N: i32, K: i32, accumulate: bool): void {
  mm(a, <usize>lda << 2, 4, b, ldb, c, ldc, R, N, K, accumulate);
}

/** C[R, N] += A[K, R]^T B[K, N] (R, N multiples of 4). */
function mmAtB(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, R: i32, N: i32, K: i32): void {
  mm(a, 4, <usize>lda << 2, b, ldb, c, ldc, R, N, K, true);
}

/** The same rows transposed: float32 [n, TILE_COLS], columns rows..round4(rows) zeroed. */
// @ts-ignore: decorator
@inline function loadRowsT(fmt: i32, p: usize, first: i32, ld: i32, rows: i32, n: i32, dst: usize): void {
  const rows4 = round4(rows);
  for (let r = 0; r < rows; r++) {
    const src = elem(fmt, p, first + r * ld);
    for (let e = 0; e < n; e += 4) {
      const v = load4(fmt, elem(fmt, src, e));
      const d = at(dst, e * TILE_COLS + r);
      v128.store32_lane(d, v, 0);
      v128.store32_lane(d, v, 1, TILE_COLS * 4);
      v128.store32_lane(d, v, 2, TILE_COLS * 8);
      v128.store32_lane(d, v, 3, TILE_COLS * 12);
    }
  }
  for (let r = rows; r < rows4; r++) for (let e = 0; e < n; e++) store<f32>(at(dst, e * TILE_COLS + r), 0);
}

/** Lanes of the 4 columns from j (key index) that are masked for query row i: past `jEnd`, or causal j > i. */
// @ts-ignore: decorator
@inline function maskedLanes(j: i32, jEnd: i32, i: i32, causal: bool): v128 {
  const js = i32x4.add(i32x4.splat(j), v128(0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0));
  let m = i32x4.ge_s(js, i32x4.splat(jEnd));
  if (causal) m = v128.or(m, i32x4.gt_s(js, i32x4.splat(i)));
  return m;
}

/** Forward (attention.ts's contract), no mask tensor, no dropout, E and Ev multiples of 4. */
// @ts-ignore: decorator
@inline export function forwardTiled(fmt: i32, desc: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, u0: i32, u1: i32, ws: usize): void {
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const nQB = word(desc, 5);
  const causal = word(desc, 26) != 0;
  const scale = f32x4.splat(wordF(desc, 30));
  const BR = TILE_ROWS, BC = TILE_COLS;
  // scratch: Q [BR, E], K^T [E, BC], V [BC, Ev], scores / weights [BR, BC], acc [BR, Ev], m [BR], l [BR]
  const Qs = ws;
  const Kt = Qs + (<usize>(BR * E) << 2);
  const Vs = Kt + (<usize>(BC * E) << 2);
  const Ss = Vs + (<usize>(BC * Ev) << 2);
  const Acc = Ss + (<usize>(BR * BC) << 2);
  const Ms = Acc + (<usize>(BR * Ev) << 2);
  const Ls = Ms + (<usize>BR << 2);
  for (let u = u0; u < u1; u++) {
    const b = u / nQB;
    const i0 = (u % nQB) * BR;
    const rows = min(BR, L - i0);
    const rows4 = round4(rows);
    const kb = batchBase(desc, 9, b);
    const vb = batchBase(desc, 12, b);
    loadRows(fmt, q, batchBase(desc, 6, b) + i0 * word(desc, 8), word(desc, 8), rows, E, Qs);
    for (let r = 0; r < rows4; r++) {
      store<f32>(at(Ms, r), -Infinity);
      store<f32>(at(Ls, r), 0);
    }
    memory.fill(Acc, 0, <usize>(rows4 * Ev) << 2);
    const jEnd = causal ? min(S, i0 + rows) : S;
    for (let j0 = 0; j0 < jEnd; j0 += BC) {
      const cols = min(BC, jEnd - j0);
      const cols4 = round4(cols);
      loadRowsT(fmt, k, kb + j0 * word(desc, 11), word(desc, 11), cols, E, Kt);
      loadRows(fmt, v, vb + j0 * word(desc, 14), word(desc, 14), cols, Ev, Vs);
      mmAB(Qs, E, Kt, BC, Ss, BC, rows4, cols4, E, false);
      for (let r = 0; r < rows4; r++) {
        const srow = Ss + (<usize>(r * BC) << 2);
        const i = i0 + r;
        let mv = f32x4.splat(-Infinity);
        for (let c = 0; c < cols4; c += 4) {
          let s = f32x4.mul(v128.load(at(srow, c)), scale);
          s = v128.bitselect(f32x4.splat(-Infinity), s, maskedLanes(j0 + c, j0 + cols, i, causal));
          // (the weights below are zeroed on these lanes again: e^-Inf is not computed)
          v128.store(at(srow, c), s);
          mv = f32x4.max(mv, s);
        }
        const mOld = load<f32>(at(Ms, r));
        const mNew = max(mOld, max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3))));
        if (r >= rows || mNew == -Infinity) {
          // a padding row, or every key so far masked: no weight
          memory.fill(srow, 0, <usize>cols4 << 2);
          continue;
        }
        const corr = Mathf.exp(mOld - mNew);
        if (corr != 1) {
          const cv = f32x4.splat(corr);
          const acc = Acc + (<usize>(r * Ev) << 2);
          for (let e = 0; e < Ev; e += 4) v128.store(at(acc, e), f32x4.mul(v128.load(at(acc, e)), cv));
        }
        const mvNew = f32x4.splat(mNew);
        let sv = f32x4.splat(0);
        for (let c = 0; c < cols4; c += 4) {
          const s = v128.load(at(srow, c));
          const p = v128.andnot(expNormal4(f32x4.sub(s, mvNew)), f32x4.eq(s, f32x4.splat(-Infinity)));
          v128.store(at(srow, c), p);
          sv = f32x4.add(sv, p);
        }
        const sum = f32x4.extract_lane(sv, 0) + f32x4.extract_lane(sv, 1) + (f32x4.extract_lane(sv, 2) + f32x4.extract_lane(sv, 3));
        store<f32>(at(Ls, r), load<f32>(at(Ls, r)) * corr + sum);
        store<f32>(at(Ms, r), mNew);
      }
      mmAB(Ss, BC, Vs, Ev, Acc, Ev, rows4, Ev, cols4, true);
    }
    for (let r = 0; r < rows; r++) {
      const i = i0 + r;
      const l = load<f32>(at(Ls, r));
      const f = f32x4.splat(<f32>1 / l);
      const acc = Acc + (<usize>(r * Ev) << 2);
      const po = elem(fmt, out, (b * L + i) * Ev);
      for (let e = 0; e < Ev; e += 4) store4(fmt, elem(fmt, po, e), f32x4.mul(v128.load(at(acc, e)), f));
      store<f32>(at(lse, b * L + i), load<f32>(at(Ms, r)) + Mathf.log(l));
    }
  }
}

/** Scratch floats of backwardTiled. */
export function backwardTiledScratch(L: i32, E: i32, Ev: i32): i32 {
  const BR = TILE_ROWS, BC = TILE_COLS;
  return 3 * BC * E + 2 * BC * Ev + BR * E + BR * Ev + 2 * BR * BC + Ev + round4(L) + round4(L) * E;
}

/** Backward (attention.ts's contract), no mask tensor, no dropout, E and Ev multiples of 4. */
// @ts-ignore: decorator
@inline export function backwardTiled(fmt: i32, desc: usize, q: usize, k: usize, v: usize, o: usize, lse: usize, g: usize, dq: usize, dk: usize, dv: usize, u0: i32, u1: i32, ws: usize): void {
  const L = word(desc, 0);
  const S = word(desc, 1);
  const E = word(desc, 2);
  const Ev = word(desc, 3);
  const causal = word(desc, 26) != 0;
  const scale = f32x4.splat(wordF(desc, 30));
  const BR = TILE_ROWS, BC = TILE_COLS;
  // scratch: K [BC, E], K^T [E, BC], V^T [Ev, BC], dK [BC, E], dV [BC, Ev], Q [BR, E], dO [BR, Ev],
  // P [BR, BC], dS [BR, BC], a row of o [Ev], D [L4], dQ [L4, E]
  const Ks = ws;
  const Kt = Ks + (<usize>(BC * E) << 2);
  const Vt = Kt + (<usize>(BC * E) << 2);
  const dKs = Vt + (<usize>(BC * Ev) << 2);
  const dVs = dKs + (<usize>(BC * E) << 2);
  const Qs = dVs + (<usize>(BC * Ev) << 2);
  const Gs = Qs + (<usize>(BR * E) << 2);
  const Ps = Gs + (<usize>(BR * Ev) << 2);
  const dSs = Ps + (<usize>(BR * BC) << 2);
  const Orow = dSs + (<usize>(BR * BC) << 2);
  const Ds = Orow + (<usize>Ev << 2);
  const dQs = Ds + (<usize>round4(L) << 2);
  for (let b = u0; b < u1; b++) {
    const qb = batchBase(desc, 6, b);
    const kb = batchBase(desc, 9, b);
    const vb = batchBase(desc, 12, b);
    const ob = batchBase(desc, 15, b);
    const gb = batchBase(desc, 18, b);
    for (let i = 0; i < L; i++) {
      loadRow(fmt, o, ob + i * word(desc, 17), Ev, Orow);
      loadRow(fmt, g, gb + i * word(desc, 20), Ev, Gs);
      let dv4 = f32x4.splat(0);
      for (let e = 0; e < Ev; e += 4) dv4 = f32x4.add(dv4, f32x4.mul(v128.load(at(Orow, e)), v128.load(at(Gs, e))));
      store<f32>(at(Ds, i), f32x4.extract_lane(dv4, 0) + f32x4.extract_lane(dv4, 1) + (f32x4.extract_lane(dv4, 2) + f32x4.extract_lane(dv4, 3)));
    }
    memory.fill(dQs, 0, <usize>(round4(L) * E) << 2);
    const lseRow = lse + (<usize>(b * L) << 2);
    for (let j0 = 0; j0 < S; j0 += BC) {
      const cols = min(BC, S - j0);
      const cols4 = round4(cols);
      loadRows(fmt, k, kb + j0 * word(desc, 11), word(desc, 11), cols, E, Ks);
      loadRowsT(fmt, k, kb + j0 * word(desc, 11), word(desc, 11), cols, E, Kt);
      loadRowsT(fmt, v, vb + j0 * word(desc, 14), word(desc, 14), cols, Ev, Vt);
      memory.fill(dKs, 0, <usize>(cols4 * E) << 2);
      memory.fill(dVs, 0, <usize>(cols4 * Ev) << 2);
      // causal: rows i < j0 see no key of this tile
      for (let i0 = causal ? (j0 / BR) * BR : 0; i0 < L; i0 += BR) {
        const rows = min(BR, L - i0);
        const rows4 = round4(rows);
        loadRows(fmt, q, qb + i0 * word(desc, 8), word(desc, 8), rows, E, Qs);
        loadRows(fmt, g, gb + i0 * word(desc, 20), word(desc, 20), rows, Ev, Gs);
        mmAB(Qs, E, Kt, BC, Ps, BC, rows4, cols4, E, false);
        mmAB(Gs, Ev, Vt, BC, dSs, BC, rows4, cols4, Ev, false);
        for (let r = 0; r < rows4; r++) {
          const prow = Ps + (<usize>(r * BC) << 2);
          const drow = dSs + (<usize>(r * BC) << 2);
          const i = i0 + r;
          if (r >= rows) {
            memory.fill(prow, 0, <usize>cols4 << 2);
            memory.fill(drow, 0, <usize>cols4 << 2);
            continue;
          }
          const rowLse = f32x4.splat(load<f32>(at(lseRow, i)));
          const D = f32x4.splat(load<f32>(at(Ds, i)));
          for (let c = 0; c < cols4; c += 4) {
            let p = expNormal4(f32x4.sub(f32x4.mul(v128.load(at(prow, c)), scale), rowLse));
            p = v128.andnot(p, maskedLanes(j0 + c, j0 + cols, i, causal));
            v128.store(at(prow, c), p);
            v128.store(at(drow, c), f32x4.mul(f32x4.mul(p, f32x4.sub(v128.load(at(drow, c)), D)), scale));
          }
        }
        mmAtB(Ps, BC, Gs, Ev, dVs, Ev, cols4, Ev, rows4);
        mmAtB(dSs, BC, Qs, E, dKs, E, cols4, E, rows4);
        mmAB(dSs, BC, Ks, E, dQs + (<usize>(i0 * E) << 2), E, rows4, E, cols4, true);
      }
      for (let c = 0; c < cols; c++) {
        const j = j0 + c;
        const pk = elem(fmt, dk, (b * S + j) * E);
        const pv = elem(fmt, dv, (b * S + j) * Ev);
        storeRow(fmt, pk, at(dKs, c * E), E);
        storeRow(fmt, pv, at(dVs, c * Ev), Ev);
      }
    }
    for (let i = 0; i < L; i++) {
      const pq = elem(fmt, dq, (b * L + i) * E);
      storeRow(fmt, pq, at(dQs, i * E), E);
    }
  }
}
