/**
 * DataLoader: batches of a Dataset, shuffled reproducibly, assembled ahead of the consumer.
 *
 *   const loader = new mx.data.DataLoader(train, { batchSize: 128, shuffle: true, dropLast: true });
 *   for (let epoch = 0; epoch < 10; epoch++) {
 *     for await (const [x, y] of loader) mx.scope(() => step(x, y));
 *   }
 *
 * Data order and augmentation are pure functions of (seed, epoch, batch index):
 * - `seed` is the `seed` option, else one uint32 drawn from `generator` (default `mx.defaultGenerator`)
 *   when the loader is constructed, so `mx.manualSeed(s)` before construction fixes everything.
 * - Epoch e's order is a Fisher-Yates permutation drawn from a Generator seeded with hash(seed, e).
 * - Batch b of epoch e is built with a Generator seeded with hash(seed, e, b), passed to the dataset's
 *   getItem/getBatch and from there to the random transforms (unless a transform has its own).
 * So nothing depends on when prefetching happens or on what else draws from mx.defaultGenerator, and
 * `loader.state()` ({ seed, epoch, batch }, JSON) restores the exact data stream with `loadState`,
 * even mid-epoch: batch b of epoch e is the same batch whether or not batches 0..b-1 were produced.
 *
 * With a `sampler` (DistributedSampler) the epoch visits `sampler.indices(epoch)` instead.
 *
 * Epochs: each `for await` over the loader is one epoch, numbered from 0 (`loader.epoch`); when it
 * ends, by completion or `break`, the loader moves to the next epoch. `setEpoch(e)` jumps.
 *
 * Prefetch: while the consumer works on batch k, batches k+1..k+prefetch are produced in order, each
 * in its own macrotask (setImmediate; a MessageChannel message in browsers), so they are assembled while the consumer awaits anything
 * (an asynchronous backend's results, I/O, a timer). This runs on the main thread, deliberately: a
 * dataset is an arbitrary object (closures, transforms, file handles) that cannot be sent to a worker,
 * the batch randomness must come from the same seeded generators either way, and assembling an
 * in-memory CIFAR batch (gather + crop + flip + normalise, ~1-2 ms for 128 images) is small next to a
 * training step; for the synchronous reference backend no thread-free scheme can overlap anyway.
 * `prefetch: 0` produces each batch on demand.
 *
 * Memory: batch tensors are created outside any mx.scope (so a step's scope does not free them).
 * With `autoDispose` (the default) the loader disposes the tensors of batch k when batch k+1 is
 * requested or the loop ends, and those of prefetched batches never consumed, so a training loop keeps
 * a constant number of live buffers. To keep a batch longer, clone its tensors, or pass
 * `autoDispose: false` and dispose them yourself (else garbage collection frees them eventually).
 */
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { scopeDepth } from '../tensor/storage.js';
import { defaultGenerator, Generator } from '../random/generator.js';
import { fmix32 } from '../random/counter_hash.js';
import { defaultCollate } from './collate.js';
import { dtypeOf, type DType, type DTypeName } from '../dtype/dtype.js';
import type { Dataset, SampleContext } from './dataset.js';
import type { Sampler } from './sampler.js';

export interface DataLoaderOptions<B> {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** A new random order every epoch (default false). */
  shuffle?: boolean;
  /** The indices of each epoch (DistributedSampler); excludes `shuffle`. */
  sampler?: Sampler;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Base seed of order and augmentation; by default drawn from `generator` at construction. */
  seed?: number;
  /** Where the base seed is drawn from when `seed` is not given (default mx.defaultGenerator). */
  generator?: Generator;
  /** Samples to batch; by default the dataset's getBatch if it has one, else defaultCollate. */
  collate?: (samples: any[]) => B;
  /** Batches produced ahead of the consumer (default 2; 0 = on demand). */
  prefetch?: number;
  /** Dispose each batch's tensors when the next batch is requested or the loop ends (default true). */
  autoDispose?: boolean;
  /**
   * Deliver the batch's floating tensors in this dtype (labels and other integer tensors keep
   * theirs). With 'float16' or 'bfloat16' a mixed precision loop feeds 16-bit batches: each value
   * is rounded once from its float32 value, exactly what autocast's cast at the first layer would
   * compute, but the float32 batch and its 16-bit copy are never both alive. Default: as collated.
   */
  dtype?: DTypeName;
}

/** Where a loader is in its data stream: JSON-serialisable, for checkpoints. */
export interface DataLoaderState {
  seed: number;
  /** The epoch the next (or current) iteration runs. */
  epoch: number;
  /** Batches of that epoch already delivered; the next iteration starts there. */
  batch: number;
}

function mix32(h: number, v: number): number {
  // murmur3-style combine, then a final avalanche in hashSeed.
  let k = Math.imul(v >>> 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

/** A 32-bit seed from a list of integers (each folded to 32 bits, high half included). */
export function hashSeed(...values: number[]): number {
  let h = 0x5eed1234;
  for (const v of values) {
    h = mix32(h, v >>> 0);
    h = mix32(h, Math.floor(v / 2 ** 32) >>> 0);
  }
  return fmix32(h);
}

const ORDER_STREAM = 1;
const BATCH_STREAM = 2;

/** The sample order of `epoch`: a pure function of (seed, epoch, n). */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const g = new Generator(hashSeed(seed, ORDER_STREAM, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = g.nextInt(0, i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** The generator of batch `batch` of `epoch`'s random augmentations. */
export function batchGenerator(seed: number, epoch: number, batch: number): Generator {
  return new Generator(hashSeed(seed, BATCH_STREAM, epoch, batch));
}

function forEachTensor(value: unknown, fn: (t: Tensor) => void, depth = 0): void {
  if (value instanceof Tensor) fn(value);
  else if (depth < 4 && Array.isArray(value)) for (const v of value) forEachTensor(v, fn, depth + 1);
  else if (depth < 4 && value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) forEachTensor(v, fn, depth + 1);
  }
}

/** The batch with every floating tensor converted to `dtype` (the originals disposed). */
function castFloating(value: unknown, dtype: DType, depth = 0): unknown {
  if (value instanceof Tensor) {
    if (!value.dt.isFloating || value.dt === dtype) return value;
    const out = value.to(dtype);
    value.dispose();
    return out;
  }
  if (depth < 4 && Array.isArray(value)) return value.map((v) => castFloating(v, dtype, depth + 1));
  if (depth < 4 && value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, castFloating(v, dtype, depth + 1)]));
  }
  return value;
}

function checkCount(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`DataLoader: ${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** A macrotask: setImmediate in Node; in browsers (which lack it) a MessageChannel message, not clamped as setTimeout is. */
const nextMacrotask = (): Promise<void> =>
  new Promise((resolve) => {
    if (typeof setImmediate === 'function') {
      setImmediate(resolve);
      return;
    }
    // (the browser's MessageChannel: its ports have onmessage, which Node's typings lack)
    const channel = new MessageChannel() as unknown as { port1: { onmessage: (() => void) | null; close(): void }; port2: { postMessage(m: unknown): void } };
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });

export class DataLoader<B = [Tensor, Tensor]> implements AsyncIterable<B> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly autoDispose: boolean;
  readonly collate: ((samples: any[]) => B) | null;
  readonly dtype: DType | null;
  readonly sampler: Sampler | null;
  private seed: number;
  private epochIndex = 0;
  private batchIndex = 0;

  constructor(readonly dataset: Dataset<any, any>, options: DataLoaderOptions<B> = {}) {
    if (!dataset || typeof dataset.length !== 'number' || typeof dataset.getItem !== 'function') {
      throw new TypeError('DataLoader: dataset must have a numeric length and a getItem(index) method');
    }
    this.batchSize = checkCount('batchSize', options.batchSize ?? 1, 1);
    this.shuffle = options.shuffle ?? false;
    this.sampler = options.sampler ?? null;
    if (this.sampler && this.shuffle) throw new TypeError('DataLoader: sampler and shuffle are mutually exclusive (the sampler decides the order)');
    if (this.sampler && (typeof this.sampler.indices !== 'function' || typeof this.sampler.length !== 'number')) {
      throw new TypeError('DataLoader: sampler must have a numeric length and an indices(epoch) method');
    }
    this.dropLast = options.dropLast ?? false;
    this.prefetch = checkCount('prefetch', options.prefetch ?? 2, 0);
    this.autoDispose = options.autoDispose ?? true;
    this.collate = options.collate ?? null;
    this.dtype = options.dtype === undefined ? null : dtypeOf(options.dtype);
    if (this.dtype && !this.dtype.isFloating) throw new TypeError(`DataLoader: dtype must be a floating dtype, got ${this.dtype.name}`);
    if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new TypeError(`DataLoader: seed must be an integer, got ${options.seed}`);
    this.seed = options.seed ?? (options.generator ?? defaultGenerator).nextUint32();
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.sampler ? this.sampler.length : this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch the next (or current) iteration runs. */
  get epoch(): number {
    return this.epochIndex;
  }

  /** Run epoch `epoch` next, from its first batch. */
  setEpoch(epoch: number): void {
    this.epochIndex = checkCount('epoch', epoch, 0);
    this.batchIndex = 0;
  }

  state(): DataLoaderState {
    return { seed: this.seed, epoch: this.epochIndex, batch: this.batchIndex };
  }

  /** Restore a state(): the next iteration yields exactly what the saved loader would have. */
  loadState(state: DataLoaderState): void {
    if (!state || typeof state !== 'object') throw new TypeError('DataLoader.loadState: expected { seed, epoch, batch }');
    if (!Number.isInteger(state.seed)) throw new TypeError(`DataLoader.loadState: seed must be an integer, got ${state.seed}`);
    checkCount('epoch', state.epoch, 0);
    checkCount('batch', state.batch, 0);
    this.seed = state.seed;
    this.epochIndex = state.epoch;
    this.batchIndex = state.batch;
    if (this.batchIndex >= this.length && this.length > 0) {
      this.epochIndex++;
      this.batchIndex = 0;
    }
  }

  /** The order of `epoch`'s samples (null: 0, 1, 2, ...). */
  private epochOrder(epoch: number): Int32Array | null {
    if (this.sampler) return this.sampler.indices(epoch);
    return this.shuffle ? epochPermutation(this.dataset.length, this.seed, epoch) : null;
  }

  /** The sample indices of batch `batch` of `epoch`. */
  batchIndices(epoch: number, batch: number, order: Int32Array | null = this.epochOrder(epoch)): Int32Array {
    const start = batch * this.batchSize;
    const end = Math.min(start + this.batchSize, order ? order.length : this.dataset.length);
    if (order) return order.slice(start, end);
    const out = new Int32Array(Math.max(0, end - start));
    for (let i = 0; i < out.length; i++) out[i] = start + i;
    return out;
  }

  private async produce(order: Int32Array | null, seed: number, epoch: number, batch: number): Promise<B> {
    const indices = this.batchIndices(epoch, batch, order);
    const ctx: SampleContext = { generator: batchGenerator(seed, epoch, batch), epoch, batch };
    let result: B;
    if (!this.collate && typeof this.dataset.getBatch === 'function') {
      result = (await this.dataset.getBatch(indices, ctx)) as B;
    } else {
      // getItem is called in index order (synchronous parts included), so draws are ordered.
      const pending: unknown[] = [];
      for (const i of indices) pending.push(this.dataset.getItem(i, ctx));
      const samples = await Promise.all(pending);
      result = (this.collate ?? defaultCollate)(samples) as B;
    }
    if (this.dtype) result = castFloating(result, this.dtype) as B;
    // Batches belong to no scope: a consumer's mx.scope must not free them under it.
    if (scopeDepth() > 0) forEachTensor(result, (t) => keep(t));
    return result;
  }

  [Symbol.asyncIterator](): AsyncGenerator<B, void, undefined> {
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<B, void, undefined> {
    const seed = this.seed;
    const epoch = this.epochIndex;
    const start = this.batchIndex;
    const count = this.length;
    const order = this.epochOrder(epoch);
    const dispose = (b: unknown): void => forEachTensor(b, (t) => t.dispose());
    const queue: Promise<B>[] = [];
    let scheduled = start;
    let chain: Promise<unknown> = Promise.resolve();
    const schedule = (): void => {
      const b = scheduled++;
      // In order, one after the other, each from a fresh macrotask when prefetching.
      const p = chain.then(() => (this.prefetch > 0 ? nextMacrotask() : undefined)).then(() => this.produce(order, seed, epoch, b));
      chain = p.catch(() => undefined);
      queue.push(p);
    };
    let current: B | undefined;
    try {
      for (let b = start; b < count; b++) {
        while (scheduled < count && scheduled <= b + this.prefetch) schedule();
        const next = queue.shift()!;
        if (current !== undefined && this.autoDispose) dispose(current);
        current = undefined;
        current = await next;
        this.batchIndex = b + 1;
        yield current;
      }
    } finally {
      if (current !== undefined && this.autoDispose) dispose(current);
      for (const p of queue) p.then(dispose, () => undefined);
      // The next iteration is the next epoch (also after a break: each loop is one epoch).
      if (this.epochIndex === epoch) {
        this.epochIndex = epoch + 1;
        this.batchIndex = 0;
      }
    }
  }
}
