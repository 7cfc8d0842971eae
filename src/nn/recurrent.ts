/**
 * Recurrent layers: LSTM and GRU (multi-layer, optionally bidirectional, batchFirst), PyTorch's
 * torch.nn.LSTM / torch.nn.GRU.
 *
 * Parameter names are PyTorch's, snake case included (weight_ih_l0, weight_hh_l0, bias_ih_l0,
 * bias_hh_l0, and the *_reverse ones of the backward direction): the one exception to mixprec's camel
 * case, kept so that state dicts and safetensors checkpoints interoperate with PyTorch unchanged.
 * Gate order is PyTorch's (LSTM: i, f, g, o; GRU: r, z, n), and every parameter is initialised
 * U(-1/sqrt(hiddenSize), 1/sqrt(hiddenSize)).
 *
 * LSTM runs each layer as one op (lstm_layer.ts: the input projection of all steps in one GEMM, the
 * recurrence with a hand-written backward pass); GRU runs F.gruCell per time step (a composite op).
 * Under autocast the gate matmuls run in the autocast dtype and the state update in float32, as
 * PyTorch's fused cells.
 */
import type { DTypeName } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../ops/creation.js';
import { shapeStr } from '../ops/util.js';
import { cat, narrow, squeeze, stack, transpose, unsqueeze } from '../ops/shape.js';
import type { Generator } from '../random/generator.js';
import * as F from './functional.js';
import { matmul } from '../ops/linalg.js';
import { lstmLayer } from './lstm_layer.js';
import * as init from './init.js';
import { Module } from './module.js';

export interface RNNOptions {
  /** Stacked layers; each layer's output sequence feeds the next. Default 1. */
  numLayers?: number;
  /** Learn b_ih and b_hh. Default true. */
  bias?: boolean;
  /** Input and output as [batch, seq, feature] instead of [seq, batch, feature]. Default false. */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode. Default 0. */
  dropout?: number;
  /** Also run the sequence backwards and concatenate both directions' features. Default false. */
  bidirectional?: boolean;
  dtype?: DTypeName;
  generator?: Generator;
}

abstract class RNNBase extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  /** Dropout generator (between layers). */
  readonly generator: Generator | undefined;

  constructor(mode: 'LSTM' | 'GRU', gates: number, inputSize: number, hiddenSize: number, options: RNNOptions) {
    super();
    const int = (name: string, v: number) => {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${mode}: ${name} must be a positive integer, got ${v}`);
      return v;
    };
    this.inputSize = int('inputSize', inputSize);
    this.hiddenSize = int('hiddenSize', hiddenSize);
    this.numLayers = int('numLayers', options.numLayers ?? 1);
    this.bias = options.bias ?? true;
    this.batchFirst = options.batchFirst ?? false;
    this.dropout = options.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout <= 1)) throw new RangeError(`${mode}: dropout must be in [0, 1], got ${this.dropout}`);
    this.bidirectional = options.bidirectional ?? false;
    this.generator = options.generator;
    const dtype = options.dtype ?? 'float32';
    const D = this.bidirectional ? 2 : 1;
    for (let layer = 0; layer < this.numLayers; layer++) {
      for (let dir = 0; dir < D; dir++) {
        const sfx = `_l${layer}${dir === 1 ? '_reverse' : ''}`;
        const inSize = layer === 0 ? inputSize : hiddenSize * D;
        this.registerParameter(`weight_ih${sfx}`, zeros([gates * hiddenSize, inSize], { dtype }));
        this.registerParameter(`weight_hh${sfx}`, zeros([gates * hiddenSize, hiddenSize], { dtype }));
        if (this.bias) {
          this.registerParameter(`bias_ih${sfx}`, zeros([gates * hiddenSize], { dtype }));
          this.registerParameter(`bias_hh${sfx}`, zeros([gates * hiddenSize], { dtype }));
        }
      }
    }
    this.resetParameters(options.generator);
  }

  /** Every parameter U(-1/sqrt(hiddenSize), 1/sqrt(hiddenSize)), in registration order. */
  resetParameters(generator?: Generator): void {
    const bound = 1 / Math.sqrt(this.hiddenSize);
    for (const p of this.parameters(false)) init.uniform_(p, -bound, bound, { generator });
  }

  /** [weight_ih, weight_hh, bias_ih, bias_hh] of one layer and direction. */
  protected weights(layer: number, dir: number): [Tensor, Tensor, Tensor | null, Tensor | null] {
    const sfx = `_l${layer}${dir === 1 ? '_reverse' : ''}`;
    const self = this as unknown as Record<string, Tensor>;
    return [self[`weight_ih${sfx}`]!, self[`weight_hh${sfx}`]!, this.bias ? self[`bias_ih${sfx}`]! : null, this.bias ? self[`bias_hh${sfx}`]! : null];
  }

  /** Input to [seq, batch, feature]; whether it was unbatched. */
  protected prepareInput(name: string, input: Tensor): { x: Tensor; unbatched: boolean } {
    if (input.ndim !== 2 && input.ndim !== 3) throw new RangeError(`${name}: expected a 2-D (unbatched) or 3-D input, got ${shapeStr(input.shape)}`);
    if (input.shape[input.ndim - 1] !== this.inputSize) {
      throw new RangeError(`${name}: input ${shapeStr(input.shape)} must have ${this.inputSize} features in its last dim (inputSize)`);
    }
    const unbatched = input.ndim === 2;
    if (unbatched) return { x: unsqueeze(input, 1), unbatched };
    return { x: this.batchFirst ? transpose(input, 0, 1) : input, unbatched };
  }

  /** A state [numLayers * D, batch, hidden] (unsqueezed when unbatched), checked; zeros when absent. */
  protected prepareState(name: string, what: string, h: Tensor | null | undefined, batch: number, unbatched: boolean, like: Tensor): Tensor {
    const D = this.bidirectional ? 2 : 1;
    const expected = unbatched ? [this.numLayers * D, this.hiddenSize] : [this.numLayers * D, batch, this.hiddenSize];
    if (!h) return zeros([this.numLayers * D, batch, this.hiddenSize], { dtype: like.dt.isFloating ? like.dt : 'float32' });
    if (h.ndim !== expected.length || h.shape.some((d, i) => d !== expected[i])) {
      throw new RangeError(`${name}: expected ${what} of shape ${shapeStr(expected)}, got ${shapeStr(h.shape)}`);
    }
    return unbatched ? unsqueeze(h, 1) : h;
  }

  /** Output [seq, batch, feature] back to the caller's layout. */
  protected finishOutput(y: Tensor, unbatched: boolean): Tensor {
    if (unbatched) return squeeze(y, 1);
    return this.batchFirst ? transpose(y, 0, 1) : y;
  }

  /**
   * Run all layers. `step(x_t, state, weights)` advances one time step and returns the new state,
   * whose first tensor is the output h. States are per (layer, direction).
   */
  protected runLayers<S extends Tensor[]>(x: Tensor, initial: (layer: number, dir: number) => S, step: (xt: Tensor, state: S, w: ReturnType<RNNBase['weights']>) => S): { output: Tensor; finals: S[] } {
    const T = x.shape[0]!;
    const D = this.bidirectional ? 2 : 1;
    const finals: S[] = [];
    let layerInput = x;
    for (let layer = 0; layer < this.numLayers; layer++) {
      const outs: Tensor[] = [];
      for (let dir = 0; dir < D; dir++) {
        const w = this.weights(layer, dir);
        let state = initial(layer, dir);
        const hs: Tensor[] = new Array<Tensor>(T);
        for (let k = 0; k < T; k++) {
          const t = dir === 0 ? k : T - 1 - k;
          state = step(squeeze(narrow(layerInput, 0, t, 1), 0), state, w);
          hs[t] = state[0]!;
        }
        finals.push(state);
        outs.push(stack(hs, 0));
      }
      layerInput = D === 1 ? outs[0]! : cat(outs, 2);
      if (this.dropout > 0 && layer < this.numLayers - 1) {
        layerInput = F.dropout(layerInput, { p: this.dropout, training: this.training, generator: this.generator });
      }
    }
    return { output: layerInput, finals };
  }

  override extraRepr(): string {
    return `${this.inputSize}, ${this.hiddenSize}` +
      (this.numLayers !== 1 ? `, numLayers=${this.numLayers}` : '') +
      (this.bias ? '' : ', bias=false') +
      (this.batchFirst ? ', batchFirst=true' : '') +
      (this.dropout ? `, dropout=${this.dropout}` : '') +
      (this.bidirectional ? ', bidirectional=true' : '');
  }
}

/**
 * Long short-term memory. forward(input, [h0, c0]?) returns [output, [hN, cN]]:
 * input [seq, batch, inputSize] ([batch, seq, inputSize] with batchFirst, or unbatched [seq, inputSize]);
 * output [seq, batch, D * hiddenSize] (same layout rules); h0, c0, hN, cN [numLayers * D, batch, hiddenSize]
 * (D = 2 when bidirectional; layer-major, forward direction first). Missing initial states are zeros.
 */
export class LSTM extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super('LSTM', 4, inputSize, hiddenSize, options);
  }

  forward(input: Tensor, hx?: readonly [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]] {
    const { x, unbatched } = this.prepareInput('LSTM', input);
    const batch = x.shape[1]!;
    const h0 = this.prepareState('LSTM', 'h0', hx?.[0], batch, unbatched, input);
    const c0 = this.prepareState('LSTM', 'c0', hx?.[1], batch, unbatched, input);
    const D = this.bidirectional ? 2 : 1;
    const hN: Tensor[] = [];
    const cN: Tensor[] = [];
    let layerInput = x;
    for (let layer = 0; layer < this.numLayers; layer++) {
      const outs: Tensor[] = [];
      for (let dir = 0; dir < D; dir++) {
        const [wIh, wHh, bIh, bHh] = this.weights(layer, dir);
        const state = (s: Tensor) => squeeze(narrow(s, 0, layer * D + dir, 1), 0);
        // every step's input projection in one GEMM; the recurrence in one op (lstm_layer.ts)
        const gx = matmul(layerInput, transpose(wIh, 0, 1));
        const [out, h, c] = lstmLayer(gx, [state(h0), state(c0)], wHh, bIh, bHh, { reverse: dir === 1 });
        outs.push(out);
        hN.push(h);
        cN.push(c);
      }
      layerInput = D === 1 ? outs[0]! : cat(outs, 2);
      if (this.dropout > 0 && layer < this.numLayers - 1) {
        layerInput = F.dropout(layerInput, { p: this.dropout, training: this.training, generator: this.generator });
      }
    }
    let h = stack(hN, 0);
    let c = stack(cN, 0);
    if (unbatched) {
      h = squeeze(h, 1);
      c = squeeze(c, 1);
    }
    return [this.finishOutput(layerInput, unbatched), [h, c]];
  }
}

/**
 * Gated recurrent unit. forward(input, h0?) returns [output, hN], with LSTM's shapes and layouts;
 * n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h.
 */
export class GRU extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super('GRU', 3, inputSize, hiddenSize, options);
  }

  forward(input: Tensor, hx?: Tensor | null): [Tensor, Tensor] {
    const { x, unbatched } = this.prepareInput('GRU', input);
    const batch = x.shape[1]!;
    const h0 = this.prepareState('GRU', 'h0', hx, batch, unbatched, input);
    const D = this.bidirectional ? 2 : 1;
    const { output, finals } = this.runLayers<[Tensor]>(
      x,
      (layer, dir) => [squeeze(narrow(h0, 0, layer * D + dir, 1), 0)],
      (xt, [h], [wIh, wHh, bIh, bHh]) => [F.gruCell(xt, h, wIh, wHh, bIh, bHh)],
    );
    let hN = stack(finals.map((s) => s[0]), 0);
    if (unbatched) hN = squeeze(hN, 1);
    return [this.finishOutput(output, unbatched), hN];
  }
}
