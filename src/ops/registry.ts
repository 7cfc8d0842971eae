/**
 * The op table: one entry per op holding everything the rest of the library needs to know about it:
 * how inputs are prepared (promotion, broadcasting), the output's shape and dtype, the kernel that
 * computes it, the backward rule, and its autocast category. Composite ops are defined by other ops
 * and get their gradient from them; view ops share storage.
 */
import type { DType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { KernelName } from '../backend/kernels.js';

/** How autocast treats the op: run in the lower precision, in float32, in the widest input type, or leave alone. */
export type AutocastCategory = 'lower' | 'float32' | 'promote' | 'none';

export interface BackwardContext<P> {
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  readonly params: P;
}

export interface ViewGeometry {
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

/** What every op has, whatever computes it. */
interface OpDefCommon<P> {
  readonly name: string;
  readonly autocast: AutocastCategory;
  /** Refused inside float16 autocast, with this explanation (PyTorch bans binary_cross_entropy). */
  readonly autocastBanned?: string;
  /**
   * The backward makes autocast's 16-bit casts of weights again (`recastIfFreed`) instead of keeping
   * them: autocast frees the casts it made for this op once the op has run, so a network's 16-bit
   * weight copies are not held from the forward to the backward (one at a time instead).
   */
  readonly recastsWeights?: boolean;
  /** Cast and broadcast inputs before anything else (after autocast). */
  prepare?(inputs: readonly Tensor[], params: P): Tensor[];
  /**
   * Gradient of each input given the output gradient; null for inputs without one. With `compose`,
   * the composite's gradient is this rule instead of its components' (the definition runs without
   * recording): for loops whose backward is better written by hand, as an LSTM layer's.
   */
  backward?(grad: Tensor, ctx: BackwardContext<P>): readonly (Tensor | null)[];
  /**
   * Slicing views (narrow): where the output sits in the input. The engine then collects the
   * gradients of many slices of one tensor and writes them into one full-size gradient (a cat),
   * instead of padding each slice with zeros to full size and adding: a loop over a sequence's time
   * steps would otherwise cost O(steps^2). `backward` stays the definition (and the fallback).
   */
  gradientSlice?(params: P): GradientSlice;
}

/** Primitive ops: the output's shape and dtype; throws a clear error on bad input. */
type Infer<P> = (inputs: readonly Tensor[], params: P) => { shape: readonly number[]; dtype: DType };

/**
 * A primitive op, computed by a backend kernel of the contract (src/backend/kernels.ts): the one
 * its `kernel` names, else the one of its own name. Either way a name the contract lacks is a
 * compile error here.
 */
type PrimitiveOpDef<P> = OpDefCommon<P> & { infer: Infer<P>; compose?: undefined; view?: undefined } & (
  | { readonly kernel: KernelName }
  | { readonly name: KernelName; readonly kernel?: undefined }
);

/** A composite op: the definition in terms of other ops. */
type CompositeOpDef<P> = OpDefCommon<P> & {
  compose(inputs: readonly Tensor[], params: P): Tensor;
  infer?: undefined;
  view?: undefined;
  readonly kernel?: undefined;
};

/** A view op: the output's geometry over the input's storage. */
type ViewOpDef<P> = OpDefCommon<P> & {
  view(input: Tensor, params: P): ViewGeometry;
  infer?: undefined;
  compose?: undefined;
  readonly kernel?: undefined;
};

export type OpDef<P = any> = PrimitiveOpDef<P> | CompositeOpDef<P> | ViewOpDef<P>;

/** The output of a slicing view is input[start : start + length] along `dim`. */
export interface GradientSlice {
  dim: number;
  start: number;
  length: number;
}

const table = new Map<string, OpDef>();

export function defineOp<P>(def: OpDef<P>): OpDef<P> {
  if (table.has(def.name)) throw new Error(`op '${def.name}' is defined twice`);
  const kinds = [def.compose, def.view, def.infer].filter(Boolean).length;
  if (kinds !== 1) throw new Error(`op '${def.name}' must have exactly one of compose, view, infer`);
  table.set(def.name, def as OpDef);
  return def;
}

/** The kernel that computes a primitive op (`defineOp`'s type guarantees that it is one of the contract). */
export function kernelOf(def: OpDef): KernelName {
  return (def.kernel ?? def.name) as KernelName;
}

export function getOp(name: string): OpDef {
  const def = table.get(name);
  if (!def) throw new Error(`unknown op '${name}'`);
  return def;
}

export function allOps(): readonly OpDef[] {
  return [...table.values()];
}
