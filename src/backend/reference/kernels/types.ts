/** What a reference kernel sees: contiguous float64 values with their shape and dtype. */
import type { DType } from '../../../dtype/dtype.js';
import type { KernelName, KernelParams } from '../../kernels.js';

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
export type RefKernel<P = KernelParams> = (inputs: readonly RefArray[], params: P, outputs: readonly RefOutput[]) => Float64Array[];

/** The reference backend's table: one definition for every kernel of the contract. */
export type RefKernelTable = { readonly [K in KernelName]: RefKernel<KernelParams<K>> };

/** A file's share of the table (checked against the contract: no unknown names, the right params). */
export type RefKernels = Partial<RefKernelTable>;

/**
 * A table of scalar functions made into kernels by `make`, keeping each name's type: `make` passes
 * the params through, so a function checked against its kernel's params (`satisfies`) makes a
 * kernel with those params.
 */
export function kernelsOf<T extends object>(
  fns: T,
  make: (f: never) => RefKernel<never>,
): { [K in keyof T & KernelName]: RefKernel<KernelParams<K>> } {
  return Object.fromEntries(Object.entries(fns).map(([name, f]) => [name, make(f as never)])) as never;
}
