/** Concatenation and index-based selection, with the scatter-adds their gradients need. */
import type { DimParams } from '../../kernels.js';
import type { RefKernel, RefKernels } from './types.js';
import { contiguousStrides, numel } from '../../../shape/strides.js';
import { splitAround } from './reduce.js';

const cat: RefKernel<DimParams> = (inputs, params, [out]) => {
  const [outer, total, inner] = splitAround(out!.shape, params.dim);
  const res = new Float64Array(outer * total * inner);
  let start = 0;
  for (const x of inputs) {
    const n = x.shape[params.dim]!;
    for (let o = 0; o < outer; o++) res.set(x.data.subarray(o * n * inner, (o + 1) * n * inner), (o * total + start) * inner);
    start += n;
  }
  return [res];
};

function checkIndex(op: string, value: number, size: number): number {
  if (value < -size || value >= size) throw new RangeError(`${op}: index ${value} is out of range for dimension of size ${size}`);
  return value < 0 ? value + size : value;
}

const indexSelect: RefKernel<DimParams> = ([x, index], params, [out]) => {
  const [outer, n, inner] = splitAround(x!.shape, params.dim);
  const idx = index!.data;
  const res = new Float64Array(numel(out!.shape));
  for (let o = 0; o < outer; o++)
    for (let k = 0; k < idx.length; k++) {
      const src = checkIndex('indexSelect', idx[k]!, n);
      res.set(x!.data.subarray((o * n + src) * inner, (o * n + src + 1) * inner), (o * idx.length + k) * inner);
    }
  return [res];
};

/** inputs (source, index): zeros of the output shape with source slices added at index positions. */
const indexAdd: RefKernel<DimParams> = ([src, index], params, [out]) => {
  const [outer, n, inner] = splitAround(out!.shape, params.dim);
  const idx = index!.data;
  const res = new Float64Array(numel(out!.shape));
  const S = src!.data;
  for (let o = 0; o < outer; o++)
    for (let k = 0; k < idx.length; k++) {
      const dst = checkIndex('indexAdd', idx[k]!, n);
      const s0 = (o * idx.length + k) * inner;
      const d0 = (o * n + dst) * inner;
      for (let i = 0; i < inner; i++) res[d0 + i]! += S[s0 + i]!;
    }
  return [res];
};

/** For each element of `indexShape`, visit(linear position in index, position in target with dim replaced). */
function forEachGather(
  indexShape: readonly number[],
  targetShape: readonly number[],
  dim: number,
  index: Float64Array,
  op: string,
  visit: (i: number, target: number) => void,
): void {
  const tStrides = contiguousStrides(targetShape);
  const rank = indexShape.length;
  const pos = new Array<number>(rank).fill(0);
  const n = numel(indexShape);
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let d = 0; d < rank; d++) t += (d === dim ? 0 : pos[d]!) * tStrides[d]!;
    t += checkIndex(op, index[i]!, targetShape[dim]!) * tStrides[dim]!;
    visit(i, t);
    for (let d = rank - 1; d >= 0; d--) {
      if (++pos[d]! < indexShape[d]!) break;
      pos[d] = 0;
    }
  }
}

const gather: RefKernel<DimParams> = ([x, index], params) => {
  const res = new Float64Array(index!.data.length);
  forEachGather(index!.shape, x!.shape, params.dim, index!.data, 'gather', (i, t) => (res[i] = x!.data[t]!));
  return [res];
};

/** inputs (source, index) of one shape: zeros of the output shape plus source added at gathered places. */
const scatterAdd: RefKernel<DimParams> = ([src, index], params, [out]) => {
  const res = new Float64Array(numel(out!.shape));
  forEachGather(index!.shape, out!.shape, params.dim, index!.data, 'scatterAdd', (i, t) => (res[t]! += src!.data[i]!));
  return [res];
};

export const indexingKernels = { cat, indexSelect, indexAdd, gather, scatterAdd } satisfies RefKernels;
