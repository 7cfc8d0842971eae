/** Batched matrix multiply [B,M,K] x [B,K,N] -> [B,M,N]; accumulation in float64. */
import type { NoParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';
import { gemmNN } from './gemm.js';

const bmm: RefKernel<NoParams> = ([a, b]) => {
  const [B, M, K] = a!.shape as [number, number, number];
  const N = b!.shape[2]!;
  const C = new Float64Array(B * M * N);
  for (let batch = 0; batch < B; batch++) gemmNN(a!.data, batch * M * K, b!.data, batch * K * N, C, batch * M * N, M, N, K);
  return [C];
};

export const linalgKernels = { bmm } satisfies RefKernels;
