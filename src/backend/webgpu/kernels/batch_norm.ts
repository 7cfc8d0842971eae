/**
 * Fused batch normalisation (training mode; src/nn/batch_norm_ops.ts). Channel statistics are one
 * workgroup per channel: a strided pass for the mean, a second for the biased variance (no
 * cancellation from E[x²] - E[x]²), each a tree in workgroup memory, float32. The normalisation
 * and the input gradient are one thread per element. Operands are made contiguous first. The
 * other three kernels read the statistics batchNormStats wrote in the forward:
 *
 *   batchNormStats          statistics          1 dispatch (one workgroup per channel)
 *   batchNormTrain          normalise           1
 *   batchNormGradSums       sums                1 (one workgroup per channel)
 *   batchNormBackwardInput  input gradient      1
 *   batchNormRunningUpdate  running statistics  1 (one thread per channel, in place)
 */
import type { KernelTensor } from '../../backend.js';
import type { BatchNormParams, BatchNormRunningParams, KernelParams } from '../../kernels.js';
import { channelLayout } from '../../reference/kernels/batch_norm.js';
import { bind, entry, groups1d, workgroupSums, makeDispatch, Meta, numel, shader, tensorOperand, withContiguous, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';

export const BATCH_NORM_KERNELS = ['batchNormStats', 'batchNormTrain', 'batchNormGradSums', 'batchNormBackwardInput', 'batchNormRunningUpdate'] as const;

const WG = 256;

/** WGSL: index of the j-th value (0 <= j < M) of channel c in a contiguous [N,C,S] tensor. */
const AT = `fn at(c: i32, j: i32) -> i32 { let C = mi(0u); let S = mi(2u); return ((j / S) * C + c) * S + j % S; }`;

const TREE = (...reds: string[]) => workgroupSums(WG, ...reds);

/** meta: C, M, S, eps, then the operands' offsets */
function meta(shape: readonly number[], eps: number, ops: readonly KernelTensor[]): Meta {
  const [C, M, S] = channelLayout(shape);
  const m = new Meta().ints([C, M, S]).f(eps);
  for (const o of ops) m.i(o.offset);
  return m;
}
const OFF = (i: number) => `mi(${4 + i}u)`;

function dispatchStats(ctx: KernelContext, x: KernelTensor, out: KernelTensor): void {
  const ops = [x, out];
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i === 1)));
  const [X, O] = bound.names;
  const code = () =>
    shader(ctx, bound.decls, `
${AT}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let C = mi(0u); let M = mi(1u);
  let c = i32(wid.x); let t = i32(lid.x);
  var s = 0.0;
  for (var j = t; j < M; j = j + ${WG}) { s = s + ld_${X}(${OFF(0)} + at(c, j)); }
  red[t] = s;
  ${TREE('red')}
  let mean = red[0] / f32(M);
  workgroupBarrier();
  var q = 0.0;
  for (var j = t; j < M; j = j + ${WG}) { let d = ld_${X}(${OFF(0)} + at(c, j)) - mean; q = q + d * d; }
  red[t] = q;
  ${TREE('red')}
  if (t == 0) { st_${O}(${OFF(1)} + c, mean); st_${O}(${OFF(1)} + C + c, red[0] / f32(M)); }
}`);
  ctx.sched.dispatch(makeDispatch('bnStats', code, bound, meta(x.shape, 0, ops), [x.shape[1]!, 1, 1]));
}

/** Elementwise pass: `body` computes `v` for element i of channel c (xhat, invstd available). */
function dispatchElementwise(ctx: KernelContext, key: string, x: KernelTensor, stats: KernelTensor, others: KernelTensor[], out: KernelTensor, eps: number, body: (nm: string[]) => string): void {
  const ops = [x, stats, ...others, out];
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i === ops.length - 1)));
  const nm = bound.names;
  const n = numel(x.shape);
  const code = () =>
    shader(ctx, bound.decls, `
${entry(WG)}
  let C = mi(0u); let M = mi(1u); let S = mi(2u); let eps = mf(3u);
  if (gid >= M * C) { return; }
  let c = (gid / S) % C;
  let mean = ld_${nm[1]}(${OFF(1)} + c);
  let invstd = 1.0 / sqrt(ld_${nm[1]}(${OFF(1)} + C + c) + eps);
  let xhat = (ld_${nm[0]}(${OFF(0)} + gid) - mean) * invstd;
  ${body(nm)}
  st_${nm[ops.length - 1]}(${OFF(ops.length - 1)} + gid, v);
}`);
  ctx.sched.dispatch(makeDispatch(key, code, bound, meta(x.shape, eps, ops), groups1d(n, WG)));
}

/** running = running * (1 - momentum) + batch * momentum, the variance made unbiased; inputs [rm, rv, stats]. */
function dispatchRunningUpdate(ctx: KernelContext, [rm, rv, stats]: KernelTensor[], [om, ov]: KernelTensor[], p: BatchNormRunningParams): void {
  const ops = [rm!, rv!, stats!, om!, ov!];
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i >= 3)));
  const [RM, RV, ST, OM, OV] = bound.names;
  const C = rm!.shape[0]!;
  const m = new Meta().i(C);
  for (const o of ops) m.i(o.offset);
  m.f(1 - p.momentum).f(p.momentum).f(p.unbiasFactor);
  const code = () =>
    shader(ctx, bound.decls, `
${entry(WG)}
  let C = mi(0u);
  if (gid >= C) { return; }
  let keep = mf(6u); let mom = mf(7u); let unbias = mf(8u);
  let mean = ld_${ST}(mi(3u) + gid);
  let biased = ld_${ST}(mi(3u) + C + gid);
  let a = ld_${RM}(mi(1u) + gid) * keep;
  let b = ld_${RV}(mi(2u) + gid) * keep;
  st_${OM}(mi(4u) + gid, a + mean * mom);
  st_${OV}(mi(5u) + gid, b + (biased * unbias) * mom);
}`);
  ctx.sched.dispatch(makeDispatch('bnRunning', code, bound, m, groups1d(C, WG)));
}

export type BatchNormKernel = (typeof BATCH_NORM_KERNELS)[number];

export function runBatchNorm(ctx: KernelContext, kernel: BatchNormKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<BatchNormKernel>): void {
  const copy = (s: KernelTensor, d: KernelTensor) => runElementwise(ctx, 'copy', [s], [d], {});
  const p = params as BatchNormParams;
  withContiguous(ctx, inputs, outputs, copy, (ins, outs) => {
    const out = outs[0];
    if (kernel === 'batchNormStats') {
      dispatchStats(ctx, ins[0]!, out!);
      return;
    }
    if (kernel === 'batchNormRunningUpdate') {
      dispatchRunningUpdate(ctx, ins, outs, params as BatchNormRunningParams);
      return;
    }
    // inputs: batchNormTrain [x, stats, w?, b?]; the backward kernels [g, x, stats, ...]
    const [x, stats] = kernel === 'batchNormTrain' ? [ins[0]!, ins[1]!] : [ins[1]!, ins[2]!];
    if (kernel === 'batchNormTrain') {
      const affine = ins.slice(2);
      const w = p.hasWeight ? 2 : -1;
      const b = p.hasBias ? 2 + Number(p.hasWeight) : -1;
      dispatchElementwise(ctx, `bnTrain:${p.hasWeight}:${p.hasBias}`, x, stats, affine, out!, p.eps, (nm) => `
  let v = xhat${w > 0 ? ` * ld_${nm[w]}(${OFF(w)} + c)` : ''}${b > 0 ? ` + ld_${nm[b]}(${OFF(b)} + c)` : ''};`);
    } else if (kernel === 'batchNormGradSums') {
      const g = ins[0]!;
      const ops = [x, stats, g, out!];
      const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i === 3)));
      const [X, ST, G, O] = bound.names;
      const code = () =>
        shader(ctx, bound.decls, `
${AT}
var<workgroup> rgx: array<f32, ${WG}>;
var<workgroup> rg: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let C = mi(0u); let M = mi(1u); let eps = mf(3u);
  let c = i32(wid.x); let t = i32(lid.x);
  let mean = ld_${ST}(${OFF(1)} + c);
  let invstd = 1.0 / sqrt(ld_${ST}(${OFF(1)} + C + c) + eps);
  var sgx = 0.0;
  var sg = 0.0;
  for (var j = t; j < M; j = j + ${WG}) {
    let i = at(c, j);
    let gv = ld_${G}(${OFF(2)} + i);
    sgx = sgx + gv * (ld_${X}(${OFF(0)} + i) - mean) * invstd;
    sg = sg + gv;
  }
  rgx[t] = sgx;
  rg[t] = sg;
  ${TREE('rgx', 'rg')}
  if (t == 0) { st_${O}(${OFF(3)} + c, rgx[0]); st_${O}(${OFF(3)} + C + c, rg[0]); }
}`);
      ctx.sched.dispatch(makeDispatch('bnGradSums', code, bound, meta(x.shape, p.eps, ops), [x.shape[1]!, 1, 1]));
    } else {
      // batchNormBackwardInput: inputs g, x, stats, sums, w?
      const others = [ins[0]!, ins[3]!, ...(p.hasWeight ? [ins[4]!] : [])];
      dispatchElementwise(ctx, `bnBackwardInput:${p.hasWeight}`, x, stats, others, out!, p.eps, (nm) => `
  let g = ld_${nm[2]}(${OFF(2)} + gid);
  let sgx = ld_${nm[3]}(${OFF(3)} + c);
  let sg = ld_${nm[3]}(${OFF(3)} + C + c);
  let scale = invstd${p.hasWeight ? ` * ld_${nm[4]}(${OFF(4)} + c)` : ''};
  let v = scale * (g - sg / f32(M) - xhat * sgx / f32(M));`);
    }
  });
}
