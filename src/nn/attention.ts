/**
 * Scaled dot-product attention, softmax(q k^T * scale + mask) v, in two forms that compute the same:
 *
 * - `scaledDotProductAttention`, the composite op: the definition, written with matmul, softmax and
 *   where. It materialises the [..., L, S] scores and weights. The reference backend takes it.
 * - `flashAttention`, one fused op (FlashAttention's algorithm, Dao et al. 2022): the backend kernel
 *   walks tiles of keys per tile of queries with a running maximum and sum per query row (the online
 *   softmax), computes scores in float32 and keeps no [L, S] matrix; the forward saves the output and
 *   each row's logsumexp, and the backward recomputes the scores and probabilities tile by tile from
 *   them. The wasm and webgpu backends run it natively; F.scaledDotProductAttention takes it there.
 *
 * Dropout on the attention weights draws a counter-based mask (src/random/counter_hash.ts): element
 * [b, i, j] of the flattened [batch, L, S] weights is kept when hash(seed, (b * L + i) * S + j) clears
 * the threshold. The composite builds that mask, the fused kernels regenerate it tile by tile (and
 * again in the backward), so both forms drop the same weights for the same generator state.
 *
 * Both take q [..., L, E], k [..., S, E], v [..., S, Ev] with batch dims broadcast to one shape, and a
 * bool mask (true: may attend) or a float mask (added to the scores) broadcastable to [..., L, S];
 * isCausal is the lower-triangular mask j <= i (aligned top-left, as PyTorch's).
 */
import { bool, float32, resultType } from '../dtype/dtype.js';
import type { FlashAttentionParams } from '../backend/kernels.js';
import type { Tensor } from '../tensor/tensor.js';
import { apply, applyOutputs } from '../ops/dispatch.js';
import { defineOp } from '../ops/registry.js';
import { broadcastShapes, castTo, expandTo, shapeStr } from '../ops/util.js';
import { add, mul, where } from '../ops/elementwise.js';
import { softmax } from '../ops/reduce.js';
import { transpose } from '../ops/shape.js';
import { matmul } from '../ops/linalg.js';
import { tensor } from '../ops/creation.js';
import { isGradEnabled } from '../autograd/mode.js';
import { defaultGenerator, type Generator } from '../random/generator.js';
import { dropoutKeep, dropoutThreshold } from '../random/counter_hash.js';

/** What both forms need besides the tensors. */
export interface AttentionParams {
  hasMask: boolean;
  isCausal: boolean;
  /** The score scale (1 / sqrt(E) unless given). */
  scale: number;
  /** Drop probability of each attention weight (0: none). */
  dropoutP: number;
  /** The counter-based dropout mask's seed (two uint32), drawn from the generator per call. */
  seed0: number;
  seed1: number;
}

const flashParams = (p: AttentionParams, mask: Tensor | undefined): FlashAttentionParams => ({
  scale: p.scale,
  causal: p.isCausal,
  mask: !mask ? 'none' : mask.dt === bool ? 'bool' : 'float',
  dropoutThreshold: p.dropoutP > 0 ? dropoutThreshold(p.dropoutP) : 0,
  dropoutScale: p.dropoutP > 0 ? 1 / (1 - p.dropoutP) : 1,
  seed0: p.seed0,
  seed1: p.seed1,
});

/** The keep mask of attention dropout over scores of `shape` [..., L, S] (a host-built bool tensor). */
function dropoutMask(shape: readonly number[], p: AttentionParams): Tensor {
  const threshold = dropoutThreshold(p.dropoutP);
  const n = shape.reduce((a, b) => a * b, 1);
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) keep[i] = dropoutKeep(p.seed0, p.seed1, threshold, i) ? 1 : 0;
  return tensor(keep, { dtype: bool, shape });
}

/** The lower-triangular [L, S] bool mask j <= i (true: may attend). */
export function causalMask(L: number, S: number): Tensor {
  const tril = new Uint8Array(L * S);
  for (let i = 0; i < L; i++) for (let j = 0; j <= Math.min(i, S - 1); j++) tril[i * S + j] = 1;
  return tensor(tril, { dtype: bool, shape: [L, S] });
}

/** The attention weights softmax(q k^T * scale + mask), dropped out: the composite's first half. */
function weightsOf(q: Tensor, k: Tensor, mask: Tensor | undefined, p: AttentionParams): Tensor {
  const L = q.shape[q.ndim - 2]!;
  const S = k.shape[k.ndim - 2]!;
  let scores = mul(matmul(q, transpose(k, -2, -1)), p.scale);
  if (p.isCausal) scores = where(causalMask(L, S), scores, -Infinity);
  if (mask) scores = mask.dt === bool ? where(mask, scores, -Infinity) : add(scores, mask);
  let attn = softmax(scores, -1);
  if (p.dropoutP > 0) attn = mul(mul(attn, castTo(dropoutMask(attn.shape, p), attn.dt)), 1 / (1 - p.dropoutP));
  return attn;
}

defineOp<AttentionParams>({
  name: 'scaledDotProductAttention', autocast: 'lower',
  compose: ([q, k, v, mask], p) => matmul(weightsOf(q!, k!, p.hasMask ? mask : undefined, p), v!),
});

/** Per output of the fused forward: each query row's logsumexp (float32 [..., L]), kept for the backward. */
const savedLogsumexp = new WeakMap<Tensor, Tensor>();

/** Inputs [q, k, v, mask?] with the same batch dims, q, k and v of one dtype; output [..., L, Ev]. */
defineOp<AttentionParams & { saveForBackward: boolean }>({
  name: 'flashAttention', autocast: 'lower',
  prepare: ([q, k, v, mask]) => {
    const dt = resultType([q!, k!, v!]);
    return [castTo(q!, dt), castTo(k!, dt), castTo(v!, dt), ...(mask ? [mask] : [])];
  },
  compose: ([q, k, v, mask], p) => {
    const lseShape = q!.shape.slice(0, -1);
    const outShape = [...lseShape, v!.shape[v!.ndim - 1]!];
    const [out, lse] = applyOutputs('flashAttentionForward', mask ? [q!, k!, v!, mask] : [q!, k!, v!], [{ shape: outShape, dtype: q!.dt }, { shape: lseShape, dtype: float32 }], flashParams(p, mask));
    if (p.saveForBackward) savedLogsumexp.set(out!, lse!);
    else lse!.dispose();
    return out!;
  },
  backward: (g, { inputs: { 0: q, 1: k, 2: v, 3: mask }, output, params: p }) => {
    const lse = savedLogsumexp.get(output);
    if (!lse) throw new Error('flashAttention: backward without the forward pass\'s logsumexp');
    const ins = [q!, k!, v!, ...(mask ? [mask] : []), output, lse, castTo(g, output.dt)];
    const [dq, dk, dv] = applyOutputs('flashAttentionBackward', ins, [q!, k!, v!].map((t) => ({ shape: t.shape, dtype: t.dt })), flashParams(p, mask));
    return mask ? [dq!, dk!, dv!, null] : [dq!, dk!, dv!];
  },
});

export interface ScaledDotProductAttentionOptions {
  /** Bool (true: may attend) or float (added to the scores) mask broadcastable to [..., L, S]. */
  attnMask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1 / sqrt(E). */
  scale?: number | null;
  /** Draws the dropout mask's seed (default mx.defaultGenerator). */
  generator?: Generator;
  /**
   * The fused op (true) or the composite (false). Default: fused where the backend runs its kernel
   * natively (wasm, webgpu) and the mask needs no gradient; the composite elsewhere.
   */
  fused?: boolean;
}

interface Prepared {
  xs: Tensor[];
  params: AttentionParams;
}

/** Checks, one batch shape for q, k, v and the mask, and the dropout seed drawn from the generator. */
function prepare(op: string, q: Tensor, k: Tensor, v: Tensor | null, options: ScaledDotProductAttentionOptions): Prepared {
  if (q.ndim < 2 || k.ndim < 2 || (v && v.ndim < 2)) throw new RangeError(`${op}: q, k and v need at least 2 dims, got ${[q, k, v].filter((t) => t).map((t) => shapeStr(t!.shape)).join(', ')}`);
  const E = q.shape[q.ndim - 1]!;
  if (E !== k.shape[k.ndim - 1]) throw new RangeError(`${op}: q ${shapeStr(q.shape)} and k ${shapeStr(k.shape)} must have the same embedding size`);
  if (v && k.shape[k.ndim - 2] !== v.shape[v.ndim - 2]) throw new RangeError(`${op}: k ${shapeStr(k.shape)} and v ${shapeStr(v.shape)} must have the same sequence length`);
  const dropoutP = options.dropoutP ?? 0;
  if (!(dropoutP >= 0 && dropoutP < 1)) throw new RangeError(`${op}: dropoutP must be in [0, 1), got ${dropoutP}`);
  const mask0 = options.attnMask ?? null;
  const isCausal = options.isCausal ?? false;
  if (mask0 && isCausal) throw new RangeError(`${op}: give either attnMask or isCausal, not both`);
  if (mask0 && !mask0.dt.isFloating && mask0.dt !== bool) throw new TypeError(`${op}: attnMask must be bool or floating point, got ${mask0.dtype}`);

  // one batch shape for q, k, v (and the mask), so that the dropout mask's element indices are the
  // same in both forms
  const L = q.shape[q.ndim - 2]!;
  const S = k.shape[k.ndim - 2]!;
  const operands = v ? [q, k, v] : [q, k];
  const batch = broadcastShapes(op, operands.map((t) => t.shape.slice(0, -2)));
  const xs = operands.map((t) => expandTo(t, [...batch, ...t.shape.slice(-2)]));
  const scoresShape = [...batch, L, S];
  if (mask0) {
    let ok: boolean;
    try {
      ok = shapeStr(broadcastShapes(op, [mask0.shape, scoresShape])) === shapeStr(scoresShape);
    } catch {
      ok = false;
    }
    if (!ok) throw new RangeError(`${op}: attnMask ${shapeStr(mask0.shape)} does not broadcast to the scores' shape ${shapeStr(scoresShape)}`);
    xs.push(expandTo(mask0, scoresShape));
  }
  let seed0 = 0;
  let seed1 = 0;
  if (dropoutP > 0) {
    const g = options.generator ?? defaultGenerator;
    seed0 = g.nextUint32();
    seed1 = g.nextUint32();
  }
  return { xs, params: { hasMask: !!mask0, isCausal, scale: options.scale ?? 1 / Math.sqrt(E), dropoutP, seed0, seed1 } };
}

/**
 * softmax(q k^T * scale + mask) v over q [..., L, E], k [..., S, E], v [..., S, Ev], with dropout on
 * the weights; PyTorch's F.scaled_dot_product_attention. Rows whose every score is masked give NaN.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: ScaledDotProductAttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  const { xs, params } = prepare(op, q, k, v, options);
  const mask = params.hasMask ? xs[3] : undefined;
  const maskGrad = mask?.requiresGrad ?? false;
  if (options.fused === true && maskGrad) throw new Error(`${op}: the fused form gives attnMask no gradient; pass fused: false for one`);
  const fused = options.fused ?? (!maskGrad && (q.backend.nativeKernel?.('flashAttentionForward') ?? false));
  if (!fused) return apply(op, xs, params);
  const saveForBackward = isGradEnabled() && xs.some((t) => t.requiresGrad);
  return apply('flashAttention', xs, { ...params, saveForBackward });
}

/**
 * The attention weights softmax(q k^T * scale + mask) [..., L, S], dropped out as
 * scaledDotProductAttention drops them (the same options; `fused` does not apply): what
 * nn.MultiheadAttention returns when asked for the weights. Materialises the [..., L, S] matrix.
 */
export function attentionWeights(q: Tensor, k: Tensor, options: Omit<ScaledDotProductAttentionOptions, 'fused'> = {}): Tensor {
  const { xs, params } = prepare('attentionWeights', q, k, null, options);
  return weightsOf(xs[0]!, xs[1]!, params.hasMask ? xs[2] : undefined, params);
}
