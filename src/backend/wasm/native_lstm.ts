/**
 * Native fused LSTM layer (assembly/kernels/lstm.ts; definitions in
 * src/backend/reference/kernels/lstm.ts): float32, float16 and bfloat16 sequences of one dtype,
 * contiguous, hidden size a multiple of 4; the bias sum and the saved activations float32. Each
 * call packs the recurrent weight once (lstm_pack, split across the threads), then runs the whole
 * recurrence with blocks of up to 16 batch rows shared among the threads (no barrier between time
 * steps). Anything else returns false (reference kernel).
 */
import type { KernelTensor } from '../backend.js';
import { contiguous, dtCode, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { scratchAndSync } from './native_scratch.js';
import { sameShape } from '../../shape/strides.js';

const ROWS_PER_GROUP = 4;
/**
 * Row groups a part steps together (up to 16 rows): a weight panel (H x 8 floats forward) and the
 * groups' packed states stay in the L1 cache while the panel serves them all.
 */
const MAX_GROUPS_PER_BLOCK = 4;

const isF32 = (t: KernelTensor | undefined): t is KernelTensor => !!t && t.dtype.name === 'float32' && contiguous(t);

/** The storage dtype's code when every tensor has it and is contiguous, else undefined. */
function commonCode(ts: readonly (KernelTensor | undefined)[]): number | undefined {
  const first = ts[0];
  if (!first || ts.some((t) => !t || t.dtype !== first.dtype || !contiguous(t))) return undefined;
  return dtCode(first.dtype);
}


/** Scratch (packed weight + per-part state) and the parts that share the batch's row groups. */
function prepare(ctx: NativeContext, code: number, w: KernelTensor, H: number, B: number, backward: boolean): { ws: number; sync: number; parts: number; G: number } {
  const groups = Math.ceil(B / ROWS_PER_GROUP);
  const parts = Math.max(1, Math.min(ctx.pool.threads, groups));
  // at least two blocks per part where the batch allows: a thread the OS holds back leaves its
  // second block to the others (blocks are taken dynamically)
  const G = Math.max(1, Math.min(MAX_GROUPS_PER_BLOCK, Math.floor(groups / (2 * parts))));
  const bytes = ctx.pool.call('lstm_scratch_bytes', H, G, parts) as number;
  const { ws, sync } = scratchAndSync(ctx, bytes, parts);
  ctx.pool.runParts('lstm_pack', [code, ctx.address(w), H, backward ? 1 : 0, ws], parts);
  return { ws, sync, parts, G };
}

const lstmForward: NativeKernel<'lstmForward'> = (ctx, [gx, h0, c0, w, bias], [out, acts], p) => {
  if (!gx || !out || !w || !isF32(acts) || gx.shape.length !== 3) return false;
  const code = commonCode([gx, h0, c0, w, out]);
  if (code === undefined) return false;
  const [T, B, gates] = gx.shape as [number, number, number];
  const H = gates / 4;
  if (H % 4 !== 0 || !sameShape(out.shape, [T, B, 2 * H]) || !sameShape(acts.shape, [T, B, 5 * H]) || !sameShape(w.shape, [4 * H, H])) return false;
  if (p.hasBias && (!isF32(bias) || !sameShape(bias.shape, [4 * H]))) return false;
  if ([gx, h0!, c0!, w, ...(p.hasBias ? [bias!] : [])].some((t) => unsafeAlias(t, out) || unsafeAlias(t, acts))) return false;
  const { ws, sync, parts, G } = prepare(ctx, code, w, H, B, false);
  const pb = p.hasBias ? ctx.address(bias!) : 0;
  ctx.pool.runParts('lstm_forward', [code, T, B, H, p.reverse ? 1 : 0, G, ctx.address(gx), pb, ctx.address(h0!), ctx.address(c0!), ctx.address(out), ctx.address(acts), ws, sync], parts);
  return true;
};

const lstmBackward: NativeKernel<'lstmBackward'> = (ctx, [gOut, out, c0, w, acts], [dGates, dh0, dc0, dBias], p) => {
  if (!out || !w || !dGates || !isF32(acts) || !isF32(dh0) || !isF32(dc0) || out.shape.length !== 3) return false;
  const code = commonCode([gOut, out, c0, w, dGates]);
  if (code === undefined) return false;
  const [T, B, H2] = out.shape as [number, number, number];
  const H = H2 / 2;
  if (H % 4 !== 0 || !sameShape(gOut!.shape, out.shape) || !sameShape(acts.shape, [T, B, 5 * H]) || !sameShape(dGates.shape, [T, B, 4 * H]) || !sameShape(w.shape, [4 * H, H])) return false;
  if (p.hasBias && (!isF32(dBias) || !sameShape(dBias.shape, [B, 4 * H]))) return false;
  const outputs = [dGates, dh0, dc0, ...(p.hasBias ? [dBias!] : [])];
  if ([gOut!, out, c0!, w, acts].some((t) => outputs.some((o) => unsafeAlias(t, o)))) return false;
  const { ws, sync, parts, G } = prepare(ctx, code, w, H, B, true);
  const args = [gOut!, out, c0!, acts, dGates, dh0, dc0].map((t) => ctx.address(t));
  ctx.pool.runParts('lstm_backward', [code, T, B, H, p.reverse ? 1 : 0, G, ...args, p.hasBias ? ctx.address(dBias!) : 0, ws, sync], parts);
  return true;
};

export const LSTM_KERNELS = { lstmForward, lstmBackward } satisfies NativeKernels;
