/**
 * Shape ops. reshape/view, permute, expand, narrow, squeeze and unsqueeze are views (no copy);
 * contiguous, cat, indexSelect and gather copy; indexAdd and scatterAdd are their gradients.
 */
import { int32, resultType, type DType } from '../dtype/dtype.js';
import { Tensor, normalizeDim } from '../tensor/tensor.js';
import { contiguousStrides, isContiguous, numel, sameShape } from '../shape/strides.js';
import { filledNumbers, mapNumbers, mapPacked } from '../shape/packed.js';
import { apply } from './dispatch.js';
import { defineOp } from './registry.js';
import { castTo, shapeStr, sumToShape } from './util.js';


defineOp<{ shape: readonly number[] }>({
  name: 'expand', autocast: 'none',
  view: (x, { shape }) => {
    const lead = shape.length - x.ndim;
    if (lead < 0) throw new RangeError(`expand: target ${shapeStr(shape)} has fewer dimensions than the tensor ${shapeStr(x.shape)}`);
    const strides = mapNumbers(shape, (d, i) => {
      if (i < lead) return 0;
      const own = x.shape[i - lead]!;
      if (own === d) return x.strides[i - lead]!;
      if (own === 1) return 0;
      throw new RangeError(`expand: the expanded size (${d}) must match the existing size (${own}) at non-singleton dimension ${i}; target ${shapeStr(shape)}, tensor ${shapeStr(x.shape)}`);
    });
    return { shape, strides, offset: x.offset };
  },
  backward: (g, { inputs }) => [sumToShape(g, inputs[0]!.shape)],
});

/** Requires a contiguous input; the public reshape copies first when needed. */
defineOp<{ shape: readonly number[] }>({
  name: 'reshape', autocast: 'none',
  view: (x, { shape }) => ({ shape, strides: contiguousStrides(shape), offset: x.offset }),
  backward: (g, { inputs }) => [reshape(g, inputs[0]!.shape)],
});

defineOp<{ dims: readonly number[] }>({
  name: 'permute', autocast: 'none',
  view: (x, { dims }) => {
    const shape: number[] = [];
    const strides: number[] = [];
    for (let i = 0; i < dims.length; i++) {
      shape.push(x.shape[dims[i]!]!);
      strides.push(x.strides[dims[i]!]!);
    }
    return { shape, strides, offset: x.offset };
  },
  backward: (g, { params }) => {
    const inverse = filledNumbers(params.dims.length, 0);
    for (let i = 0; i < params.dims.length; i++) inverse[params.dims[i]!] = i;
    return [permute(g, inverse)];
  },
});

defineOp<{ dim: number; start: number; length: number }>({
  name: 'narrow', autocast: 'none',
  view: (x, { dim, start, length }) => {
    const shape = copyNumbers(x.shape);
    shape[dim] = length;
    return { shape, strides: x.strides, offset: x.offset + start * x.strides[dim]! };
  },
  backward: (g, { inputs, params }) => {
    const full = inputs[0]!.shape;
    const parts: Tensor[] = [];
    const pad = (n: number) => {
      if (n === 0) return;
      const s = [...full];
      s[params.dim] = n;
      parts.push(apply('fill', [], { shape: s, dtype: g.dt, value: 0 }));
    };
    pad(params.start);
    parts.push(g);
    pad(full[params.dim]! - params.start - params.length);
    return [parts.length === 1 ? g : cat(parts, params.dim)];
  },
  gradientSlice: ({ dim, start, length }) => ({ dim, start, length }),
});

/**
 * squeeze/unsqueeze, and reshape of a strided view where strides allow: the same elements in the
 * same row-major order under another shape (views of views stay views).
 */
defineOp<{ shape: readonly number[]; strides: readonly number[] }>({
  name: 'restride', autocast: 'none',
  view: (x, p) => ({ shape: p.shape, strides: p.strides, offset: x.offset }),
  backward: (g, { inputs }) => [reshape(g, inputs[0]!.shape)],
});

defineOp({
  name: 'contiguous', autocast: 'none', kernel: 'copy',
  infer: ({ 0: x }) => ({ shape: x!.shape, dtype: x!.dt }),
  backward: (g) => [g],
});

defineOp<{ dim: number }>({
  name: 'cat', autocast: 'promote',
  prepare: (xs) => {
    const dt = resultType(xs);
    return mapPacked(xs, (x) => castTo(x, dt));
  },
  infer: (xs, { dim }) => {
    const first = xs[0]!;
    const shape = [...first.shape];
    shape[dim] = 0;
    for (const x of xs) {
      const ok = x.ndim === first.ndim && x.shape.every((d, i) => i === dim || d === first.shape[i]);
      if (!ok) throw new RangeError(`cat: sizes of tensors must match except in dimension ${dim}: got ${shapeStr(first.shape)} and ${shapeStr(x.shape)}`);
      shape[dim]! += x.shape[dim]!;
    }
    return { shape, dtype: first.dt };
  },
  backward: (g, { inputs, params }) => {
    let start = 0;
    return mapPacked(inputs, (x) => {
      const len = x.shape[params.dim]!;
      const piece = narrow(g, params.dim, start, len);
      start += len;
      return piece;
    });
  },
});

function checkIndexTensor(op: string, index: Tensor): void {
  if (index.dt !== int32) throw new TypeError(`${op}: index must be an int32 tensor, got ${index.dtype} (create it with { dtype: 'int32' })`);
}

defineOp<{ dim: number }>({
  name: 'indexSelect', autocast: 'none',
  infer: ({ 0: x, 1: index }, { dim }) => {
    checkIndexTensor('indexSelect', index!);
    if (index!.ndim > 1) throw new RangeError(`indexSelect: index must be 0-D or 1-D, got shape ${shapeStr(index!.shape)}`);
    const shape = [...x!.shape];
    shape[dim] = index!.numel;
    return { shape, dtype: x!.dt };
  },
  backward: (g, { inputs, params }) => [apply('indexAdd', [g, inputs[1]!], { dim: params.dim, shape: inputs[0]!.shape }), null],
});

defineOp<{ dim: number; shape: readonly number[] }>({
  name: 'indexAdd', autocast: 'none',
  infer: ({ 0: src }, { shape }) => ({ shape, dtype: src!.dt }),
  backward: (g, { inputs, params }) => [indexSelect(g, params.dim, inputs[1]!), null],
});

defineOp<{ dim: number }>({
  name: 'gather', autocast: 'none',
  infer: ({ 0: x, 1: index }, { dim }) => {
    checkIndexTensor('gather', index!);
    const ok = index!.ndim === x!.ndim && index!.shape.every((d, i) => i === dim || d <= x!.shape[i]!);
    if (!ok) throw new RangeError(`gather: index ${shapeStr(index!.shape)} must have the input's rank and no larger size than input ${shapeStr(x!.shape)} outside dimension ${dim}`);
    return { shape: index!.shape, dtype: x!.dt };
  },
  backward: (g, { inputs, params }) => [apply('scatterAdd', [g, inputs[1]!], { dim: params.dim, shape: inputs[0]!.shape }), null],
});

defineOp<{ dim: number; shape: readonly number[] }>({
  name: 'scatterAdd', autocast: 'none',
  infer: ({ 0: src }, { shape }) => ({ shape, dtype: src!.dt }),
  backward: (g, { inputs, params }) => [gather(g, params.dim, inputs[1]!), null],
});

defineOp<{ shape: readonly number[]; dtype: DType; value: number }>({
  name: 'fill', autocast: 'none',
  infer: (_xs, { shape, dtype }) => ({ shape, dtype }),
});

/* ------------------------------------------------------------------ public functions */

/*
 * The view functions below loop by index and create no closures or spreads: a GPT step calls each
 * only tens of times, too rarely for V8 to optimise them in a fresh process's first hundred steps
 * (bench/README.md, "warm-up"), and the interpreter pays for every closure and iterator.
 */

/** A packed copy of a shape (packed.ts). */
function copyNumbers(xs: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) out.push(xs[i]!);
  return out;
}

function resolveShape(op: string, x: Tensor, shape: readonly number[]): number[] {
  const out = copyNumbers(shape);
  const unknown = out.indexOf(-1);
  let known = 1;
  for (let i = 0; i < out.length; i++) {
    const d = out[i]!;
    if (!Number.isInteger(d) || d < -1 || (d === -1 && i !== unknown)) {
      throw new RangeError(`${op}: invalid shape ${shapeStr(shape)}: sizes must be integers >= 0 with at most one -1`);
    }
    if (d !== -1) known *= d;
  }
  if (unknown >= 0) {
    if (known === 0 || x.numel % known !== 0) throw new RangeError(`${op}: shape ${shapeStr(shape)} is invalid for input of size ${x.numel} (shape ${shapeStr(x.shape)})`);
    out[unknown] = x.numel / known;
  }
  if (numel(out) !== x.numel) throw new RangeError(`${op}: shape ${shapeStr(shape)} is invalid for input of size ${x.numel} (shape ${shapeStr(x.shape)})`);
  return out;
}

const shapeArgs = (args: readonly (number | readonly number[])[]): number[] =>
  args.length === 1 && Array.isArray(args[0]) ? copyNumbers(args[0] as number[]) : (args as number[]);

/**
 * A view of `x` with the new shape when its strides allow one (as PyTorch's reshape: e.g. a
 * transposed weight reshaped to [1,K,N] for bmm stays a view), else a contiguous copy reshaped.
 */
export function reshape(x: Tensor, ...shape: (number | readonly number[])[]): Tensor {
  const s = resolveShape('reshape', x, shapeArgs(shape));
  if (sameShape(s, x.shape)) return x;
  if (isContiguous(x.shape, x.strides)) return apply('reshape', [x], { shape: s });
  const strides = viewStrides(x.shape, x.strides, s);
  return strides ? apply('restride', [x], { shape: s, strides }) : apply('reshape', [contiguous(x)], { shape: s });
}

/**
 * Strides that show the elements of a (shape, strides) view in the same row-major order under
 * `newShape`, or null when no strides can (PyTorch's computeStride): the old dims are cut into runs
 * that are contiguous with each other, and each run must be split or merged into whole new dims.
 */
export function viewStrides(shape: readonly number[], strides: readonly number[], newShape: readonly number[]): number[] | null {
  if (shape.length === 0 || numel(shape) === 0) return contiguousStrides(newShape);
  const out = filledNumbers(newShape.length, 0);
  let viewD = newShape.length - 1;
  let base = strides[shape.length - 1]!;
  let runNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    runNumel *= shape[d]!;
    // a run ends at dim 0 or where the next-outer dim does not continue it
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== runNumel * base)) {
      while (viewD >= 0 && (viewNumel < runNumel || newShape[viewD] === 1)) {
        out[viewD] = viewNumel * base;
        viewNumel *= newShape[viewD]!;
        viewD--;
      }
      if (viewNumel !== runNumel) return null;
      if (d > 0) {
        base = strides[d - 1]!;
        runNumel = 1;
        viewNumel = 1;
      }
    }
  }
  return viewD === -1 ? out : null;
}

export function view(x: Tensor, ...shape: (number | readonly number[])[]): Tensor {
  const s = resolveShape('view', x, shapeArgs(shape));
  if (isContiguous(x.shape, x.strides)) return apply('reshape', [x], { shape: s });
  const strides = viewStrides(x.shape, x.strides, s);
  if (!strides) {
    throw new Error(`view: size ${shapeStr(s)} is not compatible with the input's shape ${shapeStr(x.shape)} and strides ${shapeStr(x.strides)}; use reshape instead`);
  }
  return apply('restride', [x], { shape: s, strides });
}

export function contiguous(x: Tensor): Tensor {
  return isContiguous(x.shape, x.strides) ? x : apply('contiguous', [x]);
}

/** Whether `dims` (each in [0, n)) names each of n dims once. */
function isPermutation(dims: readonly number[], n: number): boolean {
  if (dims.length !== n) return false;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (dims[i] === dims[j]) return false;
  return true;
}

export function permute(x: Tensor, ...dims: (number | readonly number[])[]): Tensor {
  const given = shapeArgs(dims);
  const d: number[] = [];
  for (let i = 0; i < given.length; i++) d.push(normalizeDim(given[i]!, x.ndim, 'permute'));
  if (!isPermutation(d, x.ndim)) {
    throw new RangeError(`permute: dims ${shapeStr(shapeArgs(dims))} must be a permutation of the ${x.ndim} dims of ${shapeStr(x.shape)}`);
  }
  return apply('permute', [x], { dims: d });
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normalizeDim(dim0, x.ndim, 'transpose');
  const b = normalizeDim(dim1, x.ndim, 'transpose');
  if (x.ndim < 2 && a === b) return x;
  const dims: number[] = [];
  for (let i = 0; i < x.ndim; i++) dims.push(i === a ? b : i === b ? a : i);
  return apply('permute', [x], { dims });
}

/** Matrix transpose of a 2-D tensor (PyTorch's .t()). */
export function t(x: Tensor): Tensor {
  if (x.ndim > 2) throw new RangeError(`t: expects a tensor with <= 2 dimensions, got ${shapeStr(x.shape)}; use transpose`);
  return x.ndim < 2 ? x : transpose(x, 0, 1);
}

export function expand(x: Tensor, ...shape: (number | readonly number[])[]): Tensor {
  const target = shapeArgs(shape);
  const lead = target.length - x.ndim;
  const resolved = mapNumbers(target, (d, i) => (d === -1 && i >= lead ? x.shape[i - lead]! : d));
  if (resolved.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`expand: invalid target shape ${shapeStr(target)}`);
  if (sameShape(resolved, x.shape)) return x;
  return apply('expand', [x], { shape: resolved });
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeDim(startDim, x.ndim, 'flatten');
  const e = normalizeDim(endDim, x.ndim, 'flatten');
  if (s > e) throw new RangeError(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function squeeze(x: Tensor, dim?: number | readonly number[]): Tensor {
  const dims =
    dim === undefined
      ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
      : (typeof dim === 'number' ? [dim] : dim).map((d) => normalizeDim(d, x.ndim, 'squeeze')).filter((d) => x.shape[d] === 1);
  if (dims.length === 0) return x;
  const keep = x.shape.map((_, i) => !dims.includes(i));
  return apply('restride', [x], { shape: x.shape.filter((_, i) => keep[i]), strides: x.strides.filter((_, i) => keep[i]) });
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeDim(dim, x.ndim + 1, 'unsqueeze');
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.ndim ? x.strides[d]! * x.shape[d]! : 1);
  return apply('restride', [x], { shape, strides });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim(dim, x.ndim, 'narrow');
  const size = x.shape[d]!;
  const s = start < 0 ? start + size : start;
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`narrow: length must be a non-negative integer, got ${length}`);
  if (!Number.isInteger(s) || s < 0 || s + length > size) {
    throw new RangeError(`narrow: start (${start}) + length (${length}) exceeds dimension size (${size}) of ${shapeStr(x.shape)} at dim ${d}`);
  }
  return apply('narrow', [x], { dim: d, start: s, length });
}

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new RangeError('cat: expected a non-empty list of tensors');
  const d = normalizeDim(dim, tensors[0]!.ndim, 'cat');
  return apply('cat', tensors, { dim: d });
}

defineOp<{ dim: number }>({
  name: 'stack', autocast: 'promote',
  compose: (xs, { dim }) => {
    for (const x of xs) {
      if (x.ndim !== xs[0]!.ndim || x.shape.some((s, i) => s !== xs[0]!.shape[i])) {
        throw new RangeError(`stack: expects each tensor to be equal size, but got ${shapeStr(xs[0]!.shape)} and ${shapeStr(x.shape)}`);
      }
    }
    return cat(xs.map((x) => unsqueeze(x, dim)), dim);
  },
});

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new RangeError('stack: expected a non-empty list of tensors');
  return apply('stack', tensors, { dim: normalizeDim(dim, tensors[0]!.ndim + 1, 'stack') });
}

export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  return apply('indexSelect', [x, index], { dim: normalizeDim(dim, x.ndim, 'indexSelect') });
}

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  return apply('gather', [x, index], { dim: normalizeDim(dim, x.ndim, 'gather') });
}

/** Copy `src` into `dst` in place (no autograd), broadcasting and casting src to dst. */
export { applyInto } from './dispatch.js';
