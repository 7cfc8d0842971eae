/**
 * WGSL helper functions shared by every generated shader: bit-exact conversions between float32 and
 * the 16-bit formats (round to nearest even, subnormals, overflow to ±Inf, NaN kept, as
 * src/dtype/convert.ts), NaN/Inf tests on the bits (shader compilers may assume no NaN in float
 * compares), and float32 math WGSL lacks (erfc, expm1, log1p) written without cancellation.
 */
export const WGSL_HELPERS = /* wgsl */ `
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
fn nonzero(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) != 0u; }
// private variables keep NaN/Inf out of constant evaluation (where WGSL forbids them)
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;
fn nan_f32() -> f32 { return bitcast<f32>(NAN_BITS); }
fn inf_f32() -> f32 { return bitcast<f32>(INF_BITS); }

fn f16_bits_to_f32(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return bitcast<f32>(s | 0x7f800000u | (m << 13u) | select(0u, 0x400000u, m != 0u)); } // NaN quieted, as the reference
  if (e != 0u) { return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u)); }
  let v = f32(m) * 5.9604644775390625e-8;
  return select(v, -v, s != 0u);
}

fn f32_to_f16_bits(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let ex = (x >> 23u) & 0xffu;
  let mant = x & 0x7fffffu;
  if (ex == 0xffu) { return sign | select(0x7e00u | (mant >> 13u), 0x7c00u, mant == 0u); }
  let e = i32(ex) - 112;
  if (e >= 0x1f) { return sign | 0x7c00u; }
  if (e <= 0) {
    let shift = u32(14 - e);
    if (shift > 24u) { return sign; }
    let sig = mant | 0x800000u;
    let half = 1u << (shift - 1u);
    let rem = sig & ((1u << shift) - 1u);
    var r = sig >> shift;
    if (rem > half || (rem == half && (r & 1u) == 1u)) { r = r + 1u; }
    return sign | r;
  }
  var r = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) == 1u)) { r = r + 1u; }
  return sign | r;
}

fn bf16_bits_to_f32(h: u32) -> f32 {
  let x = h << 16u;
  return bitcast<f32>(select(x, x | 0x400000u, (x & 0x7fffffffu) > 0x7f800000u)); // NaN quieted, as the reference
}

fn f32_to_bf16_bits(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  if ((x & 0x7fffffffu) > 0x7f800000u) { return (x >> 16u) | 0x40u; }
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

fn f32_to_i32(v: f32) -> i32 {
  if (!is_finite(v)) { return 0; }
  let t = trunc(v);
  if (t >= 2147483648.0 || t < -2147483648.0) { return 0; }
  return i32(t);
}

// exp with about 1 ulp error on every driver (Cephes expf: Cody-Waite reduction by ln 2 and a
// degree-6 polynomial); some drivers' built-in exp is several ulp off.
fn exp_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (x > 88.72283905206835) { return inf_f32(); }
  if (x < -103.97208) { return 0.0; }
  let k = floor(x * 1.44269504088896341 + 0.5);
  var r = x - k * 0.693359375;
  r = r - k * -2.12194440e-4;
  let z = r * r;
  let p = (((((1.9875691500e-4 * r + 1.3981999507e-3) * r + 8.3334519073e-3) * r + 4.1665795894e-2) * r + 1.6666665459e-1) * r + 5.0000001201e-1) * z + r + 1.0;
  let ki = i32(k);
  if (ki > 127) { return ldexp(ldexp(p, 127), ki - 127); }
  if (ki < -125) { return ldexp(ldexp(p, -100), ki + 100); }
  return ldexp(p, ki);
}

// log with about 1 ulp error (Cephes logf: frexp, a reduction around sqrt(1/2), degree-9 polynomial)
fn log_(x: f32) -> f32 {
  if (is_nan(x) || x < 0.0) { return nan_f32(); }
  if (x == 0.0) { return -inf_f32(); }
  if (!is_finite(x)) { return x; }
  let fe = frexp(x);
  var m = fe.fract;
  var e = fe.exp;
  if (m < 0.70710678118654752) { e = e - 1; m = m + m - 1.0; } else { m = m - 1.0; }
  let z = m * m;
  var y = ((((((((7.0376836292e-2 * m - 1.1514610310e-1) * m + 1.1676998740e-1) * m - 1.2420140846e-1) * m + 1.4249322787e-1) * m - 1.6668057665e-1) * m + 2.0000714765e-1) * m - 2.4999993993e-1) * m + 3.3333331174e-1) * m * z;
  let fe2 = f32(e);
  y = y + -2.12194440e-4 * fe2;
  y = y + -0.5 * z;
  return m + y + 0.693359375 * fe2;
}

fn expm1_(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  let u = exp_(x);
  if (u == 1.0) { return x; }
  let um1 = u - 1.0;
  if (um1 == -1.0) { return -1.0; }
  if (!is_finite(u)) { return u; }
  return um1 * x / log_(u);
}

fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  if (!is_finite(u)) { return log_(u); }
  if (u <= 0.0) { return log_(u); }
  return log_(u) * x / (u - 1.0);
}

fn tanh_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let a = abs(x);
  if (a > 10.0) { return sign(x); }
  let em = expm1_(-2.0 * a);
  let t = -em / (2.0 + em);
  return select(t, -t, x < 0.0);
}

fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp_(-x)); }
  let e = exp_(x);
  return e / (1.0 + e);
}

// erfc with fractional error below 1.2e-7 (Numerical Recipes' erfcc), computed in float32.
fn erfc_(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let ans = t * exp_(p);
  return select(2.0 - ans, ans, x >= 0.0);
}

fn gelu_erf(x: f32) -> f32 { return 0.5 * x * erfc_(-x * 0.70710678118654752); }
fn gelu_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x * sigmoid_(2.0 * u);
}
fn gelu_grad_erf(x: f32) -> f32 {
  return 0.5 * erfc_(-x * 0.70710678118654752) + x * 0.3989422804014327 * exp_(-0.5 * x * x);
}
fn gelu_grad_tanh(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let s = sigmoid_(2.0 * u);
  let sn = sigmoid_(-2.0 * u);
  let d = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return s + 2.0 * x * s * sn * d;
}

fn is_int(b: f32) -> bool { return is_finite(b) && trunc(b) == b; }

fn pow_(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (is_nan(a) || is_nan(b)) { return nan_f32(); }
  if (b == 1.0) { return a; }
  if (b == 2.0) { return a * a; }
  if (b == 0.5 && a >= 0.0 && is_finite(a)) { return sqrt(a); }
  if (b == -1.0) { return 1.0 / a; }
  let ab = abs(a);
  if (a == 0.0) {
    let odd = is_int(b) && abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
    let neg = (bitcast<u32>(a) & 0x80000000u) != 0u;
    let r = select(inf_f32(), 0.0, b > 0.0);
    return select(r, -r, odd && neg);
  }
  var r: f32;
  if (!is_finite(ab)) {
    r = select(0.0, inf_f32(), b > 0.0);
  } else if (!is_finite(b)) {
    if (ab == 1.0) { return 1.0; }
    r = select(0.0, inf_f32(), (ab > 1.0) == (b > 0.0));
  } else if (is_int(b) && abs(b) <= 64.0) {
    // exponentiation by squaring: exact-ish for small integer powers
    var base = ab;
    var n = u32(abs(b));
    var acc = 1.0;
    loop {
      if (n == 0u) { break; }
      if ((n & 1u) == 1u) { acc = acc * base; }
      base = base * base;
      n = n >> 1u;
    }
    r = select(acc, 1.0 / acc, b < 0.0);
  } else {
    r = exp_(b * log_(ab));
  }
  if (a < 0.0) {
    if (!is_int(b)) { return nan_f32(); }
    let odd = abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
    return select(r, -r, odd);
  }
  return r;
}

// atan on [0, 1] (Cephes atanf: a reduction around tan(pi/8) and a degree-9 odd polynomial)
fn atan01(x0: f32) -> f32 {
  var x = x0;
  var y = 0.0;
  if (x > 0.4142135623730950) { y = 0.78539816339744830962; x = (x - 1.0) / (x + 1.0); }
  let z = x * x;
  return y + ((((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * x + x);
}

fn atan2_(a: f32, b: f32) -> f32 {
  if (is_nan(a) || is_nan(b)) { return nan_f32(); }
  let aa = abs(a);
  let ab = abs(b);
  if (!is_finite(aa) || !is_finite(ab) || (aa == 0.0 && ab == 0.0)) { return atan2(a, b); }
  var r: f32;
  if (aa > ab) { r = 1.5707963267948966 - atan01(ab / aa); } else { r = atan01(aa / ab); }
  if (b < 0.0) { r = 3.141592653589793 - r; }
  return select(r, -r, a < 0.0);
}

fn softplus_(x: f32, beta: f32, threshold: f32) -> f32 {
  let bx = x * beta;
  if (bx > threshold) { return x; }
  if (bx > 0.0) { return (bx + log1p_(exp_(-bx))) / beta; }
  return log1p_(exp_(bx)) / beta;
}

fn softplus_grad(x: f32, beta: f32, threshold: f32) -> f32 {
  let bx = x * beta;
  if (bx > threshold) { return 1.0; }
  return sigmoid_(bx);
}

fn max_nan(a: f32, b: f32) -> f32 {
  if (is_nan(a)) { return a; }
  if (is_nan(b)) { return b; }
  return select(b, a, a > b);
}
fn min_nan(a: f32, b: f32) -> f32 {
  if (is_nan(a)) { return a; }
  if (is_nan(b)) { return b; }
  return select(b, a, a < b);
}
fn b2f(c: bool) -> f32 { return select(0.0, 1.0, c); }
`;
