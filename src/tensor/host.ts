/** Host-side conversions between storage arrays and the arrays users see. */
import type { DType, StorageArray } from '../dtype/dtype.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../dtype/convert.js';
import { forEachIndex, isContiguous, numel } from '../shape/strides.js';

/** What `await t.data()` returns for each dtype. */
export type DataArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Storage (16-bit floats as bits) -> user array (16-bit floats widened exactly to float32). */
export function storageToUser(data: StorageArray, dtype: DType): DataArray {
  if (dtype.name === 'float16') return float16ToFloat32(data as Uint16Array);
  if (dtype.name === 'bfloat16') return bfloat16ToFloat32(data as Uint16Array);
  return data as DataArray;
}

/** Any numbers -> storage format of `dtype`, rounding once (through float32 for 16-bit floats). */
export function numbersToStorage(values: ArrayLike<number>, dtype: DType): StorageArray {
  if (dtype.name === 'float16' || dtype.name === 'bfloat16') {
    const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
    return dtype.name === 'float16' ? float32ToFloat16(f32) : float32ToBfloat16(f32);
  }
  if (dtype.name === 'bool') {
    const out = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0 ? 1 : 0;
    return out;
  }
  if (dtype.name === 'int32') {
    const out = new Int32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      out[i] = Number.isFinite(v) ? Math.trunc(v) : 0;
    }
    return out;
  }
  const out = new dtype.storage(values.length);
  out.set(values as ArrayLike<number>);
  return out;
}

/** Copy a strided view out of a storage array into a new contiguous storage array. */
export function gatherView(
  data: StorageArray,
  dtype: DType,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): StorageArray {
  const n = numel(shape);
  if (isContiguous(shape, strides)) return data.slice(offset, offset + n);
  const out = new dtype.storage(n);
  forEachIndex(shape, strides, offset, (p, i) => (out[i] = data[p]!));
  return out;
}

/** Nest a flat array into arrays of the given shape. */
export function nest(flat: ArrayLike<number>, shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  let pos = 0;
  const build = (d: number): unknown[] => {
    const out: unknown[] = [];
    for (let i = 0; i < shape[d]!; i++) out.push(d === shape.length - 1 ? flat[pos++] : build(d + 1));
    return out;
  };
  return build(0);
}

/** Shape and flat values of nested JS arrays; throws on ragged input. */
export function flattenNested(data: unknown): { shape: number[]; values: number[]; isBool: boolean } {
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const values: number[] = [];
  let isBool = typeof probe === 'boolean';
  const walk = (x: unknown, d: number, path: string): void => {
    if (d === shape.length) {
      if (typeof x === 'number') values.push(x);
      else if (typeof x === 'boolean') values.push(x ? 1 : 0);
      else throw new TypeError(`tensor: element at ${path || 'root'} is ${typeof x}, expected a number or boolean`);
      if (typeof x !== 'boolean') isBool = false;
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[d]) {
      throw new TypeError(`tensor: ragged nested array at ${path || 'root'}: expected length ${shape[d]} at depth ${d}`);
    }
    x.forEach((v, i) => walk(v, d + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return { shape, values, isBool };
}
