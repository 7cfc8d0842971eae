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
  const [q, k, v] = rowed as [KernelTensor, KernelTensor, KernelTensor];
  const nb = q.shape.length - 2;
  const operands = mask ? [...rowed, mask] : rowed;
  const c = collapseTo(q.shape.slice(0, nb), operands.map((t) => t.strides.slice(0, nb)), 2);
  if (!c) return null;
  const strides = c.strides.map((s, t) => [...s, operands[t]!.strides[nb]!]);
  if (mask) strides[strides.length - 1]!.push(mask.strides[nb + 1]!);
  return { L: q.shape[nb]!, E: q.shape[nb + 1]!, S: k.shape[nb]!, Ev: v.shape[nb + 1]!, N: c.shape[0]! * c.shape[1]!, B2: c.shape[1]!, strides };
}
