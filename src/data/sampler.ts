/**
 * Samplers: which dataset indices an epoch visits, in which order (DataLoader's `sampler` option).
 *
 * DistributedSampler (torch.utils.data.distributed.DistributedSampler): each of `numReplicas` ranks
 * sees its own shard of every epoch. The epoch's order is the same permutation a shuffling
 * DataLoader with the same seed draws (`epochPermutation(n, seed, epoch)`), padded by repeating
 * its start (or cut, with `dropLast`) to a multiple of `numReplicas`, and rank r takes positions
 * r, r + numReplicas, ... So with W ranks of batch b, global step k covers exactly the samples of
 * step k of one process with batch W x b and the same seed.
 *
 *   const sampler = new mx.data.DistributedSampler(train, { seed: 0 });   // rank and size from mx.distributed
 *   const loader = new mx.data.DataLoader(train, { batchSize: 32, sampler });
 *   for (let epoch = 0; epoch < 10; epoch++) for await (const [x, y] of loader) ...
 *
 * The DataLoader hands the sampler its own epoch number (`indices(epoch)`), so every epoch is
 * reshuffled without PyTorch's `sampler.set_epoch(epoch)`; `setEpoch` is there for iterating the
 * sampler directly.
 */
import { epochPermutation } from './dataloader.js';
import { isInitialized, getRank, getWorldSize } from '../distributed/process_group.js';

/** The dataset indices of an epoch, a pure function of the epoch. */
export interface Sampler {
  /** Indices per epoch. */
  readonly length: number;
  indices(epoch: number): Int32Array;
}

export interface DistributedSamplerOptions {
  /** Number of ranks sharing the dataset (default: mx.distributed's world size). */
  numReplicas?: number;
  /** This rank (default: mx.distributed's rank). */
  rank?: number;
  /** A new permutation every epoch (default true). */
  shuffle?: boolean;
  /** The permutation's seed; must be the same on every rank (default 0). */
  seed?: number;
  /** Cut the epoch to a multiple of numReplicas instead of padding it (default false). */
  dropLast?: boolean;
}

export class DistributedSampler implements Sampler, Iterable<number> {
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices per rank and epoch. */
  readonly numSamples: number;
  /** numSamples x numReplicas: the padded (or cut) epoch. */
  readonly totalSize: number;
  private epoch = 0;

  constructor(
    readonly dataset: { readonly length: number },
    options: DistributedSamplerOptions = {},
  ) {
    const fromGroup = (what: string, get: () => number): number => {
      if (!isInitialized()) throw new Error(`DistributedSampler: pass ${what}, or initialise mx.distributed first`);
      return get();
    };
    this.numReplicas = options.numReplicas ?? fromGroup('numReplicas', getWorldSize);
    this.rank = options.rank ?? fromGroup('rank', getRank);
    if (!Number.isInteger(this.numReplicas) || this.numReplicas < 1) throw new RangeError(`DistributedSampler: numReplicas must be a positive integer, got ${this.numReplicas}`);
    if (!Number.isInteger(this.rank) || this.rank < 0 || this.rank >= this.numReplicas) {
      throw new RangeError(`DistributedSampler: rank ${this.rank} is not in [0, ${this.numReplicas})`);
    }
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    if (!Number.isInteger(this.seed)) throw new TypeError(`DistributedSampler: seed must be an integer, got ${this.seed}`);
    this.dropLast = options.dropLast ?? false;
    const n = dataset.length;
    this.numSamples = this.dropLast && n % this.numReplicas !== 0 ? Math.ceil((n - this.numReplicas) / this.numReplicas) : Math.ceil(n / this.numReplicas);
    this.totalSize = this.numSamples * this.numReplicas;
  }

  get length(): number {
    return this.numSamples;
  }

  /** The epoch that iterating the sampler itself uses (a DataLoader passes its own). */
  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`DistributedSampler.setEpoch: epoch must be a non-negative integer, got ${epoch}`);
    this.epoch = epoch;
  }

  /** This rank's indices of `epoch`. */
  indices(epoch: number = this.epoch): Int32Array {
    const n = this.dataset.length;
    let order: Int32Array;
    if (this.shuffle) order = epochPermutation(n, this.seed, epoch);
    else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
    }
    const out = new Int32Array(this.numSamples);
    if (n === 0) return out;
    // Position p of the padded epoch is order[p mod n]: padding repeats the start (as PyTorch's).
    for (let i = 0, p = this.rank; i < this.numSamples; i++, p += this.numReplicas) out[i] = order[p % n]!;
    return out;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
