/**
 * Moving tensors between storage format and the reference backend's compute format.
 *
 * The reference backend computes every op over contiguous Float64Arrays (exact for every
 * dtype we store, int32 included) and rounds the result once into the output's dtype:
 * through float32 for float16/bfloat16, so a 16-bit op behaves like "compute in float32,
 * round once". It is the definition of each op, not the fast path.
 */
import type { DType, StorageArray } from '../../dtype/dtype.js';
import { F16_TO_F32, f32BitsToBf16Bits, f32BitsToF16Bits, float32ToBfloat16, float32ToFloat16 } from '../../dtype/convert.js';
import { forEachIndex, isContiguous, numel } from '../../shape/strides.js';

const BF16_TO_F32 = (() => {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) bits[h] = h << 16;
  return table;
})();

function decodeTable(dtype: DType): Float32Array | null {
  if (dtype.name === 'float16') return F16_TO_F32;
  if (dtype.name === 'bfloat16') return BF16_TO_F32;
  return null;
}

/** A strided view of `data` (storage format) as a contiguous Float64Array of its values. */
export function gatherToF64(
  data: StorageArray,
  dtype: DType,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Float64Array {
  const n = numel(shape);
  const out = new Float64Array(n);
  const table = decodeTable(dtype);
  if (isContiguous(shape, strides)) {
    if (table) for (let i = 0; i < n; i++) out[i] = table[data[offset + i]!]!;
    else for (let i = 0; i < n; i++) out[i] = data[offset + i]!;
    return out;
  }
  if (table) forEachIndex(shape, strides, offset, (p, i) => (out[i] = table[data[p]!]!));
  else forEachIndex(shape, strides, offset, (p, i) => (out[i] = data[p]!));
  return out;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Encoder from a float64 value to the storage representation of `dtype`. */
export function encoderFor(dtype: DType): (x: number) => number {
  switch (dtype.name) {
    case 'float16':
      return (x) => {
        scratchF32[0] = x;
        return f32BitsToF16Bits(scratchU32[0]!);
      };
    case 'bfloat16':
      return (x) => {
        scratchF32[0] = x;
        return f32BitsToBf16Bits(scratchU32[0]!);
      };
    case 'bool':
      return (x) => (x !== 0 ? 1 : 0); // NaN is true, as in PyTorch
    case 'int32':
      return (x) => (Number.isFinite(x) ? Math.trunc(x) : 0);
    default:
      return (x) => x; // float32/float64: the typed array rounds
  }
}

/** Write contiguous float64 `values` into a strided view of `data`, rounding into its dtype. */
export function scatterFromF64(
  values: Float64Array,
  data: StorageArray,
  dtype: DType,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): void {
  const encode = encoderFor(dtype);
  const n = values.length;
  if (isContiguous(shape, strides)) {
    if (dtype.name === 'float32' || dtype.name === 'float64') data.set(values, offset);
    else if (dtype.isHalf) {
      // Round to float32 first, then to 16 bits, in two vectorised passes.
      const out = (data as Uint16Array).subarray(offset, offset + n);
      if (dtype.name === 'float16') float32ToFloat16(Float32Array.from(values), out);
      else float32ToBfloat16(Float32Array.from(values), out);
    } else for (let i = 0; i < n; i++) data[offset + i] = encode(values[i]!);
    return;
  }
  forEachIndex(shape, strides, offset, (p, i) => (data[p] = encode(values[i]!)));
}
