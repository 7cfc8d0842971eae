/**
 * How the fused attention kernels' operands (src/backend/kernels.ts, flashAttentionForward /
 * flashAttentionBackward) are walked by the native backends: sizes, and each operand's batch dims
 * collapsed to two [B1, B2] plus its row stride (and the mask's column stride), so the heads of a
 * packed projection and a broadcast mask are read in place. Shared by the wasm and webgpu kernels.
 */
import type { KernelTensor } from './backend.js';
import { collapseTo } from '../shape/strides.js';

export interface AttentionLayout {
  L: number;
  S: number;
  E: number;
  Ev: number;
  /** Batches N = B1 * B2; batch b = b1 * B2 + b2. */
  N: number;
  B2: number;
  /** Per operand of `rowed` (then the mask): batch-1, batch-2 and row strides (and the mask's column stride). */
  strides: number[][];
}

/**
 * The layout of q, k, v (and more operands of q's rows in `rowed`: out, dO) and the mask, or null
 * when the batch dims do not collapse to two.
 */
export function attentionLayout(rowed: readonly KernelTensor[], mask: KernelTensor | null): AttentionLayout | null {
  // plain loops, no closures: the wasm backend calls this twice per attention layer and step
  const q = rowed[0]!;
  const k = rowed[1]!;
  const v = rowed[2]!;
  const nb = q.shape.length - 2;
  const count = rowed.length + (mask ? 1 : 0);
  const batchShape: number[] = [];
  for (let d = 0; d < nb; d++) batchShape.push(q.shape[d]!);
  const batchStrides: number[][] = [];
  for (let t = 0; t < count; t++) {
    const x = t < rowed.length ? rowed[t]! : mask!;
    const s: number[] = [];
    for (let d = 0; d < nb; d++) s.push(x.strides[d]!);
    batchStrides.push(s);
  }
  const c = collapseTo(batchShape, batchStrides, 2);
  if (!c) return null;
  const strides: number[][] = [];
  for (let t = 0; t < count; t++) {
    const x = t < rowed.length ? rowed[t]! : mask!;
    const s = c.strides[t]!;
    const row = [s[0]!, s[1]!, x.strides[nb]!];
    if (t === rowed.length) row.push(x.strides[nb + 1]!);
    strides.push(row);
  }
  return { L: q.shape[nb]!, E: q.shape[nb + 1]!, S: k.shape[nb]!, Ev: v.shape[nb + 1]!, N: c.shape[0]! * c.shape[1]!, B2: c.shape[1]!, strides };
}
