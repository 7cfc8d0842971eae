/**
 * The training step shared by `mixprec train`, `mixprec train-lm` (with its own loss), the examples
 * and the benchmarks, and the classification evaluation:
 * one step is zeroGrad, forward under the precision's autocast, scaled backward, scaler step and
 * update, all inside `mx.scope` so device memory is the same after every step.
 */
import type { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import { autocast } from '../amp/autocast.js';
import { GradScaler } from '../amp/grad_scaler.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import { crossEntropy } from '../nn/functional.js';
import { argmax } from '../ops/reduce.js';
import { add, div, eq } from '../ops/elementwise.js';
import { clipGradNorm_ } from '../nn/utils.js';

export type Precision = 'fp32' | 'fp16' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'bf16'];

/** The autocast dtype of a precision (null: float32 throughout). */
export function autocastDtype(precision: Precision): 'float16' | 'bfloat16' | null {
  return precision === 'fp16' ? 'float16' : precision === 'bf16' ? 'bfloat16' : null;
}

/** fp16 scales the loss; fp32 and bf16 get a disabled scaler (every method a no-op). */
export function scalerFor(precision: Precision): GradScaler {
  return new GradScaler({ enabled: precision === 'fp16' });
}

/** Run `fn` under the precision's autocast. */
export function underPrecision<T>(precision: Precision, fn: () => T): T {
  const dtype = autocastDtype(precision);
  return dtype ? autocast({ dtype }, fn) : fn();
}

export interface StepContext {
  model: Module;
  optimizer: Optimizer<object>;
  scaler: GradScaler;
  precision: Precision;
  /** Clip the gradient norm (after unscale_) when set. */
  clipGradNorm?: number;
  /** The loss of a batch (default: cross-entropy of model(x) against class labels y). */
  loss?: (x: Tensor, y: Tensor) => Tensor;
}

export interface StepResult {
  /** The float32 loss (a kept 0-d tensor: read it, then dispose it). */
  loss: Tensor;
  /**
   * False when the scaler skipped the step (inf/NaN gradients). On a backend without synchronous
   * reads (WebGPU) the skip is decided on the device: this is then true (opt.step() ran, and left the
   * parameters unchanged if the gradients overflowed) and `skipOnDevice` is set; count the skips
   * with `await scaler.getSkippedStepsAsync()`.
   */
  stepped: boolean;
  /** Set when the scaler decided the skip on the device (see `stepped`). */
  skipOnDevice?: true;
}

/** One optimisation step on a batch. */
export function trainStep(ctx: StepContext, x: Tensor, y: Tensor): StepResult {
  return trainStepAccumulated(ctx, [[x, y]]);
}

/**
 * One optimisation step on the gradients of several micro-batches (gradient accumulation): each
 * micro-batch's loss, divided by their number, is scaled and backpropagated in its own scope (its
 * activations freed before the next), then one unscale_/clip/step/update. The returned loss is the
 * mean of the micro-batches' losses.
 */
export function trainStepAccumulated(ctx: StepContext, batches: readonly (readonly [Tensor, Tensor])[]): StepResult {
  if (batches.length === 0) throw new RangeError('trainStepAccumulated: no micro-batches');
  return scope(() => {
    ctx.optimizer.zeroGrad();
    let total: Tensor | null = null;
    for (const [x, y] of batches) {
      const part = scope(() => {
        let loss = underPrecision(ctx.precision, () => (ctx.loss ? ctx.loss(x, y) : crossEntropy(ctx.model.call(x) as Tensor, y)));
        if (batches.length > 1) loss = div(loss, batches.length);
        ctx.scaler.scale(loss).backward();
        return loss.detach();
      });
      total = total ? add(total, part) : part;
    }
    if (ctx.clipGradNorm !== undefined) {
      ctx.scaler.unscale_(ctx.optimizer);
      clipGradNorm_(ctx.model.parameters(), ctx.clipGradNorm);
    }
    const stepped = ctx.scaler.step(ctx.optimizer);
    ctx.scaler.update();
    return stepped === undefined ? { loss: total!, stepped: true, skipOnDevice: true } : { loss: total!, stepped };
  });
}

export interface Evaluation {
  accuracy: number;
  correct: number;
  total: number;
  meanLoss: number;
  /** Per class: [correct, total]. */
  perClass: [number, number][];
}

/** Accuracy and mean loss over a loader, in eval mode, without gradients. */
export async function evaluate(model: Module, batches: AsyncIterable<[Tensor, Tensor]>, precision: Precision, numClasses: number): Promise<Evaluation> {
  const wasTraining = model.training;
  model.eval();
  const perClass: [number, number][] = Array.from({ length: numClasses }, () => [0, 0]);
  let correct = 0;
  let total = 0;
  let lossSum = 0;
  try {
    for await (const [x, y] of batches) {
      const [hit, loss] = noGrad(() =>
        scope(() => {
          const logits = underPrecision(precision, () => model.call(x) as Tensor);
          return [eq(argmax(logits, 1), y), crossEntropy(logits, y, { reduction: 'sum' })];
        }),
      );
      const hits = await hit!.data();
      const labels = await y.data();
      for (let i = 0; i < labels.length; i++) {
        const c = labels[i]!;
        perClass[c]![1]++;
        if (hits[i]) {
          perClass[c]![0]++;
          correct++;
        }
      }
      total += labels.length;
      lossSum += await loss!.item();
      hit!.dispose();
      loss!.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  return { accuracy: total ? correct / total : 0, correct, total, meanLoss: total ? lossSum / total : 0, perClass };
}
