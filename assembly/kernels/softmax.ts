/**
 * softmax / logSoftmax along one axis and their gradients, for float32, float16 and bfloat16
 * storage (inputs and output of one format). Everything after the widening is float64, as in the
 * reference kernels (src/backend/reference/kernels/reduce.ts), with the same formulas in the same
 * order, so results are the reference's bit for bit except where the module's exp / log and
 * JavaScript's differ in the last float64 bit and that decides a float32 rounding (in practice
 * never):
 *
 *   forward   m = max(x) (NaN propagates; m = 0 when every x is -Inf), s = sum exp(x - m),
 *             softmax = exp(x - m) / s, logSoftmax = (x - m) - log(s)
 *   backward  softmax:    y (g - sum(g y))
 *             logSoftmax: g - exp(y) sum(g)
 *
 * Tensors are contiguous [outer, n, inner] (the axis of length n in the middle); a call covers the
 * slices u0 <= u < u1 of the outer * inner of them (so threads split slices).
 *
 *   softmax_<fmt>(log, x, out, u0, u1, n, inner)
 *   softmax_grad_<fmt>(log, y, g, out, u0, u1, n, inner)
 */
import { F32, F16, BF16, load1, store1 } from './convert16';

// @ts-ignore: decorator
@inline function at(fmt: i32, p: usize, i: i32, stride: i32): usize {
  return p + (<usize>(i * stride) << (fmt == F32 ? 2 : 1));
}

// @ts-ignore: decorator
@inline function softmax(fmt: i32, log: i32, x: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  for (let u = u0; u < u1; u++) {
    const base = (u / inner) * n * inner + u % inner;
    const px = at(fmt, x, base, 1);
    const po = at(fmt, o, base, 1);
    let m: f64 = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, <f64>load1(fmt, at(fmt, px, k, inner)));
    if (m == -Infinity) m = 0;
    let s: f64 = 0;
    for (let k = 0; k < n; k++) s += Math.exp(<f64>load1(fmt, at(fmt, px, k, inner)) - m);
    if (log != 0) {
      const logS = Math.log(s);
      for (let k = 0; k < n; k++) store1(fmt, at(fmt, po, k, inner), <f32>(<f64>load1(fmt, at(fmt, px, k, inner)) - m - logS));
    } else {
      for (let k = 0; k < n; k++) store1(fmt, at(fmt, po, k, inner), <f32>(Math.exp(<f64>load1(fmt, at(fmt, px, k, inner)) - m) / s));
    }
  }
}

// @ts-ignore: decorator
@inline function softmaxGrad(fmt: i32, log: i32, y: usize, g: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  for (let u = u0; u < u1; u++) {
    const base = (u / inner) * n * inner + u % inner;
    const py = at(fmt, y, base, 1);
    const pg = at(fmt, g, base, 1);
    const po = at(fmt, o, base, 1);
    let acc: f64 = 0;
    if (log != 0) {
      for (let k = 0; k < n; k++) acc += <f64>load1(fmt, at(fmt, pg, k, inner));
      for (let k = 0; k < n; k++) {
        const gv = <f64>load1(fmt, at(fmt, pg, k, inner));
        store1(fmt, at(fmt, po, k, inner), <f32>(gv - Math.exp(<f64>load1(fmt, at(fmt, py, k, inner))) * acc));
      }
    } else {
      for (let k = 0; k < n; k++) acc += <f64>load1(fmt, at(fmt, pg, k, inner)) * <f64>load1(fmt, at(fmt, py, k, inner));
      for (let k = 0; k < n; k++) {
        const yv = <f64>load1(fmt, at(fmt, py, k, inner));
        store1(fmt, at(fmt, po, k, inner), <f32>(yv * (<f64>load1(fmt, at(fmt, pg, k, inner)) - acc)));
      }
    }
  }
}

export function softmax_f32(log: i32, x: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmax(F32, log, x, o, u0, u1, n, inner);
}
export function softmax_f16(log: i32, x: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmax(F16, log, x, o, u0, u1, n, inner);
}
export function softmax_bf16(log: i32, x: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmax(BF16, log, x, o, u0, u1, n, inner);
}
export function softmax_grad_f32(log: i32, y: usize, g: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmaxGrad(F32, log, y, g, o, u0, u1, n, inner);
}
export function softmax_grad_f16(log: i32, y: usize, g: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmaxGrad(F16, log, y, g, o, u0, u1, n, inner);
}
export function softmax_grad_bf16(log: i32, y: usize, g: usize, o: usize, u0: i32, u1: i32, n: i32, inner: i32): void {
  softmaxGrad(BF16, log, y, g, o, u0, u1, n, inner);
}
