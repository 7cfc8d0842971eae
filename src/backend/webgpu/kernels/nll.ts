/**
 * The fused negative log-likelihood (src/nn/nll_ops.ts; definitions in
 * src/backend/reference/kernels/nll.ts), float32 arithmetic:
 *
 *   nllLossFused     'none': one thread per target; 'sum'/'mean': one workgroup sums the losses
 *                    (and the weights) in a float32 tree                                1 dispatch
 *   nllLossBackward  one thread per element of logp; 'mean' first sums the weights     1 or 2
 *
 * Operands are made contiguous first. Target m of [N,...] picks logp's element
 * ((n·C + t)·S + s) with n = m / S, s = m % S (S: the spatial size; class 0 for an ignored target,
 * whose weight is 0).
 */
import type { KernelTensor } from '../../backend.js';
import { float32 } from '../../../dtype/dtype.js';
import type { NllParams } from '../../kernels.js';
import { bind, contiguousStrides, entry, groups1d, makeDispatch, Meta, numel, shader, tensorOperand, withContiguous, workgroupSums, type Bound, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';
import type { WebGpuBuffer } from '../buffers.js';

export const NLL_KERNELS = ['nllLossFused', 'nllLossBackward'] as const;

const WG = 256;

/** meta: M (targets), C, S, ignoreIndex, then the operands' offsets */
function meta(logp: KernelTensor, target: KernelTensor, p: NllParams, ops: readonly KernelTensor[]): Meta {
  const C = logp.shape[p.classDim]!;
  const S = numel(logp.shape.slice(p.classDim + 1));
  const m = new Meta().ints([numel(target.shape), C, S, p.ignoreIndex]);
  for (const o of ops) m.i(o.offset);
  return m;
}
const OFF = (i: number) => `mi(${4 + i}u)`;

/** The operands bound in order, the last one written: their binding names and the output's index. */
function bindAll(ctx: KernelContext, ops: readonly KernelTensor[]): { bound: Bound; nm: string[]; o: number } {
  const o = ops.length - 1;
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, i === o)));
  return { bound, nm: bound.names, o };
}

/** WGSL: target m's class (0 when ignored), its weight (0 when ignored) and logp index; T/W name the bindings. */
const PICK = (T: string, W: string | null, tOff: number, wOff: number) => `
struct Pick { cls: i32, w: f32, at: i32 }
fn pick(m: i32) -> Pick {
  let C = mi(1u); let S = mi(2u);
  let t = ldi_${T}(${OFF(tOff)} + m);
  let ignored = t == mi(3u);
  let cls = select(t, 0, ignored);
  let w = select(${W ? `ld_${W}(${OFF(wOff)} + cls)` : '1.0'}, 0.0, ignored);
  return Pick(cls, w, ((m / S) * C + cls) * S + m % S);
}`;

/** One workgroup: the sum of the losses into out[0] (sum: total, mean: total / weights), or of the weights alone. */
function dispatchSums(ctx: KernelContext, logp: KernelTensor, target: KernelTensor, w: KernelTensor | null, out: KernelTensor, p: NllParams, what: 'loss' | 'weights'): void {
  const ops = [logp, target, ...(w ? [w] : []), out];
  const { bound, nm, o } = bindAll(ctx, ops);
  const code = () =>
    shader(ctx, bound.decls, `
${PICK(nm[1]!, w ? nm[2]! : null, 1, 2)}
var<workgroup> rl: array<f32, ${WG}>;
var<workgroup> rw: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let M = mi(0u); let t = i32(lid.x);
  var sl = 0.0;
  var sw = 0.0;
  for (var m = t; m < M; m = m + ${WG}) {
    let q = pick(m);
    sw = sw + q.w;
    ${what === 'loss' ? `sl = sl + -(ld_${nm[0]}(${OFF(0)} + q.at) * q.w);` : ''}
  }
  rl[t] = sl;
  rw[t] = sw;
  ${workgroupSums(WG, 'rl', 'rw')}
  if (t == 0) { st_${nm[o]}(${OFF(o)}, ${what === 'weights' ? 'rw[0]' : p.reduction === 'mean' ? 'rl[0] / rw[0]' : 'rl[0]'}); }
}`);
  ctx.sched.dispatch(makeDispatch(`nllSums:${what}:${p.reduction}:${w !== null}`, code, bound, meta(logp, target, p, ops), [1, 1, 1]));
}

export function runNll(ctx: KernelContext, kernel: (typeof NLL_KERNELS)[number], inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], p: NllParams): void {
  const copy = (s: KernelTensor, d: KernelTensor) => runElementwise(ctx, 'copy', [s], [d], {});
  withContiguous(ctx, inputs, outputs, copy, (ins, [out]) => {
    if (kernel === 'nllLossFused') {
      const [logp, target, w] = [ins[0]!, ins[1]!, ins[2] ?? null];
      if (p.reduction !== 'none') {
        dispatchSums(ctx, logp, target, w, out!, p, 'loss');
        return;
      }
      const ops = [logp, target, ...(w ? [w] : []), out!];
      const { bound, nm, o } = bindAll(ctx, ops);
      const code = () =>
        shader(ctx, bound.decls, `
${PICK(nm[1]!, w ? nm[2]! : null, 1, 2)}
${entry(WG)}
  if (gid >= mi(0u)) { return; }
  let q = pick(gid);
  st_${nm[o]}(${OFF(o)} + gid, -(ld_${nm[0]}(${OFF(0)} + q.at) * q.w));
}`);
      ctx.sched.dispatch(makeDispatch(`nllNone:${w !== null}`, code, bound, meta(logp, target, p, ops), groups1d(numel(target.shape), WG)));
      return;
    }
    // nllLossBackward: inputs g, logp, target, w?
    const [g, logp, target, w] = [ins[0]!, ins[1]!, ins[2]!, ins[3] ?? null];
    let den: KernelTensor | null = null;
    if (p.reduction === 'mean') {
      den = { buffer: ctx.tempBuffer(float32, 1), dtype: float32, shape: [], strides: contiguousStrides([]), offset: 0 };
      dispatchSums(ctx, logp, target, w, den, p, 'weights');
    }
    const ops = [logp, target, ...(w ? [w] : []), g, ...(den ? [den] : []), out!];
    const [gi, di] = [w ? 3 : 2, w ? 4 : 3];
    const { bound, nm, o } = bindAll(ctx, ops);
    const q =
      p.reduction === 'none' ? `ld_${nm[gi]}(${OFF(gi)} + m)` : p.reduction === 'sum' ? `ld_${nm[gi]}(${OFF(gi)})` : `ld_${nm[gi]}(${OFF(gi)}) / select(den, 1.0, den == 0.0)`;
    const code = () =>
      shader(ctx, bound.decls, `
${PICK(nm[1]!, w ? nm[2]! : null, 1, 2)}
${entry(WG)}
  let C = mi(1u); let S = mi(2u);
  if (gid >= mi(0u) * C) { return; }
  let s = gid % S;
  let n = gid / (C * S);
  let c = (gid / S) % C;
  let m = n * S + s;
  let pk = pick(m);
  var v = 0.0;
  if (c == pk.cls) {
    ${den ? `let den = ld_${nm[di]}(${OFF(di)});` : ''}
    v = 0.0 + -((${q}) * pk.w);
  }
  st_${nm[o]}(${OFF(o)} + gid, v);
}`);
    ctx.sched.dispatch(makeDispatch(`nllBackward:${p.reduction}:${w !== null}`, code, bound, meta(logp, target, p, ops), groups1d(numel(logp.shape), WG)));
    if (den) ctx.releaseTemp(den.buffer as WebGpuBuffer);
  });
}
