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

/** Computes every output as contiguous float64 values; the backend rounds them into storage. */
export type RefKernel = (inputs: readonly RefArray[], params: any, outputs: readonly RefOutput[]) => Float64Array[];
