/**
 * Shape and stride arithmetic of row-major strided views: element counts, contiguous strides,
 * contiguity and index iteration. Below the tensor layer and the backends, which both need it
 * (imports nothing of the library).
 */

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== s) return false;
    s *= shape[i]!;
  }
  return true;
}

/**
 * Calls `visit(storageIndex, linearIndex)` for every element of a strided view in row-major order.
 * An odometer over the outer dimensions with a tight loop over the last one.
 */
export function forEachIndex(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  visit: (storageIndex: number, linear: number) => void,
): void {
  const n = numel(shape);
  if (n === 0) return;
  const rank = shape.length;
  if (rank === 0) {
    visit(offset, 0);
    return;
  }
  const last = rank - 1;
  const innerSize = shape[last]!;
  const innerStride = strides[last]!;
  const idx = new Array<number>(rank).fill(0);
  let base = offset;
  for (let linear = 0; linear < n; linear += innerSize) {
    for (let j = 0, p = base; j < innerSize; j++, p += innerStride) visit(p, linear + j);
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      base -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}
