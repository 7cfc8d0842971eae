/**
 * Device buffers of the webgpu backend and the pool that recycles GPUBuffers by size class.
 *
 * A tensor's buffer is a WebGpuBuffer: a GPUBuffer (STORAGE | COPY_SRC | COPY_DST) for every dtype
 * but float64, which has no WGSL type and lives in a host Float64Array (its kernels run on the
 * host, see fallback.ts). `free` hands the GPUBuffer back to the pool at once: commands run in
 * submission order, so a later kernel reusing it cannot overtake the earlier readers.
 */
/// <reference types="@webgpu/types" />
import type { DeviceBuffer } from '../backend.js';
import type { DType } from '../../dtype/dtype.js';

export class WebGpuBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    /** null for host-resident float64 buffers */
    readonly gpu: GPUBuffer | null,
    readonly host: Float64Array | null,
  ) {}
  /** Bytes of the storage-format data (unpadded). */
  get bytes(): number {
    return this.size * this.dtype.itemsize;
  }
}

export const BUFFER_USAGE = 0x0080 /* STORAGE */ | 0x0004 /* COPY_SRC */ | 0x0008; /* COPY_DST */

/** Size classes: multiples of 256 bytes up to 4 KiB, then 8 steps per power of two (<= 12.5% waste). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export interface PoolStats {
  /** GPUBuffers created since the backend started */
  created: number;
  /** allocations served from the pool */
  reused: number;
  /** GPUBuffers alive (in use or pooled) and their bytes */
  gpuBuffers: number;
  gpuBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
}

const serials = new WeakMap<GPUBuffer, number>();
/** The size class a pool created a buffer with (reading GPUBuffer.size crosses into the native binding). */
const classSizes = new WeakMap<GPUBuffer, number>();
let nextSerial = 0;

/**
 * A GPUBuffer's number, given in creation order by the pools (on first sight for any other): the
 * pools order free buffers by it and the scheduler keys its bind groups with it.
 */
export function bufferSerial(buffer: GPUBuffer): number {
  let n = serials.get(buffer);
  if (n === undefined) serials.set(buffer, (n = nextSerial++));
  return n;
}

/**
 * Freed buffers wait per size class and the oldest buffer (lowest creation number) is handed out
 * first: which buffer a tensor gets then depends only on which buffers are free, not on the order
 * they were freed in, so every step of a training loop gives its tensors the same buffers and the
 * scheduler's bind-group cache (keyed by buffers) stays warm.
 */
export class BufferPool {
  /** per size class (and usage), free buffers sorted newest first: pop() takes the oldest */
  private readonly free = new Map<number, GPUBuffer[]>();
  /**
   * Buffers over the pooling limit, destroyed after the next submit: commands recorded but not yet
   * submitted may still use them, and Dawn rejects a whole submit that touches a destroyed buffer.
   */
  private retired: GPUBuffer[] = [];
  private stats: PoolStats = { created: 0, reused: 0, gpuBuffers: 0, gpuBytes: 0, pooledBuffers: 0, pooledBytes: 0 };

  constructor(
    private readonly device: GPUDevice,
    /** pooled bytes kept at most; beyond it freed buffers are destroyed */
    private readonly maxPooledBytes = 1 << 30,
  ) {}

  acquire(bytes: number, usage: number = BUFFER_USAGE): GPUBuffer {
    const cls = sizeClass(bytes);
    const key = usage === BUFFER_USAGE ? cls : -cls - usage * 1e12;
    const list = this.free.get(key);
    const b = list?.pop();
    if (b) {
      this.stats.reused++;
      this.stats.pooledBuffers--;
      this.stats.pooledBytes -= cls;
      return b;
    }
    this.stats.created++;
    this.stats.gpuBuffers++;
    this.stats.gpuBytes += cls;
    const buffer = this.device.createBuffer({ size: cls, usage });
    bufferSerial(buffer);
    classSizes.set(buffer, cls);
    return buffer;
  }

  release(buffer: GPUBuffer, usage: number = BUFFER_USAGE): void {
    const cls = classSizes.get(buffer) ?? buffer.size;
    if (this.stats.pooledBytes + cls > this.maxPooledBytes) {
      this.retired.push(buffer);
      this.stats.gpuBuffers--;
      this.stats.gpuBytes -= cls;
      return;
    }
    const key = usage === BUFFER_USAGE ? cls : -cls - usage * 1e12;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    // Insert keeping newest first (binary search on the creation number).
    const n = bufferSerial(buffer);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bufferSerial(list[mid]!) > n) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buffer);
    this.stats.pooledBuffers++;
    this.stats.pooledBytes += cls;
  }

  /** Destroy every pooled buffer (after the next submit, like any retired buffer). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) {
      this.retired.push(b);
      this.stats.gpuBuffers--;
      this.stats.gpuBytes -= b.size;
    }
    this.free.clear();
    this.stats.pooledBuffers = 0;
    this.stats.pooledBytes = 0;
  }

  /** Called once everything recorded so far is submitted: submitted work keeps what it uses alive. */
  destroyRetired(): void {
    for (const b of this.retired) b.destroy();
    this.retired = [];
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
