/** Matrix products. bmm is the one primitive; matmul/mm/linear reshape onto it. Accumulation in float32+. */
import type { Tensor } from '../tensor/tensor.js';
import { apply } from './dispatch.js';
import { defineOp } from './registry.js';
import { resultType } from '../dtype/dtype.js';
import { broadcastShapes, castTo, shapeStr } from './util.js';
import { expand, reshape, transpose, t } from './shape.js';
import { add } from './elementwise.js';
import { mapPacked } from '../shape/packed.js';

defineOp({
  name: 'bmm', autocast: 'lower',
  prepare: (xs) => {
    const dt = resultType(xs);
    return mapPacked(xs, (x) => castTo(x, dt));
  },
  infer: ({ 0: a, 1: b }) => {
    if (!a!.dt.isFloating && a!.dt.kind !== 'int') throw new TypeError(`bmm: not supported for ${a!.dtype} tensors`);
    if (a!.ndim !== 3 || b!.ndim !== 3 || a!.shape[0] !== b!.shape[0] || a!.shape[2] !== b!.shape[1]) {
      throw new RangeError(`bmm: cannot multiply ${shapeStr(a!.shape)} by ${shapeStr(b!.shape)}`);
    }
    return { shape: [a!.shape[0]!, a!.shape[1]!, b!.shape[2]!], dtype: a!.dt };
  },
  backward: (g, { inputs: { 0: a, 1: b } }) => [
    a!.requiresGrad ? apply('bmm', [g, transpose(b!, 1, 2)]) : null,
    b!.requiresGrad ? apply('bmm', [transpose(a!, 1, 2), g]) : null,
  ],
});

defineOp({
  name: 'matmul', autocast: 'lower',
  compose: ({ 0: a0, 1: b0 }) => {
    const a = a0!;
    const b = b0!;
    const fail = () => new RangeError(`matmul: cannot multiply ${shapeStr(a.shape)} by ${shapeStr(b.shape)}`);
    if (a.ndim === 0 || b.ndim === 0) throw new RangeError(`matmul: both arguments need at least 1 dimension, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
    const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
    const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
    const { 0: M, 1: K } = a2.shape.slice(-2) as [number, number];
    const { 0: K2, 1: N } = b2.shape.slice(-2) as [number, number];
    if (K !== K2) throw fail();
    let out: Tensor;
    let batch: number[];
    if (b2.ndim === 2) {
      // Fold a's batch dims into its rows: one GEMM, no copy of the weight.
      batch = a2.shape.slice(0, -2) as number[];
      const rows = batch.reduce((x, y) => x * y, 1) * M;
      out = apply('bmm', [reshape(a2, [1, rows, K]), reshape(b2, [1, K, N])]);
    } else {
      try {
        batch = broadcastShapes('matmul', [a2.shape.slice(0, -2), b2.shape.slice(0, -2)]);
      } catch {
        throw fail();
      }
      const B = batch.reduce((x, y) => x * y, 1);
      const ae = reshape(expand(a2, [...batch, M, K]), [B, M, K]);
      const be = reshape(expand(b2, [...batch, K, N]), [B, K, N]);
      out = apply('bmm', [ae, be]);
    }
    const shape = [...batch, ...(a.ndim === 1 ? [] : [M]), ...(b.ndim === 1 ? [] : [N])];
    return reshape(out, shape);
  },
});

defineOp({
  name: 'linear', autocast: 'lower',
  compose: ({ 0: x, 1: w, 2: b }) => {
    if (w!.ndim !== 2) throw new RangeError(`linear: weight must be 2-D [out, in], got ${shapeStr(w!.shape)}`);
    if (x!.shape[x!.ndim - 1] !== w!.shape[1]) {
      throw new RangeError(`linear: input ${shapeStr(x!.shape)} does not match weight ${shapeStr(w!.shape)} (expected last dim ${w!.shape[1]})`);
    }
    if (b && (b.ndim !== 1 || b.shape[0] !== w!.shape[0])) throw new RangeError(`linear: bias ${shapeStr(b.shape)} does not match weight ${shapeStr(w!.shape)}`);
    const y = matmul(x!, t(w!));
    return b ? add(y, b) : y;
  },
});

export function matmul(a: Tensor, b: Tensor): Tensor {
  return apply('matmul', [a, b]);
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  return apply('bmm', [a, b]);
}

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return apply('linear', bias ? [x, weight, bias] : [x, weight]);
}
