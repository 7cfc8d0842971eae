/**
 * The kernel contract between the op layer and the backends: every kernel's name and the type of
 * its parameters, one line each. `Backend.run` is typed by it, the reference backend's table must
 * have every entry (src/backend/reference/index.ts), and the wasm and webgpu tables of native
 * kernels are typed against it, so a missing kernel, a misspelled name or a wrong parameter is a
 * compile error. Types only: nothing here exists at run time.
 *
 * Conventions (the reference kernels are the definitions; docs/design.md, "adding an op"):
 * - inputs and outputs are strided views (`KernelTensor`); elementwise kernels get inputs already
 *   broadcast to the output's shape and promoted by the op layer;
 * - a 16-bit output is computed in float32 (or wider) and rounded once; sums accumulate in float32
 *   or wider;
 * - a kernel reads only the parameters listed here (callers may pass more: an op passes its own
 *   parameters, a superset).
 */
/** A kernel without parameters. */
export type NoParams = Readonly<Record<string, never>>;

/* ------------------------------------------------------------------ parameter types */

export interface FillParams {
  /** rounded once into the output's dtype */
  value: number;
}
export interface LeakyReluParams {
  negativeSlope: number;
}
export interface GeluParams {
  approximate: 'none' | 'tanh';
}
export interface ClampParams {
  /** null: unbounded on that side */
  min: number | null;
  max: number | null;
}
export interface SoftplusParams {
  beta: number;
  /** above beta * x > threshold the function is x itself */
  threshold: number;
}
/** addcmul / addcdiv: x + value * t1 * t2, x + value * t1 / t2 (and their gradients). */
export interface ScaledParams {
  value: number;
}

/** Reduction over `dims` (the output keeps or drops them: its shape says which). */
export interface ReduceDimsParams {
  dims: readonly number[];
}
export interface SumParams extends ReduceDimsParams {
  /** multiplies the sum before it is rounded (mean = sum with scale 1/n: no 16-bit overflow) */
  scale?: number;
}
export interface NormParams extends ReduceDimsParams {
  /** the p of the p-norm: 0 counts nonzeros, ±Infinity are max/min of |x| */
  p: number;
}
/** argmax / argmin along `dim`, or over the flattened input when null. */
export interface ArgReduceParams {
  dim: number | null;
}
/** Along one dimension (softmax, cat, gather, ...). */
export interface DimParams {
  dim: number;
}
export interface CumsumParams extends DimParams {
  /** from the end (the gradient of cumsum) */
  reverse: boolean;
}

/** conv2d and its gradients, NCHW; shapes come from the inputs and the output. */
export interface Conv2dParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}
/** 2-D pooling over the last two dims; max pooling reads dilation, average pooling the last two. */
export interface Pool2dParams {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  countIncludePad: boolean;
  divisorOverride: number | null;
}

/** PyTorch's SGD hyperparameters (also the SGD optimizer's options, src/optim/sgd.ts). */
export interface SgdHyperparameters {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/** sgdUpdate: the hyperparameters, and how this call's inputs and outputs are laid out. */
export interface SgdUpdateParams extends SgdHyperparameters {
  /** First step with momentum: the buffer starts as the gradient (its old content is ignored). */
  first: boolean;
  /** An `isFirst` input follows (0-d float32; nonzero: first step). It replaces `first`. */
  firstInput?: boolean;
  /** A `foundInf` input comes last (0-d float32; nonzero: outputs = inputs). */
  foundInfInput?: boolean;
  /**
   * With firstInput and foundInfInput: one more output, the isFirst flag after this step (0-d
   * float32, a tensor other than the isFirst input): isFirst if the step was skipped, else 0.
   */
  flagOutput?: boolean;
}

/**
 * sgdUpdateMulti: sgdUpdate over `count` tensors in one call (PyTorch's foreach / multi-tensor SGD):
 * every tensor with the same hyperparameters, `first`, and optional inputs and outputs.
 */
export interface SgdUpdateMultiParams extends SgdUpdateParams {
  /** Tensors updated (>= 1): the inputs and outputs come in groups of `count` (kernels/optim.ts). */
  count: number;
}

/** adamUpdate: PyTorch's Adam and AdamW. */
export interface AdamUpdateParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: weight decay shrinks the parameter; Adam: it is added to the gradient. */
  decoupled: boolean;
  amsgrad: boolean;
  maximize: boolean;
  /** 1 - beta1^step (without a `step` input; src/backend/optim_math.ts). */
  biasCorrection1?: number;
  /** sqrt(1 - beta2^step) (without a `step` input). */
  biasCorrection2Sqrt?: number;
  /** A `step` input follows (0-d float32, the step count including this step): the bias corrections come from it. */
  stepInput?: boolean;
  /** A `foundInf` input comes last (0-d float32; nonzero: outputs = inputs). */
  foundInfInput?: boolean;
}

/** adamUpdateMulti: adamUpdate over `count` tensors in one call (PyTorch's foreach / multi-tensor Adam). */
export interface AdamUpdateMultiParams extends AdamUpdateParams {
  /** Tensors updated (>= 1): the inputs and outputs come in groups of `count` (kernels/optim.ts). */
  count: number;
}

/** ampUpdateScale: GradScaler's options. */
export interface AmpUpdateScaleParams {
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  /** Back off only after this many consecutive overflowing iterations (1: at every overflow, PyTorch). */
  hysteresis: number;
  minScale: number;
  maxScale: number;
  /** A skipped-iterations counter (int32 0-d) follows overflowStreak in inputs and outputs: += 1 when foundInf != 0. */
  countSkipped?: boolean;
}

/** Batch normalisation in training mode (channel = dim 1). */
export interface BatchNormParams {
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}
/** Layer normalisation over the last `size` elements of each row (kernels/layer_norm.ts). */
export interface LayerNormParams {
  size: number;
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}
export interface BatchNormRunningParams {
  momentum: number;
  /** count / (count - 1): the biased batch variance made unbiased */
  unbiasFactor: number;
}

/** The negative log-likelihood loss. */
export interface NllParams {
  ignoreIndex: number;
  reduction: 'mean' | 'sum' | 'none';
  /** 1 for [N,C,...], 0 for a [C] input with a 0-d target */
  classDim: number;
}

/** One LSTM layer's recurrence over a sequence (src/nn/lstm_layer.ts, op 'lstmLayerFused'). */
export interface LstmParams {
  /** the sequence runs from its last step to its first */
  reverse: boolean;
  /** a bias input (forward) / a bias-gradient output (backward) is present */
  hasBias: boolean;
}

/** Fused scaled dot-product attention (src/nn/attention.ts; FlashAttention's algorithm). */
export interface FlashAttentionParams {
  /** multiplies q . k */
  scale: number;
  /** query i attends to keys j <= i only */
  causal: boolean;
  /** the mask input's kind: none, bool (true: may attend) or float (added to the scores) */
  mask: 'none' | 'bool' | 'float';
  /**
   * Dropout on the weights: element (b * L + i) * S + j is kept when counterHash(seed0, seed1, index)
   * >>> 8 >= dropoutThreshold (src/random/counter_hash.ts; 0: no dropout), kept weights scaled by dropoutScale.
   */
  dropoutThreshold: number;
  dropoutScale: number;
  seed0: number;
  seed1: number;
}

/* ------------------------------------------------------------------ the catalogue */

/**
 * Every kernel: name -> parameters. Inputs -> outputs in the comments; "x, g" is an input and the
 * incoming gradient. Definitions: the reference kernel of the same name (src/backend/reference/kernels/).
 */
export interface KernelParamsMap {
  // elementwise, one input (kernels/elementwise.ts)
  copy: NoParams; //                     x -> x in the output's dtype (cast, contiguous, copy_)
  fill: FillParams; //                   () -> value everywhere
  neg: NoParams;
  abs: NoParams;
  sign: NoParams; //                     keeps ±0 and NaN
  exp: NoParams;
  log: NoParams;
  log1p: NoParams;
  sqrt: NoParams;
  rsqrt: NoParams;
  tanh: NoParams;
  sigmoid: NoParams;
  relu: NoParams;
  leakyRelu: LeakyReluParams;
  gelu: GeluParams;
  clamp: ClampParams;
  logicalNot: NoParams; //               -> bool
  isfinite: NoParams; //                 -> bool
  reciprocal: NoParams; //               (kernels/extra.ts from here to atan2)
  softplus: SoftplusParams;

  // elementwise, two or three inputs
  add: NoParams;
  sub: NoParams;
  mul: NoParams;
  div: NoParams;
  pow: NoParams;
  maximum: NoParams; //                  NaN propagates
  minimum: NoParams;
  eq: NoParams; //                       comparisons and logical ops -> bool
  ne: NoParams;
  lt: NoParams;
  le: NoParams;
  gt: NoParams;
  ge: NoParams;
  logicalAnd: NoParams;
  logicalOr: NoParams;
  where: NoParams; //                    cond (bool), a, b -> cond ? a : b
  atan2: NoParams;
  addcmul: ScaledParams; //              x, t1, t2 -> x + value * t1 * t2
  addcdiv: ScaledParams; //              x, t1, t2 -> x + value * t1 / t2

  // fused elementwise gradients: one rounding for a 16-bit backward
  geluBackward: GeluParams; //           x, g
  tanhBackward: NoParams; //             x, g (recomputed from x)
  sigmoidBackward: NoParams; //          x, g
  reluBackward: NoParams; //             x, g
  leakyReluBackward: LeakyReluParams; // x, g
  log1pBackward: NoParams; //            x, g
  sqrtBackward: NoParams; //             y = sqrt(x), g
  rsqrtBackward: NoParams; //            x, g
  clampBackward: ClampParams; //         x, g
  powBackwardBase: NoParams; //          a, b, g
  powBackwardExponent: NoParams; //      a, b, g
  divBackwardDivisor: NoParams; //       a, b, g
  maximumBackward: NoParams; //          a, b, g -> gradient of a (half on ties)
  minimumBackward: NoParams; //          a, b, g
  reciprocalBackward: NoParams; //       y = 1/x, g
  softplusBackward: SoftplusParams; //   x, g
  atan2BackwardInput: NoParams; //       a, b, g
  atan2BackwardOther: NoParams; //       a, b, g
  addcmulBackward: ScaledParams; //      other factor t, g
  addcdivBackwardNumerator: ScaledParams; //   t2, g
  addcdivBackwardDenominator: ScaledParams; // t1, t2, g

  // reductions and scans (kernels/reduce.ts, kernels/extra.ts)
  sum: SumParams;
  max: ReduceDimsParams;
  min: ReduceDimsParams;
  prod: ReduceDimsParams;
  prodBackward: ReduceDimsParams; //     x, g (exact with zeros)
  norm: NormParams;
  normBackward: NormParams; //           x, g
  argmax: ArgReduceParams; //            -> int32, the first extremum (NaN wins)
  argmin: ArgReduceParams;
  cumsum: CumsumParams;
  softmax: DimParams;
  logSoftmax: DimParams;
  softmaxBackward: DimParams; //         y = softmax(x), g
  logSoftmaxBackward: DimParams; //      y = logSoftmax(x), g

  // matrix products and convolution (kernels/linalg.ts, kernels/conv.ts)
  bmm: NoParams; //                      [B,M,K], [B,K,N] -> [B,M,N]
  conv2d: Conv2dParams; //               x, w, [bias] -> y
  conv2dBackwardInput: Conv2dParams; //  gy, w -> dx (also convTranspose2d's forward)
  conv2dBackwardWeight: Conv2dParams; // x, gy -> dw

  // pooling (kernels/pool.ts)
  maxPool2d: Pool2dParams;
  maxPool2dBackward: Pool2dParams; //    x, gy -> dx (to each window's first maximum)
  avgPool2d: Pool2dParams;
  avgPool2dBackward: Pool2dParams; //    gy -> dx
  adaptiveAvgPool2d: NoParams; //        windows from the input and output shapes
  adaptiveAvgPool2dBackward: NoParams; // gy -> dx

  // concatenation and indexing (kernels/indexing.ts); indices are int32
  cat: DimParams; //                     x1, x2, ... -> along dim
  indexSelect: DimParams; //             x, index
  indexAdd: DimParams; //                src, index -> zeros of the output's shape + src at index
  gather: DimParams; //                  x, index
  scatterAdd: DimParams; //              src, index -> zeros of the output's shape + src at gathered places

  // optimizers and loss scaling (kernels/optim.ts): in place, the outputs are the inputs' views
  sgdUpdate: SgdUpdateParams; //         param, grad, [buffer], [isFirst], [foundInf] -> param, [buffer], [nextIsFirst]
  sgdUpdateMulti: SgdUpdateMultiParams; // param_1..k, grad_1..k, [buffer_1..k], [isFirst_1..k], [foundInf] -> param_1..k, [buffer_1..k], [nextIsFirst_1..k]
  adamUpdate: AdamUpdateParams; //       param, grad, expAvg, expAvgSq, [maxExpAvgSq], [step], [foundInf] -> param, states
  adamUpdateMulti: AdamUpdateMultiParams; // param_1..k, grad_1..k, expAvg_1..k, expAvgSq_1..k, [maxExpAvgSq_1..k], [step], [foundInf] -> param_1..k, states_1..k
  ampUnscale: NoParams; //               grad_1..k, invScale, foundInf -> grad_1..k, foundInf
  sumSquares: NoParams; //               x_1..k -> float32 [k]: each one's sum of squares (gradient clipping's norm)
  ampUpdateScale: AmpUpdateScaleParams; // scale, growthTracker, overflowStreak, [skipped], foundInf -> the state

  // batch normalisation in training mode (kernels/batch_norm.ts); stats [2,C] = mean, biased variance
  batchNormStats: NoParams; //           x -> stats
  batchNormTrain: BatchNormParams; //    x, stats, [w], [b] -> y
  batchNormGradSums: BatchNormParams; // g, x, stats -> [2,C]: sum(g * xhat), sum(g)
  batchNormBackwardInput: BatchNormParams; // g, x, stats, sums, [w] -> dx
  batchNormRunningUpdate: BatchNormRunningParams; // runningMean, runningVar, stats -> runningMean, runningVar

  // layer normalisation (kernels/layer_norm.ts); stats [2,R] = mean, rstd of each of R rows
  layerNormStats: LayerNormParams; //    x -> stats
  layerNormFused: LayerNormParams; //    x, stats, [w], [b] -> y
  layerNormGradSums: LayerNormParams; // g, x, stats -> [2,D]: sum(g * xhat), sum(g)
  layerNormBackwardInput: LayerNormParams; // g, x, stats, [w] -> dx

  // negative log-likelihood (kernels/nll.ts)
  nllLossFused: NllParams; //            logp, target, [w] -> loss
  nllLossBackward: NllParams; //         g, logp, target, [w] -> dlogp

  // fused attention (kernels/attention.ts): q [N..,L,E], k [N..,S,E], v [N..,S,Ev], mask [N..,L,S]
  flashAttentionForward: FlashAttentionParams; //  q, k, v, [mask] -> out [N..,L,Ev], lse float32 [N..,L]
  flashAttentionBackward: FlashAttentionParams; // q, k, v, [mask], out, lse, g -> dq, dk, dv

  // fused LSTM layer (kernels/lstm.ts): gx [T,B,4H], states [B,H], w [4H,H]; out [T,B,2H] = h | c
  lstmForward: LstmParams; //  gx, h0, c0, w, [bias [4H]] -> out, acts [T,B,5H] (i, f, g, o, tanh c)
  lstmBackward: LstmParams; // gOut, out, c0, w, acts -> dGates [T,B,4H], dh0, dc0, [dBias per row [B,4H]]
}

export type KernelName = keyof KernelParamsMap;

/** The parameters of kernel `K`; without `K`, those of any kernel (a handler serving several). */
export type KernelParams<K extends KernelName = KernelName> = KernelParamsMap[K];
