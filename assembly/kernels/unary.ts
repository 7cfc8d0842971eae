/**
 * Transcendental unary ops and their gradients for float32, float16 and bfloat16 storage, the
 * activations of recurrent cells and GANs, and rsqrt (batch norm's 1 / sqrt(var + eps)). As the reference kernels (src/backend/reference/kernels/
 * elementwise.ts) they widen to float64, compute there and round once through float32, with the
 * same formulas; exp and tanh are this file's own float64 SIMD approximations (two lanes at a
 * time, a few units in the last float64 place), so results are the reference's bit for bit except
 * where that difference decides a float32 rounding (about once in 10^7 elements; the tests allow
 * one unit in the last place, as for softmax).
 *
 *   unary_<fmt>(op, x, out, n, slope)         contiguous; op: TANH, SIGMOID, LEAKY_RELU, RSQRT
 *   unary_grad_<fmt>(op, x, g, out, n, slope) the gradient from the forward's input x and the
 *                                            incoming gradient g (tanh, sigmoid and rsqrt
 *                                            recompute from x: 16-bit outputs are too coarse)
 */
import { F32, F16, BF16, shiftOf, load1, store1, load8lo, load8hi, store8 } from './convert16';
import { sigmoidV, tanhV, lo64, hi64, join32 } from './transcendental';

const TANH: i32 = 0;
const SIGMOID: i32 = 1;
const LEAKY_RELU: i32 = 2;
const RSQRT: i32 = 3;

// @ts-ignore: decorator
@inline function forwardV(op: i32, x: v128, slope: f64): v128 {
  if (op == TANH) return tanhV(x);
  if (op == SIGMOID) return sigmoidV(x);
  if (op == RSQRT) return f64x2.div(f64x2.splat(1), f64x2.sqrt(x)); // both correctly rounded: exact as 1 / Math.sqrt(x)
  return v128.bitselect(x, f64x2.mul(x, f64x2.splat(slope)), f64x2.gt(x, f64x2.splat(0)));
}

// @ts-ignore: decorator
@inline function backwardV(op: i32, x: v128, g: v128, slope: f64): v128 {
  const one = f64x2.splat(1);
  if (op == TANH) {
    const y = tanhV(x);
    return f64x2.mul(g, f64x2.sub(one, f64x2.mul(y, y)));
  }
  if (op == SIGMOID) {
    const y = sigmoidV(x);
    return f64x2.mul(f64x2.mul(g, y), f64x2.sub(one, y));
  }
  if (op == RSQRT) {
    // -0.5 g x^-1.5, the power as 1 / (x sqrt(x)): within a few float64 units of Math.pow, and
    // pow's special cases (x = -0 gives +Inf: (-0)(-0) = +0; x < 0 NaN; +Inf 0; -Inf 0, where
    // sqrt gives NaN)
    const p = f64x2.div(one, f64x2.mul(x, f64x2.sqrt(x)));
    const pow = v128.bitselect(f64x2.splat(0), p, f64x2.eq(x, f64x2.splat(-Infinity)));
    return f64x2.mul(f64x2.mul(f64x2.splat(-0.5), g), pow);
  }
  return v128.bitselect(g, f64x2.mul(g, f64x2.splat(slope)), f64x2.gt(x, f64x2.splat(0)));
}

// @ts-ignore: decorator
@inline function unary4(op: i32, v: v128, slope: f64): v128 {
  return join32(forwardV(op, lo64(v), slope), forwardV(op, hi64(v), slope));
}

// @ts-ignore: decorator
@inline function grad4(op: i32, x: v128, g: v128, slope: f64): v128 {
  return join32(backwardV(op, lo64(x), lo64(g), slope), backwardV(op, hi64(x), hi64(g), slope));
}

// @ts-ignore: decorator
@inline function unary(fmt: i32, op: i32, x: usize, o: usize, n: i32, slope: f64): void {
  const sh = shiftOf(fmt);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << sh;
    store8(fmt, o + off, unary4(op, load8lo(fmt, x + off), slope), unary4(op, load8hi(fmt, x + off), slope));
  }
  for (; i < n; i++) {
    const off = <usize>i << sh;
    store1(fmt, o + off, <f32>f64x2.extract_lane(forwardV(op, f64x2.splat(<f64>load1(fmt, x + off)), slope), 0));
  }
}

// @ts-ignore: decorator
@inline function unaryGrad(fmt: i32, op: i32, x: usize, g: usize, o: usize, n: i32, slope: f64): void {
  const sh = shiftOf(fmt);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const off = <usize>i << sh;
    store8(fmt, o + off, grad4(op, load8lo(fmt, x + off), load8lo(fmt, g + off), slope), grad4(op, load8hi(fmt, x + off), load8hi(fmt, g + off), slope));
  }
  for (; i < n; i++) {
    const off = <usize>i << sh;
    const v = backwardV(op, f64x2.splat(<f64>load1(fmt, x + off)), f64x2.splat(<f64>load1(fmt, g + off)), slope);
    store1(fmt, o + off, <f32>f64x2.extract_lane(v, 0));
  }
}

export function unary_f32(op: i32, x: usize, o: usize, n: i32, slope: f64): void {
  unary(F32, op, x, o, n, slope);
}
export function unary_f16(op: i32, x: usize, o: usize, n: i32, slope: f64): void {
  unary(F16, op, x, o, n, slope);
}
export function unary_bf16(op: i32, x: usize, o: usize, n: i32, slope: f64): void {
  unary(BF16, op, x, o, n, slope);
}
export function unary_grad_f32(op: i32, x: usize, g: usize, o: usize, n: i32, slope: f64): void {
  unaryGrad(F32, op, x, g, o, n, slope);
}
export function unary_grad_f16(op: i32, x: usize, g: usize, o: usize, n: i32, slope: f64): void {
  unaryGrad(F16, op, x, g, o, n, slope);
}
export function unary_grad_bf16(op: i32, x: usize, g: usize, o: usize, n: i32, slope: f64): void {
  unaryGrad(BF16, op, x, g, o, n, slope);
}
