/**
 * Tolerance checks for op tests: ULP distances in the 16-bit formats and relative errors.
 *
 * Rules (the acceptance criteria of the op tests):
 *   float32, any op:      |actual - expected| <= 1e-5 * |expected|, with an absolute floor of
 *                         1e-6 * max|expected| over the tensor, so that values near zero (from
 *                         cancellation) are judged on the tensor's scale instead of their own.
 *   16-bit 'elementwise': |actual - r| <= ulp(r), r = expected rounded to the dtype and ulp(r) the
 *                         spacing of the 16-bit format at |r| (subnormal spacing below the
 *                         smallest normal).
 *   16-bit 'reduction':   |actual - r| <= max(1e-2 * |r|, floor, ulp(r)): relative 1e-2, never
 *                         tighter than one ulp at r, with an absolute floor relative to the tensor's
 *                         largest magnitude M: floor = max(1e-3 * M, ulp(M)), one unit in the last
 *                         place at the tensor's scale. The floor is for elements that are small
 *                         because of cancellation: a 16-bit intermediate that PyTorch has too (the
 *                         16-bit product before the sum in the gradient of a broadcast operand, the
 *                         saved 16-bit output in softmax's backward) carries half an ulp of the
 *                         largest term into them, which is unbounded relative to the element itself.
 *   'exact':              actual === r (integers, copies).
 * NaN must meet NaN; infinities must match exactly.
 */
import assert from 'node:assert/strict';
import { roundToBfloat16, roundToFloat16 } from '../../src/dtype/convert.js';

export type Tolerance = 'elementwise' | 'reduction' | 'exact';
export type FloatDType = 'float32' | 'float16' | 'bfloat16';

/** Mantissa bits and smallest normal exponent of the formats. */
const FORMAT: Record<FloatDType, { mant: number; minExp: number }> = {
  float32: { mant: 23, minExp: -126 },
  float16: { mant: 10, minExp: -14 },
  bfloat16: { mant: 7, minExp: -126 },
};

/** x rounded to `dtype` (through float32, round to nearest even) and widened back. */
export function roundTo(x: number, dtype: FloatDType): number {
  if (dtype === 'float16') return roundToFloat16(x);
  if (dtype === 'bfloat16') return roundToBfloat16(x);
  return Math.fround(x);
}

/** floor(log2(a)) for finite a > 0, exact at powers of two. */
function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/** Spacing of `dtype` at |x|: the distance from |x| (rounded down to the grid) to the next value up. */
export function ulp(x: number, dtype: FloatDType): number {
  const { mant, minExp } = FORMAT[dtype];
  const a = Math.abs(x);
  if (!Number.isFinite(a)) return NaN;
  if (a < 2 ** minExp) return 2 ** (minExp - mant);
  return 2 ** (exponentOf(a) - mant);
}

/**
 * Fixture numbers: float32 values written as the shortest decimal that reads back as that float32
 * (so Math.fround recovers it exactly), or "nan" / "inf" / "-inf".
 */
export type Encoded = number | 'nan' | 'inf' | '-inf';

export function decode(values: readonly Encoded[]): number[] {
  return values.map((v) => (typeof v === 'number' ? Math.fround(v) : v === 'nan' ? NaN : v === 'inf' ? Infinity : -Infinity));
}

export interface Mismatch {
  index: number;
  expected: number;
  /** The expected value rounded to the tested dtype (what is compared). */
  reference: number;
  actual: number;
  diff: number;
  tol: number;
}

export interface CompareResult {
  ok: boolean;
  mismatches: Mismatch[];
  /** Number of mismatching elements (mismatches lists at most `limit`). */
  count: number;
  /** Largest |actual - reference| / tol seen (<= 1 passes). */
  worst: number;
}

/**
 * Compare `actual` with `expected` (the float32 reference) under the rule of `dtype` and `kind`.
 * For float32, 'elementwise' and 'reduction' share the relative rule; 'exact' stays exact.
 */
export function compareValues(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  dtype: FloatDType | 'int32' | 'bool',
  kind: Tolerance,
  limit = 8,
): CompareResult {
  if (actual.length !== expected.length) {
    return { ok: false, count: Math.max(actual.length, expected.length), worst: Infinity, mismatches: [{ index: -1, expected: expected.length, reference: expected.length, actual: actual.length, diff: NaN, tol: 0 }] };
  }
  const isFloat = dtype !== 'int32' && dtype !== 'bool';
  const ref = new Float64Array(expected.length);
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    ref[i] = isFloat ? roundTo(expected[i]!, dtype as FloatDType) : expected[i]!;
    if (Number.isFinite(ref[i]!)) maxAbs = Math.max(maxAbs, Math.abs(ref[i]!));
  }
  const floor = isFloat && dtype !== 'float32' ? Math.max(1e-3 * maxAbs, ulp(maxAbs, dtype as FloatDType)) : 0;
  const mismatches: Mismatch[] = [];
  let count = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const r = ref[i]!;
    let tol: number;
    if (!isFloat || kind === 'exact') tol = 0;
    else if (dtype === 'float32') tol = Math.max(1e-5 * Math.abs(r), 1e-6 * maxAbs);
    else if (kind === 'elementwise') tol = ulp(r, dtype as FloatDType);
    else tol = Math.max(1e-2 * Math.abs(r), floor, ulp(r, dtype as FloatDType));
    let good: boolean;
    let diff: number;
    if (Number.isNaN(r) || Number.isNaN(a)) {
      good = Number.isNaN(r) && Number.isNaN(a);
      diff = good ? 0 : NaN;
    } else if (!Number.isFinite(r) || !Number.isFinite(a)) {
      good = a === r;
      diff = good ? 0 : Infinity;
    } else {
      diff = Math.abs(a - r);
      good = diff <= tol;
    }
    const ratio = tol > 0 ? diff / tol : diff === 0 ? 0 : Infinity;
    if (!Number.isNaN(ratio)) worst = Math.max(worst, ratio);
    else worst = Infinity;
    if (!good) {
      count++;
      if (mismatches.length < limit) mismatches.push({ index: i, expected: expected[i]!, reference: r, actual: a, diff, tol });
    }
  }
  return { ok: count === 0, mismatches, count, worst };
}

/** Multi-index of a flat row-major index (for messages). */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  let r = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = r % shape[d]!;
    r = Math.floor(r / shape[d]!);
  }
  return out;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(9));

/** A readable failure message: what, which rule, then one line per mismatching element. */
export function describeMismatch(label: string, result: CompareResult, shape: readonly number[], dtype: string, kind: Tolerance): string {
  const lines = [`${label}: ${result.count} element(s) out of tolerance (dtype ${dtype}, rule ${dtype === 'float32' && kind !== 'exact' ? 'rel 1e-5' : kind})`];
  for (const m of result.mismatches) {
    if (m.index < 0) {
      lines.push(`  length: expected ${m.expected}, got ${m.actual}`);
      continue;
    }
    lines.push(
      `  [${unravel(m.index, shape).join(',')}] expected ${fmt(m.expected)}` +
        (m.reference !== m.expected ? ` (as ${dtype}: ${fmt(m.reference)})` : '') +
        ` actual ${fmt(m.actual)} |diff| ${m.diff.toExponential(3)} tol ${m.tol.toExponential(3)}`,
    );
  }
  if (result.count > result.mismatches.length) lines.push(`  ... and ${result.count - result.mismatches.length} more`);
  return lines.join('\n');
}

/** Throws an AssertionError-like Error with the diff when `actual` is out of tolerance. */
export function assertClose(
  label: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  shape: readonly number[],
  dtype: FloatDType | 'int32' | 'bool',
  kind: Tolerance,
): void {
  const result = compareValues(actual, expected, dtype, kind);
  if (!result.ok) throw new Error(describeMismatch(label, result, shape, dtype, kind));
}

/**
 * A sum-of-products kernel's result against the reference's: |actual - ref| <= (terms + 2) 2^-24
 * bound[i] (bound = the same kernel on |inputs|, i.e. sum |products|), plus one ulp of a 16-bit
 * output at the larger of the two. It holds with and without fused multiply-add, in any order.
 */
export function withinAccumulationBound(actual: Float32Array, ref: Float32Array, bound: Float32Array, terms: number, dtype: FloatDType, what: string): void {
  assert.equal(actual.length, ref.length, `${what}: length`);
  const eps = (terms + 2) * 2 ** -24;
  for (let i = 0; i < ref.length; i++) {
    const a = actual[i]!;
    const r = ref[i]!;
    if (!Number.isFinite(r) || !Number.isFinite(a)) {
      if (a === r || (Number.isNaN(a) && Number.isNaN(r))) continue;
      assert.fail(`${what}: element ${i} is ${a}, the reference gives ${r}`);
    }
    // the bound itself was rounded to float32 (or 16 bits): allow for that
    let tol = eps * bound[i]! * (1 + 2 ** -7);
    if (dtype !== 'float32') tol += ulp(Math.max(Math.abs(a), Math.abs(r)), dtype);
    if (!(Math.abs(a - r) <= tol)) {
      assert.fail(`${what}: element ${i} is ${a}, the reference gives ${r} (|diff| ${Math.abs(a - r)} > ${tol}, sum|products| ${bound[i]})`);
    }
  }
}

/** max |a - b| / max |b| over two equally long arrays (a whole tensor's relative error). */
export function relError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`relError: ${a.length} values against ${b.length}`);
  let d = 0;
  let m = 0;
  b.forEach((v, i) => {
    d = Math.max(d, Math.abs(a[i]! - v));
    m = Math.max(m, Math.abs(v));
  });
  return d / (m || 1);
}
