/** Tensor factories: from JS data, constants, ranges and random numbers. */
import { bool, dtypeOf, float32, float64, int32, type DType, type DTypeName } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { flattenNested, numbersToStorage } from '../tensor/host.js';
import { numel } from '../shape/strides.js';
import { defaultGenerator, type Generator } from '../random/generator.js';
import { apply } from './dispatch.js';
import { shapeStr } from './util.js';

export interface TensorOptions {
  dtype?: DTypeName | DType;
  requiresGrad?: boolean;
}

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}

type NestedData = number | boolean | readonly NestedData[];
export type TensorData = NestedData | Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array | Int8Array | Int16Array | Uint32Array;

function checkShape(op: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`${op}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return [...shape];
}

function make(values: ArrayLike<number>, shape: readonly number[], dtype: DType, requiresGrad = false): Tensor {
  return Tensor.fromStorage(numbersToStorage(values, dtype), shape, dtype, { requiresGrad });
}

/**
 * A tensor from nested arrays, a number, or a typed array (1-D unless `shape` is given).
 * Default dtype: float32 for numbers, bool for booleans, and the typed array's own type for
 * Float64Array (float64) and Int32Array (int32). A Uint16Array with dtype float16 or bfloat16 is taken
 * as raw bit patterns.
 */
export function tensor(data: TensorData, options: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  let values: ArrayLike<number>;
  let shape: number[];
  let inferred: DType = float32;
  if (data instanceof Uint16Array && options.dtype && dtypeOf(options.dtype).isHalf) {
    // A Uint16Array given for a 16-bit float dtype holds raw bit patterns (the storage format).
    const dtype = dtypeOf(options.dtype);
    shape = options.shape ? checkShape('tensor', options.shape) : [data.length];
    if (numel(shape) !== data.length) throw new RangeError(`tensor: shape ${shapeStr(shape)} does not hold ${data.length} values`);
    return Tensor.fromStorage(data.slice(), shape, dtype, { requiresGrad: options.requiresGrad ?? false });
  }
  if (ArrayBuffer.isView(data)) {
    values = data as ArrayLike<number>;
    shape = options.shape ? checkShape('tensor', options.shape) : [values.length];
    if (data instanceof Float64Array) inferred = float64;
    else if (data instanceof Int32Array) inferred = int32;
    if (numel(shape) !== values.length) throw new RangeError(`tensor: shape ${shapeStr(shape)} does not hold ${values.length} values`);
  } else {
    const flat = flattenNested(data);
    values = flat.values;
    shape = flat.shape;
    if (flat.isBool && flat.values.length > 0) inferred = bool;
    if (options.shape) {
      const s = checkShape('tensor', options.shape);
      if (numel(s) !== flat.values.length) throw new RangeError(`tensor: shape ${shapeStr(s)} does not hold ${flat.values.length} values`);
      shape = s;
    }
  }
  const dtype = options.dtype ? dtypeOf(options.dtype) : inferred;
  return make(values, shape, dtype, options.requiresGrad);
}

export function full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
  const dtype = dtypeOf(options.dtype ?? float32);
  const t = apply('fill', [], { shape: checkShape('full', shape), dtype, value });
  return options.requiresGrad ? t.requiresGrad_() : t;
}

export const zeros = (shape: readonly number[], options: TensorOptions = {}): Tensor => full(shape, 0, options);
export const ones = (shape: readonly number[], options: TensorOptions = {}): Tensor => full(shape, 1, options);
export const zerosLike = (x: Tensor, options: TensorOptions = {}): Tensor => full(x.shape, 0, { dtype: x.dt, ...options });
export const onesLike = (x: Tensor, options: TensorOptions = {}): Tensor => full(x.shape, 1, { dtype: x.dt, ...options });
export const fullLike = (x: Tensor, value: number, options: TensorOptions = {}): Tensor => full(x.shape, value, { dtype: x.dt, ...options });

/** arange(end) or arange(start, end, step); int32 when every argument is an integer, else float32. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be finite and non-zero, got ${step}`);
  if ((end - start) / step < 0) throw new RangeError(`arange: upper bound and lower bound inconsistent with step sign (start ${start}, end ${end}, step ${step})`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const values = Array.from({ length: n }, (_, i) => start + i * step);
  const allInt = [start, end, step].every(Number.isInteger);
  return make(values, [n], dtypeOf(options.dtype ?? (allInt ? int32 : float32)), options.requiresGrad);
}

export function linspace(start: number, end: number, steps: number, options: TensorOptions = {}): Tensor {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`linspace: steps must be a non-negative integer, got ${steps}`);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // PyTorch fills the two halves from each end so that the last value is exactly `end`.
  const half = Math.floor(steps / 2);
  const values = steps === 1 ? [start] : Array.from({ length: steps }, (_, i) => (i < half ? start + step * i : end - step * (steps - 1 - i)));
  return make(values, [steps], dtypeOf(options.dtype ?? float32), options.requiresGrad);
}

export function eye(n: number, m = n, options: TensorOptions = {}): Tensor {
  checkShape('eye', [n, m]);
  const values = new Float64Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) values[i * m + i] = 1;
  return make(values, [n, m], dtypeOf(options.dtype ?? float32), options.requiresGrad);
}

function randomFloat(op: string, shape: readonly number[], options: RandomOptions, draw: (g: Generator) => number): Tensor {
  const dtype = dtypeOf(options.dtype ?? float32);
  if (!dtype.isFloating) throw new TypeError(`${op}: dtype must be floating point, got ${dtype.name}`);
  const s = checkShape(op, shape);
  const g = options.generator ?? defaultGenerator;
  const values = new Float64Array(numel(s));
  for (let i = 0; i < values.length; i++) values[i] = draw(g);
  return make(values, s, dtype, options.requiresGrad);
}

/** Uniform on [0, 1). */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return randomFloat('rand', shape, options, (g) => g.nextDouble());
}

/** Standard normal. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return randomFloat('randn', shape, options, (g) => g.nextNormal());
}

/** Integers uniform in [low, high); int32 unless another dtype is asked for. */
export function randint(low: number, high: number, shape: readonly number[], options: RandomOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new RangeError(`randint: expected integers low < high, got low=${low}, high=${high}`);
  }
  const s = checkShape('randint', shape);
  const g = options.generator ?? defaultGenerator;
  const values = new Float64Array(numel(s));
  for (let i = 0; i < values.length; i++) values[i] = g.nextInt(low, high);
  return make(values, s, dtypeOf(options.dtype ?? int32), options.requiresGrad);
}

/** Uniform on [low, high) (used by initialisers). */
export function uniform(shape: readonly number[], low: number, high: number, options: RandomOptions = {}): Tensor {
  return randomFloat('uniform', shape, options, (g) => low + (high - low) * g.nextDouble());
}
