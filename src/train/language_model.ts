/**
 * The character language model's loss and validation loss, shared by `mixprec train-lm`, the
 * benchmarks and the tests. A training step is `trainStep` (classifier.ts) with `loss: (x, y) =>
 * lmLoss(model, x, y)`.
 */
import type { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import { crossEntropy } from '../nn/functional.js';
import type { CharLSTM } from '../models/char_lm.js';
import type { CharSequence } from '../data/text.js';
import { underPrecision, type Precision } from './classifier.js';

/** Mean cross-entropy of next-character prediction: ids x, targets y, int32 [seq, batch]. */
export function lmLoss(model: CharLSTM, x: Tensor, y: Tensor, reduction: 'mean' | 'sum' = 'mean'): Tensor {
  const [logits] = model.call(x) as [Tensor, unknown];
  return crossEntropy(logits.reshape([-1, model.vocabSize]), y.reshape([-1]), { reduction });
}

export interface LmEvaluation {
  /** Mean cross-entropy in nats per character. */
  loss: number;
  /** The same in bits per character. */
  bpc: number;
  characters: number;
}

/** Validation loss over every window of `seqLen` characters (each window starts from a zero state). */
export async function evaluateLm(model: CharLSTM, data: CharSequence, seqLen: number, precision: Precision, batchSize = 64): Promise<LmEvaluation> {
  const wasTraining = model.training;
  model.eval();
  let total = 0;
  let count = 0;
  try {
    for (const [x, y] of data.evalBatches(batchSize, seqLen)) {
      const loss = noGrad(() => scope(() => underPrecision(precision, () => lmLoss(model, x, y, 'sum'))));
      total += await loss.item();
      count += y.numel;
      loss.dispose();
      x.dispose();
      y.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  if (count === 0) throw new Error(`the validation split (${data.length} characters) is shorter than one window of ${seqLen + 1}`);
  const loss = total / count;
  return { loss, bpc: loss / Math.LN2, characters: count };
}
