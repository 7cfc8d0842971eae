/**
 * Fused attention (src/nn/attention.ts; definitions in src/backend/reference/kernels/attention.ts)
 * in WGSL, float32 arithmetic, one thread per query row or key row:
 *
 *   flashAttentionForward   thread (b, i): q_i in registers, one pass over the keys with the
 *                           online softmax (running maximum m and sum l, the accumulator rescaled
 *                           when m grows); out_i = acc / l * dropoutScale, lse_i = m + log(l)   1 dispatch
 *   flashAttentionBackward  thread (b, i): D_i = dO_i . out_i (kept) and dq_i from the recomputed
 *                           P = exp(S - lse); then thread (b, j): dk_j and dv_j over the rows    2 dispatches
 *
 * No [L, S] buffer: scores are recomputed where needed. q, k, v, out and dO are read through their
 * strides (the heads of one projection need no copy) when the last dim is contiguous and the batch
 * dims collapse to two (else they are copied first); the mask through its broadcast strides; the
 * dropout mask is regenerated (src/random/counter_hash.ts). A thread keeps rows of E and Ev floats
 * in registers, so the shaders are generated per (E, Ev), up to MAX_HEAD.
 */
import type { KernelTensor } from '../../backend.js';
import type { FlashAttentionParams } from '../../kernels.js';
import { float32 } from '../../../dtype/dtype.js';
import type { WebGpuBuffer } from '../buffers.js';
import { bind, contiguousStrides, groups1d, isContiguousView, makeDispatch, Meta, numel, shader, tensorOperand, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';
import { attentionLayout, type AttentionLayout } from '../../attention_layout.js';

export const ATTENTION_KERNELS = ['flashAttentionForward', 'flashAttentionBackward'] as const;

const WG = 64;
/** Head sizes (E, Ev) a thread keeps in registers at most; larger ones run on the host. */
const MAX_HEAD = 256;

/** Whether the WGSL covers the call (else the host runs the reference kernel): heads up to MAX_HEAD, contiguous outputs and logsumexp. */
export function attentionSupports(kernel: (typeof ATTENTION_KERNELS)[number], inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], p: FlashAttentionParams): boolean {
  const [q, , v] = inputs;
  if (!q || !v || q.shape[q.shape.length - 1]! > MAX_HEAD || v.shape[v.shape.length - 1]! > MAX_HEAD) return false;
  const lse = kernel === 'flashAttentionForward' ? outputs[1] : inputs[p.mask === 'none' ? 4 : 5];
  return !!lse && outputs.every(isContiguousView) && isContiguousView(lse);
}

/**
 * Meta words: 0 L, 1 S, 2 N (batches), 3 B2 (batch b = b1 * B2 + b2), 6 causal, 7 mask kind
 * (0 none, 1 bool, 2 float), 8 dropout threshold, 9 seed0, 10 seed1, 11 scale, 12 dropout scale
 * (f32); per operand t of q, k, v, out, dO at 13 + 4t: offset, batch-1, batch-2 and row strides;
 * the mask at 33: offset, batch-1, batch-2, row and column strides; outputs' offsets from 38.
 */
const PREAMBLE = `
fn rowAt(t: u32, b: i32, r: i32) -> i32 {
  let B2 = mi(3u);
  return mi(13u + 4u * t) + (b / B2) * mi(14u + 4u * t) + (b % B2) * mi(15u + 4u * t) + r * mi(16u + 4u * t);
}
fn maskAt(b: i32, i: i32, j: i32) -> i32 {
  let B2 = mi(3u);
  return mi(33u) + (b / B2) * mi(34u) + (b % B2) * mi(35u) + i * mi(36u) + j * mi(37u);
}
fn fmix32(h0: u32) -> u32 {
  var h = h0;
  h = h ^ (h >> 16u); h = h * 0x85ebca6bu; h = h ^ (h >> 13u); h = h * 0xc2b2ae35u; h = h ^ (h >> 16u);
  return h;
}
// the counter-based dropout mask: element index kept?
fn keep(index: u32) -> bool {
  let threshold = mi(8u);
  if (threshold == 0) { return true; }
  let x = fmix32(index * 0x9e3779b9u + bitcast<u32>(mi(9u)));
  return i32(fmix32(x ^ bitcast<u32>(mi(10u))) >> 8u) >= threshold;
}`;

/** WGSL: score(b, i, j) = qv . k_j * scale (+ mask), or -inf where masked; qv holds q_i. */
function scoreFn(K: string, M: string | null, maskKind: number): string {
  const mask = maskKind === 1 ? `if (ld_${M}(maskAt(b, i, j)) == 0.0) { return (-inf_f32()); }` : maskKind === 2 ? `add = ld_${M}(maskAt(b, i, j));` : '';
  return `
fn score(b: i32, i: i32, j: i32) -> f32 {
  if (mi(6u) != 0 && j > i) { return (-inf_f32()); }
  var add = 0.0;
  ${mask}
  let kr = rowAt(1u, b, j);
  var dot = 0.0;
  for (var e = 0; e < E; e = e + 1) { dot = dot + qv[e] * ld_${K}(kr + e); }
  return dot * mf(11u) + add;
}`;
}

function metaOf(g: AttentionLayout, p: FlashAttentionParams, rowed: readonly KernelTensor[], mask: KernelTensor | null, outOffsets: readonly number[]): Meta {
  const m = new Meta().ints([g.L, g.S, g.N, g.B2, g.E, g.Ev, p.causal ? 1 : 0, mask ? (p.mask === 'bool' ? 1 : 2) : 0, p.dropoutThreshold, p.seed0 | 0, p.seed1 | 0]).f(p.scale).f(p.dropoutScale);
  for (let t = 0; t < 5; t++) {
    const s = g.strides[t];
    m.ints(rowed[t] && s ? [rowed[t]!.offset, s[0]!, s[1]!, s[2]!] : [0, 0, 0, 0]);
  }
  const ms = mask ? g.strides[rowed.length]! : [0, 0, 0, 0];
  m.ints([mask ? mask.offset : 0, ...ms]);
  return m.ints(outOffsets);
}

/** Copies of operands whose last dim is strided (the shaders walk rows with stride 1). */
function withRows(ctx: KernelContext, ts: readonly KernelTensor[], fn: (rowed: KernelTensor[]) => void): void {
  const temps: WebGpuBuffer[] = [];
  const rowed = ts.map((t) => {
    if (t.strides[t.strides.length - 1] === 1 || t.shape[t.shape.length - 1] === 1) return t;
    const buf = ctx.tempBuffer(t.dtype, Math.max(1, numel(t.shape)));
    temps.push(buf);
    const c: KernelTensor = { buffer: buf, dtype: t.dtype, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0 };
    runElementwise(ctx, 'copy', [t], [c], {});
    return c;
  });
  fn(rowed);
  for (const b of temps) ctx.releaseTemp(b);
}

/** The same call with every rowed operand copied contiguous (their batch dims then collapse). */
function contiguousCopies(ctx: KernelContext, ts: readonly KernelTensor[], fn: (cs: KernelTensor[]) => void): void {
  const temps: WebGpuBuffer[] = [];
  const cs = ts.map((t) => {
    const buf = ctx.tempBuffer(t.dtype, Math.max(1, numel(t.shape)));
    temps.push(buf);
    const c: KernelTensor = { buffer: buf, dtype: t.dtype, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0 };
    runElementwise(ctx, 'copy', [t], [c], {});
    return c;
  });
  fn(cs);
  for (const b of temps) ctx.releaseTemp(b);
}

function forward(ctx: KernelContext, q: KernelTensor, k: KernelTensor, v: KernelTensor, mask: KernelTensor | null, out: KernelTensor, lse: KernelTensor, p: FlashAttentionParams): void {
  const g = attentionLayout([q, k, v], mask);
  if (!g) return contiguousCopies(ctx, [q, k, v], ([a, b, c]) => forward(ctx, a!, b!, c!, mask, out, lse, p));
  const maskKind = mask ? (p.mask === 'bool' ? 1 : 2) : 0;
  const ops = [q, k, v, ...(mask ? [mask] : []), out, lse];
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i >= ops.length - 2)));
  const [Q, K, V] = bound.names as [string, string, string];
  const M = mask ? bound.names[3]! : null;
  const [O, LSE] = bound.names.slice(-2) as [string, string];
  const code = () =>
    shader(ctx, bound.decls, `
const E: i32 = ${g.E};
const EV: i32 = ${g.Ev};
var<private> qv: array<f32, ${g.E}>;
${PREAMBLE}
${scoreFn(K, M, maskKind)}
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let gid = i32((wid.y * nwg.x + wid.x) * ${WG}u + lid.x);
  let L = mi(0u); let S = mi(1u);
  if (gid >= mi(2u) * L) { return; }
  let b = gid / L; let i = gid % L;
  let qr = rowAt(0u, b, i);
  for (var e = 0; e < E; e = e + 1) { qv[e] = ld_${Q}(qr + e); }
  var acc: array<f32, ${g.Ev}>;
  for (var e = 0; e < EV; e = e + 1) { acc[e] = 0.0; }
  var m = (-inf_f32());
  var l = 0.0;
  var jEnd = S;
  if (mi(6u) != 0) { jEnd = min(S, i + 1); }
  let index0 = u32(b * L + i) * u32(S);
  for (var j = 0; j < jEnd; j = j + 1) {
    let s = score(b, i, j);
    if (s == (-inf_f32())) { continue; }
    if (s > m) {
      var r = 0.0;
      if (m != (-inf_f32())) { r = exp(m - s); }
      l = l * r;
      for (var e = 0; e < EV; e = e + 1) { acc[e] = acc[e] * r; }
      m = s;
    }
    let w = exp(s - m);
    l = l + w;
    if (keep(index0 + u32(j))) {
      let vr = rowAt(2u, b, j);
      for (var e = 0; e < EV; e = e + 1) { acc[e] = acc[e] + w * ld_${V}(vr + e); }
    }
  }
  let f = mf(12u) / l;
  let o = mi(38u) + gid * EV;
  for (var e = 0; e < EV; e = e + 1) { st_${O}(o + e, acc[e] * f); }
  st_${LSE}(mi(39u) + gid, m + log(l));
}`);
  const meta = metaOf(g, p, [q, k, v], mask, [out.offset, lse.offset]);
  ctx.sched.dispatch(makeDispatch(`attnFwd:${g.E}:${g.Ev}:${maskKind}`, code, bound, meta, groups1d(g.N * g.L, WG)));
}

function backward(ctx: KernelContext, ins: readonly KernelTensor[], mask: KernelTensor | null, lse: KernelTensor, dq: KernelTensor, dk: KernelTensor, dv: KernelTensor, p: FlashAttentionParams): void {
  const g = attentionLayout(ins, mask);
  if (!g) return contiguousCopies(ctx, ins, (cs) => backward(ctx, cs, mask, lse, dq, dk, dv, p));
  const [q, k, v, o, gOut] = ins as [KernelTensor, KernelTensor, KernelTensor, KernelTensor, KernelTensor];
  const maskKind = mask ? (p.mask === 'bool' ? 1 : 2) : 0;
  const dBuf = ctx.tempBuffer(float32, Math.max(1, g.N * g.L));
  const D: KernelTensor = { buffer: dBuf, dtype: float32, shape: [g.N * g.L], strides: [1], offset: 0 };
  const rowFns = (K: string, M: string | null) => `
const E: i32 = ${g.E};
const EV: i32 = ${g.Ev};
var<private> qv: array<f32, ${g.E}>;
${PREAMBLE}
${scoreFn(K, M, maskKind)}`;
  const head = `@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let gid = i32((wid.y * nwg.x + wid.x) * ${WG}u + lid.x);
  let L = mi(0u); let S = mi(1u);`;
  // 1. per query row: D_i and dq_i. Operands: q, k, v, out, dO, [mask], lse, then D and dq (at
  // most 9 buffers and the meta: the smallest maxStorageBuffersPerShaderStage is 10)
  {
    const common = [q, k, v, o, gOut, ...(mask ? [mask] : []), lse];
    const ops = [...common, D, dq];
    const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i >= common.length)));
    const n = bound.names;
    const [Q, K, V, O, G] = n as [string, string, string, string, string];
    const LSE = n[common.length - 1]!;
    const [DD, DQ] = n.slice(common.length) as [string, string];
    const code = () =>
      shader(ctx, bound.decls, `${rowFns(K, mask ? n[5]! : null)}
${head}
  if (gid >= mi(2u) * L) { return; }
  let b = gid / L; let i = gid % L;
  let qr = rowAt(0u, b, i);
  for (var e = 0; e < E; e = e + 1) { qv[e] = ld_${Q}(qr + e); }
  let orow = rowAt(3u, b, i);
  let grow = rowAt(4u, b, i);
  var D = 0.0;
  for (var e = 0; e < EV; e = e + 1) { D = D + ld_${G}(grow + e) * ld_${O}(orow + e); }
  st_${DD}(gid, D);
  let rowLse = ld_${LSE}(mi(40u) + gid);
  var dqv: array<f32, ${g.E}>;
  for (var e = 0; e < E; e = e + 1) { dqv[e] = 0.0; }
  var jEnd = S;
  if (mi(6u) != 0) { jEnd = min(S, i + 1); }
  let index0 = u32(b * L + i) * u32(S);
  for (var j = 0; j < jEnd; j = j + 1) {
    let s = score(b, i, j);
    if (s == (-inf_f32()) && rowLse != (-inf_f32())) { continue; }
    let pr = exp(s - rowLse);
    var dp = 0.0;
    if (keep(index0 + u32(j))) {
      let vr = rowAt(2u, b, j);
      for (var e = 0; e < EV; e = e + 1) { dp = dp + ld_${G}(grow + e) * ld_${V}(vr + e); }
      dp = dp * mf(12u);
    }
    let ds = pr * (dp - D) * mf(11u);
    let kr = rowAt(1u, b, j);
    for (var e = 0; e < E; e = e + 1) { dqv[e] = dqv[e] + ds * ld_${K}(kr + e); }
  }
  let out = mi(38u) + gid * E;
  for (var e = 0; e < E; e = e + 1) { st_${DQ}(out + e, dqv[e]); }
}`);
    const meta = metaOf(g, p, ins, mask, [dq.offset, 0, lse.offset]);
    ctx.sched.dispatch(makeDispatch(`attnBwdQ:${g.E}:${g.Ev}:${maskKind}`, code, bound, meta, groups1d(g.N * g.L, WG)));
  }
  // 2. per key row: dk_j and dv_j over the query rows that see it. Operands: q, k, v, dO, [mask],
  // lse, D, then dk and dv (out is not needed: D holds what the rows need of it)
  {
    const common = [q, k, v, gOut, ...(mask ? [mask] : []), lse];
    const ops = [...common, D, dk, dv];
    const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i > common.length)));
    const n = bound.names;
    const [Q, K, V, G] = n as [string, string, string, string];
    const LSE = n[common.length - 1]!;
    const [DD, DK, DV] = n.slice(common.length) as [string, string, string];
    const code = () =>
      shader(ctx, bound.decls, `${rowFns(K, mask ? n[4]! : null)}
${head}
  if (gid >= mi(2u) * S) { return; }
  let b = gid / S; let j = gid % S;
  let kr = rowAt(1u, b, j);
  let vr = rowAt(2u, b, j);
  var dkv: array<f32, ${g.E}>;
  var dvv: array<f32, ${g.Ev}>;
  for (var e = 0; e < E; e = e + 1) { dkv[e] = 0.0; }
  for (var e = 0; e < EV; e = e + 1) { dvv[e] = 0.0; }
  var i0 = 0;
  if (mi(6u) != 0) { i0 = j; }
  for (var i = i0; i < L; i = i + 1) {
    let qr = rowAt(0u, b, i);
    for (var e = 0; e < E; e = e + 1) { qv[e] = ld_${Q}(qr + e); }
    let s = score(b, i, j);
    let rowLse = ld_${LSE}(mi(40u) + b * L + i);
    if (s == (-inf_f32()) && rowLse != (-inf_f32())) { continue; }
    let pr = exp(s - rowLse);
    let grow = rowAt(4u, b, i);
    var dp = 0.0;
    if (keep(u32(b * L + i) * u32(S) + u32(j))) {
      let pd = pr * mf(12u);
      for (var e = 0; e < EV; e = e + 1) {
        let gv = ld_${G}(grow + e);
        dvv[e] = dvv[e] + pd * gv;
        dp = dp + gv * ld_${V}(vr + e);
      }
      dp = dp * mf(12u);
    }
    let ds = pr * (dp - ld_${DD}(b * L + i)) * mf(11u);
    for (var e = 0; e < E; e = e + 1) { dkv[e] = dkv[e] + ds * qv[e]; }
  }
  let ok = mi(38u) + gid * E;
  let ov = mi(39u) + gid * EV;
  for (var e = 0; e < E; e = e + 1) { st_${DK}(ok + e, dkv[e]); }
  for (var e = 0; e < EV; e = e + 1) { st_${DV}(ov + e, dvv[e]); }
}`);
    const meta = metaOf(g, p, ins, mask, [dk.offset, dv.offset, lse.offset]);
    ctx.sched.dispatch(makeDispatch(`attnBwdKV:${g.E}:${g.Ev}:${maskKind}`, code, bound, meta, groups1d(g.N * g.S, WG)));
  }
  ctx.releaseTemp(dBuf);
}

export function runAttention(ctx: KernelContext, kernel: (typeof ATTENTION_KERNELS)[number], inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], p: FlashAttentionParams): void {
  const hasMask = p.mask !== 'none';
  const mask = hasMask ? inputs[3]! : null;
  if (kernel === 'flashAttentionForward') {
    const [out, lse] = outputs as [KernelTensor, KernelTensor];
    withRows(ctx, inputs.slice(0, 3), ([q, k, v]) => forward(ctx, q!, k!, v!, mask, out, lse, p));
    return;
  }
  const [o, lse, gOut] = inputs.slice(hasMask ? 4 : 3) as [KernelTensor, KernelTensor, KernelTensor];
  const [dq, dk, dv] = outputs as [KernelTensor, KernelTensor, KernelTensor];
  withRows(ctx, [...inputs.slice(0, 3), o, gOut], (rowed) => backward(ctx, rowed, mask, lse, dq, dk, dv, p));
}
