/**
 * DistributedDataParallel (torch.nn.parallel.DistributedDataParallel): each rank runs the model on
 * its own batch; gradients are averaged over the ranks during backward, so every rank takes the
 * same optimizer step and the replicas stay bitwise identical.
 *
 *   await mx.distributed.initProcessGroup({ backend: 'gloo' });
 *   const model = new mx.nn.parallel.DistributedDataParallel(new LeNet(), { gradientCompression: 'fp16' });
 *   ...
 *   scaler.scale(lossFn(model.call(x), y)).backward();   // returns with averaged gradients
 *   scaler.step(opt); scaler.update();                   // every rank sees the same inf/NaN: they skip together
 *
 * - Construction broadcasts rank 0's parameters, float32 masters and buffers (after checking that
 *   every rank built the same parameter shapes), so the replicas start equal.
 * - Gradients are averaged in buckets of about `bucketCapMB` (the first one 1 MB, so the first
 *   all-reduce starts early), filled in reverse parameter order, which is roughly the order
 *   backward produces them. A post-accumulate-grad hook on every parameter counts arrivals; a full
 *   bucket is copied to a host buffer and queued on the group's Gloo thread at once, so its
 *   all-reduce runs while backward computes the earlier layers (PyTorch's reducer). Buckets start
 *   in order; at the end of backward (an engine callback) the remaining ones start, the main thread
 *   waits for all of them and writes the averages into the gradients.
 * - `gradientCompression: 'fp16' | 'bf16'` sends each bucket as 16-bit values (half the bytes),
 *   divided by the world size before rounding (as PyTorch's fp16_compress_hook), summed in float32
 *   per step, and widened back into the float32 gradients; with float32 master weights
 *   (mx.amp.masterWeights, applied before wrapping) into the masters' gradients.
 * - `noSync(fn)`: backward passes inside `fn` only accumulate locally (gradient accumulation); the
 *   next backward outside averages the accumulated sum.
 * - `broadcastBuffers` (default true): rank 0's buffers (BatchNorm's running statistics) are copied
 *   to every rank before each training-mode forward.
 * A parameter without a gradient on a rank counts as zeros in the average. Runs on backends with
 * synchronous reads (wasm, reference): backward cannot wait for a device read.
 */
import { float32, type DType, type StorageArray } from '../../dtype/dtype.js';
import { Tensor } from '../../tensor/tensor.js';
import { isGradEnabled, noGrad } from '../../autograd/mode.js';
import { backwardPassNumber, queueBackwardCallback } from '../../autograd/engine.js';
import { accumulateGrad, gradientHome } from '../../autograd/accumulate.js';
import { castTo } from '../../ops/util.js';
import { defaultGroup, type GroupState } from '../../distributed/process_group.js';
import { Module } from '../module.js';

export type GradientCompression = 'fp16' | 'bf16';

export interface DistributedDataParallelOptions {
  /** Target bucket size in MB of float32 gradients (default 25, as PyTorch). */
  bucketCapMB?: number;
  /** Copy rank 0's buffers to every rank before each training-mode forward (default true). */
  broadcastBuffers?: boolean;
  /** Send gradients as float16 or bfloat16 (default null: float32). */
  gradientCompression?: GradientCompression | null;
}

/** PyTorch's first bucket: small, so that communication starts as early as possible. */
const FIRST_BUCKET_BYTES = 1024 * 1024;

interface Bucket {
  readonly params: readonly Tensor[];
  readonly offsets: readonly number[];
  /** float32 elements */
  readonly size: number;
  readonly host: Float32Array;
  ready: number;
  /** The queued all-reduce (a job id of the Gloo thread), null when idle. */
  job: number | null;
}

/** What the last synchronised backward did (for tests and tuning). */
export interface ReducerStats {
  /** Parameters per bucket, in launch order. */
  bucketSizes: number[];
  /** Buckets whose all-reduce started while backward was still computing other gradients (overlap). */
  launchedDuringBackward: number;
}

/** Bytes of a tensor's storage values, 8-byte aligned offsets into one flat buffer. */
function packLayout(tensors: readonly Tensor[]): { offsets: number[]; bytes: number } {
  const offsets: number[] = [];
  let bytes = 0;
  for (const t of tensors) {
    offsets.push(bytes);
    bytes += Math.ceil((t.numel * t.dt.storage.BYTES_PER_ELEMENT) / 8) * 8;
  }
  return { offsets, bytes };
}

/** `length` storage values of `dt` at `byteOffset` of `buffer` (a view, no copy). */
function storageView(dt: DType, buffer: ArrayBuffer, byteOffset: number, length: number): StorageArray {
  const View = dt.storage as unknown as new (buffer: ArrayBuffer, byteOffset: number, length: number) => StorageArray;
  return new View(buffer, byteOffset, length);
}

export class DistributedDataParallel<M extends Module = Module> extends Module {
  readonly module: M;
  readonly bucketCapMB: number;
  readonly broadcastBuffers: boolean;
  readonly gradientCompression: GradientCompression | null;
  private readonly group: GroupState;
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, Bucket>();
  private readonly params: Tensor[];
  private syncEnabled = true;
  private nextLaunch = 0;
  private inBackward = false;
  private launchedEarly = 0;
  private gradientsIn = 0;
  /** The backward pass the buckets are being filled in. */
  private pass = -1;
  private stats: ReducerStats = { bucketSizes: [], launchedDuringBackward: 0 };

  constructor(module: M, options: DistributedDataParallelOptions = {}) {
    super();
    this.module = this.registerModule('module', module);
    this.group = defaultGroup('nn.parallel.DistributedDataParallel');
    this.bucketCapMB = options.bucketCapMB ?? 25;
    if (!(this.bucketCapMB > 0)) throw new RangeError(`DistributedDataParallel: bucketCapMB must be positive, got ${this.bucketCapMB}`);
    this.broadcastBuffers = options.broadcastBuffers ?? true;
    const compression = options.gradientCompression ?? null;
    if (compression !== null && compression !== 'fp16' && compression !== 'bf16') {
      throw new TypeError(`DistributedDataParallel: gradientCompression must be null, 'fp16' or 'bf16', got '${String(compression)}'`);
    }
    this.gradientCompression = compression;
    const all = [...new Set(module.parameters())];
    for (const p of all) {
      if (!p.backend.readSync) {
        throw new Error(`DistributedDataParallel: backend '${p.backend.name}' has no synchronous reads; data parallelism runs on the CPU backends (wasm, reference)`);
      }
    }
    this.params = all.filter((p) => p.requiresGrad);
    for (const p of this.params) {
      if (!['float32', 'float16', 'bfloat16'].includes(p.dtype)) throw new TypeError(`DistributedDataParallel: parameters must be float32, float16 or bfloat16, got ${p.dtype}`);
    }
    this.checkSameModel(all);
    // float32 masters (mx.amp.masterWeights) are what the optimizer updates: they start equal too
    const masters = all.map(gradientHome).filter((home, i) => home !== all[i]);
    this.broadcastFromRank0([...all, ...masters, ...module.buffers()]);
    this.buildBuckets();
    for (const p of this.params) p.registerPostAccumulateGradHook(() => this.onGradientReady(p));
  }

  forward(...args: Parameters<M['forward']>): ReturnType<M['forward']> {
    if (this.broadcastBuffers && this.training && isGradEnabled()) {
      const buffers = this.module.buffers();
      if (buffers.length > 0) this.broadcastFromRank0(buffers);
    }
    return (this.module.call as (...a: unknown[]) => ReturnType<M['forward']>)(...args);
  }

  /**
   * Run `fn` without averaging gradients: its backward passes accumulate locally, and the first
   * backward after it averages the accumulated gradients (PyTorch's `with ddp.no_sync():`).
   */
  noSync<T>(fn: () => T): T {
    const before = this.syncEnabled;
    this.syncEnabled = false;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.syncEnabled = before;
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => {
        this.syncEnabled = before;
      }) as T;
    }
    this.syncEnabled = before;
    return result;
  }

  /** The buckets and early launches of the last synchronised backward. */
  reducerStats(): ReducerStats {
    return { bucketSizes: [...this.stats.bucketSizes], launchedDuringBackward: this.stats.launchedDuringBackward };
  }

  /** Every rank must wrap the same parameter shapes and dtypes: compare a signature with rank 0's. */
  private checkSameModel(params: readonly Tensor[]): void {
    const text = params.map((p) => `${p.dtype}[${p.shape.join(',')}]`).join(';');
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
    const mine = new Int32Array([params.length, hash | 0]);
    const rank0 = mine.slice();
    this.group.native.wait(this.group.native.broadcast(rank0, 0, true));
    if (rank0[0] !== mine[0] || rank0[1] !== mine[1]) {
      throw new Error(
        `DistributedDataParallel: rank ${this.group.rank}'s model differs from rank 0's (${params.length} parameters here, ${rank0[0]} there, or different shapes): every rank must build the same model`,
      );
    }
  }

  /** Copy rank 0's values of `tensors` into everyone's (one broadcast of their packed bytes). */
  private broadcastFromRank0(tensors: readonly Tensor[]): void {
    const { offsets, bytes } = packLayout(tensors);
    const packed = new Uint8Array(bytes);
    const isRoot = this.group.rank === 0;
    if (isRoot) {
      tensors.forEach((t, i) => {
        const values = t.storageDataSync();
        packed.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offsets[i]);
      });
    }
    this.group.native.wait(this.group.native.broadcast(packed, 0, true));
    if (isRoot) return;
    noGrad(() => {
      tensors.forEach((t, i) => {
        const src = Tensor.fromStorage(storageView(t.dt, packed.buffer, offsets[i]!, t.numel), t.shape, t.dt, {}, t.backend);
        t.copy_(src);
        src.dispose();
      });
    });
  }

  private buildBuckets(): void {
    const cap = this.bucketCapMB * 1024 * 1024;
    let current: Tensor[] = [];
    let bytes = 0;
    const close = () => {
      if (current.length === 0) return;
      const offsets: number[] = [];
      let size = 0;
      for (const p of current) {
        offsets.push(size);
        size += p.numel;
      }
      const bucket: Bucket = { params: current, offsets, size, host: new Float32Array(size), ready: 0, job: null };
      for (const p of current) this.bucketOf.set(p, bucket);
      this.buckets.push(bucket);
      current = [];
      bytes = 0;
    };
    for (const p of [...this.params].reverse()) {
      current.push(p);
      bytes += p.numel * 4;
      if (bytes >= (this.buckets.length === 0 ? Math.min(FIRST_BUCKET_BYTES, cap) : cap)) close();
    }
    close();
  }

  private onGradientReady(p: Tensor): void {
    if (!this.syncEnabled) return;
    // A backward pass that threw never ran its end callback: drop what it left half done.
    if (this.inBackward && this.pass !== backwardPassNumber()) this.abandon();
    if (!this.inBackward) {
      this.inBackward = true;
      this.pass = backwardPassNumber();
      this.launchedEarly = 0;
      this.gradientsIn = 0;
      queueBackwardCallback(() => this.finishBackward());
    }
    const bucket = this.bucketOf.get(p)!;
    bucket.ready++;
    this.gradientsIn++;
    // In bucket order on every rank, as the all-reduces must pair up.
    while (this.nextLaunch < this.buckets.length) {
      const next = this.buckets[this.nextLaunch]!;
      if (next.ready < next.params.length) break;
      this.launch(next);
      if (this.gradientsIn < this.params.length) this.launchedEarly++;
      this.nextLaunch++;
    }
  }

  /** Copy a bucket's gradients to its host buffer and queue its all-reduce. */
  private launch(bucket: Bucket): void {
    bucket.params.forEach((p, i) => {
      const grad = gradientHome(p).grad;
      const offset = bucket.offsets[i]!;
      if (grad && !grad.storage.disposed) bucket.host.set(grad.dataSync() as Float32Array, offset);
      else bucket.host.fill(0, offset, offset + p.numel);
    });
    bucket.job = this.group.native.averageBucket(bucket.host, this.gradientCompression ?? 'none', true);
  }

  /** Forget an interrupted pass: wait out the all-reduces it started (their host buffers are reused), reset the counts. */
  private abandon(): void {
    for (const bucket of this.buckets) {
      if (bucket.job !== null) {
        try {
          this.group.native.wait(bucket.job);
        } catch {
          // the pass is being dropped anyway
        }
        bucket.job = null;
      }
      bucket.ready = 0;
    }
    this.nextLaunch = 0;
    this.inBackward = false;
  }

  /** End of backward: start what has not started, wait for everything, write the averages. */
  private finishBackward(): void {
    let failure: unknown = null;
    try {
      for (; this.nextLaunch < this.buckets.length; this.nextLaunch++) this.launch(this.buckets[this.nextLaunch]!);
    } catch (e) {
      failure = e;
    }
    for (const bucket of this.buckets) {
      if (bucket.job === null) continue;
      try {
        this.group.native.wait(bucket.job);
        if (failure === null) this.unpack(bucket);
      } catch (e) {
        failure ??= e;
      }
      bucket.job = null;
    }
    this.stats = { bucketSizes: this.buckets.map((b) => b.params.length), launchedDuringBackward: this.launchedEarly };
    for (const bucket of this.buckets) bucket.ready = 0;
    this.nextLaunch = 0;
    this.inBackward = false;
    if (failure !== null) throw failure;
  }

  private unpack(bucket: Bucket): void {
    const averaged = Tensor.fromStorage(bucket.host, [bucket.size], float32, {}, bucket.params[0]!.backend);
    bucket.params.forEach((p, i) => {
      const home = gradientHome(p);
      const values = averaged.narrow(0, bucket.offsets[i]!, p.numel).view(home.shape as number[]);
      if (home.grad && !home.grad.storage.disposed) home.grad.copy_(values);
      else accumulateGrad(home, castTo(values, home.dt));
    });
    averaged.dispose();
  }
}
