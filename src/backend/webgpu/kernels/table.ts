/**
 * The kernels this backend runs as WGSL, by name (typed against the contract in
 * src/backend/kernels.ts: an unknown name or a handler taking other params is a compile error);
 * every other kernel, and every call a handler's `supports` declines, runs on the host (fallback.ts).
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelName, KernelParams } from '../../kernels.js';
import type { KernelContext } from './common.js';
import { ELEMENTWISE_OPS, runElementwise, type ElementwiseKernel } from './elementwise.js';
import { REDUCE_KERNELS, runReduce } from './reduce.js';
import { INDEXING_KERNELS, indexingSupports, runIndexing } from './indexing.js';
import { POOL_KERNELS, runPool } from './pool.js';
import { MATMUL_KERNELS, matmulSupports, runMatmul } from './matmul.js';
import { OPTIM_KERNELS, runOptim } from './optim.js';
import { BATCH_NORM_KERNELS, runBatchNorm } from './batch_norm.js';
import { NLL_KERNELS, runNll } from './nll.js';
import { ATTENTION_KERNELS, attentionSupports, runAttention } from './attention.js';

export interface GpuKernel<K extends KernelName = KernelName> {
  /** false sends this call to the host fallback (e.g. a case the WGSL does not cover) */
  supports?(inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): boolean;
  run(ctx: KernelContext, kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void;
}

export type GpuKernels = { readonly [K in KernelName]?: GpuKernel<K> };

/** One handler serving several kernels (it tells them apart by name), under each name. */
function group<K extends KernelName>(names: readonly K[], handler: (name: K) => GpuKernel<K>): { [N in K]: GpuKernel<N> } {
  return Object.fromEntries(names.map((n) => [n, handler(n)])) as { [N in K]: GpuKernel<N> };
}

const ELEMENTWISE_KERNELS: readonly ElementwiseKernel[] = [
  ...(Object.keys(ELEMENTWISE_OPS) as (keyof typeof ELEMENTWISE_OPS)[]),
  'where',
  'fill',
];

export const GPU_KERNELS: GpuKernels = {
  ...group(ELEMENTWISE_KERNELS, () => ({ run: runElementwise })),
  ...group(REDUCE_KERNELS, () => ({ run: runReduce })),
  ...group(INDEXING_KERNELS, (n) => ({ run: runIndexing, supports: (ins) => indexingSupports(n, ins) })),
  ...group(POOL_KERNELS, () => ({ run: runPool })),
  ...group(OPTIM_KERNELS, () => ({ run: runOptim })),
  ...group(BATCH_NORM_KERNELS, () => ({ run: runBatchNorm })),
  ...group(NLL_KERNELS, () => ({ run: runNll })),
  ...group(MATMUL_KERNELS, (n) => ({ run: runMatmul, supports: (ins) => matmulSupports(n, ins) })),
  ...group(ATTENTION_KERNELS, (n) => ({ run: runAttention, supports: (ins, outs, p) => attentionSupports(n, ins, outs, p) })),
};
