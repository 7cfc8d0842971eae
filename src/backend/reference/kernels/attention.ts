/**
 * The fused attention kernels (src/nn/attention.ts, op 'flashAttention') in plain TypeScript: the
 * definition the native ones (wasm, webgpu) are tested against. q [N.., L, E], k [N.., S, E],
 * v [N.., S, Ev] with the same batch dims (N = their product), an optional mask [N.., L, S] (bool:
 * true may attend; float: added to the scores).
 *
 *   flashAttentionForward(q, k, v, [mask])              -> out [N.., L, Ev], lse float32 [N.., L]
 *   flashAttentionBackward(q, k, v, [mask], out, lse, g) -> dq, dk, dv
 *
 * Forward, per query row i, one pass over the keys with FlashAttention's online softmax (a running
 * maximum m and sum l; the accumulator is rescaled by exp(m_old - m_new) when the maximum grows):
 *   s_j = scale * q_i . k_j (+ mask), skipped when masked (causal j > i, a false bool mask, -inf)
 *   acc = sum_j exp(s_j - m) keep_j v_j,  l = sum_j exp(s_j - m)
 *   out_i = acc / l * dropoutScale,  lse_i = m + log(l)
 * Backward, from the saved lse (no score matrix is kept): D_i = dO_i . out_i and, per (i, j),
 *   p = exp(s_j - lse_i), dv_j += keep p dscale dO_i, dp = keep dscale (dO_i . v_j),
 *   ds = p (dp - D_i), dq_i += scale ds k_j, dk_j += scale ds q_i.
 * keep_j is the counter-based dropout mask of element (b * L + i) * S + j (src/random/counter_hash.ts).
 * Arithmetic in float64; every output rounded once into its dtype by the backend.
 */
import type { FlashAttentionParams } from '../../kernels.js';
import type { RefArray, RefKernel, RefKernels } from './types.js';
import { counterHash } from '../../../random/counter_hash.js';

interface Geometry {
  N: number;
  L: number;
  S: number;
  E: number;
  Ev: number;
}

function geometry(q: RefArray, k: RefArray, v: RefArray): Geometry {
  const L = q.shape[q.shape.length - 2]!;
  const E = q.shape[q.shape.length - 1]!;
  const S = k.shape[k.shape.length - 2]!;
  const Ev = v.shape[v.shape.length - 1]!;
  const N = q.data.length / (L * E);
  return { N, L, S, E, Ev };
}

/** The score of (b, i, j), or -Infinity where masked; and whether dropout keeps it. */
function scorer(q: RefArray, k: RefArray, mask: RefArray | undefined, g: Geometry, p: FlashAttentionParams) {
  const { L, S, E } = g;
  return {
    score(b: number, i: number, j: number): number {
      if (p.causal && j > i) return -Infinity;
      let m = 0;
      if (mask) {
        m = mask.data[(b * L + i) * S + j]!;
        if (p.mask === 'bool') {
          if (m === 0) return -Infinity;
          m = 0;
        }
      }
      const qo = (b * L + i) * E;
      const ko = (b * S + j) * E;
      let dot = 0;
      for (let e = 0; e < E; e++) dot += q.data[qo + e]! * k.data[ko + e]!;
      return dot * p.scale + m;
    },
    keep(b: number, i: number, j: number): boolean {
      return p.dropoutThreshold === 0 || counterHash(p.seed0, p.seed1, (b * L + i) * S + j) >>> 8 >= p.dropoutThreshold;
    },
  };
}

const flashAttentionForward: RefKernel<FlashAttentionParams> = (inputs, p) => {
  const [q, k, v] = inputs as [RefArray, RefArray, RefArray];
  const mask = p.mask === 'none' ? undefined : inputs[3];
  const g = geometry(q, k, v);
  const { N, L, S, Ev } = g;
  const { score, keep } = scorer(q, k, mask, g, p);
  const out = new Float64Array(N * L * Ev);
  const lse = new Float64Array(N * L);
  const acc = new Float64Array(Ev);
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < L; i++) {
      let m = -Infinity;
      let l = 0;
      acc.fill(0);
      for (let j = 0; j < S; j++) {
        const s = score(b, i, j);
        if (s === -Infinity) continue;
        if (s > m) {
          // the running maximum grows: rescale what was summed under the old one
          const r = Math.exp(m - s);
          l *= r;
          for (let e = 0; e < Ev; e++) acc[e]! *= r;
          m = s;
        }
        const w = Math.exp(s - m);
        l += w;
        if (!keep(b, i, j)) continue;
        const vo = (b * S + j) * Ev;
        for (let e = 0; e < Ev; e++) acc[e]! += w * v.data[vo + e]!;
      }
      const o = (b * L + i) * Ev;
      for (let e = 0; e < Ev; e++) out[o + e] = (acc[e]! / l) * p.dropoutScale;
      lse[b * L + i] = m + Math.log(l);
    }
  }
  return [out, lse];
};

const flashAttentionBackward: RefKernel<FlashAttentionParams> = (inputs, p) => {
  const [q, k, v] = inputs as [RefArray, RefArray, RefArray];
  const hasMask = p.mask !== 'none';
  const mask = hasMask ? inputs[3] : undefined;
  const [out, lse, dO] = inputs.slice(hasMask ? 4 : 3) as [RefArray, RefArray, RefArray];
  const g = geometry(q, k, v);
  const { N, L, S, E, Ev } = g;
  const { score, keep } = scorer(q, k, mask, g, p);
  const dq = new Float64Array(q.data.length);
  const dk = new Float64Array(k.data.length);
  const dv = new Float64Array(v.data.length);
  for (let b = 0; b < N; b++) {
    for (let i = 0; i < L; i++) {
      const oo = (b * L + i) * Ev;
      let D = 0;
      for (let e = 0; e < Ev; e++) D += dO.data[oo + e]! * out.data[oo + e]!;
      const rowLse = lse.data[b * L + i]!;
      const qo = (b * L + i) * E;
      for (let j = 0; j < S; j++) {
        const s = score(b, i, j);
        if (s === -Infinity && rowLse !== -Infinity) continue;
        const prob = Math.exp(s - rowLse);
        const kept = keep(b, i, j);
        const vo = (b * S + j) * Ev;
        let dp = 0;
        if (kept) {
          for (let e = 0; e < Ev; e++) {
            dv[vo + e]! += prob * p.dropoutScale * dO.data[oo + e]!;
            dp += dO.data[oo + e]! * v.data[vo + e]!;
          }
          dp *= p.dropoutScale;
        }
        const ds = prob * (dp - D) * p.scale;
        const ko = (b * S + j) * E;
        for (let e = 0; e < E; e++) {
          dq[qo + e]! += ds * k.data[ko + e]!;
          dk[ko + e]! += ds * q.data[qo + e]!;
        }
      }
    }
  }
  return [dq, dk, dv];
};

export const attentionKernels = { flashAttentionForward, flashAttentionBackward } satisfies RefKernels;
