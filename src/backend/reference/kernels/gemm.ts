/**
 * Plain matrix products over Float64Array slices, C += op(A) * op(B), row-major. Four rows (or
 * four dot products) at a time share each load of B; no packing or cache blocking: this is the
 * reference, fast enough to train small networks, not the fast path.
 */

/** C[M,N] += A[M,K] * B[K,N] */
export function gemmNN(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  gemmRows(M, N, K, C, c0, B, b0, A, a0, K, 1);
}

/** C[M,N] += A^T * B, with A stored as [K,M] and B as [K,N]. */
export function gemmTN(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  gemmRows(M, N, K, C, c0, B, b0, A, a0, 1, M);
}

/**
 * Rows of C as sums of scaled rows of B: C[i,:] += sum_k A(i,k) * B[k,:], four rows of C at a time,
 * where A(i,k) = A[a0 + i * si + k * sk] (so A can be read transposed).
 */
function gemmRows(
  M: number, N: number, K: number, C: Float64Array, c0: number, B: Float64Array, b0: number,
  A: Float64Array, a0: number, si: number, sk: number,
): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const r0 = c0 + i * N;
    const r1 = r0 + N;
    const r2 = r1 + N;
    const r3 = r2 + N;
    for (let k = 0; k < K; k++) {
      const p = a0 + i * si + k * sk;
      const x0 = A[p]!;
      const x1 = A[p + si]!;
      const x2 = A[p + 2 * si]!;
      const x3 = A[p + 3 * si]!;
      const bRow = b0 + k * N;
      for (let j = 0; j < N; j++) {
        const b = B[bRow + j]!;
        C[r0 + j]! += x0 * b;
        C[r1 + j]! += x1 * b;
        C[r2 + j]! += x2 * b;
        C[r3 + j]! += x3 * b;
      }
    }
  }
  for (; i < M; i++) {
    const r = c0 + i * N;
    for (let k = 0; k < K; k++) {
      const x = A[a0 + i * si + k * sk]!;
      const bRow = b0 + k * N;
      for (let j = 0; j < N; j++) C[r + j]! += x * B[bRow + j]!;
    }
  }
}

/** C[M,N] += A * B^T, with A stored as [M,K] and B as [N,K]: dot products, four at a time. */
export function gemmNT(A: Float64Array, a0: number, B: Float64Array, b0: number, C: Float64Array, c0: number, M: number, N: number, K: number): void {
  for (let i = 0; i < M; i++) {
    const aRow = a0 + i * K;
    const cRow = c0 + i * N;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const q0 = b0 + j * K;
      const q1 = q0 + K;
      const q2 = q1 + K;
      const q3 = q2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = A[aRow + k]!;
        s0 += x * B[q0 + k]!;
        s1 += x * B[q1 + k]!;
        s2 += x * B[q2 + k]!;
        s3 += x * B[q3 + k]!;
      }
      C[cRow + j]! += s0;
      C[cRow + j + 1]! += s1;
      C[cRow + j + 2]! += s2;
      C[cRow + j + 3]! += s3;
    }
    for (; j < N; j++) {
      const q = b0 + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[aRow + k]! * B[q + k]!;
      C[cRow + j]! += s;
    }
  }
}
