/**
 * mx.nn.functional (F): layers and losses as functions. Composite ops are registered in the op table
 * (for their autocast category); 16-bit inputs of the normalisations and losses are computed in
 * float32 and rounded once at the end.
 */
import { int32 } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { apply, applyInto, kernelView } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { castTo, inFloat32, pair, shapeStr } from '../ops/util.js';
import { slidingOutput, type ConvParams, type PoolParams } from '../ops/conv.js';
import { add, sub, mul, div, neg, abs, exp, log, log1p, where, eq, ne, ge, relu, maximum } from '../ops/elementwise.js';
import { sum, mean, logSoftmax, softmax, variance } from '../ops/reduce.js';
import { reshape, flatten, unsqueeze, squeeze, gather, indexSelect, narrow } from '../ops/shape.js';
import type { BatchNormParams, BatchNormRunningParams, NllParams as NllKernelParams } from '../backend/kernels.js';
import './batch_norm_ops.js';
import { fusedLayerNorm } from './layer_norm_ops.js';
import { useFusedNll } from './nll_ops.js';
import { rand } from '../ops/creation.js';
import { noGrad } from '../autograd/mode.js';
import { linear } from '../ops/linalg.js';
import type { Generator } from '../random/generator.js';
import { mapNumbers } from '../shape/packed.js';

export { linear, softmax, logSoftmax, relu };
export { gelu, leakyRelu, sigmoid, tanh } from '../ops/elementwise.js';

export type Reduction = 'mean' | 'sum' | 'none';


/**
 * total / weight, except that a zero weight (every target ignored) gives a NaN loss with zero
 * gradients, as PyTorch does, instead of gradients of inf * 0.
 */
function weightedMean(total: Tensor, weight: Tensor): Tensor {
  const exact = div(total.detach(), weight.detach()); // NaN (0/0) when every target is ignored
  const viaSafe = div(total, where(eq(weight, 0), 1, weight)); // the gradient path, never 1/0
  // exact (no gradient) where the weight is 0, else viaSafe, which is exact's value bit for bit; picked,
  // not added as viaSafe + (exact - viaSafe): an infinite total stays Inf (as in PyTorch), not Inf - Inf
  return where(eq(weight, 0), exact, viaSafe);
}

function reduce(op: string, losses: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return losses;
  if (reduction === 'sum') return sum(losses);
  if (reduction === 'mean') return mean(losses);
  throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${reduction as string}'`);
}

/* ------------------------------------------------------------------ convolution and pooling */

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}

function convParams(op: string, o: Conv2dOptions): ConvParams {
  const groups = o.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${op}: groups must be a positive integer, got ${groups}`);
  return {
    stride: pair(op, 'stride', o.stride ?? 1, 1),
    padding: pair(op, 'padding', o.padding ?? 0, 0),
    dilation: pair(op, 'dilation', o.dilation ?? 1, 1),
    groups,
  };
}

export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv2dOptions = {}): Tensor {
  return apply('conv2d', bias ? [input, weight, bias] : [input, weight], convParams('conv2d', options));
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: number | [number, number];
}

defineOp<ConvParams & { outputPadding: [number, number] }>({
  name: 'convTranspose2d', autocast: 'lower',
  compose: ({ 0: x, 1: w, 2: b }, p) => {
    if (x!.ndim !== 4 || w!.ndim !== 4) throw new RangeError(`convTranspose2d: expected 4-D input and weight, got ${shapeStr(x!.shape)} and ${shapeStr(w!.shape)}`);
    if (x!.shape[1] !== w!.shape[0]) {
      throw new RangeError(`convTranspose2d: input ${shapeStr(x!.shape)} has ${x!.shape[1]} channels but weight ${shapeStr(w!.shape)} expects ${w!.shape[0]}`);
    }
    const outCh = w!.shape[1]! * p.groups;
    const size = (i: 0 | 1) =>
      (x!.shape[2 + i]! - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (w!.shape[2 + i]! - 1) + p.outputPadding[i] + 1;
    const inputShape = [x!.shape[0]!, outCh, size(0), size(1)];
    if (inputShape[2]! < 1 || inputShape[3]! < 1) throw new RangeError(`convTranspose2d: output size ${shapeStr(inputShape)} is not positive`);
    const y = apply('conv2dBackwardInput', [x!, w!], { stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups, inputShape });
    if (!b) return y;
    if (b.ndim !== 1 || b.shape[0] !== outCh) throw new RangeError(`convTranspose2d: bias ${shapeStr(b.shape)} does not match ${outCh} output channels`);
    return add(y, reshape(b, [1, outCh, 1, 1]));
  },
});

export function convTranspose2d(input: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvTranspose2dOptions = {}): Tensor {
  const p = convParams('convTranspose2d', options);
  const outputPadding = pair('convTranspose2d', 'outputPadding', options.outputPadding ?? 0, 0);
  for (let i = 0; i < 2; i++) {
    if (outputPadding[i]! >= Math.max(p.stride[i]!, p.dilation[i]!)) {
      throw new RangeError(`convTranspose2d: outputPadding ${shapeStr(outputPadding)} must be smaller than stride ${shapeStr(p.stride)} or dilation ${shapeStr(p.dilation)}`);
    }
  }
  return apply('convTranspose2d', bias ? [input, weight, bias] : [input, weight], { ...p, outputPadding });
}

export interface Pool2dOptions {
  stride?: number | [number, number] | null;
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
}

function poolParams(op: string, kernelSize: number | [number, number], o: Pool2dOptions & { countIncludePad?: boolean; divisorOverride?: number | null }): PoolParams {
  const kernel = pair(op, 'kernelSize', kernelSize, 1);
  const divisorOverride = o.divisorOverride ?? null;
  if (divisorOverride !== null && (!Number.isInteger(divisorOverride) || divisorOverride <= 0)) {
    throw new RangeError(`${op}: divisorOverride must be a positive integer, got ${divisorOverride}`);
  }
  return {
    kernel,
    stride: o.stride === undefined || o.stride === null ? kernel : pair(op, 'stride', o.stride, 1),
    padding: pair(op, 'padding', o.padding ?? 0, 0),
    dilation: pair(op, 'dilation', o.dilation ?? 1, 1),
    ceilMode: o.ceilMode ?? false,
    countIncludePad: o.countIncludePad ?? true,
    divisorOverride,
  };
}

export function maxPool2d(input: Tensor, kernelSize: number | [number, number], options: Pool2dOptions = {}): Tensor {
  return apply('maxPool2d', [input], poolParams('maxPool2d', kernelSize, options));
}

export function avgPool2d(
  input: Tensor,
  kernelSize: number | [number, number],
  options: Omit<Pool2dOptions, 'dilation'> & { countIncludePad?: boolean; divisorOverride?: number | null } = {},
): Tensor {
  return apply('avgPool2d', [input], poolParams('avgPool2d', kernelSize, options));
}

export function adaptiveAvgPool2d(input: Tensor, outputSize: number | readonly (number | null)[]): Tensor {
  const size = typeof outputSize === 'number' ? [outputSize, outputSize] : [...outputSize];
  if (size.length !== 2) throw new RangeError(`adaptiveAvgPool2d: outputSize must be an integer or a pair, got ${JSON.stringify(outputSize)}`);
  const resolved = size.map((s, i) => (s === null ? input.shape[input.ndim - 2 + i]! : s));
  if (resolved.some((s) => !Number.isInteger(s) || s < 1)) throw new RangeError(`adaptiveAvgPool2d: outputSize must be positive integers, got ${JSON.stringify(outputSize)}`);
  return apply('adaptiveAvgPool2d', [input], { outputSize: resolved });
}

export { slidingOutput };

/* ------------------------------------------------------------------ losses */

export interface NllOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
  /**
   * The fused loss ops (src/nn/nll_ops.ts: one kernel for the loss, one or two for its gradient)
   * instead of the composite: default where the backend runs them natively (webgpu) and the weight
   * needs no gradient; true or false forces either.
   */
  fused?: boolean;
}

function checkTarget(op: string, input: Tensor, target: Tensor, ignoreIndex: number): void {
  if (target.dt !== int32) throw new TypeError(`${op}: target must be an int32 tensor of class indices, got ${target.dtype}`);
  const expected = input.ndim === 1 ? [] : [input.shape[0]!, ...input.shape.slice(2)];
  if (target.ndim !== expected.length || target.shape.some((d, i) => d !== expected[i])) {
    throw new RangeError(`${op}: target ${shapeStr(target.shape)} does not match input ${shapeStr(input.shape)} (expected target ${shapeStr(expected)})`);
  }
  const classes = input.shape[input.ndim === 1 ? 0 : 1]!;
  if (target.backend.readSync) {
    // Validate class indices where reading them is free (CPU backends).
    const values = target.dataSync();
    const bad = firstOutOfRange(values, classes, ignoreIndex);
    if (bad >= 0) throw new RangeError(`${op}: target ${values[bad]} is out of bounds for ${classes} classes`);
  }
}

/**
 * The index of the first target outside [0, classes) other than ignoreIndex, or -1. Its own small
 * function: the loop makes it hot within a process's first steps, and V8 then compiles just this
 * instead of checkTarget with everything inlined into it (bench/README.md, "warm-up").
 */
function firstOutOfRange(values: ArrayLike<number>, classes: number, ignoreIndex: number): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if ((v < 0 || v >= classes) && v !== ignoreIndex) return i;
  }
  return -1;
}

/** F.nllLoss's params: the fused kernels' (src/backend/kernels.ts) and whether to take them. */
interface NllParams extends NllKernelParams {
  fused?: boolean;
}

/** Negative log-likelihood over log-probabilities `input` ([N,C,...] or [C]) and int32 class targets. */
defineOp<NllParams>({
  name: 'nllLoss', autocast: 'float32',
  compose: ({ 0: input, 1: target, 2: weight }, p) =>
    inFloat32([input, weight], input!.dt, ({ 0: logp, 1: w }) => {
      const t = target!;
      if (useFusedNll(logp!, w, p.fused)) {
        const q = { ignoreIndex: p.ignoreIndex, reduction: p.reduction, classDim: p.classDim };
        return apply('nllLossFused', w ? [logp!, t, w] : [logp!, t], q);
      }
      const valid = ne(t, p.ignoreIndex);
      const safe = where(valid, t, 0);
      const picked = squeeze(gather(logp!, p.classDim, unsqueeze(safe, p.classDim)), p.classDim);
      let wt = castTo(valid, logp!.dt);
      if (w) wt = mul(wt, reshape(indexSelect(w, 0, flatten(safe)), t.shape));
      const losses = neg(mul(picked, wt));
      if (p.reduction === 'mean') return weightedMean(sum(losses), sum(wt));
      return reduce('nllLoss', losses, p.reduction);
    }),
});

export function nllLoss(input: Tensor, target: Tensor, options: NllOptions = {}): Tensor {
  checkTarget('nllLoss', input, target, options.ignoreIndex ?? -100);
  const params: NllParams = { ignoreIndex: options.ignoreIndex ?? -100, reduction: options.reduction ?? 'mean', classDim: input.ndim === 1 ? 0 : 1, fused: options.fused };
  return apply('nllLoss', options.weight ? [input, target, options.weight] : [input, target], params);
}

export interface CrossEntropyOptions extends NllOptions {
  labelSmoothing?: number;
}

/**
 * Cross entropy over logits [N,C,...] (or [C]) with int32 class targets, or with class probabilities
 * of the input's shape. labelSmoothing mixes in the uniform distribution, as PyTorch does.
 */
defineOp<NllParams & { labelSmoothing: number; probabilities: boolean }>({
  name: 'crossEntropy', autocast: 'float32',
  compose: ({ 0: input, 1: target, 2: weight }, p) =>
    inFloat32([input, weight, target], input!.dt, ({ 0: x, 1: w, 2: tgt }) => {
      const logp = logSoftmax(x!, p.classDim);
      const C = x!.shape[p.classDim]!;
      const eps = p.labelSmoothing;
      const classShape = mapNumbers(x!.shape, (d, i) => (i === p.classDim ? d : 1));
      const wc = w ? reshape(w, classShape) : null;
      if (p.probabilities) {
        const q = eps > 0 ? add(mul(tgt!, 1 - eps), eps / C) : tgt!;
        const losses = neg(sum(mul(wc ? mul(logp, wc) : logp, q), p.classDim));
        if (p.reduction === 'mean') return div(sum(losses), losses.numel);
        return reduce('crossEntropy', losses, p.reduction);
      }
      const nll = apply('nllLoss', w ? [logp, target!, w] : [logp, target!], { ignoreIndex: p.ignoreIndex, reduction: p.reduction, classDim: p.classDim, fused: p.fused });
      if (eps === 0) return nll;
      const valid = castTo(ne(target!, p.ignoreIndex), logp.dt);
      const smooth = mul(neg(sum(wc ? mul(logp, wc) : logp, p.classDim)), valid);
      let smoothReduced: Tensor;
      if (p.reduction === 'mean') {
        const safe = where(ne(target!, p.ignoreIndex), target!, 0);
        const denom = w ? sum(mul(reshape(indexSelect(w, 0, flatten(safe)), target!.shape), valid)) : sum(valid);
        smoothReduced = weightedMean(sum(smooth), denom);
      } else smoothReduced = reduce('crossEntropy', smooth, p.reduction);
      return add(mul(nll, 1 - eps), mul(smoothReduced, eps / C));
    }),
});

export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const labelSmoothing = options.labelSmoothing ?? 0;
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  const probabilities = target.dt.isFloating;
  if (probabilities) {
    if (target.ndim !== input.ndim || target.shape.some((d, i) => d !== input.shape[i])) {
      const expected = input.ndim === 1 ? [] : [input.shape[0]!, ...input.shape.slice(2)];
      throw new RangeError(
        `crossEntropy: target ${shapeStr(target.shape)} ${target.dtype} must be int32 class indices of shape ${shapeStr(expected)} or class probabilities of the input's shape ${shapeStr(input.shape)}`,
      );
    }
  } else checkTarget('crossEntropy', input, target, options.ignoreIndex ?? -100);
  const params = {
    ignoreIndex: options.ignoreIndex ?? -100,
    reduction: options.reduction ?? 'mean',
    classDim: input.ndim === 1 ? 0 : 1,
    fused: options.fused,
    labelSmoothing,
    probabilities,
  };
  return apply('crossEntropy', options.weight ? [input, target, options.weight] : [input, target], params);
}

defineOp<{ reduction: Reduction }>({
  name: 'mseLoss', autocast: 'float32',
  compose: ({ 0: x, 1: y }, p) => inFloat32([x, y], x!.dt, ({ 0: a, 1: b }) => {
    const d = sub(a!, b!);
    return reduce('mseLoss', mul(d, d), p.reduction);
  }),
});

/** Pointwise losses compare like with like: a shape mismatch is almost always a bug, so it is an error. */
function checkSameShape(op: string, input: Tensor, target: Tensor): void {
  if (input.ndim !== target.ndim || input.shape.some((d, i) => d !== target.shape[i])) {
    throw new RangeError(`${op}: input ${shapeStr(input.shape)} and target ${shapeStr(target.shape)} must have the same shape`);
  }
}

export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  checkSameShape('mseLoss', input, target);
  return apply('mseLoss', [input, target], { reduction: options.reduction ?? 'mean' });
}

defineOp<{ reduction: Reduction }>({
  name: 'l1Loss', autocast: 'float32',
  compose: ({ 0: x, 1: y }, p) => inFloat32([x, y], x!.dt, ({ 0: a, 1: b }) => reduce('l1Loss', abs(sub(a!, b!)), p.reduction)),
});

export function l1Loss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  checkSameShape('l1Loss', input, target);
  return apply('l1Loss', [input, target], { reduction: options.reduction ?? 'mean' });
}

/**
 * Binary cross entropy on logits, in the stable form
 * (1 - y) x + (1 + (pw - 1) y) (log1p(exp(-|x|)) + max(-x, 0)).
 */
defineOp<{ reduction: Reduction; hasWeight: boolean; hasPosWeight: boolean }>({
  name: 'binaryCrossEntropyWithLogits', autocast: 'float32',
  compose: (xs, p) => {
    const { 0: x0, 1: y0 } = xs;
    const w0 = p.hasWeight ? xs[2] : undefined;
    const pw0 = p.hasPosWeight ? xs[p.hasWeight ? 3 : 2] : undefined;
    return inFloat32([x0, y0, w0, pw0], x0!.dt, ({ 0: x, 1: y, 2: w, 3: pw }) => {
      const softplusNeg = add(log1p(exp(neg(abs(x!)))), relu(neg(x!)));
      const coef = pw ? add(mul(sub(pw, 1), y!), 1) : null;
      let losses = add(mul(sub(1, y!), x!), coef ? mul(coef, softplusNeg) : softplusNeg);
      if (w) losses = mul(losses, w);
      return reduce('binaryCrossEntropyWithLogits', losses, p.reduction);
    });
  },
});

export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  options: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  checkSameShape('binaryCrossEntropyWithLogits', input, target);
  const xs = [input, target];
  if (options.weight) xs.push(options.weight);
  if (options.posWeight) xs.push(options.posWeight);
  return apply('binaryCrossEntropyWithLogits', xs, {
    reduction: options.reduction ?? 'mean',
    hasWeight: !!options.weight,
    hasPosWeight: !!options.posWeight,
  });
}

/** Binary cross entropy on probabilities; log terms are clamped at -100 as in PyTorch. */
defineOp<{ reduction: Reduction; hasWeight: boolean }>({
  name: 'binaryCrossEntropy', autocast: 'float32',
  autocastBanned:
    'binaryCrossEntropy is unsafe to autocast in float16: the probabilities saturate to 0 or 1. Most models apply a sigmoid right before it: combine the two with F.binaryCrossEntropyWithLogits (or nn.BCEWithLogitsLoss), which is safe to autocast.',
  compose: ({ 0: x0, 1: y0, 2: w0 }, p) =>
    inFloat32([x0, y0, w0], x0!.dt, ({ 0: x, 1: y, 2: w }) => {
      const logP = maximum(log(x!), -100);
      const log1mP = maximum(log(sub(1, x!)), -100);
      let losses = neg(add(mul(y!, logP), mul(sub(1, y!), log1mP)));
      if (w) losses = mul(losses, w);
      return reduce('binaryCrossEntropy', losses, p.reduction);
    }),
});

export function binaryCrossEntropy(input: Tensor, target: Tensor, options: { weight?: Tensor | null; reduction?: Reduction } = {}): Tensor {
  checkSameShape('binaryCrossEntropy', input, target);
  return apply('binaryCrossEntropy', options.weight ? [input, target, options.weight] : [input, target], {
    reduction: options.reduction ?? 'mean',
    hasWeight: !!options.weight,
  });
}

/* ------------------------------------------------------------------ regularisation and normalisation */

export function dropout(input: Tensor, options: { p?: number; training?: boolean; generator?: Generator } = {}): Tensor {
  const p = options.p ?? 0.5;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: probability has to be between 0 and 1, but got ${p}`);
  if (!(options.training ?? true) || p === 0) return input;
  if (p === 1) return mul(input, 0);
  const keep = castTo(ge(rand(input.shape, { generator: options.generator }), p), input.dt);
  return mul(mul(input, keep), 1 / (1 - p));
}

export interface LayerNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  eps?: number;
  /**
   * The fused ops (src/nn/layer_norm_ops.ts: two kernels forward, two backward) instead of the
   * composite: default where the backend runs them natively (wasm); true or false forces either.
   */
  fused?: boolean;
}

defineOp<{ dims: number[]; eps: number; hasWeight: boolean; hasBias: boolean; fused?: boolean }>({
  name: 'layerNorm', autocast: 'float32',
  compose: (xs, p) => {
    const { 0: x0 } = xs;
    const w0 = p.hasWeight ? xs[1] : undefined;
    const b0 = p.hasBias ? xs[p.hasWeight ? 2 : 1] : undefined;
    return inFloat32([x0, w0, b0], x0!.dt, ({ 0: x, 1: w, 2: b }) => {
      if (p.fused ?? x!.backend.nativeKernel?.('layerNormFused') ?? false) {
        const size = p.dims.reduce((n, d) => n * x!.shape[d]!, 1);
        // weight and bias in the input's dtype (float32 here unless float64 gradcheck inputs)
        return fusedLayerNorm(x!, w && castTo(w, x!.dt), b && castTo(b, x!.dt), size, p.eps);
      }
      const mu = mean(x!, p.dims, true);
      const centered = sub(x!, mu);
      const v = mean(mul(centered, centered), p.dims, true);
      let y = mul(centered, apply('rsqrt', [add(v, p.eps)]));
      if (w) y = mul(y, w);
      if (b) y = add(y, b);
      return y;
    });
  },
});

export function layerNorm(input: Tensor, normalizedShape: number | readonly number[], options: LayerNormOptions = {}): Tensor {
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const tail = input.shape.slice(input.ndim - ns.length);
  if (ns.length === 0 || ns.length > input.ndim || tail.some((d, i) => d !== ns[i])) {
    throw new RangeError(`layerNorm: normalizedShape ${shapeStr(ns)} does not match the trailing dims of input ${shapeStr(input.shape)}`);
  }
  for (const [name, t] of [['weight', options.weight], ['bias', options.bias]] as const) {
    if (t && (t.ndim !== ns.length || t.shape.some((d, i) => d !== ns[i]))) {
      throw new RangeError(`layerNorm: ${name} ${shapeStr(t.shape)} must have shape ${shapeStr(ns)}`);
    }
  }
  const xs = [input];
  if (options.weight) xs.push(options.weight);
  if (options.bias) xs.push(options.bias);
  const dims = ns.map((_, i) => input.ndim - ns.length + i);
  return apply('layerNorm', xs, { dims, eps: options.eps ?? 1e-5, hasWeight: !!options.weight, hasBias: !!options.bias, fused: options.fused });
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  /** Weight of the batch statistics in the running update (default 0.1); also a 0-d float32 tensor. */
  momentum?: number | Tensor;
  eps?: number;
  /**
   * Training mode through the fused ops (src/nn/batch_norm_ops.ts: statistics, normalisation and
   * the backward each one kernel). Default: where the backend runs them natively (webgpu).
   */
  fused?: boolean;
}

/**
 * Batch normalisation over dim 1 of [N,C,...]. In training mode it normalises with the batch
 * statistics and updates runningMean/runningVar in place (unbiased variance), as PyTorch does.
 * Computed in float32 for 16-bit inputs; the running statistics keep their own dtype.
 */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  if (input.ndim < 2) throw new RangeError(`batchNorm: expected an input of at least 2 dims [N,C,...], got ${shapeStr(input.shape)}`);
  const C = input.shape[1]!;
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', options.weight], ['bias', options.bias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new RangeError(`batchNorm: ${name} ${shapeStr(t.shape)} must have shape [${C}]`);
  }
  const training = options.training ?? false;
  if (!training && (!runningMean || !runningVar)) throw new Error('batchNorm: evaluation mode needs runningMean and runningVar');
  const dims = input.shape.map((_, i) => i).filter((i) => i !== 1);
  const count = input.numel / C;
  if (training && count <= 1) throw new RangeError(`batchNorm: expected more than 1 value per channel when training, got input ${shapeStr(input.shape)}`);
  const eps = options.eps ?? 1e-5;
  const momentum = options.momentum ?? 0.1;
  const bshape = input.shape.map((d, i) => (i === 1 ? d : 1));
  if (training && (options.fused ?? input.backend.nativeKernel?.('batchNormTrain') ?? false)) {
    return fusedBatchNorm(input, runningMean, runningVar, { eps, momentum, count, weight: options.weight ?? null, bias: options.bias ?? null });
  }
  return inFloat32([input, options.weight ?? undefined, options.bias ?? undefined], input.dt, ({ 0: x, 1: w, 2: b }) => {
    let mu: Tensor;
    let v: Tensor;
    if (training) {
      mu = mean(x!, dims, true);
      v = variance(x!, dims, true, 0);
      if (runningMean && runningVar) {
        noGrad(() => updateRunningStats(runningMean, runningVar, squeeze(mu.detach(), dims), squeeze(v.detach(), dims), count, momentum));
      }
    } else {
      mu = reshape(castTo(runningMean!, x!.dt), bshape);
      v = reshape(castTo(runningVar!, x!.dt), bshape);
    }
    let y = mul(sub(x!, mu), apply('rsqrt', [add(v, eps)]));
    if (w) y = mul(y, reshape(w, bshape));
    if (b) y = add(y, reshape(b, bshape));
    return y;
  });
}

/** running = (1 - momentum) * running + momentum * batch, with the variance made unbiased (PyTorch's rule). */
function updateRunningStats(runningMean: Tensor, runningVar: Tensor, mean: Tensor, biasedVar: Tensor, count: number, momentum: number | Tensor): void {
  const unbiased = mul(biasedVar, count / (count - 1));
  // A 0-d tensor momentum (BatchNorm's cumulative average on a backend without synchronous reads)
  // stays on the device.
  const keepOld = typeof momentum === 'number' ? 1 - momentum : sub(1, momentum);
  applyInto('copy', [add(mul(runningMean, keepOld), mul(mean, momentum))], runningMean, {});
  applyInto('copy', [add(mul(runningVar, keepOld), mul(unbiased, momentum))], runningVar, {});
}

/** Training-mode batch norm through the fused ops; the running statistics as the composite path updates them. */
function fusedBatchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: { eps: number; momentum: number | Tensor; count: number; weight: Tensor | null; bias: Tensor | null },
): Tensor {
  const params: BatchNormParams = { eps: o.eps, hasWeight: o.weight !== null, hasBias: o.bias !== null };
  // one statistics pass serves the running statistics, the normalisation and the backward
  const stats = apply('batchNormStats', [x.detach()]);
  if (runningMean && runningVar) {
    if (typeof o.momentum === 'number' && runningMean.backend === stats.backend && runningVar.backend === stats.backend) {
      // one kernel, its scalars as parameters (the composite's are uploaded as 0-d tensors)
      const params: BatchNormRunningParams = { momentum: o.momentum, unbiasFactor: o.count / (o.count - 1) };
      runningMean.assertAlive('batchNorm');
      runningVar.assertAlive('batchNorm');
      const state = [kernelView(runningMean), kernelView(runningVar)];
      stats.backend.run('batchNormRunningUpdate', [...state, kernelView(stats)], state, params);
    } else {
      noGrad(() => updateRunningStats(runningMean, runningVar, squeeze(narrow(stats, 0, 0, 1), [0]), squeeze(narrow(stats, 0, 1, 1), [0]), o.count, o.momentum));
    }
  }
  const affine = [o.weight, o.bias].filter((t): t is Tensor => t !== null);
  return apply('batchNormTrain', [x, stats, ...affine], params);
}

/** Rows of `weight` picked by int32 `input`; rows at paddingIdx get no gradient. */
export function embedding(input: Tensor, weight: Tensor, options: { paddingIdx?: number | null } = {}): Tensor {
  if (input.dt !== int32) throw new TypeError(`embedding: input must be an int32 tensor of indices, got ${input.dtype}`);
  if (weight.ndim !== 2) throw new RangeError(`embedding: weight must be 2-D [numEmbeddings, dim], got ${shapeStr(weight.shape)}`);
  const flat = flatten(input);
  if (flat.backend.readSync) {
    const n = weight.shape[0]!;
    for (const v of flat.dataSync()) if (v < 0 || v >= n) throw new RangeError(`embedding: index ${v} is out of range for ${n} embeddings`);
  }
  let rows = indexSelect(weight, 0, flat);
  const pad = options.paddingIdx;
  if (pad !== undefined && pad !== null) {
    const keep = unsqueeze(ne(flat, pad < 0 ? pad + weight.shape[0]! : pad), 1);
    rows = where(keep, rows, rows.detach());
  }
  return reshape(rows, [...input.shape, weight.shape[1]!]);
}

export * from './functional_more.js';
export { lstmLayer } from './lstm_layer.js';
export { scaledDotProductAttention, attentionWeights, type ScaledDotProductAttentionOptions } from './attention.js';
