/** Scalar math the reference kernels need beyond Math: erf to double precision. */

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** erf(x): a positive-term series below |x| = 3, a continued fraction for erfc above. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/sqrt(pi) exp(-x^2) sum 2^n x^(2n+1) / (1*3*...*(2n+1)): every term positive
    // (at most 45 of them below 3). The factor's division does not wait on the previous term: the
    // wasm kernel (assembly/kernels/math_more.ts) computes the same expression at a term per few cycles.
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= x2 * (2 / (2 * n + 1));
      sum += term;
      if (term < sum * 1e-17) break;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r;
  }
  const r = 1 - erfcLarge(ax);
  return x < 0 ? -r : r;
}

/** erfc(x) for x >= 3 by Lentz's continued fraction. */
function erfcLarge(x: number): number {
  if (x > 27) return 0;
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (f * Math.sqrt(Math.PI));
}

/** erfc without cancellation for large positive x. */
export function erfc(x: number): number {
  if (x >= 3) return erfcLarge(x);
  return 1 - erf(x);
}

const SQRT_HALF = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export function gelu(x: number, approximate: 'none' | 'tanh'): number {
  if (approximate === 'tanh') return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
  return 0.5 * x * erfc(-x * SQRT_HALF);
}

/** d gelu(x) / dx. */
export function geluGrad(x: number, approximate: 'none' | 'tanh'): number {
  if (approximate === 'tanh') {
    const inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    const t = Math.tanh(inner);
    const dInner = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner;
  }
  return 0.5 * erfc(-x * SQRT_HALF) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}
