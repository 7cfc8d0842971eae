/**
 * More of mx.nn.functional, each a composite op in the table with PyTorch's autocast category:
 *
 *   lower:   conv1d, prelu, lstmCell, gruCell (scaledDotProductAttention: src/nn/attention.ts)
 *   float32: groupNorm, smoothL1Loss, klDiv (and softplus, cosineSimilarity from src/ops/math.ts)
 *
 * 16-bit inputs of the float32 ops are computed in float32 and rounded once. The recurrent cells
 * follow PyTorch's fused CUDA cells: the two gate matmuls run in the input dtype (one rounding each),
 * then biases, nonlinearities and the state update are computed in float32 and h'/c' rounded once.
 *
 * lstmCell returns two tensors; the table op 'lstmCell' computes stack([h', c']) (so autocast casts
 * the inputs once, at its entry) and the public function returns the two views of that stack.
 */
import { float32, resultType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { apply } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { castTo, inFloat32, shapeStr } from '../ops/util.js';
import { add, sub, mul, div, abs, exp, log, where, eq, gt, lt, tanh, sigmoid } from '../ops/elementwise.js';
import { sum, mean } from '../ops/reduce.js';
import { reshape, unsqueeze, squeeze, narrow, stack, transpose } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';

export { softplus, cosineSimilarity } from '../ops/math.js';

type Reduction = 'mean' | 'sum' | 'none';


function reduce(op: string, losses: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return losses;
  if (reduction === 'sum') return sum(losses);
  if (reduction === 'mean') return mean(losses);
  throw new RangeError(`${op}: reduction must be 'mean', 'sum' or 'none', got '${reduction as string}'`);
}

function checkReduction(op: string, reduction: string, extra: readonly string[] = []): void {
  const ok = ['mean', 'sum', 'none', ...extra];
  if (!ok.includes(reduction)) throw new RangeError(`${op}: reduction must be ${ok.map((r) => `'${r}'`).join(', ')}, got '${reduction}'`);
}

const int = (op: string, name: string, v: number, min: number): number => {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${op}: ${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
};

/* ------------------------------------------------------------------ conv1d */

interface Conv1dParams {
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
}

export interface Conv1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

/** conv1d over [N,C,L] (or unbatched [C,L]) as a conv2d with a unit height. */
defineOp<Conv1dParams>({
  name: 'conv1d', autocast: 'lower',
  compose: ([x0, w, b], p) => {
    const unbatched = x0!.ndim === 2;
    const x = unbatched ? unsqueeze(x0!, 0) : x0!;
    if (x.ndim !== 3) throw new RangeError(`conv1d: expected a 2-D [C,L] or 3-D [N,C,L] input, got ${shapeStr(x0!.shape)}`);
    if (w!.ndim !== 3) throw new RangeError(`conv1d: expected a 3-D weight [O,C/groups,K], got ${shapeStr(w!.shape)}`);
    if (x.shape[1] !== w!.shape[1]! * p.groups) {
      throw new RangeError(`conv1d: input ${shapeStr(x0!.shape)} has ${x.shape[1]} channels but weight ${shapeStr(w!.shape)} with groups=${p.groups} expects ${w!.shape[1]! * p.groups}`);
    }
    const params = { stride: [1, p.stride], padding: [0, p.padding], dilation: [1, p.dilation], groups: p.groups };
    const y = squeeze(apply('conv2d', b ? [unsqueeze(x, 2), unsqueeze(w!, 2), b] : [unsqueeze(x, 2), unsqueeze(w!, 2)], params), 2);
    return unbatched ? squeeze(y, 0) : y;
  },
});

export function conv1d(input: Tensor, weight: Tensor, bias?: Tensor | null, options: Conv1dOptions = {}): Tensor {
  const params: Conv1dParams = {
    stride: int('conv1d', 'stride', options.stride ?? 1, 1),
    padding: int('conv1d', 'padding', options.padding ?? 0, 0),
    dilation: int('conv1d', 'dilation', options.dilation ?? 1, 1),
    groups: int('conv1d', 'groups', options.groups ?? 1, 1),
  };
  return apply('conv1d', bias ? [input, weight, bias] : [input, weight], params);
}

/* ------------------------------------------------------------------ prelu */

/** max(0, x) + weight * min(0, x), weight of 1 or C elements broadcast along dim 1. */
defineOp({
  name: 'prelu', autocast: 'lower',
  compose: ([x, w]) => {
    const C = x!.ndim >= 2 ? x!.shape[1]! : 1;
    if (w!.numel !== 1 && w!.numel !== C) {
      throw new RangeError(`prelu: weight ${shapeStr(w!.shape)} must have 1 or ${C} elements (the channels, dim 1) for input ${shapeStr(x!.shape)}`);
    }
    const wb = w!.numel === 1 ? reshape(w!, []) : reshape(w!, x!.shape.map((d, i) => (i === 1 ? d : 1)));
    return where(gt(x!, 0), x!, mul(wb, x!));
  },
});

export function prelu(input: Tensor, weight: Tensor): Tensor {
  return apply('prelu', [input, weight]);
}

/* ------------------------------------------------------------------ groupNorm */

export interface GroupNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  eps?: number;
}

defineOp<{ numGroups: number; eps: number; hasWeight: boolean; hasBias: boolean }>({
  name: 'groupNorm', autocast: 'float32',
  compose: (xs, p) => {
    const [x0] = xs;
    const w0 = p.hasWeight ? xs[1] : undefined;
    const b0 = p.hasBias ? xs[p.hasWeight ? 2 : 1] : undefined;
    return inFloat32([x0, w0, b0], x0!.dt, ([x, w, b]) => {
      const shape = x!.shape;
      const g = reshape(x!, [shape[0]!, p.numGroups, -1]);
      const mu = mean(g, 2, true);
      const centered = sub(g, mu);
      const v = mean(mul(centered, centered), 2, true);
      let y = reshape(mul(centered, apply('rsqrt', [add(v, p.eps)])), shape);
      const cshape = shape.map((d, i) => (i === 1 ? d : 1));
      if (w) y = mul(y, reshape(w, cshape));
      if (b) y = add(y, reshape(b, cshape));
      return y;
    });
  },
});

/** Group normalisation of [N,C,...] over groups of C/numGroups channels; weight and bias of shape [C]. */
export function groupNorm(input: Tensor, numGroups: number, options: GroupNormOptions = {}): Tensor {
  if (input.ndim < 2) throw new RangeError(`groupNorm: expected an input of at least 2 dims [N,C,...], got ${shapeStr(input.shape)}`);
  const C = input.shape[1]!;
  int('groupNorm', 'numGroups', numGroups, 1);
  if (C % numGroups !== 0) throw new RangeError(`groupNorm: expected the number of channels (${C}) of input ${shapeStr(input.shape)} to be divisible by numGroups=${numGroups}`);
  for (const [name, t] of [['weight', options.weight], ['bias', options.bias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new RangeError(`groupNorm: ${name} ${shapeStr(t.shape)} must have shape [${C}]`);
  }
  const xs = [input];
  if (options.weight) xs.push(options.weight);
  if (options.bias) xs.push(options.bias);
  return apply('groupNorm', xs, { numGroups, eps: options.eps ?? 1e-5, hasWeight: !!options.weight, hasBias: !!options.bias });
}

/* ------------------------------------------------------------------ losses */

/** 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (plain L1 for beta = 0). */
defineOp<{ reduction: Reduction; beta: number }>({
  name: 'smoothL1Loss', autocast: 'float32',
  compose: ([x, y], p) =>
    inFloat32([x, y], resultType([x!, y!]), ([a, b]) => {
      const d = sub(a!, b!);
      const ad = abs(d);
      const losses = p.beta === 0 ? ad : where(lt(ad, p.beta), div(mul(mul(d, d), 0.5), p.beta), sub(ad, 0.5 * p.beta));
      return reduce('smoothL1Loss', losses, p.reduction);
    }),
});

export function smoothL1Loss(input: Tensor, target: Tensor, options: { reduction?: Reduction; beta?: number } = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  checkReduction('smoothL1Loss', reduction);
  const beta = options.beta ?? 1;
  if (!(beta >= 0)) throw new RangeError(`smoothL1Loss: beta must be >= 0, got ${beta}`);
  return apply('smoothL1Loss', [input, target], { reduction, beta });
}

export type KlDivReduction = Reduction | 'batchmean';

/**
 * PyTorch's kl_div: input holds log-probabilities; pointwise loss target * (log target - input)
 * (0 where target is 0), or exp(target) * (target - input) with logTarget. 'batchmean' divides the
 * sum by the batch size input.shape[0].
 */
defineOp<{ reduction: KlDivReduction; logTarget: boolean }>({
  name: 'klDiv', autocast: 'float32',
  compose: ([x0, t0], p) =>
    inFloat32([x0, t0], resultType([x0!, t0!]), ([x, t]) => {
      let losses: Tensor;
      if (p.logTarget) losses = mul(exp(t!), sub(t!, x!));
      else {
        const zero = eq(t!, 0);
        const xlogy = mul(t!, log(where(zero, 1, t!))); // xlogy(t, t): 0 at t = 0, finite gradient there
        losses = sub(xlogy, mul(t!, x!));
      }
      if (p.reduction === 'batchmean') return div(sum(losses), x!.ndim === 0 ? 1 : x!.shape[0]!);
      return reduce('klDiv', losses, p.reduction);
    }),
});

export function klDiv(input: Tensor, target: Tensor, options: { reduction?: KlDivReduction; logTarget?: boolean } = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  checkReduction('klDiv', reduction, ['batchmean']);
  return apply('klDiv', [input, target], { reduction, logTarget: options.logTarget ?? false });
}

/* ------------------------------------------------------------------ recurrent cells */

interface CellParams {
  hasBih: boolean;
  hasBhh: boolean;
}

/** Gate pre-activations W_ih x and W_hh h, each one matmul in the (autocast) input dtype. */
function gates(x: Tensor, h: Tensor, wIh: Tensor, wHh: Tensor): [Tensor, Tensor] {
  return [matmul(x, transpose(wIh, 0, 1)), matmul(h, transpose(wHh, 0, 1))];
}

function checkCell(op: string, nGates: number, x: Tensor, hs: readonly Tensor[], wIh: Tensor, wHh: Tensor, bIh?: Tensor | null, bHh?: Tensor | null): number {
  if (x.ndim !== 1 && x.ndim !== 2) throw new RangeError(`${op}: expected input to be 1-D or 2-D, got ${shapeStr(x.shape)}`);
  if (wHh.ndim !== 2 || wIh.ndim !== 2) throw new RangeError(`${op}: weights must be 2-D, got ${shapeStr(wIh.shape)} and ${shapeStr(wHh.shape)}`);
  const H = wHh.shape[1]!;
  const I = x.shape[x.ndim - 1]!;
  if (wIh.shape[0] !== nGates * H || wIh.shape[1] !== I) throw new RangeError(`${op}: wIh ${shapeStr(wIh.shape)} must have shape [${nGates * H}, ${I}]`);
  if (wHh.shape[0] !== nGates * H) throw new RangeError(`${op}: wHh ${shapeStr(wHh.shape)} must have shape [${nGates * H}, ${H}]`);
  const hShape = x.ndim === 2 ? [x.shape[0]!, H] : [H];
  for (const h of hs) {
    if (h.ndim !== hShape.length || h.shape.some((d, i) => d !== hShape[i])) {
      throw new RangeError(`${op}: hidden state ${shapeStr(h.shape)} must have shape ${shapeStr(hShape)} for input ${shapeStr(x.shape)}`);
    }
  }
  for (const [name, b] of [['bIh', bIh], ['bHh', bHh]] as const) {
    if (b && (b.ndim !== 1 || b.shape[0] !== nGates * H)) throw new RangeError(`${op}: ${name} ${shapeStr(b.shape)} must have shape [${nGates * H}]`);
  }
  return H;
}

function cellInputs(xs: readonly Tensor[], first: number, p: CellParams): [Tensor | undefined, Tensor | undefined] {
  const bIh = p.hasBih ? xs[first] : undefined;
  const bHh = p.hasBhh ? xs[first + (p.hasBih ? 1 : 0)] : undefined;
  return [bIh, bHh];
}

/** LSTM cell (gates i, f, g, o): inputs [x, h, c, wIh, wHh, bIh?, bHh?]; output stack([h', c']). */
defineOp<CellParams>({
  name: 'lstmCell', autocast: 'lower',
  compose: (xs, p) => {
    const [x, h0, c0, wIh, wHh] = xs;
    const [bIh0, bHh0] = cellInputs(xs, 5, p);
    const H = wHh!.shape[1]!;
    const [ig, hg] = gates(x!, h0!, wIh!, wHh!);
    const dt = resultType(xs);
    const [h1, c1] = ((): [Tensor, Tensor] => {
      const f32 = (t: Tensor | undefined) => (t && dt.isHalf ? castTo(t, float32) : t);
      let gsum = add(f32(ig)!, f32(hg)!);
      if (bIh0) gsum = add(gsum, f32(bIh0)!);
      if (bHh0) gsum = add(gsum, f32(bHh0)!);
      const d = gsum.ndim - 1;
      const chunk = (k: number) => narrow(gsum, d, k * H, H);
      const i = sigmoid(chunk(0));
      const f = sigmoid(chunk(1));
      const g = tanh(chunk(2));
      const o = sigmoid(chunk(3));
      const c = add(mul(f, f32(c0)!), mul(i, g));
      const h = mul(o, tanh(c));
      return [castTo(h, dt), castTo(c, dt)];
    })();
    return stack([h1, c1], 0);
  },
});

/**
 * One LSTM step, PyTorch's torch.lstm_cell: gates = x W_ih^T + b_ih + h W_hh^T + b_hh split into
 * i, f, g, o; c' = sigmoid(f) c + sigmoid(i) tanh(g); h' = sigmoid(o) tanh(c'). Returns [h', c'].
 */
export function lstmCell(
  input: Tensor,
  state: readonly [Tensor, Tensor],
  wIh: Tensor,
  wHh: Tensor,
  bIh?: Tensor | null,
  bHh?: Tensor | null,
): [Tensor, Tensor] {
  const [h, c] = state;
  checkCell('lstmCell', 4, input, [h, c], wIh, wHh, bIh, bHh);
  const xs = [input, h, c, wIh, wHh];
  if (bIh) xs.push(bIh);
  if (bHh) xs.push(bHh);
  const out = apply('lstmCell', xs, { hasBih: !!bIh, hasBhh: !!bHh });
  return [squeeze(narrow(out, 0, 0, 1), 0), squeeze(narrow(out, 0, 1, 1), 0)];
}

/** GRU cell (gates r, z, n): inputs [x, h, wIh, wHh, bIh?, bHh?]. */
defineOp<CellParams>({
  name: 'gruCell', autocast: 'lower',
  compose: (xs, p) => {
    const [x, h0, wIh, wHh] = xs;
    const [bIh0, bHh0] = cellInputs(xs, 4, p);
    const H = wHh!.shape[1]!;
    const [ig0, hg0] = gates(x!, h0!, wIh!, wHh!);
    const dt = resultType(xs);
    const f32 = (t: Tensor | undefined) => (t && dt.isHalf ? castTo(t, float32) : t);
    let ig = f32(ig0)!;
    let hg = f32(hg0)!;
    if (bIh0) ig = add(ig, f32(bIh0)!);
    if (bHh0) hg = add(hg, f32(bHh0)!);
    const d = ig.ndim - 1;
    const at = (t: Tensor, k: number) => narrow(t, d, k * H, H);
    const r = sigmoid(add(at(ig, 0), at(hg, 0)));
    const z = sigmoid(add(at(ig, 1), at(hg, 1)));
    const n = tanh(add(at(ig, 2), mul(r, at(hg, 2))));
    const h = f32(h0)!;
    return castTo(add(n, mul(z, sub(h, n))), dt); // (1 - z) n + z h
  },
});

/**
 * One GRU step, PyTorch's torch.gru_cell: r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),
 * z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h.
 */
export function gruCell(input: Tensor, hx: Tensor, wIh: Tensor, wHh: Tensor, bIh?: Tensor | null, bHh?: Tensor | null): Tensor {
  checkCell('gruCell', 3, input, [hx], wIh, wHh, bIh, bHh);
  const xs = [input, hx, wIh, wHh];
  if (bIh) xs.push(bIh);
  if (bHh) xs.push(bHh);
  return apply('gruCell', xs, { hasBih: !!bIh, hasBhh: !!bHh });
}
