/**
 * The TypeScript reference backend: every kernel over plain typed arrays. It defines what each
 * op computes; faster backends are tested against it.
 */
import type { Backend, DeviceBuffer, KernelTensor, MemoryStats } from '../backend.js';
import { MemoryCounter } from '../backend.js';
import type { KernelName, KernelParams } from '../kernels.js';
import type { DType, StorageArray } from '../../dtype/dtype.js';
import { gatherToF64, scatterFromF64 } from './codec.js';
import type { RefKernel, RefKernelTable } from './kernels/types.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { reduceKernels } from './kernels/reduce.js';
import { linalgKernels } from './kernels/linalg.js';
import { convKernels } from './kernels/conv.js';
import { poolKernels } from './kernels/pool.js';
import { indexingKernels } from './kernels/indexing.js';
import { extraKernels } from './kernels/extra.js';
import { optimKernels } from './kernels/optim.js';
import { batchNormKernels } from './kernels/batch_norm.js';
import { layerNormKernels } from './kernels/layer_norm.js';
import { nllKernels } from './kernels/nll.js';
import { attentionKernels } from './kernels/attention.js';
import { lstmKernels } from './kernels/lstm.js';

class HostBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    readonly data: StorageArray,
  ) {}
}

/** Every kernel of the contract (src/backend/kernels.ts): one missing is a compile error here. */
export const REFERENCE_KERNELS: RefKernelTable = {
  ...elementwiseKernels,
  ...reduceKernels,
  ...linalgKernels,
  ...convKernels,
  ...poolKernels,
  ...indexingKernels,
  ...extraKernels,
  ...optimKernels,
  ...batchNormKernels,
  ...layerNormKernels,
  ...nllKernels,
  ...attentionKernels,
  ...lstmKernels,
};

/**
 * Run a reference kernel on strided views whose storage `dataOf` exposes: float64 copies of the
 * inputs in, every output rounded once into its dtype. Backends that fall back to the reference
 * (the wasm backend over views of its memory) use this too.
 */
export function runReferenceKernel<P>(
  fn: RefKernel<P>,
  inputs: readonly KernelTensor[],
  outputs: readonly KernelTensor[],
  params: P,
  dataOf: (buffer: DeviceBuffer) => StorageArray,
): void {
  const args = inputs.map((t) => ({ data: gatherToF64(dataOf(t.buffer), t.dtype, t.shape, t.strides, t.offset), shape: t.shape, dtype: t.dtype }));
  const results = fn(args, params, outputs);
  outputs.forEach((o, i) => scatterFromF64(results[i]!, dataOf(o.buffer), o.dtype, o.shape, o.strides, o.offset));
}

export class ReferenceBackend implements Backend {
  readonly name: string = 'reference';
  private readonly counter = new MemoryCounter();

  allocate(dtype: DType, size: number): DeviceBuffer {
    this.counter.onAllocate(size * dtype.itemsize);
    return new HostBuffer(dtype, size, new dtype.storage(size));
  }

  free(buffer: DeviceBuffer): void {
    const b = buffer as HostBuffer;
    if (b.freed) return;
    b.freed = true;
    this.counter.onFree(b.size * b.dtype.itemsize);
  }

  write(buffer: DeviceBuffer, data: StorageArray): void {
    (buffer as HostBuffer).data.set(data);
  }

  readSync(buffer: DeviceBuffer): StorageArray {
    return (buffer as HostBuffer).data.slice();
  }

  async read(buffer: DeviceBuffer): Promise<StorageArray> {
    return this.readSync(buffer);
  }

  hasKernel(kernel: KernelName): boolean {
    return Object.hasOwn(REFERENCE_KERNELS, kernel);
  }

  run<K extends KernelName>(kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void {
    // (the check is for JavaScript callers: TypeScript ones cannot name another kernel)
    const fn = Object.hasOwn(REFERENCE_KERNELS, kernel) ? REFERENCE_KERNELS[kernel] : undefined;
    if (!fn) throw new Error(`reference backend: no kernel named '${kernel}'`);
    runReferenceKernel(fn, inputs, outputs, params, (b) => (b as HostBuffer).data);
  }

  memory(): MemoryStats {
    return this.counter.stats();
  }

  resetPeak(): void {
    this.counter.resetPeak();
  }
}
