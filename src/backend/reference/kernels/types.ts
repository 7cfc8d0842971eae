/** What a reference kernel sees: contiguous float64 values with their shape and dtype. */
import type { DType } from '../../../dtype/dtype.js';

export interface RefArray {
  readonly data: Float64Array;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface RefOutput {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/**
 * Rounding to the precision the arrays' dtypes compute in: none when any is float64, else float32
 * (the 16-bit formats compute in float32). Kernels that mirror float32 op-by-op results round each
 * step with it.
 */
export function arithmeticRounding(...arrays: readonly RefArray[]): (x: number) => number {
  return arrays.some((a) => a.dtype.name === 'float64') ? (x) => x : Math.fround;
}

/** Computes every output as contiguous float64 values; the backend rounds them into storage. */
export type RefKernel = (inputs: readonly RefArray[], params: any, outputs: readonly RefOutput[]) => Float64Array[];
