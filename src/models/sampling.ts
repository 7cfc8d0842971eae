/** Drawing the next token from a model's logits: temperature, top-k, a seeded generator. */
import type { Generator } from '../random/generator.js';

export interface SampleOptions {
  /** softmax(logits / temperature); 0 picks the most likely index. Default 1. */
  temperature?: number;
  /** Keep only the k largest logits (ties with the k-th kept, as nanoGPT's masking). Default: all. */
  topK?: number | null;
  generator: Generator;
}

/** An index drawn from softmax(logits / temperature) over the top-k logits (argmax at temperature 0). */
export function sampleLogits(logits: ArrayLike<number>, options: SampleOptions): number {
  const temperature = options.temperature ?? 1;
  if (!(temperature >= 0)) throw new RangeError(`sampleLogits: temperature must be >= 0, got ${temperature}`);
  const topK = options.topK ?? null;
  if (topK !== null && !(Number.isInteger(topK) && topK >= 1)) throw new RangeError(`sampleLogits: topK must be a positive integer, got ${topK}`);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature === 0) return best;
  let cutoff = -Infinity;
  if (topK !== null && topK < logits.length) cutoff = Float64Array.from(logits).sort().reverse()[topK - 1]!;
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    weights[i] = logits[i]! < cutoff ? 0 : Math.exp((logits[i]! - logits[best]!) / temperature);
    total += weights[i]!;
  }
  let u = options.generator.nextDouble() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i]!;
    if (u < 0) return i;
  }
  return best;
}
