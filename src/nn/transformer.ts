/**
 * nn.MultiheadAttention and nn.TransformerEncoderLayer with PyTorch's parameter names, masks and
 * initialisation, so a PyTorch state dict loads as it is (test/nn.test.ts checks outputs and
 * gradients against PyTorch 1.13).
 *
 * MultiheadAttention projects q, k and v (in_proj_weight [3E, E] and in_proj_bias [3E]; or
 * q_proj_weight, k_proj_weight, v_proj_weight when kdim/vdim differ from E), splits E into numHeads
 * heads, runs scaled dot-product attention (F.scaledDotProductAttention: the fused FlashAttention
 * kernels where the backend has them) and projects back (out_proj). When the attention weights are
 * asked for (needWeights, PyTorch's default) they are computed explicitly (F.attentionWeights).
 * PyTorch's mask conventions: a bool attnMask or keyPaddingMask is true where attention is NOT
 * allowed (the opposite of scaledDotProductAttention's bool mask); float masks are added.
 */
import { bool } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../ops/creation.js';
import { add, logicalAnd, logicalNot, where } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { narrow, reshape, transpose, unsqueeze } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';
import { shapeStr } from '../ops/util.js';
import * as F from './functional.js';
import { causalMask } from './attention.js';
import * as init from './init.js';
import { Module } from './module.js';
import { Dropout, LayerNorm, Linear, type LayerOptions } from './layers.js';

export interface MultiheadAttentionOptions extends LayerOptions {
  /** Dropout on the attention weights (training only). Default 0. */
  dropout?: number;
  /** Biases of the input and output projections. Default true. */
  bias?: boolean;
  /** Inputs and output [B, L, E] instead of [L, B, E]. Default false. */
  batchFirst?: boolean;
  /** Features of the key and the value (default embedDim). */
  kdim?: number;
  vdim?: number;
}

export interface MultiheadAttentionForwardOptions {
  /** [B, S] (or [S] unbatched): bool, true where a key is padding (ignored); or float, added. */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights (default true, as PyTorch). */
  needWeights?: boolean;
  /** [L, S] or [B * numHeads, L, S]: bool, true where attention is not allowed; or float, added. */
  attnMask?: Tensor | null;
  /** Average the returned weights over the heads ([B, L, S]) instead of [B, numHeads, L, S]. Default true. */
  averageAttnWeights?: boolean;
  /**
   * Causal attention (query i sees keys j <= i). With an attnMask it is a hint that the mask is the
   * causal one (PyTorch 2's meaning) and the mask is used; without, the causal mask is applied.
   */
  isCausal?: boolean;
}

/** A bool "not allowed" or float mask as scaledDotProductAttention's: bool true = may attend, or additive float. */
const allowed = (mask: Tensor): Tensor => (mask.dt === bool ? logicalNot(mask) : mask);

/** Both masks in one (shapes broadcast): bool when both are, else additive float. */
function combineMasks(a: Tensor | null, b: Tensor | null): Tensor | null {
  if (!a || !b) return a ?? b;
  if (a.dt === bool && b.dt === bool) return logicalAnd(a, b);
  const additive = (m: Tensor, like: Tensor) => (m.dt === bool ? where(m, zeros([], { dtype: like.dt.name }), -Infinity) : m);
  const float = a.dt === bool ? b : a;
  return add(additive(a, float), additive(b, float));
}

export class MultiheadAttention extends Module {
  declare readonly in_proj_weight: Tensor | null;
  declare readonly q_proj_weight: Tensor | null;
  declare readonly k_proj_weight: Tensor | null;
  declare readonly v_proj_weight: Tensor | null;
  declare readonly in_proj_bias: Tensor | null;
  declare readonly out_proj: Linear;
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    for (const [name, v] of [['embedDim', embedDim], ['numHeads', numHeads]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`MultiheadAttention: ${name} must be a positive integer, got ${v}`);
    }
    if (embedDim % numHeads !== 0) throw new RangeError(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.kdim = options.kdim ?? embedDim;
    this.vdim = options.vdim ?? embedDim;
    this.dropout = options.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new RangeError(`MultiheadAttention: dropout must be in [0, 1), got ${this.dropout}`);
    this.batchFirst = options.batchFirst ?? false;
    const dtype = options.dtype;
    const bias = options.bias ?? true;
    const packed = this.kdim === embedDim && this.vdim === embedDim;
    this.registerParameter('in_proj_weight', packed ? zeros([3 * embedDim, embedDim], { dtype }) : null);
    this.registerParameter('q_proj_weight', packed ? null : zeros([embedDim, embedDim], { dtype }));
    this.registerParameter('k_proj_weight', packed ? null : zeros([embedDim, this.kdim], { dtype }));
    this.registerParameter('v_proj_weight', packed ? null : zeros([embedDim, this.vdim], { dtype }));
    this.registerParameter('in_proj_bias', bias ? zeros([3 * embedDim], { dtype }) : null);
    this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias, dtype, generator: options.generator }));
    this.resetParameters(options);
  }

  /** PyTorch's _reset_parameters: Xavier-uniform projections, zero biases (out_proj's weight keeps Linear's init). */
  resetParameters(options: { generator?: LayerOptions['generator'] } = {}): void {
    const generator = options.generator;
    for (const w of [this.in_proj_weight, this.q_proj_weight, this.k_proj_weight, this.v_proj_weight]) if (w) init.xavierUniform_(w, { generator });
    if (this.in_proj_bias) init.zeros_(this.in_proj_bias);
    if (this.out_proj.bias) init.zeros_(this.out_proj.bias);
  }

  /** The projection weight and bias of q (0), k (1) or v (2). */
  private projection(which: 0 | 1 | 2): [Tensor, Tensor | null] {
    const E = this.embedDim;
    const w = this.in_proj_weight ? narrow(this.in_proj_weight, 0, which * E, E) : [this.q_proj_weight, this.k_proj_weight, this.v_proj_weight][which]!;
    return [w, this.in_proj_bias ? narrow(this.in_proj_bias, 0, which * E, E) : null];
  }

  /**
   * query [L, B, E] (batchFirst: [B, L, E]; unbatched [L, E]), key [S, B, kdim], value [S, B, vdim].
   * Returns [output like query, weights or null]: weights [B, L, S] averaged over heads, or
   * [B, numHeads, L, S] (unbatched without B).
   */
  forward(query: Tensor, key: Tensor, value: Tensor, options: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const op = 'MultiheadAttention';
    const unbatched = query.ndim === 2;
    if (!unbatched && query.ndim !== 3) throw new RangeError(`${op}: query must be [L, E] or 3-D, got ${shapeStr(query.shape)}`);
    if (key.ndim !== query.ndim || value.ndim !== query.ndim) throw new RangeError(`${op}: query ${shapeStr(query.shape)}, key ${shapeStr(key.shape)} and value ${shapeStr(value.shape)} must have the same number of dims`);
    // [B, L, E] whatever the layout
    const batchMajor = (t: Tensor) => (unbatched ? unsqueeze(t, 0) : this.batchFirst ? t : transpose(t, 0, 1));
    const [q0, k0, v0] = [query, key, value].map(batchMajor) as [Tensor, Tensor, Tensor];
    const [B, L, E] = q0.shape as [number, number, number];
    const S = k0.shape[1]!;
    if (E !== this.embedDim) throw new RangeError(`${op}: query has ${E} features, expected embedDim ${this.embedDim}`);
    if (k0.shape[2] !== this.kdim || v0.shape[2] !== this.vdim) throw new RangeError(`${op}: key ${shapeStr(key.shape)} and value ${shapeStr(value.shape)} must have ${this.kdim} and ${this.vdim} features`);
    if (k0.shape[0] !== B || v0.shape[0] !== B || v0.shape[1] !== S) throw new RangeError(`${op}: key ${shapeStr(key.shape)} and value ${shapeStr(value.shape)} do not match query ${shapeStr(query.shape)}`);

    const heads = (x: Tensor, which: 0 | 1 | 2) => {
      const [w, b] = this.projection(which);
      const y = F.linear(x, w, b);
      return transpose(reshape(y, [B, y.shape[1]!, this.numHeads, this.headDim]), 1, 2); // [B, nh, len, hd]
    };
    const [q, k, v] = [heads(q0, 0), heads(k0, 1), heads(v0, 2)];
    let mask = this.mask(options, B, L, S, unbatched);
    let isCausal = false;
    if ((options.isCausal ?? false) && !options.attnMask) {
      if (mask) mask = combineMasks(causalMask(L, S), mask);
      else isCausal = true;
    }
    const needWeights = options.needWeights ?? true;
    const attn = { attnMask: mask, isCausal, dropoutP: this.training ? this.dropout : 0 };
    let out: Tensor;
    let weights: Tensor | null = null;
    if (needWeights) {
      weights = F.attentionWeights(q, k, attn);
      out = matmul(weights, v);
      if (options.averageAttnWeights ?? true) weights = mean(weights, 1);
      if (unbatched) weights = reshape(weights, weights.shape.slice(1));
    } else out = F.scaledDotProductAttention(q, k, v, attn);
    let y = this.out_proj.call(reshape(transpose(out, 1, 2), [B, L, E])) as Tensor;
    y = unbatched ? reshape(y, [L, E]) : this.batchFirst ? y : transpose(y, 0, 1);
    return [y, weights];
  }

  /** attnMask and keyPaddingMask as one scaledDotProductAttention mask broadcastable to [B, nh, L, S]. */
  private mask(o: MultiheadAttentionForwardOptions, B: number, L: number, S: number, unbatched: boolean): Tensor | null {
    const op = 'MultiheadAttention';
    let attnMask: Tensor | null = null;
    if (o.attnMask) {
      const m = o.attnMask;
      if (m.ndim === 2 && m.shape[0] === L && m.shape[1] === S) attnMask = m;
      else if (m.ndim === 3 && m.shape[0] === B * this.numHeads && m.shape[1] === L && m.shape[2] === S) attnMask = reshape(m, [B, this.numHeads, L, S]);
      else throw new RangeError(`${op}: attnMask ${shapeStr(m.shape)} must be [${L}, ${S}] or [${B * this.numHeads}, ${L}, ${S}]`);
      attnMask = allowed(attnMask);
    }
    let padding: Tensor | null = null;
    if (o.keyPaddingMask) {
      const m = o.keyPaddingMask;
      const want = unbatched ? [S] : [B, S];
      if (shapeStr(m.shape) !== shapeStr(want)) throw new RangeError(`${op}: keyPaddingMask ${shapeStr(m.shape)} must be ${shapeStr(want)}`);
      padding = reshape(allowed(m), [B, 1, 1, S]);
    }
    return combineMasks(attnMask, padding);
  }

  override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, dropout=${this.dropout}, batchFirst=${this.batchFirst}`;
  }
}

export interface TransformerEncoderLayerOptions extends LayerOptions {
  /** Width of the feed-forward block. Default 2048. */
  dimFeedforward?: number;
  /** Dropout after attention, inside and after the feed-forward block, and on the attention weights. Default 0.1. */
  dropout?: number;
  /** The feed-forward block's activation. Default 'relu'. */
  activation?: 'relu' | 'gelu';
  layerNormEps?: number;
  /** [B, L, E] instead of [L, B, E]. Default false. */
  batchFirst?: boolean;
  /** Pre-norm x + block(norm(x)) instead of post-norm norm(x + block(x)). Default false. */
  normFirst?: boolean;
  /** Biases of the linear layers and the layer norms. Default true. */
  bias?: boolean;
}

export interface TransformerEncoderLayerForwardOptions {
  /** As MultiheadAttention's attnMask. */
  srcMask?: Tensor | null;
  /** As MultiheadAttention's keyPaddingMask. */
  srcKeyPaddingMask?: Tensor | null;
  /** As MultiheadAttention's isCausal. */
  isCausal?: boolean;
}

/**
 * PyTorch's nn.TransformerEncoderLayer: self-attention then a feed-forward block (linear1,
 * activation, dropout, linear2), each with a residual connection, dropout and a layer norm (after
 * the residual, or before the block with normFirst). Names: self_attn, linear1, dropout, linear2,
 * norm1, norm2, dropout1, dropout2.
 */
export class TransformerEncoderLayer extends Module {
  declare readonly self_attn: MultiheadAttention;
  declare readonly linear1: Linear;
  declare readonly dropout: Dropout;
  declare readonly linear2: Linear;
  declare readonly norm1: LayerNorm;
  declare readonly norm2: LayerNorm;
  declare readonly dropout1: Dropout;
  declare readonly dropout2: Dropout;
  readonly normFirst: boolean;
  readonly activation: 'relu' | 'gelu';

  constructor(dModel: number, nhead: number, options: TransformerEncoderLayerOptions = {}) {
    super();
    const p = options.dropout ?? 0.1;
    const bias = options.bias ?? true;
    const dff = options.dimFeedforward ?? 2048;
    const layer = { dtype: options.dtype, generator: options.generator, bias };
    const norm = { eps: options.layerNormEps ?? 1e-5, bias, dtype: options.dtype };
    this.activation = options.activation ?? 'relu';
    if (this.activation !== 'relu' && this.activation !== 'gelu') throw new RangeError(`TransformerEncoderLayer: activation must be 'relu' or 'gelu', got '${this.activation as string}'`);
    this.normFirst = options.normFirst ?? false;
    this.registerModule('self_attn', new MultiheadAttention(dModel, nhead, { ...layer, dropout: p, batchFirst: options.batchFirst }));
    this.registerModule('linear1', new Linear(dModel, dff, layer));
    this.registerModule('dropout', new Dropout(p));
    this.registerModule('linear2', new Linear(dff, dModel, layer));
    this.registerModule('norm1', new LayerNorm(dModel, norm));
    this.registerModule('norm2', new LayerNorm(dModel, norm));
    this.registerModule('dropout1', new Dropout(p));
    this.registerModule('dropout2', new Dropout(p));
  }

  forward(src: Tensor, options: TransformerEncoderLayerForwardOptions = {}): Tensor {
    const attend = (x: Tensor) => {
      const [y] = this.self_attn.call(x, x, x, { attnMask: options.srcMask, keyPaddingMask: options.srcKeyPaddingMask, isCausal: options.isCausal, needWeights: false }) as [Tensor, null];
      return this.dropout1.call(y) as Tensor;
    };
    const feedForward = (x: Tensor) => {
      const h = this.linear1.call(x) as Tensor;
      const a = this.activation === 'gelu' ? F.gelu(h) : F.relu(h);
      return this.dropout2.call(this.linear2.call(this.dropout.call(a))) as Tensor;
    };
    const n1 = (x: Tensor) => this.norm1.call(x) as Tensor;
    const n2 = (x: Tensor) => this.norm2.call(x) as Tensor;
    if (this.normFirst) {
      const x = add(src, attend(n1(src)));
      return add(x, feedForward(n2(x)));
    }
    const x = n1(add(src, attend(src)));
    return n2(add(x, feedForward(x)));
  }

  override extraRepr(): string {
    return `normFirst=${this.normFirst}, activation='${this.activation}'`;
  }
}
