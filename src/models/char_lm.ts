/**
 * A character-level language model (Karpathy's char-rnn): Embedding -> multi-layer LSTM -> Linear
 * to the vocabulary. Inputs are int32 [seq, batch] character ids (time-major); outputs the logits
 * [seq, batch, vocab] and the LSTM's final state, which `generate` feeds back one character at a
 * time.
 */
import type { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { Embedding, Linear } from '../nn/layers.js';
import { LSTM } from '../nn/recurrent.js';
import { noGrad } from '../autograd/mode.js';
import { scope } from '../tensor/scope.js';
import { tensor } from '../ops/creation.js';
import { int32 } from '../dtype/dtype.js';
import type { Generator } from '../random/generator.js';
import { sampleLogits } from './sampling.js';

export interface CharLSTMOptions {
  vocabSize: number;
  /** Embedding width. Default 64. */
  embedDim?: number;
  /** LSTM hidden size. Default 256. */
  hidden?: number;
  /** Stacked LSTM layers. Default 2. */
  layers?: number;
  /** Dropout between LSTM layers (training only). Default 0. */
  dropout?: number;
}

export type LSTMState = readonly [Tensor, Tensor];

export class CharLSTM extends Module {
  declare readonly embed: Embedding;
  declare readonly lstm: LSTM;
  declare readonly head: Linear;
  readonly vocabSize: number;

  constructor(options: CharLSTMOptions) {
    super();
    this.vocabSize = options.vocabSize;
    const embedDim = options.embedDim ?? 64;
    const hidden = options.hidden ?? 256;
    this.registerModule('embed', new Embedding(options.vocabSize, embedDim));
    this.registerModule('lstm', new LSTM(embedDim, hidden, { numLayers: options.layers ?? 2, dropout: options.dropout ?? 0 }));
    this.registerModule('head', new Linear(hidden, options.vocabSize));
  }

  /** ids int32 [seq, batch] -> [logits [seq, batch, vocab], final state]. */
  forward(ids: Tensor, state?: LSTMState | null): [Tensor, LSTMState] {
    const [out, next] = this.lstm.call(this.embed.call(ids), state ?? null) as [Tensor, [Tensor, Tensor]];
    return [this.head.call(out), next];
  }

  /**
   * Continue `prompt` (ids, at least one) by `length` characters sampled from softmax(logits /
   * temperature) with `generator` (temperature 0: the most likely character). Runs in eval mode
   * without gradients; returns the new ids.
   */
  async generate(prompt: readonly number[], length: number, options: { temperature?: number; generator: Generator; underPrecision?: <T>(fn: () => T) => T }): Promise<number[]> {
    if (prompt.length === 0) throw new RangeError('CharLSTM.generate: the prompt is empty');
    const temperature = options.temperature ?? 1;
    if (!(temperature >= 0)) throw new RangeError(`CharLSTM.generate: temperature must be >= 0, got ${temperature}`);
    const run = options.underPrecision ?? (<T>(fn: () => T) => fn());
    const wasTraining = this.training;
    this.eval();
    const out: number[] = [];
    let state: LSTMState | null = null;
    try {
      let input = [...prompt];
      for (let k = 0; k < length; k++) {
        const [logits, h, c] = noGrad(() =>
          scope(() => {
            const [y, s] = run(() => this.forward(tensor(input, { dtype: int32 }).reshape([input.length, 1]), state));
            return [y.narrow(0, input.length - 1, 1).float().flatten(), s[0], s[1]];
          }),
        ) as [Tensor, Tensor, Tensor];
        const next: LSTMState = [h, c];
        const values = (await logits.data()) as Float32Array;
        logits.dispose();
        if (state) for (const t of state) t.dispose();
        state = next;
        const id = sampleLogits(values, { temperature, generator: options.generator });
        out.push(id);
        input = [id];
      }
    } finally {
      if (state) for (const t of state) t.dispose();
      this.train(wasTraining);
    }
    return out;
  }
}
