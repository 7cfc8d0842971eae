/**
 * The gradient of a tensor that was read slice by slice (a sequence's time steps through narrow):
 * the autograd engine collects the slices' gradients and builds the full gradient here once, with
 * one cat per set of disjoint slices, instead of padding every slice to full size and adding
 * (O(slices x size)). Overlapping slices go into separate sets, which are added.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { SliceGradient } from '../autograd/engine.js';
import { apply } from './dispatch.js';
import { cat } from './shape.js';
import { add } from './elementwise.js';

interface DisjointSet {
  dim: number;
  end: number;
  items: SliceGradient[];
}

export function assembleSliceGradients(like: Tensor, slices: readonly SliceGradient[], dense: Tensor | null): Tensor {
  const sets: DisjointSet[] = [];
  const ordered = [...slices].sort((a, b) => a.spec.dim - b.spec.dim || a.spec.start - b.spec.start);
  for (const s of ordered) {
    const set = sets.find((c) => c.dim === s.spec.dim && c.end <= s.spec.start);
    if (set) {
      set.items.push(s);
      set.end = s.spec.start + s.spec.length;
    } else sets.push({ dim: s.spec.dim, end: s.spec.start + s.spec.length, items: [s] });
  }
  let total = dense;
  for (const { dim, items } of sets) {
    const parts: Tensor[] = [];
    const zeros = (n: number) => {
      if (n <= 0) return;
      const shape = [...like.shape];
      shape[dim] = n;
      parts.push(apply('fill', [], { shape, dtype: like.dt, value: 0 }));
    };
    let at = 0;
    for (const { spec, grad } of items) {
      zeros(spec.start - at);
      parts.push(grad);
      at = spec.start + spec.length;
    }
    zeros(like.shape[dim]! - at);
    const full = parts.length === 1 ? parts[0]! : cat(parts, dim);
    total = total ? add(total, full) : full;
  }
  return total!;
}
