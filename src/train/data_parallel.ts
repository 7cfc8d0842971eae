/**
 * What the train commands need to run data-parallel when a launcher started them (`mixprec run`,
 * torchrun, Kubeflow: WORLD_SIZE > 1 in the environment): the env:// process group, the model
 * wrapped in DistributedDataParallel, this rank's shard of the data, and sums over ranks for what
 * they report. Rank 0 prints, logs and checkpoints; the global batch is the per-rank batch times
 * the world size.
 */
import { Tensor } from '../tensor/tensor.js';
import { float64, int32 } from '../dtype/dtype.js';
import type { Module } from '../nn/module.js';
import { DistributedDataParallel, type DistributedDataParallelOptions } from '../nn/parallel/distributed.js';
import { DistributedSampler, type Sampler } from '../data/sampler.js';
import { hashSeed } from '../data/dataloader.js';
import { initProcessGroup, destroyProcessGroup, getRank, getWorldSize, isInitialized } from '../distributed/process_group.js';
import { allReduce, barrier } from '../distributed/collectives.js';
import type { Evaluation } from './classifier.js';

export class DataParallel {
  readonly rank: number;
  readonly worldSize: number;

  private constructor() {
    this.rank = getRank();
    this.worldSize = getWorldSize();
  }

  /** Join the job a launcher started (env://); null when this process runs alone (WORLD_SIZE unset or 1). */
  static async fromEnvironment(): Promise<DataParallel | null> {
    const world = Number(process.env['WORLD_SIZE'] ?? '1');
    if (!(world > 1)) return null;
    if (!isInitialized()) await initProcessGroup({ backend: 'gloo', initMethod: 'env://' });
    return new DataParallel();
  }

  /** Rank 0: the one that prints, logs and checkpoints. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  wrap<M extends Module>(model: M, options: DistributedDataParallelOptions = {}): DistributedDataParallel<M> {
    return new DistributedDataParallel(model, options);
  }

  /** The training order: the permutation one process would draw with `seed`, this rank's share of it. */
  trainSampler(dataset: { readonly length: number }, seed: number): DistributedSampler {
    return new DistributedSampler(dataset, { seed });
  }

  /** This rank's part of an evaluation set: every rank-th sample, no padding (sums stay exact). */
  evaluationShard(dataset: { readonly length: number }): Sampler {
    const { rank, worldSize } = this;
    const length = Math.max(0, Math.ceil((dataset.length - rank) / worldSize));
    return {
      length,
      indices: () => Int32Array.from({ length }, (_, i) => rank + i * worldSize),
    };
  }

  /** A seed of this rank's own (augmentation, sampling), rank 0 keeping `seed` itself. */
  rankSeed(seed: number): number {
    return this.rank === 0 ? seed : hashSeed(seed, this.rank);
  }

  /** Element-wise sums over the ranks (float64: counts and loss sums stay exact). */
  async sum(values: readonly number[]): Promise<number[]> {
    const t = Tensor.fromStorage(Float64Array.from(values), [values.length], float64);
    await allReduce(t);
    const out = Array.from((await t.data()) as Float64Array);
    t.dispose();
    return out;
  }

  /** Whether `flag` holds on any rank (e.g. Ctrl-C seen): every rank gets the same answer at the same step. */
  async any(flag: boolean): Promise<boolean> {
    const t = Tensor.fromStorage(Int32Array.of(flag ? 1 : 0), [1], int32);
    await allReduce(t, { op: 'max' });
    const out = (await t.item()) > 0;
    t.dispose();
    return out;
  }

  /** A classification evaluation of this rank's shard, summed over ranks. */
  async reduceEvaluation(ev: Evaluation): Promise<Evaluation> {
    const sums = await this.sum([ev.correct, ev.total, ev.meanLoss * ev.total, ...ev.perClass.flat()]);
    const [correct, total, lossSum] = sums as [number, number, number];
    const perClass = ev.perClass.map((_, c) => [sums[3 + 2 * c]!, sums[4 + 2 * c]!] as [number, number]);
    return { accuracy: total ? correct / total : 0, correct, total, meanLoss: total ? lossSum / total : 0, perClass };
  }

  barrier(): Promise<void> {
    return barrier();
  }

  close(): void {
    if (isInitialized()) destroyProcessGroup();
  }
}
