/**
 * mx.nn layers: Linear, convolutions, pooling, normalisation, dropout, embedding, activations.
 * Each forwards to mx.nn.functional; initialisation follows PyTorch's reset_parameters (see init.ts),
 * so with weights loaded from a PyTorch state dict the results compare with PyTorch's.
 */
import { int32, type DTypeName } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros, ones, full } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import { reciprocal } from '../ops/math.js';
import { noGrad } from '../autograd/mode.js';
import { pair, shapeStr } from '../ops/util.js';
import type { Generator } from '../random/generator.js';
import * as F from './functional.js';
import * as init from './init.js';
import { Module } from './module.js';

/** Options every layer with parameters takes (PyTorch's factory kwargs). */
export interface LayerOptions {
  /** Dtype of the parameters (and floating buffers). Default float32. */
  dtype?: DTypeName;
  /** Generator for the initial values. Default mx.defaultGenerator. */
  generator?: Generator;
}

type Pair = number | [number, number];

function floatDtype(layer: string, dtype: DTypeName | undefined): DTypeName {
  const d = dtype ?? 'float32';
  if (d !== 'float32' && d !== 'float16' && d !== 'bfloat16' && d !== 'float64') throw new TypeError(`${layer}: dtype must be floating point, got ${d}`);
  return d;
}

function positiveInt(layer: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${layer}: ${name} must be a positive integer, got ${v}`);
  return v;
}

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for the weight (kaiming uniform, a = sqrt(5)) and the bias. */
function resetLinearLike(weight: Tensor, bias: Tensor | null, generator: Generator | undefined): void {
  init.kaimingUniform_(weight, { a: Math.sqrt(5), generator });
  if (bias) {
    const [fanIn] = init.calculateFanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    init.uniform_(bias, -bound, bound, { generator });
  }
}

/* ------------------------------------------------------------------ linear */

/** y = x W^T + b over the last dim. weight [outFeatures, inFeatures], bias [outFeatures]. */
export class Linear extends Module {
  declare readonly weight: Tensor;
  declare readonly bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, options: LayerOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = positiveInt('Linear', 'inFeatures', inFeatures);
    this.outFeatures = positiveInt('Linear', 'outFeatures', outFeatures);
    const dtype = floatDtype('Linear', options.dtype);
    this.registerParameter('weight', zeros([outFeatures, inFeatures], { dtype }));
    this.registerParameter('bias', options.bias ?? true ? zeros([outFeatures], { dtype }) : null);
    this.resetParameters(options.generator);
  }

  resetParameters(generator?: Generator): void {
    resetLinearLike(this.weight, this.bias, generator);
  }

  forward(input: Tensor): Tensor {
    return F.linear(input, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** The identity (a placeholder layer). */
export class Identity extends Module {
  forward(input: Tensor): Tensor {
    return input;
  }
}

/* ------------------------------------------------------------------ convolution */

export interface Conv2dLayerOptions extends LayerOptions {
  stride?: Pair;
  /** Zero padding on both sides, or 'valid' (none) or 'same' (stride 1, output size = input size). */
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** Validated (inChannels, outChannels, groups) of a convolution layer: both channel counts divide by groups. */
function convChannels(op: string, inChannels: number, outChannels: number, groups: number): [number, number, number] {
  const g = positiveInt(op, 'groups', groups);
  for (const [name, n] of [['inChannels', inChannels], ['outChannels', outChannels]] as const) {
    if (positiveInt(op, name, n) % g !== 0) throw new RangeError(`${op}: ${name} ${n} must be divisible by groups ${g}`);
  }
  return [inChannels, outChannels, g];
}

/** 2-D convolution over [N, C, H, W]. weight [out, in/groups, kh, kw], bias [out]. */
export class Conv2d extends Module {
  declare readonly weight: Tensor;
  declare readonly bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dLayerOptions = {}) {
    super();
    [this.inChannels, this.outChannels, this.groups] = convChannels('Conv2d', inChannels, outChannels, options.groups ?? 1);
    this.kernelSize = pair('Conv2d', 'kernelSize', kernelSize, 1);
    this.stride = pair('Conv2d', 'stride', options.stride ?? 1, 1);
    this.dilation = pair('Conv2d', 'dilation', options.dilation ?? 1, 1);
    const padding = options.padding ?? 0;
    if (padding === 'valid') this.padding = [0, 0];
    else if (padding === 'same') {
      if (this.stride.some((s) => s !== 1)) throw new RangeError(`Conv2d: padding='same' is not supported for strided convolutions (stride ${shapeStr(this.stride)})`);
      const total = this.kernelSize.map((k, i) => this.dilation[i]! * (k - 1));
      if (total.some((t) => t % 2 !== 0)) {
        throw new RangeError(`Conv2d: padding='same' needs symmetric padding here (dilation * (kernelSize - 1) even), got kernelSize ${shapeStr(this.kernelSize)}, dilation ${shapeStr(this.dilation)}`);
      }
      this.padding = [total[0]! / 2, total[1]! / 2];
    } else this.padding = pair('Conv2d', 'padding', padding, 0);
    const dtype = floatDtype('Conv2d', options.dtype);
    this.registerParameter('weight', zeros([outChannels, inChannels / this.groups, ...this.kernelSize], { dtype }));
    this.registerParameter('bias', options.bias ?? true ? zeros([outChannels], { dtype }) : null);
    this.resetParameters(options.generator);
  }

  resetParameters(generator?: Generator): void {
    resetLinearLike(this.weight, this.bias, generator);
  }

  forward(input: Tensor): Tensor {
    return F.conv2d(input, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${shapeStr(this.kernelSize)}, stride=${shapeStr(this.stride)}` +
      (this.padding.some((p) => p) ? `, padding=${shapeStr(this.padding)}` : '') +
      (this.dilation.some((d) => d !== 1) ? `, dilation=${shapeStr(this.dilation)}` : '') +
      (this.groups !== 1 ? `, groups=${this.groups}` : '') +
      (this.bias ? '' : ', bias=false');
  }
}

export interface ConvTranspose2dLayerOptions extends LayerOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/**
 * Transposed 2-D convolution. weight [in, out/groups, kh, kw] (PyTorch's layout), bias [out]. Its
 * fanIn for initialisation is computed from weight dim 1, as PyTorch does.
 */
export class ConvTranspose2d extends Module {
  declare readonly weight: Tensor;
  declare readonly bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: ConvTranspose2dLayerOptions = {}) {
    super();
    [this.inChannels, this.outChannels, this.groups] = convChannels('ConvTranspose2d', inChannels, outChannels, options.groups ?? 1);
    this.kernelSize = pair('ConvTranspose2d', 'kernelSize', kernelSize, 1);
    this.stride = pair('ConvTranspose2d', 'stride', options.stride ?? 1, 1);
    this.padding = pair('ConvTranspose2d', 'padding', options.padding ?? 0, 0);
    this.outputPadding = pair('ConvTranspose2d', 'outputPadding', options.outputPadding ?? 0, 0);
    this.dilation = pair('ConvTranspose2d', 'dilation', options.dilation ?? 1, 1);
    const dtype = floatDtype('ConvTranspose2d', options.dtype);
    this.registerParameter('weight', zeros([inChannels, outChannels / this.groups, ...this.kernelSize], { dtype }));
    this.registerParameter('bias', options.bias ?? true ? zeros([outChannels], { dtype }) : null);
    this.resetParameters(options.generator);
  }

  resetParameters(generator?: Generator): void {
    resetLinearLike(this.weight, this.bias, generator);
  }

  /**
   * `outputSize` ([H, W] or [N, C, H, W]) picks the output padding, as PyTorch's forward(input,
   * output_size) does, for strides where several output sizes map to the input size.
   */
  forward(input: Tensor, outputSize?: readonly number[]): Tensor {
    let outputPadding = this.outputPadding;
    if (outputSize) {
      const hw = outputSize.slice(-2);
      if (hw.length !== 2) throw new RangeError(`ConvTranspose2d: outputSize must end with [H, W], got ${JSON.stringify(outputSize)}`);
      outputPadding = [0, 1].map((i) => {
        const minSize = (input.shape[2 + i]! - 1) * this.stride[i]! - 2 * this.padding[i]! + this.dilation[i]! * (this.kernelSize[i]! - 1) + 1;
        const extra = hw[i]! - minSize;
        if (!(extra >= 0 && extra < Math.max(this.stride[i]!, this.dilation[i]!))) {
          throw new RangeError(`ConvTranspose2d: requested output size ${JSON.stringify(hw)} is not reachable from input ${shapeStr(input.shape)} (dim ${i}: between ${minSize} and ${minSize + Math.max(this.stride[i]!, this.dilation[i]!) - 1})`);
        }
        return extra;
      }) as [number, number];
    }
    return F.convTranspose2d(input, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, outputPadding, dilation: this.dilation, groups: this.groups,
    });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${shapeStr(this.kernelSize)}, stride=${shapeStr(this.stride)}` +
      (this.padding.some((p) => p) ? `, padding=${shapeStr(this.padding)}` : '') +
      (this.outputPadding.some((p) => p) ? `, outputPadding=${shapeStr(this.outputPadding)}` : '') +
      (this.groups !== 1 ? `, groups=${this.groups}` : '') +
      (this.bias ? '' : ', bias=false');
  }
}

/* ------------------------------------------------------------------ pooling */

export interface MaxPool2dOptions {
  /** Default: kernelSize. */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: MaxPool2dOptions = {}) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.maxPool2d(input, this.kernelSize, this.options);
  }

  override extraRepr(): string {
    return `kernelSize=${JSON.stringify(this.kernelSize)}, stride=${JSON.stringify(this.options.stride ?? this.kernelSize)}`;
  }
}

export interface AvgPool2dOptions {
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number | null;
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly options: AvgPool2dOptions = {}) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.avgPool2d(input, this.kernelSize, this.options);
  }

  override extraRepr(): string {
    return `kernelSize=${JSON.stringify(this.kernelSize)}, stride=${JSON.stringify(this.options.stride ?? this.kernelSize)}`;
  }
}

/** Average pooling to a fixed output size (null keeps that input dim). */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: number | readonly (number | null)[]) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.adaptiveAvgPool2d(input, this.outputSize);
  }

  override extraRepr(): string {
    return `outputSize=${JSON.stringify(this.outputSize)}`;
  }
}

/* ------------------------------------------------------------------ normalisation */

export interface BatchNormLayerOptions {
  eps?: number;
  /** Weight of the new batch statistics in the running ones; null: cumulative average. Default 0.1. */
  momentum?: number | null;
  /** Learnable weight (init 1) and bias (init 0). Default true. */
  affine?: boolean;
  /** Keep running statistics (used in eval mode). Default true. */
  trackRunningStats?: boolean;
  /** Dtype of weight, bias and running statistics. Default float32. */
  dtype?: DTypeName;
}

/**
 * Shared implementation of BatchNorm1d/2d. Buffers: runningMean (zeros), runningVar (ones) and
 * numBatchesTracked (int32 scalar), all in stateDict(). In training mode the batch statistics
 * normalise the input and update the running ones in place (unbiased variance); in eval mode the
 * running statistics are used.
 *
 * Mixed precision: the class sets `keepsFloat32`, so `model.to('float16', { keepNormInFloat32: true })`
 * (AMP O2 master weights) leaves its weight, bias and running statistics in float32. F.batchNorm
 * computes 16-bit inputs in float32 and returns the input's dtype, so under autocast (or with a
 * float16 model around a float32 BatchNorm) the running statistics stay float32.
 */
export abstract class BatchNormBase extends Module {
  static override keepsFloat32 = true;

  declare readonly weight: Tensor | null;
  declare readonly bias: Tensor | null;
  declare readonly runningMean: Tensor | null;
  declare readonly runningVar: Tensor | null;
  declare readonly numBatchesTracked: Tensor | null;
  readonly numFeatures: number;
  readonly eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) {
    super();
    const name = new.target.name;
    this.numFeatures = positiveInt(name, 'numFeatures', numFeatures);
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.affine = options.affine ?? true;
    this.trackRunningStats = options.trackRunningStats ?? true;
    const dtype = floatDtype(name, options.dtype);
    this.registerParameter('weight', this.affine ? ones([numFeatures], { dtype }) : null);
    this.registerParameter('bias', this.affine ? zeros([numFeatures], { dtype }) : null);
    this.registerBuffer('runningMean', this.trackRunningStats ? zeros([numFeatures], { dtype }) : null);
    this.registerBuffer('runningVar', this.trackRunningStats ? ones([numFeatures], { dtype }) : null);
    this.registerBuffer('numBatchesTracked', this.trackRunningStats ? full([], 0, { dtype: int32 }) : null);
  }

  /** Running statistics back to mean 0, variance 1, no batches tracked. */
  resetRunningStats(): void {
    noGrad(() => {
      this.runningMean?.zero_();
      this.runningVar?.fill_(1);
      this.numBatchesTracked?.zero_();
    });
  }

  /** resetRunningStats, and weight 1, bias 0. */
  resetParameters(): void {
    this.resetRunningStats();
    if (this.weight) init.ones_(this.weight);
    if (this.bias) init.zeros_(this.bias);
  }

  protected abstract checkInputDim(input: Tensor): void;

  forward(input: Tensor): Tensor {
    this.checkInputDim(input);
    let factor: number | Tensor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.numBatchesTracked) {
      const nbt = this.numBatchesTracked;
      noGrad(() => nbt.copy_(add(nbt, 1)));
      if (this.momentum === null) {
        // Cumulative moving average: the n-th batch gets weight 1/n (on the device where reads are asynchronous).
        factor = nbt.backend.readSync ? 1 / nbt.dataSync()[0]! : noGrad(() => reciprocal(nbt.to('float32')));
      }
    }
    const useBatchStats = this.training || !this.runningMean || !this.runningVar;
    const track = !this.training || this.trackRunningStats;
    return F.batchNorm(input, track ? this.runningMean : null, track ? this.runningVar : null, {
      weight: this.weight, bias: this.bias, training: useBatchStats, momentum: factor, eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, trackRunningStats=${this.trackRunningStats}`;
  }
}

/** Batch normalisation of [N, C] or [N, C, L] over C. */
export class BatchNorm1d extends BatchNormBase {
  protected checkInputDim(input: Tensor): void {
    if (input.ndim !== 2 && input.ndim !== 3) throw new RangeError(`BatchNorm1d: expected 2D or 3D input (got ${input.ndim}D input ${shapeStr(input.shape)})`);
  }
}

/** Batch normalisation of [N, C, H, W] over C. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInputDim(input: Tensor): void {
    if (input.ndim !== 4) throw new RangeError(`BatchNorm2d: expected 4D input (got ${input.ndim}D input ${shapeStr(input.shape)})`);
  }
}

export interface LayerNormLayerOptions {
  eps?: number;
  /** Learnable weight (init 1) and bias (init 0). Default true. */
  elementwiseAffine?: boolean;
  /** With elementwiseAffine, whether to learn a bias. Default true. */
  bias?: boolean;
  /** Keep this layer in float32 under `to(dtype16, { keepNormInFloat32: true })`. Default false. */
  keepFloat32?: boolean;
  dtype?: DTypeName;
}

/**
 * Layer normalisation over the trailing `normalizedShape` dims (computed in float32 for 16-bit
 * inputs). Unlike BatchNorm it follows the model's dtype under `to(...)` unless built with
 * `keepFloat32: true` (or its `keepFloat32` field is set).
 */
export class LayerNorm extends Module {
  declare readonly weight: Tensor | null;
  declare readonly bias: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;

  constructor(normalizedShape: number | readonly number[], options: LayerNormLayerOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    for (const d of this.normalizedShape) positiveInt('LayerNorm', 'normalizedShape', d);
    this.eps = options.eps ?? 1e-5;
    this.elementwiseAffine = options.elementwiseAffine ?? true;
    this.keepFloat32 = options.keepFloat32 ?? false;
    const dtype = floatDtype('LayerNorm', options.dtype);
    this.registerParameter('weight', this.elementwiseAffine ? ones(this.normalizedShape, { dtype }) : null);
    this.registerParameter('bias', this.elementwiseAffine && (options.bias ?? true) ? zeros(this.normalizedShape, { dtype }) : null);
  }

  resetParameters(): void {
    if (this.weight) init.ones_(this.weight);
    if (this.bias) init.zeros_(this.bias);
  }

  forward(input: Tensor): Tensor {
    return F.layerNorm(input, this.normalizedShape, { weight: this.weight, bias: this.bias, eps: this.eps });
  }

  override extraRepr(): string {
    return `${shapeStr(this.normalizedShape)}, eps=${this.eps}, elementwiseAffine=${this.elementwiseAffine}`;
  }
}

/* ------------------------------------------------------------------ dropout and embedding */

/** Zeroes each element with probability p in training mode and scales the rest by 1/(1-p); identity in eval mode. */
export class Dropout extends Module {
  readonly p: number;
  readonly generator: Generator | undefined;

  constructor(p = 0.5, options: { generator?: Generator } = {}) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: probability has to be between 0 and 1, but got ${p}`);
    this.p = p;
    this.generator = options.generator;
  }

  forward(input: Tensor): Tensor {
    return F.dropout(input, { p: this.p, training: this.training, generator: this.generator });
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

export interface EmbeddingOptions extends LayerOptions {
  /** A row that gets no gradient, initialised to zeros (negative counts from the end). */
  paddingIdx?: number | null;
}

/** A lookup table: int32 indices of any shape to rows of weight [numEmbeddings, embeddingDim] (init N(0, 1)). */
export class Embedding extends Module {
  declare readonly weight: Tensor;
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;

  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingOptions & { weight?: Tensor } = {}) {
    super();
    this.numEmbeddings = positiveInt('Embedding', 'numEmbeddings', numEmbeddings);
    this.embeddingDim = positiveInt('Embedding', 'embeddingDim', embeddingDim);
    let pad = options.paddingIdx ?? null;
    if (pad !== null) {
      if (!Number.isInteger(pad) || pad >= numEmbeddings || pad < -numEmbeddings) {
        throw new RangeError(`Embedding: paddingIdx must be within numEmbeddings (${numEmbeddings}), got ${pad}`);
      }
      if (pad < 0) pad += numEmbeddings;
    }
    this.paddingIdx = pad;
    if (options.weight) {
      const w = options.weight;
      if (w.ndim !== 2 || w.shape[0] !== numEmbeddings || w.shape[1] !== embeddingDim) {
        throw new RangeError(`Embedding: weight ${shapeStr(w.shape)} does not match [${numEmbeddings},${embeddingDim}]`);
      }
      this.registerParameter('weight', w.isLeaf ? w : w.detach());
    } else {
      this.registerParameter('weight', zeros([numEmbeddings, embeddingDim], { dtype: floatDtype('Embedding', options.dtype) }));
      this.resetParameters(options.generator);
    }
  }

  /** An Embedding using `embeddings` [num, dim] as its weight (shared, not copied); frozen by default. */
  static fromPretrained(embeddings: Tensor, options: { freeze?: boolean; paddingIdx?: number | null } = {}): Embedding {
    if (embeddings.ndim !== 2) throw new RangeError(`Embedding.fromPretrained: embeddings must be 2-D, got ${shapeStr(embeddings.shape)}`);
    const e = new Embedding(embeddings.shape[0]!, embeddings.shape[1]!, { weight: embeddings.detach(), paddingIdx: options.paddingIdx });
    e.weight.requiresGrad_(!(options.freeze ?? true));
    return e;
  }

  resetParameters(generator?: Generator): void {
    init.normal_(this.weight, 0, 1, { generator });
    if (this.paddingIdx !== null) {
      const row = this.weight.narrow(0, this.paddingIdx, 1);
      noGrad(() => row.zero_());
    }
  }

  forward(input: Tensor): Tensor {
    return F.embedding(input, this.weight, { paddingIdx: this.paddingIdx });
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, paddingIdx=${this.paddingIdx}` : ''}`;
  }
}

/* ------------------------------------------------------------------ activations and reshaping */

export class ReLU extends Module {
  forward(input: Tensor): Tensor {
    return F.relu(input);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.leakyRelu(input, this.negativeSlope);
  }

  override extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}

export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';

  constructor(options: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = options.approximate ?? 'none';
  }

  forward(input: Tensor): Tensor {
    return F.gelu(input, { approximate: this.approximate });
  }

  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

export class Tanh extends Module {
  forward(input: Tensor): Tensor {
    return F.tanh(input);
  }
}

export class Sigmoid extends Module {
  forward(input: Tensor): Tensor {
    return F.sigmoid(input);
  }
}

export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.softmax(input, this.dim);
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

export class LogSoftmax extends Module {
  constructor(readonly dim: number) {
    super();
  }

  forward(input: Tensor): Tensor {
    return F.logSoftmax(input, this.dim);
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** Flattens dims startDim..endDim (default 1..-1: everything but the batch dim). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  forward(input: Tensor): Tensor {
    return input.flatten(this.startDim, this.endDim);
  }

  override extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}
