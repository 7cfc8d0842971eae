/**
 * The small interface every backend implements: allocate, free, copy in, copy out, run a kernel.
 *
 * Kernels are addressed by name (the op table's `kernel` field), with the parameters the kernel
 * contract (kernels.ts) gives that name. Inputs arrive as strided views
 * (buffer + shape + strides + offset) so that views never need a copy before a kernel that can
 * read strides; outputs are written to views too (normally fresh contiguous buffers).
 * `run` may only enqueue work (WebGPU): results become visible through `read`.
 */
import type { DType, StorageArray } from '../dtype/dtype.js';
import type { KernelName, KernelParams } from './kernels.js';

export interface DeviceBuffer {
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
}

export interface KernelTensor {
  readonly buffer: DeviceBuffer;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

export interface MemoryStats {
  liveBuffers: number;
  liveBytes: number;
  peakBytes: number;
}

export interface Backend {
  readonly name: string;
  allocate(dtype: DType, size: number): DeviceBuffer;
  free(buffer: DeviceBuffer): void;
  /** Copy host data (in the buffer's storage format) into the buffer. */
  write(buffer: DeviceBuffer, data: StorageArray): void;
  /** Copy a buffer back to the host, waiting for queued kernels that write it. */
  read(buffer: DeviceBuffer): Promise<StorageArray>;
  /** Synchronous read, offered by CPU backends only. */
  readSync?(buffer: DeviceBuffer): StorageArray;
  run<K extends KernelName>(kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void;
  hasKernel(kernel: KernelName): boolean;
  /**
   * Whether `kernel` runs natively here (not through a slower fallback). Composite functions that
   * have a fused form (F.batchNorm) take it where this says so; absent means no preference.
   */
  nativeKernel?(kernel: KernelName): boolean;
  memory(): MemoryStats;
  /** Restart peak tracking: `memory().peakBytes` becomes the live bytes now (benchmarks, memory tests). */
  resetPeak?(): void;
}

/** Counts live buffers and bytes; shared by backends so memory tests read the same numbers everywhere. */
export class MemoryCounter {
  private liveBuffers = 0;
  private liveBytes = 0;
  private peakBytes = 0;
  onAllocate(bytes: number): void {
    this.liveBuffers++;
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
  }
  onFree(bytes: number): void {
    this.liveBuffers--;
    this.liveBytes -= bytes;
  }
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }
  stats(): MemoryStats {
    return { liveBuffers: this.liveBuffers, liveBytes: this.liveBytes, peakBytes: this.peakBytes };
  }
}
