/**
 * One LSTM layer over a whole sequence, with its backward pass written out (backpropagation through
 * time), the way PyTorch's LSTM runs one fused kernel per layer instead of recording every cell.
 *
 * Why an op of its own: recorded cell by cell, the backward pass adds each time step's weight
 * gradient into the previous one (T additions of a [4H, H] matrix) and runs T small GEMMs for it,
 * and every cell is ~20 recorded ops. Here the forward pass runs without recording and keeps the
 * gate activations; the backward pass computes what does not depend on the recurrence for all steps
 * at once, runs only the recurrence step by step (~8 ops and one GEMM per step), and takes the
 * weight gradient in one GEMM over all steps.
 *
 * Inputs: gx [T, B, 4H] (x W_ih^T, the input projection of every step, one GEMM by the caller),
 * h0, c0 [B, H], wHh [4H, H], then bIh, bHh [4H] when present; params.reverse runs the sequence
 * backwards. Output [T, B, 2H]: h_t in [..., :H], c_t in [..., H:]. Gate order i, f, g, o.
 *
 * Numerics, as the recorded cell (F.lstmCell) and PyTorch's fused cells under autocast: the gate
 * GEMM runs in the input dtype; biases, nonlinearities and the state update in float32; h and c are
 * rounded to the input dtype after every step (c carries the rounding into the next step, as
 * PyTorch's cells, whose cy output is in the input dtype). The backward pass computes in float32
 * and rounds the gate gradients once to the input dtype for its GEMMs. The bias is summed before
 * it is added (b_ih + b_hh once, not per step): float32 results can differ from F.lstmCell's in the
 * last bit.
 */
import { float32, resultType, type DType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { apply, applyOutputs } from '../ops/dispatch.js';
import { isGradEnabled } from '../autograd/mode.js';
import { defineOp } from '../ops/registry.js';
import { castTo, shapeStr } from '../ops/util.js';
import { add, mul, sub, sigmoid, tanh } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { cat, contiguous, narrow, reshape, squeeze, stack, transpose, unsqueeze } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';

interface LayerParams {
  hasBih: boolean;
  hasBhh: boolean;
  reverse: boolean;
  /** Keep the activations for backward (false without gradients: evaluation, sampling). */
  saveActivations: boolean;
}

/** float32 for 16-bit tensors (the cell's arithmetic); float32 and float64 stay as they are. */
const wide = (dt: DType) => (t: Tensor): Tensor => (dt.isHalf ? castTo(t, float32) : t);

/** b_ih + b_hh in the arithmetic dtype, or null without biases. */
function biasSum(xs: readonly Tensor[], p: LayerParams, f: (t: Tensor) => Tensor): Tensor | null {
  const bIh = p.hasBih ? xs[4] : undefined;
  const bHh = p.hasBhh ? xs[p.hasBih ? 5 : 4] : undefined;
  if (bIh && bHh) return add(f(bIh), f(bHh));
  return bIh ? f(bIh) : bHh ? f(bHh) : null;
}

/** Per output of the forward pass: the float32 activations of every step, [T, B, 4H] and [T, B, H]. */
const saved = new WeakMap<Tensor, { sigmoids: Tensor; g: Tensor; tc: Tensor }>();

/** Step k of the processing order is time step t. */
const timeOf = (k: number, T: number, reverse: boolean) => (reverse ? T - 1 - k : k);

/** The state before each time step: [T, B, H] from the outputs and the initial state. */
function previousStates(outputs: Tensor, initial: Tensor, reverse: boolean): Tensor {
  const T = outputs.shape[0]!;
  const first = unsqueeze(initial, 0);
  if (T === 1) return first;
  return reverse ? cat([narrow(outputs, 0, 1, T - 1), first], 0) : cat([first, narrow(outputs, 0, 0, T - 1)], 0);
}

defineOp<LayerParams>({
  name: 'lstmLayer', autocast: 'lower',
  compose: (xs, p) => {
    const [gx, h0, c0, wHh] = xs as [Tensor, Tensor, Tensor, Tensor];
    const dt = resultType(xs);
    const f = wide(dt);
    const T = gx.shape[0]!;
    const H = wHh.shape[1]!;
    const bias = biasSum(xs, p, f);
    const gates = bias ? add(f(gx), bias) : f(gx);
    const wT = transpose(wHh, 0, 1);
    let h = castTo(h0, dt);
    let c = f(castTo(c0, dt));
    const hs = new Array<Tensor>(T);
    const cs = new Array<Tensor>(T);
    const sigmoids = new Array<Tensor>(T);
    const gs = new Array<Tensor>(T);
    const tcs = new Array<Tensor>(T);
    for (let k = 0; k < T; k++) {
      const t = timeOf(k, T, p.reverse);
      const pre = add(squeeze(narrow(gates, 0, t, 1), 0), f(matmul(h, wT)));
      const s = sigmoid(pre); // i, f and o (and an unused sigmoid of g: one call instead of two)
      const g = tanh(narrow(pre, 1, 2 * H, H));
      const cNew = add(mul(narrow(s, 1, H, H), c), mul(narrow(s, 1, 0, H), g));
      const tc = tanh(cNew);
      h = castTo(mul(narrow(s, 1, 3 * H, H), tc), dt);
      const cRounded = castTo(cNew, dt);
      c = f(cRounded);
      [hs[t], cs[t], sigmoids[t], gs[t], tcs[t]] = [h, cRounded, s, g, tc];
    }
    const out = cat([stack(hs, 0), stack(cs, 0)], 2);
    // the activations, in float32, for the backward pass (PyTorch's fused cells keep a workspace too)
    if (p.saveActivations) saved.set(out, { sigmoids: stack(sigmoids, 0), g: stack(gs, 0), tc: stack(tcs, 0) });
    return out;
  },
  backward: (gOut, { inputs, output, params: p }) => {
    const [gx, h0, c0, wHh] = inputs as [Tensor, Tensor, Tensor, Tensor];
    const dt = output.dt;
    const f = wide(dt);
    const [T, B] = [gx.shape[0]!, gx.shape[1]!];
    const H = wHh.shape[1]!;
    const acts = saved.get(output);
    if (!acts) throw new Error('lstmLayer: backward without the forward pass\'s activations');
    const hPrev = previousStates(narrow(output, 2, 0, H), castTo(h0, dt), p.reverse);
    const cPrev = f(previousStates(narrow(output, 2, H, H), castTo(c0, dt), p.reverse));
    const s = acts.sigmoids;
    const [i, fg, o] = [narrow(s, 2, 0, H), narrow(s, 2, H, H), narrow(s, 2, 3 * H, H)];
    const { g, tc } = acts;
    // what does not depend on the recurrence, for all steps at once: dc += dh * dcdh; the gate
    // pre-activation gradients are [dc, dc, dc, dh] * factors
    const dcdh = mul(o, sub(1, mul(tc, tc)));
    const factors = cat([mul(g, mul(i, sub(1, i))), mul(cPrev, mul(fg, sub(1, fg))), mul(i, sub(1, mul(g, g))), mul(tc, mul(o, sub(1, o)))], 2);
    const gH = f(narrow(gOut, 2, 0, H));
    const gC = f(narrow(gOut, 2, H, H));
    const at = (t: Tensor, step: number) => squeeze(narrow(t, 0, step, 1), 0);
    let dhNext: Tensor | null = null;
    let dcNext: Tensor | null = null;
    const dPre = new Array<Tensor>(T);
    const dPreWide = new Array<Tensor>(T);
    for (let k = T - 1; k >= 0; k--) {
      const t = timeOf(k, T, p.reverse);
      const dh: Tensor = dhNext ? add(at(gH, t), dhNext) : at(gH, t);
      let dc = add(at(gC, t), mul(dh, at(dcdh, t)));
      if (dcNext) dc = add(dc, dcNext);
      const d = mul(cat([dc, dc, dc, dh], 1), at(factors, t));
      dPreWide[t] = d;
      dPre[t] = castTo(d, dt);
      dcNext = mul(dc, at(fg, t));
      dhNext = f(matmul(dPre[t]!, wHh));
    }
    const dGates = stack(dPre, 0);
    const flat = reshape(dGates, [T * B, 4 * H]);
    const dW = matmul(transpose(flat, 0, 1), reshape(hPrev, [T * B, H]));
    const dBias = p.hasBih || p.hasBhh ? sum(stack(dPreWide, 0), [0, 1]) : null;
    const grads: (Tensor | null)[] = [dGates, dhNext, dcNext, dW];
    if (p.hasBih) grads.push(dBias);
    if (p.hasBhh) grads.push(dBias);
    return grads;
  },
});

/** Per output of the fused forward: its activations (i, f, g, o, tanh c of every step), [T, B, 5H]. */
const savedFused = new WeakMap<Tensor, Tensor>();

/**
 * The same layer as one backend kernel per direction and pass ('lstmForward', 'lstmBackward':
 * the gate product, nonlinearities and state update of every step fused, the recurrent weight
 * packed once per call): what 'lstmLayer' computes, with the same roundings per step, except that
 * the bias gradient sums each row over time first. The wasm backend runs it natively; elsewhere
 * the kernels are the reference's (src/backend/reference/kernels/lstm.ts), so lstmLayer takes it
 * only where the backend has it natively.
 */
defineOp<LayerParams>({
  name: 'lstmLayerFused', autocast: 'lower',
  // one storage dtype for the sequence, states and weight (the biases are summed in float32 below)
  prepare: (xs) => {
    const dt = resultType(xs);
    return xs.map((t) => castTo(t, dt));
  },
  compose: (xs, p) => {
    const [gx, h0, c0, wHh] = xs as [Tensor, Tensor, Tensor, Tensor];
    const dt = gx.dt;
    const [T, B] = [gx.shape[0]!, gx.shape[1]!];
    const H = wHh.shape[1]!;
    const bias = biasSum(xs, p, wide(dt));
    const inputs = [contiguous(gx), contiguous(h0), contiguous(c0), contiguous(wHh), ...(bias ? [contiguous(bias)] : [])];
    const arith = bias?.dt ?? wide(dt)(h0).dt;
    const [out, acts] = applyOutputs('lstmForward', inputs, [{ shape: [T, B, 2 * H], dtype: dt }, { shape: [T, B, 5 * H], dtype: arith }], { reverse: p.reverse, hasBias: !!bias });
    if (p.saveActivations) savedFused.set(out!, acts!);
    else acts!.dispose();
    return out!;
  },
  backward: (gOut, { inputs, output, params: p }) => {
    const [gx, h0, c0, wHh] = inputs as [Tensor, Tensor, Tensor, Tensor];
    const acts = savedFused.get(output);
    if (!acts) throw new Error('lstmLayerFused: backward without the forward pass\'s activations');
    const dt = output.dt;
    const [T, B] = [gx.shape[0]!, gx.shape[1]!];
    const H = wHh.shape[1]!;
    const hasBias = p.hasBih || p.hasBhh;
    const outs = [{ shape: [T, B, 4 * H], dtype: dt }, { shape: [B, H], dtype: acts.dt }, { shape: [B, H], dtype: acts.dt }];
    if (hasBias) outs.push({ shape: [B, 4 * H], dtype: acts.dt });
    const ins = [contiguous(castTo(gOut, dt)), output, contiguous(c0), contiguous(wHh), acts];
    const [dGates, dh0, dc0, dBiasRows] = applyOutputs('lstmBackward', ins, outs, { reverse: p.reverse, hasBias });
    // the weight gradient of all steps in one GEMM: dGates^T [4H, T*B] x h_prev [T*B, H]
    const hPrev = previousStates(narrow(output, 2, 0, H), h0, p.reverse);
    const dW = matmul(transpose(reshape(dGates!, [T * B, 4 * H]), 0, 1), reshape(hPrev, [T * B, H]));
    const dBias = dBiasRows ? sum(dBiasRows, [0]) : null;
    const grads: (Tensor | null)[] = [dGates!, dh0!, dc0!, dW];
    if (p.hasBih) grads.push(dBias);
    if (p.hasBhh) grads.push(dBias);
    return grads;
  },
});

/**
 * The LSTM recurrence over a sequence whose input projections are given: gx [T, B, 4H]
 * (= x W_ih^T), states h0, c0 [B, H], weights wHh [4H, H] and the biases. Returns
 * [output [T, B, H], hN [B, H], cN [B, H]], hN and cN being the state after the last processed step
 * (t = 0 when `reverse`). `fused`: the one-kernel form ('lstmLayerFused'); default where the
 * backend runs its kernels natively (wasm), else the op-by-op definition ('lstmLayer').
 */
export function lstmLayer(
  gx: Tensor,
  state: readonly [Tensor, Tensor],
  wHh: Tensor,
  bIh: Tensor | null,
  bHh: Tensor | null,
  options: { reverse?: boolean; fused?: boolean } = {},
): [Tensor, Tensor, Tensor] {
  const [h0, c0] = state;
  const H = wHh.shape[1]!;
  if (gx.ndim !== 3 || wHh.ndim !== 2 || gx.shape[2] !== wHh.shape[0] || wHh.shape[0] !== 4 * H) {
    throw new RangeError(`lstmLayer: gates ${shapeStr(gx.shape)} must be [T, B, 4H] with wHh ${shapeStr(wHh.shape)} of shape [4H, H]`);
  }
  const T = gx.shape[0]!;
  const B = gx.shape[1]!;
  for (const [name, s] of [['h0', h0], ['c0', c0]] as const) {
    if (s.ndim !== 2 || s.shape[0] !== B || s.shape[1] !== H) throw new RangeError(`lstmLayer: ${name} ${shapeStr(s.shape)} must have shape [${B}, ${H}]`);
  }
  for (const [name, b] of [['bIh', bIh], ['bHh', bHh]] as const) {
    if (b && (b.ndim !== 1 || b.shape[0] !== 4 * H)) throw new RangeError(`lstmLayer: ${name} ${shapeStr(b.shape)} must have shape [${4 * H}]`);
  }
  if (T === 0) throw new RangeError('lstmLayer: the sequence is empty');
  const xs = [gx, h0, c0, wHh];
  if (bIh) xs.push(bIh);
  if (bHh) xs.push(bHh);
  const reverse = options.reverse ?? false;
  const saveActivations = isGradEnabled() && xs.some((t) => t.requiresGrad);
  const fused = options.fused ?? (gx.backend.nativeKernel?.('lstmForward') ?? false);
  const out = apply(fused ? 'lstmLayerFused' : 'lstmLayer', xs, { hasBih: !!bIh, hasBhh: !!bHh, reverse, saveActivations });
  const last = reverse ? 0 : T - 1;
  const final = squeeze(narrow(out, 0, last, 1), 0);
  return [narrow(out, 2, 0, H), narrow(final, 1, 0, H), narrow(final, 1, H, H)];
}
