/**
 * GELU and its gradient, reciprocal, clamp, pow, and index_add's accumulation for float32, float16
 * and bfloat16 storage (src/backend/wasm/native_math.ts calls them). As the reference kernels
 * (src/backend/reference/kernels/elementwise.ts, extra.ts, math.ts, indexing.ts) they widen to
 * float64, compute with the same formulas in the same order (erf by its positive-term series below
 * 3, erfc by Lentz's continued fraction above) and round once through float32, so results are the
 * reference's except where this module's exp / tanh / pow and JavaScript's differ in the last
 * float64 bit and that decides a float32 rounding. Exact GELU on float16 / bfloat16 also has
 * gelu16.ts's table form: the same float64 values, computed once per format into a table.
 *
 *   gelu_<fmt>(tanh, x, out, n)             approximate 'none' (erf) or 'tanh'
 *   gelu_grad_<fmt>(tanh, x, g, out, n)     g * gelu'(x)
 *   gelu_table_<f16|bf16>(table)            fill an exact-GELU table of the format (gelu16.ts's layout)
 *   gelu_lut16(table, x, out, n)            exact gelu of 16-bit x by its table
 *   gelu_grad_lut_<f16|bf16>(table, x, g, out, n)  g * gelu'(x) by the table, float32, rounded once
 *   unary_math_<fmt>(op, x, out, n, lo, hi) RECIPROCAL: 1 / x; CLAMP: to [lo, hi] (NaN bound: none), NaN kept
 *   pow_<fmt>(a, b, out, n)                 a^b elementwise
 *   pow_scalar_<fmt>(a, out, n, e)          a^e (an exponent of another format, e.g. float32 next to 16-bit a)
 *   index_add_<fmt>(src, index, out, outer, m, n, inner, r0, r1, acc)
 *     out [outer, n, inner] = zeros + src [outer, m, inner] rows added at rows index[0..m) (int32,
 *     in range: checked by the caller); this call fills output rows [r0, r1) of dim n, summing in
 *     float64 (`acc`: (r1 - r0) * inner doubles of scratch) in index order, rounded once.
 */
import { F32, F16, BF16, load1, store1, encode, f16ToF32, bf16ToF32 } from './convert16';
import { GELU_GRAD_OFFSET, geluLut16, geluGradLut16 } from './gelu16';

const RECIPROCAL: i32 = 0;
const CLAMP: i32 = 1;

const TWO_OVER_SQRT_PI: f64 = 1.1283791670955126;
const SQRT_HALF: f64 = 0.7071067811865476;
const SQRT_2_OVER_PI: f64 = 0.7978845608028654;
const INV_SQRT_2PI: f64 = 0.3989422804014327;

// @ts-ignore: decorator
@inline function at(fmt: i32, p: usize, i: i32): usize {
  return p + (<usize>i << (fmt == F32 ? 2 : 1));
}

/** erfc(x) for x >= 3 by Lentz's continued fraction (reference: math.ts erfcLarge). */
function erfcLarge(x: f64): f64 {
  if (x > 27) return 0;
  const tiny: f64 = 1e-300;
  let f = x;
  let c = x;
  let d: f64 = 0;
  for (let n = 1; n < 300; n++) {
    const a = <f64>n / 2;
    d = x + a * d;
    d = d == 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c == 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}

/** erf(x) (reference: math.ts erf). */
function erf(x: f64): f64 {
  if (isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= x2 * (2 / <f64>(2 * n + 1));
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r;
  }
  const r = 1 - erfcLarge(ax);
  return x < 0 ? -r : r;
}

// @ts-ignore: decorator
@inline function erfc(x: f64): f64 {
  return x >= 3 ? erfcLarge(x) : 1 - erf(x);
}

/**
 * erfc of two lanes, each bit for bit `erfc(lane)`: where both take erf's series (|t| < 3) the two
 * series run in one f64x2 loop, a lane's sum frozen once its own terms are small enough (the same
 * additions in the same order as the scalar loop); elsewhere the scalar function.
 */
// @ts-ignore: decorator
@inline function erfc2(t0: f64, t1: f64): v128 {
  if (!(Math.abs(t0) < 3 && Math.abs(t1) < 3)) return f64x2.replace_lane(f64x2.splat(erfc(t0)), 1, erfc(t1));
  const ax = f64x2.abs(f64x2.replace_lane(f64x2.splat(t0), 1, t1));
  const x2 = f64x2.mul(ax, ax);
  let term = ax;
  let sum = ax;
  let active = i64x2.splat(-1);
  const tiny = f64x2.splat(1e-17);
  for (let n = 1; n < 200; n++) {
    term = f64x2.mul(term, f64x2.mul(x2, f64x2.splat(2 / <f64>(2 * n + 1))));
    sum = v128.bitselect(f64x2.add(sum, term), sum, active);
    active = v128.andnot(active, f64x2.lt(term, f64x2.mul(sum, tiny)));
    if (!v128.any_true(active)) break;
  }
  const r0 = TWO_OVER_SQRT_PI * Math.exp(-f64x2.extract_lane(x2, 0)) * f64x2.extract_lane(sum, 0);
  const r1 = TWO_OVER_SQRT_PI * Math.exp(-f64x2.extract_lane(x2, 1)) * f64x2.extract_lane(sum, 1);
  return f64x2.replace_lane(f64x2.splat(1 - (t0 < 0 ? -r0 : r0)), 1, 1 - (t1 < 0 ? -r1 : r1));
}

// @ts-ignore: decorator
@inline function gelu(x: f64, tanh: i32): f64 {
  if (tanh != 0) return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  return 0.5 * x * erfc(-x * SQRT_HALF);
}

// @ts-ignore: decorator
@inline function geluGrad(x: f64, tanh: i32): f64 {
  if (tanh != 0) {
    const inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    const t = Math.tanh(inner);
    const dInner = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner;
  }
  return 0.5 * erfc(-x * SQRT_HALF) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

// @ts-ignore: decorator
@inline function geluMap(fmt: i32, tanh: i32, x: usize, out: usize, n: i32): void {
  let i = 0;
  if (tanh == 0) {
    // two elements per erfc2 (the exact form's cost is erf's series)
    for (; i + 2 <= n; i += 2) {
      const x0 = <f64>load1(fmt, at(fmt, x, i));
      const x1 = <f64>load1(fmt, at(fmt, x, i + 1));
      const e = erfc2(-x0 * SQRT_HALF, -x1 * SQRT_HALF);
      store1(fmt, at(fmt, out, i), <f32>(0.5 * x0 * f64x2.extract_lane(e, 0)));
      store1(fmt, at(fmt, out, i + 1), <f32>(0.5 * x1 * f64x2.extract_lane(e, 1)));
    }
  }
  for (; i < n; i++) store1(fmt, at(fmt, out, i), <f32>gelu(<f64>load1(fmt, at(fmt, x, i)), tanh));
}

// @ts-ignore: decorator
@inline function geluGradMap(fmt: i32, tanh: i32, x: usize, g: usize, out: usize, n: i32): void {
  let i = 0;
  if (tanh == 0) {
    for (; i + 2 <= n; i += 2) {
      const x0 = <f64>load1(fmt, at(fmt, x, i));
      const x1 = <f64>load1(fmt, at(fmt, x, i + 1));
      const e = erfc2(-x0 * SQRT_HALF, -x1 * SQRT_HALF);
      const d0 = 0.5 * f64x2.extract_lane(e, 0) + x0 * INV_SQRT_2PI * Math.exp(-0.5 * x0 * x0);
      const d1 = 0.5 * f64x2.extract_lane(e, 1) + x1 * INV_SQRT_2PI * Math.exp(-0.5 * x1 * x1);
      store1(fmt, at(fmt, out, i), <f32>(<f64>load1(fmt, at(fmt, g, i)) * d0));
      store1(fmt, at(fmt, out, i + 1), <f32>(<f64>load1(fmt, at(fmt, g, i + 1)) * d1));
    }
  }
  for (; i < n; i++) {
    const v = <f64>load1(fmt, at(fmt, g, i)) * geluGrad(<f64>load1(fmt, at(fmt, x, i)), tanh);
    store1(fmt, at(fmt, out, i), <f32>v);
  }
}

// @ts-ignore: decorator
@inline function unaryMath(fmt: i32, op: i32, x: usize, out: usize, n: i32, lo: f64, hi: f64): void {
  for (let i = 0; i < n; i++) {
    let v = <f64>load1(fmt, at(fmt, x, i));
    if (op == RECIPROCAL) v = 1 / v;
    else if (!isNaN(v)) {
      if (!isNaN(lo) && v < lo) v = lo;
      if (!isNaN(hi) && v > hi) v = hi;
    }
    store1(fmt, at(fmt, out, i), <f32>v);
  }
}

// @ts-ignore: decorator
@inline function powMap(fmt: i32, a: usize, b: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const v = Math.pow(<f64>load1(fmt, at(fmt, a, i)), <f64>load1(fmt, at(fmt, b, i)));
    store1(fmt, at(fmt, out, i), <f32>v);
  }
}

// @ts-ignore: decorator
@inline function powScalar(fmt: i32, a: usize, out: usize, n: i32, e: f64): void {
  for (let i = 0; i < n; i++) store1(fmt, at(fmt, out, i), <f32>Math.pow(<f64>load1(fmt, at(fmt, a, i)), e));
}

// @ts-ignore: decorator
@inline function indexAdd(fmt: i32, src: usize, index: usize, out: usize, outer: i32, m: i32, n: i32, inner: i32, r0: i32, r1: i32, acc: usize): void {
  const rows = r1 - r0;
  for (let o = 0; o < outer; o++) {
    memory.fill(acc, 0, <usize>(rows * inner) << 3);
    for (let k = 0; k < m; k++) {
      let dst = load<i32>(index + (<usize>k << 2));
      if (dst < 0) dst += n;
      if (dst < r0 || dst >= r1) continue;
      const s0 = (o * m + k) * inner;
      const a0 = acc + (<usize>((dst - r0) * inner) << 3);
      for (let i = 0; i < inner; i++) {
        const pa = a0 + (<usize>i << 3);
        store<f64>(pa, load<f64>(pa) + <f64>load1(fmt, at(fmt, src, s0 + i)));
      }
    }
    for (let r = 0; r < rows; r++) {
      const d0 = (o * n + r0 + r) * inner;
      const a0 = acc + (<usize>(r * inner) << 3);
      for (let i = 0; i < inner; i++) store1(fmt, at(fmt, out, d0 + i), <f32>load<f64>(a0 + (<usize>i << 3)));
    }
  }
}

export function gelu_f32(tanh: i32, x: usize, out: usize, n: i32): void {
  geluMap(F32, tanh, x, out, n);
}
export function gelu_f16(tanh: i32, x: usize, out: usize, n: i32): void {
  geluMap(F16, tanh, x, out, n);
}
export function gelu_bf16(tanh: i32, x: usize, out: usize, n: i32): void {
  geluMap(BF16, tanh, x, out, n);
}
/** Exact-GELU table of a 16-bit format: every pattern through the float64 formulas above. */
// @ts-ignore: decorator
@inline function geluTable(fmt: i32, table: usize): void {
  for (let h: u32 = 0; h < 65536; h++) {
    const x = <f64>(fmt == F16 ? f16ToF32(h) : bf16ToF32(h));
    store<u16>(table + (<usize>h << 1), <u16>encode(fmt, <f32>gelu(x, 0)));
    store<f32>(table + GELU_GRAD_OFFSET + (<usize>h << 2), <f32>geluGrad(x, 0));
  }
}

export function gelu_table_f16(table: usize): void {
  geluTable(F16, table);
}
export function gelu_table_bf16(table: usize): void {
  geluTable(BF16, table);
}
export function gelu_lut16(table: usize, x: usize, out: usize, n: i32): void {
  geluLut16(table, x, out, n);
}
export function gelu_grad_lut_f16(table: usize, x: usize, g: usize, out: usize, n: i32): void {
  geluGradLut16(F16, table, x, g, out, n);
}
export function gelu_grad_lut_bf16(table: usize, x: usize, g: usize, out: usize, n: i32): void {
  geluGradLut16(BF16, table, x, g, out, n);
}
export function gelu_grad_f32(tanh: i32, x: usize, g: usize, out: usize, n: i32): void {
  geluGradMap(F32, tanh, x, g, out, n);
}
export function gelu_grad_f16(tanh: i32, x: usize, g: usize, out: usize, n: i32): void {
  geluGradMap(F16, tanh, x, g, out, n);
}
export function gelu_grad_bf16(tanh: i32, x: usize, g: usize, out: usize, n: i32): void {
  geluGradMap(BF16, tanh, x, g, out, n);
}
export function unary_math_f32(op: i32, x: usize, out: usize, n: i32, lo: f64, hi: f64): void {
  unaryMath(F32, op, x, out, n, lo, hi);
}
export function unary_math_f16(op: i32, x: usize, out: usize, n: i32, lo: f64, hi: f64): void {
  unaryMath(F16, op, x, out, n, lo, hi);
}
export function unary_math_bf16(op: i32, x: usize, out: usize, n: i32, lo: f64, hi: f64): void {
  unaryMath(BF16, op, x, out, n, lo, hi);
}
export function pow_f32(a: usize, b: usize, out: usize, n: i32): void {
  powMap(F32, a, b, out, n);
}
export function pow_f16(a: usize, b: usize, out: usize, n: i32): void {
  powMap(F16, a, b, out, n);
}
export function pow_bf16(a: usize, b: usize, out: usize, n: i32): void {
  powMap(BF16, a, b, out, n);
}
export function pow_scalar_f32(a: usize, out: usize, n: i32, e: f64): void {
  powScalar(F32, a, out, n, e);
}
export function pow_scalar_f16(a: usize, out: usize, n: i32, e: f64): void {
  powScalar(F16, a, out, n, e);
}
export function pow_scalar_bf16(a: usize, out: usize, n: i32, e: f64): void {
  powScalar(BF16, a, out, n, e);
}
export function index_add_f32(src: usize, index: usize, out: usize, outer: i32, m: i32, n: i32, inner: i32, r0: i32, r1: i32, acc: usize): void {
  indexAdd(F32, src, index, out, outer, m, n, inner, r0, r1, acc);
}
export function index_add_f16(src: usize, index: usize, out: usize, outer: i32, m: i32, n: i32, inner: i32, r0: i32, r1: i32, acc: usize): void {
  indexAdd(F16, src, index, out, outer, m, n, inner, r0, r1, acc);
}
export function index_add_bf16(src: usize, index: usize, out: usize, outer: i32, m: i32, n: i32, inner: i32, r0: i32, r1: i32, acc: usize): void {
  indexAdd(BF16, src, index, out, outer, m, n, inner, r0, r1, acc);
}
