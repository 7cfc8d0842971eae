/** Shared helpers of the op definitions: promotion, broadcasting, casting, error text. */
import { bool, float32, float64, int32, resultType, type DType } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { apply } from './dispatch.js';
import { numbersToStorage } from '../tensor/host.js';
import { filledNumbers, mapPacked } from '../shape/packed.js';
import { sameShape } from '../shape/strides.js';

export type TensorLike = Tensor | number | boolean;

export const shapeStr = (s: readonly number[]): string => `[${s.join(',')}]`;

/** A JS number as a 0-d tensor flagged as a wrapped number (kept exact: float64 or int32). */
export function wrap(x: TensorLike, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const dtype = typeof x === 'boolean' ? bool : Number.isInteger(x) && Math.abs(x) < 2 ** 31 ? int32 : float64;
  const t = Tensor.fromStorage(numbersToStorage([Number(x)], dtype), [], dtype, { wrappedNumber: true }, like?.backend);
  return t;
}

export function broadcastShapes(op: string, shapes: readonly (readonly number[])[]): number[] {
  let rank = 0;
  for (let k = 0; k < shapes.length; k++) rank = Math.max(rank, shapes[k]!.length);
  const out = filledNumbers(rank, 1);
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k]!;
    for (let i = 0; i < s.length; i++) {
      const d = s[s.length - 1 - i]!;
      const o = rank - 1 - i;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new RangeError(`${op}: shapes ${shapes.map(shapeStr).join(' and ')} cannot be broadcast together`);
    }
  }
  return out;
}

export function castTo(x: Tensor, dtype: DType): Tensor {
  return x.dt === dtype ? x : apply('cast', [x], { dtype });
}

/**
 * `t` for a backward rule of an op with `recastsWeights`: `t` itself, or, when autocast freed it
 * once the forward had run (a 16-bit cast of a weight), the same cast made again from the weight
 * (its cast node's input): the same rounding of the same values. The caller disposes a new one.
 */
export function recastIfFreed(t: Tensor): Tensor {
  if (!t.storage.disposed) return t;
  const node = t.gradFn;
  const source = node && node.op === 'cast' ? node.inputs[0] : undefined;
  if (!source || source.storage.disposed) return t; // the caller's kernel reports the freed tensor
  return castTo(source, t.dt);
}

export function expandTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  return apply('expand', [x], { shape });
}

/**
 * Promote to one dtype and broadcast to one shape. A wrapped number next to a 16-bit float is kept in
 * float32 (PyTorch's "opmath" scalar), so x_f16 * 0.1 multiplies by 0.1f and rounds once.
 */
export function promoteAndBroadcast(op: string, xs: readonly Tensor[], floatResult = false): Tensor[] {
  let dt = resultType(xs);
  if (floatResult && !dt.isFloating) dt = float32;
  const shape = broadcastShapes(op, mapPacked(xs, (x) => x.shape));
  return mapPacked(xs, (x) => {
    const e = expandTo(castTo(x, x.wrappedNumber && dt.isHalf ? float32 : dt), shape);
    // Keep a number's flag through its cast and broadcast, so the output dtype ignores it.
    return x.wrappedNumber && !e.wrappedNumber ? new Tensor(e.storage, e.shape, e.strides, e.offset, { wrappedNumber: true }) : e;
  });
}

/** The dtype an elementwise op outputs: that of its first operand that is not a wrapped number. */
export function operandDtype(xs: readonly Tensor[]): DType {
  return (xs.find((x) => !x.wrappedNumber) ?? xs[0]!).dt;
}

/** Reduce a broadcast gradient back to `shape` (summing the broadcast dimensions). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  const summed = dims.length ? apply('sum', [g], { dims, keepdim: true }) : g;
  return apply('reshape', [summed], { shape });
}

/** Normalise an int or [int, int] argument and validate it. */
export function pair(op: string, name: string, v: number | readonly number[], min: number): [number, number] {
  const p = typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < min)) {
    throw new RangeError(`${op}: ${name} must be an integer or a pair of integers >= ${min}, got ${JSON.stringify(v)}`);
  }
  return p as [number, number];
}

/**
 * Run `fn` on float32 copies of the 16-bit inputs and round its result once back to `outDtype`:
 * how composite ops (norms, losses) give 16-bit inputs float32 numerics.
 */
export function inFloat32<T extends Tensor | undefined>(xs: readonly T[], outDtype: DType, fn: (ys: T[]) => Tensor): Tensor {
  if (!outDtype.isHalf) return fn([...xs]);
  return castTo(fn(xs.map((x) => (x && x.dt.isHalf ? castTo(x, float32) : x) as T)), outDtype);
}
