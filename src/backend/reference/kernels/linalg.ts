/** Batched matrix multiply [B,M,K] x [B,K,N] -> [B,M,N]; the row of C accumulates in float64. */
import type { RefKernel } from './types.js';

const bmm: RefKernel = ([a, b]) => {
  const [B, M, K] = a!.shape as [number, number, number];
  const N = b!.shape[2]!;
  const A = a!.data;
  const Bm = b!.data;
  const C = new Float64Array(B * M * N);
  for (let batch = 0; batch < B; batch++) {
    const aBase = batch * M * K;
    const bBase = batch * K * N;
    const cBase = batch * M * N;
    for (let i = 0; i < M; i++) {
      const cRow = cBase + i * N;
      for (let k = 0; k < K; k++) {
        const aik = A[aBase + i * K + k]!;
        if (aik === 0) continue;
        const bRow = bBase + k * N;
        for (let j = 0; j < N; j++) C[cRow + j]! += aik * Bm[bRow + j]!;
      }
    }
  }
  // 0 * Inf must still give NaN: redo rows whose skipped zeros met a non-finite B value.
  if (!Bm.every(Number.isFinite)) return [naiveBmm(A, Bm, B, M, K, N)];
  return [C];
};

function naiveBmm(A: Float64Array, Bm: Float64Array, B: number, M: number, K: number, N: number): Float64Array {
  const C = new Float64Array(B * M * N);
  for (let batch = 0; batch < B; batch++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A[(batch * M + i) * K + k]! * Bm[(batch * K + k) * N + j]!;
        C[(batch * M + i) * N + j] = s;
      }
  return C;
}

export const linalgKernels: Record<string, RefKernel> = { bmm };
