/**
 * Shape and stride arithmetic of row-major strided views: element counts, contiguous strides,
 * contiguity and index iteration. Below the tensor layer and the backends, which both need it
 * (imports nothing of the library).
 */

export function numel(shape: readonly number[]): number {
  let n = 1;
  // indexed: a for-of allocates per element until TurboFan compiles the caller (warm-up)
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

/** Whether two shapes are equal (a loop: the per-op path's helpers create no closures, packed.ts). */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  // pushed, not new Array(n): packed in every V8 tier, as the other shape arrays (packed.ts)
  const strides: number[] = [];
  for (let i = 0; i < shape.length; i++) strides.push(0);
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
 * Drop size-1 dimensions and merge neighbours that every stride list walks contiguously
 * (stride[d] = stride[d+1] * shape[d+1]): the same elements with fewer dimensions.
 */
export function collapseDims(shape: readonly number[], stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  // plain loops (no closures): this runs several times per op, and V8 compiles it early
  const m = stridesList.length;
  const dims: number[] = [];
  const strides: number[][] = [];
  for (let k = 0; k < m; k++) strides.push([]);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const last = dims.length - 1;
    let merge = last >= 0;
    for (let k = 0; merge && k < m; k++) merge = strides[k]![last] === stridesList[k]![i]! * d;
    if (merge) {
      dims[last] = dims[last]! * d;
      for (let k = 0; k < m; k++) strides[k]![last] = stridesList[k]![i]!;
    } else {
      dims.push(d);
      for (let k = 0; k < m; k++) strides[k]!.push(stridesList[k]![i]!);
    }
  }
  return { shape: dims, strides };
}

/**
 * `collapseDims` to exactly `rank` dimensions (leading ones of size 1 and stride 0 added), or null
 * when more remain: how a kernel walking a fixed number of batch dims takes any batch shape.
 */
export function collapseTo(shape: readonly number[], stridesList: readonly (readonly number[])[], rank: number): { shape: number[]; strides: number[][] } | null {
  const c = collapseDims(shape, stridesList);
  if (c.shape.length > rank) return null;
  while (c.shape.length < rank) {
    c.shape.unshift(1);
    c.strides.forEach((s) => s.unshift(0));
  }
  return c;
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
