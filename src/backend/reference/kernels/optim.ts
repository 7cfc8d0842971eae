/**
 * Reference kernels of the optimizers and of loss scaling: `sgdUpdate`, `adamUpdate`, `ampUnscale`
 * and `ampUpdateScale`. These are the definitions: the wasm backend runs them for the cases its
 * native kernels do not cover, and a GPU backend (WGSL) implements the same contracts.
 *
 * Conventions shared by every kernel here (as for every reference kernel, the backend hands over
 * float64 copies of the inputs and rounds each output once into its dtype, through float32 for the
 * 16-bit formats):
 * - `f(x)` below is rounding to float32 (Math.fround). The optimizer updates round every step to
 *   float32 exactly as the op-by-op optimizers in src/optim do, so a fused update is bit for bit
 *   the op-by-op one; where an op-by-op step is one fused op (addcmul, addcdiv: computed in float64,
 *   rounded once), the kernel computes that step in float64 too.
 * - Optional inputs come after the fixed ones, in the order listed, each present only when its
 *   flag param says so; outputs are in place in practice (the callers pass the input views again).
 * - `foundInf` (loss scaling): a 0-d float32 tensor; nonzero means a gradient of this iteration was
 *   inf/NaN, and the kernel then writes every output equal to its input (the step is skipped on the
 *   device, PyTorch's fused optimizers' `found_inf`).
 * - Scalars a GPU reads from the device (`foundInf`, `isFirst`, `step`) are 0-d float32 tensors.
 */
import type { AdamUpdateMultiParams, AdamUpdateParams, AmpUpdateScaleParams, NoParams, SgdUpdateMultiParams, SgdUpdateParams } from '../../kernels.js';
import { adamBiasCorrections } from '../../optim_math.js';
import type { RefArray, RefKernel, RefKernels } from './types.js';

const f = Math.fround;

/** The first element of an optional 0-d input (0 when absent). */
const scalarOf = (t: RefArray | undefined): number => (t ? t.data[0]! : 0);

/* ------------------------------------------------------------------ SGD */

/**
 * sgdUpdate: PyTorch's SGD step in one pass.
 *
 *   inputs   [param, grad]                     momentum == 0
 *            [param, grad, momentumBuffer]     momentum != 0
 *            then [isFirst] if params.firstInput, then [foundInf] if params.foundInfInput
 *   outputs  [param] or [param, momentumBuffer] (the same views: updated in place),
 *            then [nextIsFirst] if params.flagOutput
 *   dtypes   param float32/float16/bfloat16 (float64 works here too), grad any float, buffer float32
 *   params   SgdUpdateParams
 *
 * Per element (w = param, widened; all arithmetic rounded to float32 at each step):
 *   d = f(grad); d = maximize ? -d : d; if weightDecay != 0: d = f(d + f(w * f(weightDecay)))
 *   momentum != 0: first = firstInput ? isFirst != 0 : params.first
 *                  buf = first ? d : f(f(buf * f(momentum)) + f(d * f(1 - dampening)))
 *                  d = nesterov ? f(d + f(buf * f(momentum))) : buf
 *   w = f(w - f(d * f(lr))), rounded once more into param's dtype
 * foundInf != 0: param and buffer are written back unchanged.
 * nextIsFirst = foundInf != 0 ? isFirst : 0 (the buffer holds a step unless this one was skipped).
 */
export const sgdUpdate: RefKernel<SgdUpdateParams> = (inputs, params) => {
  const hasMomentum = params.momentum !== 0;
  const w = inputs[0]!.data;
  const g = inputs[1]!.data;
  let k = 2;
  const buf = hasMomentum ? inputs[k++]!.data : undefined;
  const isFirst = params.firstInput ? inputs[k++] : undefined;
  const foundInf = params.foundInfInput ? inputs[k++] : undefined;
  const skipped = scalarOf(foundInf) !== 0;
  const flag = params.flagOutput ? [Float64Array.of(skipped ? scalarOf(isFirst) : 0)] : [];
  if (skipped) return hasMomentum ? [w.slice(), buf!.slice(), ...flag] : [w.slice(), ...flag];
  const first = params.firstInput ? scalarOf(isFirst) !== 0 : params.first;
  const lr = f(params.lr);
  const mom = f(params.momentum);
  const damp1 = f(1 - params.dampening);
  const wd = f(params.weightDecay);
  const outW = new Float64Array(w.length);
  const outB = new Float64Array(hasMomentum ? w.length : 0);
  for (let i = 0; i < w.length; i++) {
    const wv = f(w[i]!);
    let d = f(g[i]!);
    if (params.maximize) d = -d;
    if (params.weightDecay !== 0) d = f(d + f(wv * wd));
    if (hasMomentum) {
      const b = first ? d : f(f(f(buf![i]!) * mom) + f(d * damp1));
      outB[i] = b;
      d = params.nesterov ? f(d + f(b * mom)) : b;
    }
    outW[i] = f(wv - f(d * lr));
  }
  return hasMomentum ? [outW, outB, ...flag] : [outW, ...flag];
};

/**
 * sgdUpdateMulti: sgdUpdate over k = params.count tensors in one call (PyTorch's foreach SGD), each
 * tensor exactly as sgdUpdate updates it, with the same params and one shared foundInf.
 *
 *   inputs   [param_1..k, grad_1..k] then [buffer_1..k] if momentum != 0, [isFirst_1..k] if
 *            params.firstInput, [foundInf] if params.foundInfInput
 *   outputs  [param_1..k] then [buffer_1..k] if momentum != 0 (in place), [nextIsFirst_1..k] if
 *            params.flagOutput
 */
export const sgdUpdateMulti: RefKernel<SgdUpdateMultiParams> = (inputs, params) => {
  const k = params.count;
  const lists = 2 + (params.momentum !== 0 ? 1 : 0) + (params.firstInput ? 1 : 0);
  const shared = inputs.slice(lists * k);
  const outs: Float64Array[][] = [];
  for (let i = 0; i < k; i++) {
    const own = Array.from({ length: lists }, (_, l) => inputs[l * k + i]!);
    outs.push(sgdUpdate([...own, ...shared], params, []));
  }
  return Array.from({ length: outs[0]?.length ?? 0 }, (_, o) => outs.map((r) => r[o]!)).flat();
};

/* ------------------------------------------------------------------ Adam / AdamW */

/**
 * adamUpdate: PyTorch's Adam / AdamW step in one pass over float32 master weights (or 16-bit
 * parameters) and float32 state, with float32, float16 or bfloat16 gradients.
 *
 *   inputs   [param, grad, expAvg, expAvgSq]
 *            then [maxExpAvgSq] if params.amsgrad, [step] if params.stepInput, [foundInf] if params.foundInfInput
 *   outputs  [param, expAvg, expAvgSq] (+ [maxExpAvgSq] if amsgrad): the same views, in place
 *   dtypes   param float32/float16/bfloat16, grad float32/float16/bfloat16, states float32
 *   params   AdamUpdateParams: either biasCorrection1 and biasCorrection2Sqrt, or a step input from
 *            which bc1 = 1 - beta1^step, bc2s = sqrt(1 - beta2^step) (computed in float64 here;
 *            a GPU computes them in float32)
 *
 * Per element (w = param widened, g = grad widened; f = round to float32):
 *   g = maximize ? -g : g
 *   weightDecay != 0: decoupled: w = f(w * f(1 - lr * weightDecay))
 *                     else       g = f(g + f(w * f(weightDecay)))
 *   m = f(f(m * f(beta1)) + f(g * f(1 - beta1)))
 *   v = f(f(v * f(beta2)) + f(1 - beta2) * g * g)          (the product and sum in float64: addcmul)
 *   amsgrad: vmax = max(vmax, v) (NaN propagates); s = amsgrad ? vmax : v
 *   denom = f(f(f(sqrt(s)) / f(bc2s)) + f(eps))
 *   w = w + f(-lr / bc1) * m / denom                         (in float64: addcdiv), rounded once into param's dtype
 * foundInf != 0: every output is written back unchanged.
 */
export const adamUpdate: RefKernel<AdamUpdateParams> = (inputs, params) => {
  const w = inputs[0]!.data;
  const g = inputs[1]!.data;
  const m = inputs[2]!.data;
  const v = inputs[3]!.data;
  let k = 4;
  const vmax = params.amsgrad ? inputs[k++]!.data : undefined;
  const stepT = params.stepInput ? inputs[k++] : undefined;
  const foundInf = params.foundInfInput ? inputs[k++] : undefined;
  if (scalarOf(foundInf) !== 0) return [w.slice(), m.slice(), v.slice(), ...(vmax ? [vmax.slice()] : [])];
  const [bc1, bc2s] = params.stepInput
    ? adamBiasCorrections(params.beta1, params.beta2, scalarOf(stepT))
    : [params.biasCorrection1!, params.biasCorrection2Sqrt!];
  const b1 = f(params.beta1);
  const omb1 = f(1 - params.beta1);
  const b2 = f(params.beta2);
  const omb2 = f(1 - params.beta2);
  const eps = f(params.eps);
  const wd = f(params.weightDecay);
  const decay = f(1 - params.lr * params.weightDecay);
  const stepNeg = f(-(params.lr / bc1));
  const bc2 = f(bc2s);
  const hasDecay = params.weightDecay !== 0;
  const n = w.length;
  const outW = new Float64Array(n);
  const outM = new Float64Array(n);
  const outV = new Float64Array(n);
  const outVmax = vmax ? new Float64Array(n) : undefined;
  for (let i = 0; i < n; i++) {
    let wv = f(w[i]!);
    let gv = f(g[i]!);
    if (params.maximize) gv = -gv;
    if (hasDecay) {
      if (params.decoupled) wv = f(wv * decay);
      else gv = f(gv + f(wv * wd));
    }
    const mv = f(f(f(m[i]!) * b1) + f(gv * omb1));
    const vv = f(f(f(v[i]!) * b2) + omb2 * gv * gv);
    let s = vv;
    if (outVmax) {
      s = Math.max(f(vmax![i]!), vv); // NaN propagates, as in maximum()
      outVmax[i] = s;
    }
    const denom = f(f(f(Math.sqrt(s)) / bc2) + eps);
    outW[i] = wv + (stepNeg * mv) / denom;
    outM[i] = mv;
    outV[i] = vv;
  }
  return outVmax ? [outW, outM, outV, outVmax] : [outW, outM, outV];
};

/**
 * adamUpdateMulti: adamUpdate over k = params.count tensors in one call (PyTorch's foreach Adam),
 * each tensor exactly as adamUpdate updates it, with one shared step (if params.stepInput) and
 * foundInf (if params.foundInfInput).
 *
 *   inputs   [param_1..k, grad_1..k, expAvg_1..k, expAvgSq_1..k] then [maxExpAvgSq_1..k] if
 *            params.amsgrad, [step] if params.stepInput, [foundInf] if params.foundInfInput
 *   outputs  [param_1..k, expAvg_1..k, expAvgSq_1..k] (+ [maxExpAvgSq_1..k] if amsgrad): in place
 */
export const adamUpdateMulti: RefKernel<AdamUpdateMultiParams> = (inputs, params) => {
  const k = params.count;
  const lists = params.amsgrad ? 5 : 4;
  const shared = inputs.slice(lists * k);
  const outs: Float64Array[][] = [];
  for (let i = 0; i < k; i++) {
    const own = Array.from({ length: lists }, (_, l) => inputs[l * k + i]!);
    outs.push(adamUpdate([...own, ...shared], params, []));
  }
  return Array.from({ length: lists - 1 }, (_, o) => outs.map((r) => r[o]!)).flat();
};

/* ------------------------------------------------------------------ loss scaling */

/**
 * ampUnscale: PyTorch's _amp_foreach_non_finite_check_and_unscale_ over a list of gradients.
 *
 *   inputs   [grad_1, ..., grad_k, invScale, foundInf]   k >= 1; invScale and foundInf 0-d float32
 *   outputs  [grad_1, ..., grad_k, foundInf]             the same views: updated in place
 *   params   none
 *
 *   grad_i = f(grad_i * invScale), rounded once more into grad_i's dtype (float32 or bfloat16; any float works)
 *   foundInf = 1 if any element of any incoming grad is inf or NaN, else foundInf unchanged
 *              (a GPU may have every thread that sees one write 1.0: the race is benign)
 * A backend may split the list over several dispatches (WebGPU: its storage-binding limit).
 */
export const ampUnscale: RefKernel<NoParams> = (inputs) => {
  const k = inputs.length - 2;
  const inv = inputs[k]!.data[0]!;
  let bad = false;
  const outs = inputs.slice(0, k).map(({ data: g }) => {
    const out = new Float64Array(g.length);
    for (let i = 0; i < g.length; i++) {
      const x = g[i]!;
      if (!Number.isFinite(x)) bad = true;
      out[i] = f(x * inv);
    }
    return out;
  });
  return [...outs, Float64Array.of(bad ? 1 : inputs[k + 1]!.data[0]!)];
};

/**
 * ampUpdateScale: PyTorch's _amp_update_scale_ with hysteresis and scale bounds (one thread).
 *
 *   inputs   [scale, growthTracker, overflowStreak, [skipped], foundInf]   float32, int32, int32, int32, float32; all 0-d
 *   outputs  [scale, growthTracker, overflowStreak, [skipped]]             the same views: updated in place
 *   params   AmpUpdateScaleParams
 *
 *   foundInf != 0: growthTracker = 0; overflowStreak += 1;
 *                  if overflowStreak >= hysteresis: overflowStreak = 0;
 *                                                   scale = max(f(scale * backoffFactor), minScale)
 *   else:          overflowStreak = 0; t = growthTracker + 1
 *                  if t == growthInterval: g = f(scale * growthFactor);
 *                                          if g is finite: scale = min(g, maxScale); growthTracker = 0
 *                  else growthTracker = t
 * (the products in float64 rounded to float32: the correctly rounded float32 product when the
 * factors are float32 values, as the defaults 2 and 0.5 are; the scale is stored as float32.)
 */
export const ampUpdateScale: RefKernel<AmpUpdateScaleParams> = (inputs, p) => {
  const [scaleT, trackerT, streakT] = inputs;
  const skippedT = p.countSkipped ? inputs[3] : undefined;
  const foundT = inputs[p.countSkipped ? 4 : 3];
  const skipped = skippedT ? [Float64Array.of(skippedT.data[0]! + (foundT!.data[0]! !== 0 ? 1 : 0))] : [];
  let scale = scaleT!.data[0]!;
  let tracker = trackerT!.data[0]!;
  let streak = streakT!.data[0]!;
  if (foundT!.data[0]! !== 0) {
    tracker = 0;
    streak++;
    if (streak >= p.hysteresis) {
      streak = 0;
      scale = Math.max(f(scale * p.backoffFactor), p.minScale);
    }
  } else {
    streak = 0;
    const successful = tracker + 1;
    if (successful === p.growthInterval) {
      const grown = f(scale * p.growthFactor);
      if (Number.isFinite(grown)) scale = Math.min(grown, p.maxScale);
      tracker = 0;
    } else tracker = successful;
  }
  return [Float64Array.of(scale), Float64Array.of(tracker), Float64Array.of(streak), ...skipped];
};

/**
 * sumSquares: each input's sum of squares, for gradient clipping's 2-norm over a list of gradients
 * (one multi-tensor call, as PyTorch's foreach norm).
 *
 *   inputs   [x_1, ..., x_k]   k >= 1, any float dtypes
 *   outputs  [float32 [k]]     sum over x_i of x^2 (float64 sums, rounded once)
 */
export const sumSquares: RefKernel<NoParams> = (inputs) => [
  Float64Array.from(inputs, ({ data }) => {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i]! * data[i]!;
    return s;
  }),
];

export const optimKernels = { sgdUpdate, sgdUpdateMulti, adamUpdate, adamUpdateMulti, ampUnscale, ampUpdateScale, sumSquares } satisfies RefKernels;
