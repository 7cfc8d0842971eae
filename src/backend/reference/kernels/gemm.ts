/**
 * Plain matrix products over Float64Array slices, C (+)= op(A) * op(B), row-major.
 * Loop orders keep the innermost loop on contiguous memory; no blocking (this is the reference).
 */

/** C[M,N] += A[M,K] * B[K,N] */
export function gemmNN(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  for (let i = 0; i < M; i++) {
    const cRow = c0 + i * N;
    for (let k = 0; k < K; k++) {
      const a = A[a0 + i * K + k]!;
      const bRow = b0 + k * N;
      for (let j = 0; j < N; j++) C[cRow + j]! += a * B[bRow + j]!;
    }
  }
}

/** C[M,N] += A^T * B, with A stored as [K,M] and B as [K,N]. */
export function gemmTN(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  for (let k = 0; k < K; k++) {
    const bRow = b0 + k * N;
    for (let i = 0; i < M; i++) {
      const a = A[a0 + k * M + i]!;
      const cRow = c0 + i * N;
      for (let j = 0; j < N; j++) C[cRow + j]! += a * B[bRow + j]!;
    }
  }
}

/** C[M,N] += A * B^T, with A stored as [M,K] and B as [N,K]. */
export function gemmNT(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  for (let i = 0; i < M; i++) {
    const aRow = a0 + i * K;
    for (let j = 0; j < N; j++) {
      const bRow = b0 + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[aRow + k]! * B[bRow + k]!;
      C[c0 + i * N + j]! += s;
    }
  }
}
