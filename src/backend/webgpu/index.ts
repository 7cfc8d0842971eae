/**
 * The `webgpu` backend: tensors in GPU buffers, kernels as generated WGSL compute shaders, run in
 * Node through the npm package `webgpu` (Dawn) and in browsers through navigator.gpu.
 *
 *   await mx.setBackend('webgpu')     // MIXPREC_WEBGPU_F16=0 forces the packed float16 fallback
 *
 * `run` only records: each kernel is a dispatch in a shared command encoder (scheduler.ts), submitted
 * when something is read or the batch is large. `read` is the only synchronisation; there is no
 * readSync. float64 tensors live on the host and their kernels run the reference there; a host
 * kernel that needs GPU values waits for them inside the next `read`, so until then every later
 * command is queued behind it in order (the deferred queue below).
 */
/// <reference types="@webgpu/types" />
import type { Backend, DeviceBuffer, KernelTensor, MemoryStats } from '../backend.js';
import type { KernelName, KernelParams } from '../kernels.js';
import { MemoryCounter } from '../backend.js';
import { float16, float32, type DType, type StorageArray } from '../../dtype/dtype.js';
import { float32ToFloat16 } from '../../dtype/convert.js';
import { contiguousStrides, numel } from '../../shape/strides.js';
import { REFERENCE_KERNELS } from '../reference/index.js';
import { acquireDevice, type DeviceOptions, type GpuContext, type SubgroupMatrixShape } from './device.js';
import { BufferPool, WebGpuBuffer, type PoolStats } from './buffers.js';
import { Scheduler, type SchedulerStats } from './scheduler.js';
import type { KernelContext } from './kernels/common.js';
import { runOnHost } from './fallback.js';
import { GPU_KERNELS } from './kernels/table.js';

export interface WebGpuBackendOptions extends DeviceOptions {
  /** Dispatches recorded before a submit is forced (default 4096). */
  maxDispatchesPerSubmit?: number;
  /**
   * Bytes of freed GPU buffers kept for reuse (default MIXPREC_WEBGPU_POOL_MB, else 1024 MiB);
   * beyond it freed buffers are destroyed. A network whose step frees more than this churns buffers.
   */
  poolBytes?: number;
  /** Run every kernel on the host (tests of the ordering machinery). */
  hostOnly?: boolean;
}

/** Per kernel: `native` calls ran as WGSL on the GPU, `fallback` calls ran on the host (float64, or no WGSL). */
export interface WebGpuKernelStats {
  native: number;
  fallback: number;
}

type Task = () => void | Promise<void>;

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

export class WebGpuBackend implements Backend, KernelContext {
  readonly name: string = 'webgpu';
  readonly nativeF16: boolean;
  /** float16 GEMMs run on the adapter's matrix units (null: the tiled f32 kernels). */
  matrixUnits: SubgroupMatrixShape | null;
  readonly sched: Scheduler;
  readonly pool: BufferPool;
  private readonly counter = new MemoryCounter();
  private readonly deferred: Task[] = [];
  private draining = false;
  private lock: Promise<void> = Promise.resolve();
  private readonly kernelCounts = new Map<string, WebGpuKernelStats>();
  private readonly hostOnly: boolean;

  constructor(
    readonly gpu: GpuContext,
    options: WebGpuBackendOptions = {},
  ) {
    this.nativeF16 = gpu.nativeF16;
    this.maxStorageBuffers = gpu.device.limits.maxStorageBuffersPerShaderStage;
    this.maxBindingBytes = gpu.device.limits.maxStorageBufferBindingSize;
    this.matrixUnits = gpu.subgroupMatrix;
    const poolMb = Number(env('MIXPREC_WEBGPU_POOL_MB') ?? NaN);
    this.pool = new BufferPool(gpu.device, options.poolBytes ?? (poolMb >= 0 ? poolMb * 2 ** 20 : 2 ** 30));
    this.sched = new Scheduler(gpu.device, this.pool, options.maxDispatchesPerSubmit ?? 4096);
    this.hostOnly = options.hostOnly ?? env('MIXPREC_WEBGPU_HOST_ONLY') === '1';
  }

  /** The adapter, e.g. "mesa llvmpipe ..." (bench JSON's `adapter`). */
  get adapterDescription(): string {
    return this.gpu.description;
  }

  /** Uncaptured device errors since the device was created (a benchmark with any is invalid). */
  get deviceErrors(): number {
    return this.gpu.errors;
  }

  /** The matrix units float16 GEMMs use, e.g. "f16 16x16x16 -> f32, subgroup 32" (bench JSON's `subgroup_matrix`), or null. */
  get subgroupMatrix(): string | null {
    const u = this.matrixUnits;
    return u ? `f16 ${u.M}x${u.N}x${u.K} -> f32, subgroup ${u.subgroupSize}` : null;
  }

  /** The device's limits, read once (each read of device.limits crosses into the native binding). */
  readonly maxStorageBuffers: number;
  private readonly maxBindingBytes: number;

  private get deferring(): boolean {
    return this.deferred.length > 0 || this.draining;
  }

  allocate(dtype: DType, size: number): DeviceBuffer {
    if (dtype.name !== 'float64') this.checkBindable(dtype, size);
    this.counter.onAllocate(size * dtype.itemsize);
    if (dtype.name === 'float64') return new WebGpuBuffer(dtype, size, null, new Float64Array(size));
    return new WebGpuBuffer(dtype, size, this.pool.acquire(size * dtype.itemsize), null);
  }

  /**
   * A kernel binds a tensor's whole buffer, and the device rejects a binding over its limit (the
   * batch then fails, and reads return zeros): refuse such a tensor up front, saying what to change.
   */
  private checkBindable(dtype: DType, size: number): void {
    const bytes = size * dtype.itemsize;
    const limit = this.maxBindingBytes;
    if (bytes <= limit) return;
    throw new RangeError(
      `webgpu backend: a ${dtype.name} tensor of ${size} elements (${bytes} bytes) is larger than this adapter's largest storage binding ` +
        `(maxStorageBufferBindingSize ${limit} bytes, ${this.adapterDescription}); use a smaller batch or another backend`,
    );
  }

  free(buffer: DeviceBuffer): void {
    const b = buffer as WebGpuBuffer;
    if (b.freed) return;
    b.freed = true;
    this.counter.onFree(b.bytes);
    if (!b.gpu) return;
    if (this.deferring) this.deferred.push(() => this.pool.release(b.gpu!));
    else this.pool.release(b.gpu);
  }

  write(buffer: DeviceBuffer, data: StorageArray): void {
    const b = buffer as WebGpuBuffer;
    if (this.deferring) {
      const copy = data.slice();
      this.deferred.push(() => this.writeNow(b, copy));
    } else this.writeNow(b, data);
  }

  private writeNow(b: WebGpuBuffer, data: StorageArray): void {
    if (b.host) {
      b.host.set(data as Float64Array);
      return;
    }
    this.sched.write(b.gpu!, 0, new Uint8Array(data.buffer, data.byteOffset, Math.min(data.byteLength, b.bytes)));
  }

  async read(buffer: DeviceBuffer): Promise<StorageArray> {
    const b = buffer as WebGpuBuffer;
    if (!this.deferring) return this.readNow(b);
    return new Promise<StorageArray>((resolve, reject) => {
      this.deferred.push(() => this.readNow(b).then(resolve, reject));
      this.drain().catch(reject);
    });
  }

  /** Records the copy now (so the value is the one at this point of the command stream). */
  private readNow(b: WebGpuBuffer): Promise<StorageArray> {
    if (b.host) return Promise.resolve(b.host.slice());
    const p = this.sched.read(b.gpu!, b.bytes);
    const Ctor = b.dtype.storage as unknown as new (buffer: ArrayBuffer) => StorageArray;
    return p.then((bytes) => new Ctor(bytes));
  }

  /** Run the deferred tasks in order (host kernels wait for their GPU inputs here). */
  private drain(): Promise<void> {
    const next = this.lock.then(() => this.drainNow());
    this.lock = next.catch(() => undefined);
    return next;
  }

  private async drainNow(): Promise<void> {
    if (this.deferred.length === 0) return;
    this.draining = true;
    let error: unknown = null;
    try {
      while (this.deferred.length > 0) {
        const task = this.deferred.shift()!;
        try {
          await task();
        } catch (e) {
          error ??= e;
        }
      }
    } finally {
      this.draining = false;
    }
    if (error) throw error;
  }

  /** Kernels with a WGSL implementation (F.batchNorm takes its fused form here). */
  nativeKernel(kernel: KernelName): boolean {
    return !this.hostOnly && Object.hasOwn(GPU_KERNELS, kernel);
  }

  hasKernel(kernel: KernelName): boolean {
    return Object.hasOwn(REFERENCE_KERNELS, kernel);
  }

  private count(kernel: string, where: 'native' | 'fallback'): void {
    let s = this.kernelCounts.get(kernel);
    if (!s) this.kernelCounts.set(kernel, (s = { native: 0, fallback: 0 }));
    s[where]++;
  }

  run<K extends KernelName>(kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void {
    const gpuKernel = Object.hasOwn(GPU_KERNELS, kernel) ? GPU_KERNELS[kernel] : undefined;
    const onGpu =
      !this.hostOnly &&
      gpuKernel !== undefined &&
      [...inputs, ...outputs].every((t) => t.dtype.name !== 'float64') &&
      (gpuKernel.supports?.(inputs, outputs, params) ?? true);
    if (onGpu) {
      this.count(kernel, 'native');
      const task = () => gpuKernel.run(this, kernel, inputs, outputs, params);
      if (this.deferring) this.deferred.push(task);
      else task();
      return;
    }
    const fn = Object.hasOwn(REFERENCE_KERNELS, kernel) ? REFERENCE_KERNELS[kernel] : undefined;
    if (!fn) throw new Error(`webgpu backend: no kernel named '${kernel}'`);
    this.count(kernel, 'fallback');
    const gpuInputs = [...new Set(inputs.map((t) => t.buffer as WebGpuBuffer).filter((b) => b.gpu !== null))];
    if (!this.deferring && gpuInputs.length === 0) {
      runOnHost(this, fn, inputs, outputs, params, (b) => b.host!);
      return;
    }
    this.deferred.push(async () => {
      const values = await Promise.all(gpuInputs.map((b) => this.readNow(b)));
      const byBuffer = new Map<WebGpuBuffer, StorageArray>(gpuInputs.map((b, i) => [b, values[i]!]));
      runOnHost(this, fn, inputs, outputs, params, (b) => b.host ?? byBuffer.get(b)!);
    });
  }

  tempBuffer(dtype: DType, size: number): WebGpuBuffer {
    this.checkBindable(dtype, size);
    return new WebGpuBuffer(dtype, size, this.pool.acquire(Math.max(4, size * dtype.itemsize)), null);
  }

  releaseTemp(buffer: WebGpuBuffer): void {
    if (buffer.gpu) this.pool.release(buffer.gpu);
  }

  memory(): MemoryStats {
    return this.counter.stats();
  }

  resetPeak(): void {
    this.counter.resetPeak();
  }

  /** Waits for every queued kernel (deferred host kernels included) to finish on the GPU. */
  async synchronize(): Promise<void> {
    await this.drain();
    await this.sched.finish();
  }

  /** Submits, dispatches, pipeline cache hits, reads and uploads since the backend started. */
  schedulerStats(): SchedulerStats {
    return { ...this.sched.stats };
  }

  poolStats(): PoolStats {
    return this.pool.snapshot();
  }

  /** Per kernel: calls that ran on the GPU (native) and on the host (fallback). */
  kernelStats(): Record<string, WebGpuKernelStats> {
    return Object.fromEntries([...this.kernelCounts].map(([k, v]) => [k, { ...v }]));
  }

  resetKernelStats(): void {
    this.kernelCounts.clear();
  }
}

let warnedPacked = false;

export async function createWebGpuBackend(options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const gpu = await acquireDevice(options);
  if (!gpu.nativeF16 && !warnedPacked) {
    warnedPacked = true;
    const why = gpu.adapter.features.has('shader-f16') ? 'shader-f16 disabled (MIXPREC_WEBGPU_F16=0 or f16: false)' : 'the adapter has no shader-f16';
    console.warn(`mixprec webgpu: ${why}: float16 tensors are stored as packed 16-bit pairs and computed in float32 (results are the same, kernels are slower)`);
  }
  const backend = new WebGpuBackend(gpu, options);
  if (backend.matrixUnits) {
    const problem = await checkMatrixUnits(backend);
    if (problem) {
      console.warn(`mixprec webgpu: the adapter's subgroup matrices (${backend.subgroupMatrix}) failed their check (${problem}): float16 matrix products use the tiled float32 kernels`);
      backend.matrixUnits = null;
    }
  }
  if (env('MIXPREC_WEBGPU_STATS') === '1' && typeof process !== 'undefined') {
    process.once('exit', () => {
      const host = Object.entries(backend.kernelStats()).filter(([, v]) => v.fallback > 0);
      console.error(`mixprec webgpu stats: ${JSON.stringify(backend.schedulerStats())}`);
      console.error(`mixprec webgpu host kernels: ${JSON.stringify(Object.fromEntries(host))}`);
    });
  }
  return backend;
}

/**
 * The subgroup-matrix path is experimental in Dawn and in drivers: before trusting it, multiply two
 * float16 matrices whose every product and partial sum is exact in float32 (small integers), with
 * edges that do not fill a tile, on the matrix units and on the tiled kernel, and require equal
 * bits. Returns what went wrong, or null.
 */
async function checkMatrixUnits(backend: WebGpuBackend): Promise<string | null> {
  const [Z, M, K, N] = [2, 37, 45, 29];
  const device = backend.gpu.device;
  const tensor = (dtype: DType, shape: number[], values?: Float32Array): KernelTensor => {
    const buffer = backend.allocate(dtype, numel(shape));
    if (values) backend.write(buffer, float32ToFloat16(values));
    return { buffer, dtype, shape, strides: contiguousStrides(shape), offset: 0 };
  };
  const ints = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => ((i * 7919 + seed * 104729) % 9) - 4);
  const a = tensor(float16, [Z, M, K], ints(Z * M * K, 1));
  const b = tensor(float16, [Z, K, N], ints(Z * K * N, 2));
  const onUnits = tensor(float32, [Z, M, N]);
  const tiled = tensor(float32, [Z, M, N]);
  const units = backend.matrixUnits;
  device.pushErrorScope('validation');
  try {
    backend.run('bmm', [a, b], [onUnits], {});
    backend.matrixUnits = null;
    backend.run('bmm', [a, b], [tiled], {});
    const [x, y] = await Promise.all([backend.read(onUnits.buffer), backend.read(tiled.buffer)]);
    const error = await device.popErrorScope();
    if (error) return error.message.split('\n')[0]!;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `element ${i}: ${x[i]} instead of ${y[i]}`;
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    backend.matrixUnits = units;
    for (const t of [a, b, onUnits, tiled]) backend.free(t.buffer);
  }
}
