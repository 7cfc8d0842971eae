/** Every kernel with a WGSL implementation, by name; the rest run on the host (fallback.ts). */
import type { KernelParams, KernelTensor } from '../../backend.js';
import type { KernelContext } from './common.js';
import { ELEMENTWISE_OPS, runElementwise } from './elementwise.js';
import { REDUCE_KERNELS, runReduce } from './reduce.js';
import { INDEXING_KERNELS, indexingSupports, runIndexing } from './indexing.js';
import { POOL_KERNELS, runPool } from './pool.js';
import { MATMUL_KERNELS, matmulSupports, runMatmul } from './matmul.js';
import { OPTIM_KERNELS, runOptim } from './optim.js';
import { BATCH_NORM_KERNELS, runBatchNorm } from './batch_norm.js';
import { NLL_KERNELS, runNll } from './nll.js';

export interface GpuKernel {
  /** false sends this call to the host fallback (e.g. a case the WGSL does not cover) */
  supports?(inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams): boolean;
  run(ctx: KernelContext, kernel: string, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams): void;
}

const elementwise: GpuKernel = { run: runElementwise };
const group = (names: readonly string[], k: GpuKernel) => Object.fromEntries(names.map((n) => [n, k]));

export const GPU_KERNELS: Readonly<Record<string, GpuKernel>> = {
  ...group(Object.keys(ELEMENTWISE_OPS), elementwise),
  where: elementwise,
  fill: elementwise,
  ...group(REDUCE_KERNELS, { run: runReduce }),
  ...Object.fromEntries(INDEXING_KERNELS.map((n) => [n, { run: runIndexing, supports: (ins: readonly KernelTensor[]) => indexingSupports(n, ins) }])),
  ...group(POOL_KERNELS, { run: runPool }),
  ...group(OPTIM_KERNELS, { run: runOptim }),
  ...group(BATCH_NORM_KERNELS, { run: runBatchNorm }),
  ...group(NLL_KERNELS, { run: runNll }),
  ...Object.fromEntries(MATMUL_KERNELS.map((n) => [n, { run: runMatmul, supports: (ins: readonly KernelTensor[]) => matmulSupports(n, ins) }])),
};
