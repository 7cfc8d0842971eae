/**
 * Kernels that run on the host: every kernel that touches float64 (no WGSL type), and any kernel
 * without a WGSL implementation. Inputs are storage-format host arrays (read back from the GPU by
 * the caller when needed); each output is rounded once by the reference codec and, when it lives
 * on the GPU, uploaded to a scratch buffer and copied into its (possibly strided) view by the
 * raw-copy kernel, in command order.
 */
import type { KernelTensor } from '../backend.js';
import type { StorageArray } from '../../dtype/dtype.js';
import { gatherToF64, scatterFromF64 } from '../reference/codec.js';
import type { RefKernel } from '../reference/kernels/types.js';
import type { WebGpuBuffer } from './buffers.js';
import { contiguousStrides, numel, type KernelContext } from './kernels/common.js';
import { runElementwise } from './kernels/elementwise.js';

export function runOnHost<P>(
  ctx: KernelContext,
  fn: RefKernel<P>,
  inputs: readonly KernelTensor[],
  outputs: readonly KernelTensor[],
  params: P,
  dataOf: (b: WebGpuBuffer) => StorageArray,
): void {
  const args = inputs.map((t) => ({ data: gatherToF64(dataOf(t.buffer as WebGpuBuffer), t.dtype, t.shape, t.strides, t.offset), shape: t.shape, dtype: t.dtype }));
  const results = fn(args, params, outputs);
  outputs.forEach((o, i) => {
    const buf = o.buffer as WebGpuBuffer;
    if (buf.host) {
      scatterFromF64(results[i]!, buf.host, o.dtype, o.shape, o.strides, o.offset);
      return;
    }
    const n = numel(o.shape);
    if (n === 0) return;
    const packed = new o.dtype.storage(n);
    scatterFromF64(results[i]!, packed, o.dtype, o.shape, contiguousStrides(o.shape), 0);
    const tmp = ctx.tempBuffer(o.dtype, n);
    ctx.sched.write(tmp.gpu!, 0, new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength));
    runElementwise(ctx, 'copy', [{ buffer: tmp, dtype: o.dtype, shape: o.shape, strides: contiguousStrides(o.shape), offset: 0 }], [o], {});
    ctx.releaseTemp(tmp);
  });
}
