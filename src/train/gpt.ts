/**
 * nanoGPT's training recipe (train.py) for `mixprec train-gpt`, the benchmarks and the tests: the
 * learning-rate schedule, AdamW's parameter groups, the loss and estimate_loss. A step is
 * `trainStepAccumulated` (classifier.ts) over `gradAccum` micro-batches with `loss: gptLoss`.
 */
import type { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import type { Module } from '../nn/module.js';
import type { GPT } from '../models/gpt.js';
import type { CharSequence } from '../data/text.js';
import type { Generator } from '../random/generator.js';
import { underPrecision, type Precision } from './classifier.js';

export interface LrSchedule {
  /** The peak learning rate. */
  lr: number;
  minLr: number;
  warmupIters: number;
  lrDecayIters: number;
}

/**
 * nanoGPT's get_lr: linear warm-up to lr over warmupIters ((it + 1) / (warmupIters + 1)), cosine
 * decay from lr to minLr until lrDecayIters, minLr after.
 */
export function nanoGptLr(it: number, s: LrSchedule): number {
  if (it < s.warmupIters) return (s.lr * (it + 1)) / (s.warmupIters + 1);
  if (it > s.lrDecayIters) return s.minLr;
  const decayRatio = (it - s.warmupIters) / (s.lrDecayIters - s.warmupIters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * decayRatio));
  return s.minLr + coeff * (s.lr - s.minLr);
}

/**
 * nanoGPT's configure_optimizers grouping: weight decay on every parameter of 2 or more dims
 * (Linear and Embedding weights), none on the others (biases, LayerNorm weights).
 */
export function nanoGptParamGroups(model: Module, weightDecay: number): { params: Tensor[]; weightDecay: number }[] {
  const params = model.parameters().filter((p) => p.requiresGrad);
  return [
    { params: params.filter((p) => p.ndim >= 2), weightDecay },
    { params: params.filter((p) => p.ndim < 2), weightDecay: 0 },
  ];
}

/** The mean cross-entropy of next-token prediction: ids x, targets y, int32 [B, T]. */
export function gptLoss(model: GPT, x: Tensor, y: Tensor): Tensor {
  return model.call(x, y)[1]!;
}

export interface EstimateLossOptions {
  batchSize: number;
  blockSize: number;
  /** Batches per split. */
  evalIters: number;
  precision: Precision;
  /** Draws the batches' offsets. */
  generator: Generator;
}

/**
 * nanoGPT's estimate_loss: the mean loss over `evalIters` random batches of each split, in eval mode
 * without gradients, under the precision's autocast.
 */
export async function estimateLoss(model: GPT, splits: Record<string, CharSequence>, o: EstimateLossOptions): Promise<Record<string, number>> {
  const wasTraining = model.training;
  model.eval();
  const out: Record<string, number> = {};
  try {
    for (const [name, data] of Object.entries(splits)) {
      let total = 0;
      for (let k = 0; k < o.evalIters; k++) {
        const [x, y] = data.randomBatch(o.generator, o.batchSize, o.blockSize, { batchFirst: true });
        const loss = noGrad(() => scope(() => underPrecision(o.precision, () => gptLoss(model, x, y))));
        total += await loss.item();
        for (const t of [loss, x, y]) t.dispose();
      }
      out[name] = total / o.evalIters;
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}
