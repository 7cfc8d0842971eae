/**
 * Layout helpers shared by the wasm backend's native kernel handlers (native.ts, native_linalg.ts):
 * storage formats, collapsing of strided views, contiguity and aliasing checks.
 */
import type { KernelTensor } from '../backend.js';
import type { DType } from '../../dtype/dtype.js';
import { collapseDims, isContiguous, numel } from '../../shape/strides.js';

export type Fmt = 'f32' | 'f16' | 'bf16';
const FMT: Partial<Record<string, Fmt>> = { float32: 'f32', float16: 'f16', bfloat16: 'bf16' };
export const fmtOf = (d: DType): Fmt | undefined => FMT[d.name];

/** The kernels' dtype codes (docs/kernels.md): 0 float32, 1 float16, 2 bfloat16. */
export const DT_F16 = 1;
const DT_CODE: Partial<Record<string, number>> = { float32: 0, float16: DT_F16, bfloat16: 2 };
export const dtCode = (d: DType): number | undefined => DT_CODE[d.name];

/** Drop size-1 dimensions and merge neighbours that are contiguous in every stride list. */
export function collapse(shape: readonly number[], stridesList: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const c = collapseDims(shape, stridesList);
  return { dims: c.shape, strides: c.strides };
}

/** True when every element of the view is the one at its offset (a broadcast scalar). */
export function isScalar(t: KernelTensor): boolean {
  return t.shape.every((d, i) => d === 1 || t.strides[i] === 0);
}

export function contiguous(t: KernelTensor): boolean {
  return isContiguous(t.shape, t.strides);
}

/** [first, last] element indices a view touches. */
export function extent(t: KernelTensor): [number, number] {
  let lo = t.offset;
  let hi = t.offset;
  for (let i = 0; i < t.shape.length; i++) {
    const reach = (t.shape[i]! - 1) * t.strides[i]!;
    if (reach > 0) hi += reach;
    else lo += reach;
  }
  return [lo, hi];
}

/**
 * Whether writing `out` while reading `input` could read already-written elements: the two share
 * memory and are not the very same view (an in-place update of identical views is safe).
 */
export function unsafeAlias(input: KernelTensor, out: KernelTensor): boolean {
  if (input.buffer !== out.buffer) return false;
  if (numel(input.shape) === 0 || numel(out.shape) === 0) return false;
  const { 0: a0, 1: a1 } = extent(input);
  const { 0: b0, 1: b1 } = extent(out);
  const i = input.dtype.itemsize;
  const o = out.dtype.itemsize;
  if ((a1 + 1) * i <= b0 * o || (b1 + 1) * o <= a0 * i) return false;
  return !(
    input.offset * i === out.offset * o &&
    i === o &&
    input.shape.length === out.shape.length &&
    input.shape.every((d, k) => d === out.shape[k] && (d === 1 || input.strides[k] === out.strides[k]))
  );
}
