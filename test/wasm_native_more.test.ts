/**
 * The wasm backend's native kernels beyond arithmetic and GEMM / convolution, against the reference
 * backend: comparisons, logical ops, isfinite, where, neg / abs, casts into the float formats,
 * divBackwardDivisor, softmax / logSoftmax and their gradients, gather / scatterAdd, max-pooling
 * (forward and backward), and 0-dim arithmetic; ResNet's rsqrt and its gradient, adaptive average
 * pooling and int32 add / sub; then LeNet and ResNet training steps in every precision with no
 * kernel left on the reference fallback.
 *
 * Every case runs on the reference backend and on wasm backends with 4 and 1 threads, and the
 * outputs must have the same bits (any NaN equals any NaN; softmax-family outputs may differ by one
 * unit in the last place of their format, where the module's float64 exp / log and JavaScript's
 * round differently). Values include NaN, ±Inf, ±0, subnormals and ties; sizes include 0, 1, odd
 * lengths and lengths that are not multiples of the SIMD widths; layouts include broadcast rows,
 * channels and expanded scalars. Each test also checks that the covered cases ran natively (no
 * fallback) and that cases outside the native coverage still give the reference result.
 *
 * Makes its own backends (wm-t4, wm-t1) and switches between them and 'reference' explicitly.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { apply, kernelView } from '../src/ops/dispatch.js';
import { F16_TO_F32 } from '../src/dtype/convert.js';
import { benchTrain } from '../src/bench/train.js';
import { trainStep } from '../src/train/classifier.js';
import { lmLoss } from '../src/train/language_model.js';
import { gptLoss, nanoGptParamGroups } from '../src/train/gpt.js';
import { rng } from './helpers/rng.js';
import { isNaNBits, onBackend, storageBits as storage } from './helpers/backends.js';

/** Run `fn` with `name` as the current backend (then back to the reference backend). */
const on = <T>(name: string, fn: () => T): Promise<T> => onBackend(name, fn, 'reference');

const t4 = await WasmBackend.create({ threads: 4, native: true });
const t1 = await WasmBackend.create({ threads: 1, native: true });
mx.registerBackend('wm-t4', async () => t4);
mx.registerBackend('wm-t1', async () => t1);
after(async () => {
  await Promise.all([t4.close(), t1.close()]);
});

const WASM = ['wm-t4', 'wm-t1'] as const;
const FLOATS = ['float32', 'float16', 'bfloat16'] as const;
const ALL = ['float32', 'float16', 'bfloat16', 'float64', 'int32', 'bool'] as const;
type DT = (typeof ALL)[number];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function valueOf(dtype: string, v: number): number {
  if (dtype === 'float16') return F16_TO_F32[v]!;
  if (dtype === 'bfloat16') {
    u32[0] = v << 16;
    return f32[0]!;
  }
  return v;
}

/** Spacing of the format at |x| (for the one-ulp tolerance of exp / log kernels). */
function ulpOf(dtype: string, x: number): number {
  const [mant, emin] = dtype === 'float16' ? [10, -14] : dtype === 'bfloat16' ? [7, -126] : dtype === 'float64' ? [52, -1022] : [23, -126];
  const a = Math.abs(x);
  const e = a > 0 ? Math.max(emin, Math.floor(Math.log2(a))) : emin;
  return 2 ** (e - mant);
}

interface AgreeOptions {
  /** Units in the last place allowed between a wasm result and the reference (default 0: same bits). */
  ulps?: number;
  /** Compare values, not bits (±0 equal): max-pool's 16-bit forward picks +0 from a -0 / +0 window. */
  byValue?: boolean;
}

function assertAgree(actual: Tensor, expected: Tensor, what: string, opts: AgreeOptions): void {
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = storage(actual);
  const e = storage(expected);
  const dt = actual.dtype;
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    if (Object.is(x, y) || (isNaNBits(dt, x) && isNaNBits(dt, y))) continue;
    const vx = valueOf(dt, x);
    const vy = valueOf(dt, y);
    if (opts.byValue && vx === vy) continue;
    if (opts.ulps && Number.isFinite(vy) && Math.abs(vx - vy) <= opts.ulps * ulpOf(dt, vy)) continue;
    assert.fail(`${what}: element ${i} is ${vx} (${x}), the reference gives ${vy} (${y})`);
  }
}

/** `fn` on the reference backend and on the wasm backends: the same outputs. */
async function agree(what: string, fn: () => Tensor | Tensor[], opts: AgreeOptions = {}): Promise<void> {
  const ref = [await on('reference', fn)].flat();
  for (const name of WASM) {
    const out = [await on(name, fn)].flat();
    assert.equal(out.length, ref.length);
    out.forEach((t, i) => assertAgree(t, ref[i]!, `${what} on ${name}${out.length > 1 ? ` (output ${i})` : ''}`, opts));
  }
}

/** Native and fallback calls per kernel on the 4-thread backend while `fn` runs. */
async function calls(fn: () => unknown): Promise<Record<string, { native: number; fallback: number }>> {
  const before = t4.kernelStats();
  await on('wm-t4', fn);
  const now = t4.kernelStats();
  const out: Record<string, { native: number; fallback: number }> = {};
  for (const [k, v] of Object.entries(now)) {
    const b = before[k] ?? { native: 0, fallback: 0 };
    if (v.native !== b.native || v.fallback !== b.fallback) out[k] = { native: v.native - b.native, fallback: v.fallback - b.fallback };
  }
  return out;
}

/** Asserts that `kernel` ran natively (at least once) and nothing fell back while `fn` ran. */
async function assertNative(kernel: string, fn: () => unknown, what = kernel): Promise<void> {
  const c = await calls(fn);
  assert.ok((c[kernel]?.native ?? 0) >= 1, `${what}: ${kernel} ran natively (${JSON.stringify(c)})`);
  const fell = Object.entries(c).filter(([, v]) => v.fallback > 0);
  assert.deepEqual(fell, [], `${what}: nothing fell back`);
}

/** Interesting values of a dtype: random ones, repeats (ties), ±0, ±Inf, NaN, subnormals, extremes. */
function valuesOf(dtype: DT, n: number, seed: number): number[] {
  const r = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = r();
    if (dtype === 'bool') out.push(u < 0.5 ? 0 : 1);
    else if (dtype === 'int32') {
      const special = [0, -1, 1, 2147483647, -2147483648, 7, -7];
      out.push(u < 0.2 ? special[Math.floor(r() * special.length)]! : Math.floor((r() - 0.5) * 200));
    } else {
      const special = [0, -0, Infinity, -Infinity, NaN, 1e-40, -1e-7, 3e-5, 65504, 1e5, 0.5, -0.5, 1];
      out.push(u < 0.25 ? special[Math.floor(r() * special.length)]! : u < 0.45 ? Math.round((r() - 0.5) * 8) / 2 : (r() - 0.5) * 10);
    }
  }
  return out;
}

function make(values: readonly number[], shape: readonly number[], dtype: DT): Tensor {
  return mx.tensor(Float64Array.from(values), { dtype, shape });
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/* ================================================================== bool-valued */

describe('comparisons, logical ops, isfinite', () => {
  const CMP = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr'] as const;

  it('every comparison and logical op on every dtype, contiguous (0, 1, odd and SIMD-sized lengths)', async () => {
    for (const dtype of ALL) {
      for (const n of [0, 1, 15, 16, 17, 67]) {
        const A = valuesOf(dtype, n, n + 1);
        // half of b equal to a (ties), the rest independent
        const B0 = valuesOf(dtype, n, n + 2);
        const B = A.map((v, i) => (i % 2 === 0 ? v : B0[i]!));
        await agree(`${dtype} n=${n}`, () => CMP.map((op) => mx[op](make(A, [n], dtype), make(B, [n], dtype))));
        if (n > 0) await assertNative('lt', () => mx.lt(make(A, [n], dtype), make(B, [n], dtype)), `lt ${dtype} n=${n}`);
      }
    }
  });

  it('broadcast layouts and scalars: rows, columns, expanded scalars, 0-dim', async () => {
    for (const dtype of ['float32', 'float16', 'int32', 'bool'] as const) {
      const A = valuesOf(dtype, 4 * 35, 3);
      const R = valuesOf(dtype, 35, 4);
      const C = valuesOf(dtype, 4, 5);
      await agree(`${dtype} broadcast`, () => {
        const a = make(A, [4, 35], dtype);
        return [
          mx.eq(a, make(R, [35], dtype)), // a row for every row
          mx.gt(a, make(C, [4, 1], dtype)), // one value per row
          mx.ne(make(C, [4, 1], dtype), make(R, [1, 35], dtype)), // both broadcast
          mx.le(a, make([A[5]!], [], dtype)), // a 0-dim operand
          mx.logicalOr(make([1], [], dtype), make([0], [], dtype)), // both 0-dim
          mx.eq(make(A.slice(0, 5 * 3 * 2), [5, 3, 2], dtype).permute([2, 0, 1]), make(C.slice(0, 3), [3], dtype)), // strided rows
        ];
      });
    }
    // the integer target check of a loss: ne(int32 targets, an int32 scalar)
    const T = Int32Array.from({ length: 64 }, (_, i) => (i % 7 === 3 ? -100 : i % 10));
    const f = () => mx.ne(mx.tensor(T, { dtype: 'int32' }), -100);
    await agree('ne(targets, ignoreIndex)', f);
    await assertNative('ne', f);
    // more than three dimensions after collapsing: falls back, same result
    const X = valuesOf('float32', 2 * 3 * 4 * 5 * 6, 9);
    const g = () => mx.lt(make(X, [2, 3, 4, 5, 6], 'float32'), make(X.slice(0, 2 * 4 * 6), [2, 1, 4, 1, 6], 'float32'));
    await agree('5-d broadcast', g);
    assert.equal((await calls(g))['lt']?.fallback, 1);
  });

  it('isfinite and logicalNot on every dtype (specials, expanded scalars, 0-dim)', async () => {
    for (const dtype of ALL) {
      for (const n of [1, 16, 33]) {
        const X = valuesOf(dtype, n, 11 + n);
        await agree(`${dtype} n=${n}`, () => {
          const x = make(X, [n], dtype);
          return [mx.isfinite(x), mx.logicalNot(x), mx.isfinite(make([X[0]!], [], dtype)), mx.logicalNot(make([X[0]!], [1], dtype).expand([5]))];
        });
      }
      await assertNative('isfinite', () => mx.isfinite(make(valuesOf(dtype, 40, 1), [40], dtype)), `isfinite ${dtype}`);
      await assertNative('logicalNot', () => mx.logicalNot(make(valuesOf(dtype, 40, 1), [40], dtype)), `logicalNot ${dtype}`);
    }
    // every 16-bit pattern
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      await agree(`isfinite / logicalNot of every ${dtype} pattern`, () => {
        const x = mx.tensor(all, { dtype });
        return [mx.isfinite(x), mx.logicalNot(x)];
      });
    }
  });
});

/* ================================================================== where, neg, abs */

describe('where, neg, abs', () => {
  it('where on every dtype: contiguous, broadcast condition and operands, 0-dim', async () => {
    for (const dtype of ALL) {
      for (const n of [1, 4, 15, 16, 17, 70]) {
        const C = valuesOf('bool', n, n);
        const A = valuesOf(dtype, n, n + 1);
        const B = valuesOf(dtype, n, n + 2);
        await agree(`${dtype} n=${n}`, () => mx.where(make(C, [n], 'bool'), make(A, [n], dtype), make(B, [n], dtype)));
        await assertNative('where', () => mx.where(make(C, [n], 'bool'), make(A, [n], dtype), make(B, [n], dtype)), `where ${dtype} n=${n}`);
      }
      const C = valuesOf('bool', 6 * 9, 1);
      const A = valuesOf(dtype, 9, 2);
      const B = valuesOf(dtype, 6, 3);
      await agree(`${dtype} broadcast`, () => [
        mx.where(make(C, [6, 9], 'bool'), make(A, [9], dtype), make(B, [6, 1], dtype)),
        mx.where(make(C.slice(0, 9), [9], 'bool'), make(A, [1, 9], dtype).expand([6, 9]), make([B[0]!], [], dtype)),
        mx.where(make([1], [], 'bool'), make([A[0]!], [], dtype), make([B[0]!], [], dtype)),
      ]);
    }
  });

  it('neg and abs: every 16-bit pattern, float32 / int32 specials, expanded and 0-dim inputs', async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      await agree(`neg / abs of every ${dtype} pattern`, () => {
        const x = mx.tensor(all, { dtype });
        return [mx.neg(x), mx.abs(x)];
      });
    }
    for (const dtype of ['float32', 'int32', 'float16'] as const) {
      for (const n of [1, 3, 4, 9, 33]) {
        const X = valuesOf(dtype, n, n + 5);
        await agree(`${dtype} n=${n}`, () => {
          const x = make(X, [n], dtype);
          return [mx.neg(x), mx.abs(x), mx.neg(make([X[0]!], [], dtype)), mx.neg(make([X[0]!], [1], dtype).expand([n + 2])), mx.abs(make(X, [n, 1], dtype).expand([n, 3]))];
        });
      }
      await assertNative('neg', () => mx.neg(make(valuesOf(dtype, 20, 1), [20], dtype)), `neg ${dtype}`);
      await assertNative('abs', () => mx.abs(make(valuesOf(dtype, 20, 1), [20], dtype)), `abs ${dtype}`);
    }
    // float64 falls back, same result
    const f = () => mx.neg(make([1.5, -0, NaN], [3], 'float64'));
    await agree('neg float64', f);
    assert.equal((await calls(f))['neg']?.fallback, 1);
  });
});

/* ================================================================== casts, arithmetic */

describe('casts into float formats, 0-dim arithmetic, divBackwardDivisor', () => {
  it('bool, int32 and float64 into float32 / float16 / bfloat16 (rounding through float32, as the reference)', async () => {
    const ints = [0, 1, -1, 2049, 2051, 16777217, -16777219, 65519, 65520, 2147483647, -2147483648, 123456789];
    const doubles = [
      0, -0, 1 / 3, 1e-8, 2 ** -25, 2 ** -25 * (1 + 2 ** -40), 65519.99999, 65520, 1e300, -1e-320, NaN, Infinity, -Infinity,
      // float16 ties reached only through float32's rounding (the reference rounds twice)
      1 + 2 ** -11 + 2 ** -30, 1 + 2 ** -11 - 2 ** -40, 1 + 2 ** -8 + 2 ** -30,
    ];
    for (const to of FLOATS) {
      for (const n of [1, 3, 4, 17]) {
        const B = valuesOf('bool', n, n);
        const I = Array.from({ length: n }, (_, i) => ints[i % ints.length]!);
        const D = Array.from({ length: n }, (_, i) => doubles[i % doubles.length]!);
        await agree(`-> ${to} n=${n}`, () => [make(B, [n], 'bool').to(to), make(I, [n], 'int32').to(to), make(D, [n], 'float64').to(to)]);
      }
      await agree(`every double -> ${to}`, () => make(doubles, [doubles.length], 'float64').to(to));
      for (const from of ['bool', 'int32', 'float64'] as const) {
        await assertNative('copy', () => make(valuesOf(from, 40, 2), [40], from).to(to), `${from} -> ${to}`);
      }
    }
  });

  it('0-dim and all-broadcast add, sub, mul, div run natively with the reference bits', async () => {
    for (const dtype of FLOATS) {
      const pairs = [[1, 3], [-0, 0], [1e30, 1e-30], [NaN, 1], [Infinity, -Infinity], [65504, 2], [1e-7, 3]];
      for (const [x, y] of pairs) {
        await agree(`${dtype} ${x} op ${y}`, () => {
          const a = make([x!], [], dtype);
          const b = make([y!], [], dtype);
          return [mx.add(a, b), mx.sub(a, b), mx.mul(a, b), mx.div(a, b), mx.add(a.reshape([1]).expand([9]), b.reshape([1]).expand([9]))];
        });
      }
      for (const op of ['add', 'sub', 'mul', 'div'] as const) {
        await assertNative(op, () => mx[op](make([2], [], dtype), make([3], [], dtype)), `${op} 0-dim ${dtype}`);
      }
    }
  });

  it('mixed float32 + float16 / bfloat16 add: every 16-bit pattern, either order, strided operands; the bits of casting first', async () => {
    for (const half of ['float16', 'bfloat16'] as const) {
      for (const n of [0, 1, 7, 8, 37, 1000, 65536]) {
        const wideVals = valuesOf('float32', n, 11 + n);
        const halfVals = n === 65536 ? Array.from({ length: n }, (_, i) => valueOf(half, i)) : valuesOf(half, n, 13 + n);
        await agree(`float32 + ${half} [${n}]`, () => {
          const a = make(wideVals, [n], 'float32');
          const b = make(halfVals, [n], half);
          return [mx.add(a, b), mx.add(b, a)];
        });
        await on('wm-t4', () => {
          const a = make(wideVals, [n], 'float32');
          const b = make(halfVals, [n], half);
          const y = mx.add(a, b);
          assert.equal(y.dtype, 'float32');
          assert.deepEqual(storage(y), storage(mx.add(a, b.to('float32'))), `float32 + ${half} [${n}]: the bits of casting first`);
        });
        if (n > 0) await assertNative('add', () => mx.add(make(wideVals, [n], 'float32'), make(halfVals, [n], half)), `float32 + ${half} [${n}]`);
      }
      // strided operands of one shape (a transposed view of either) are gathered first
      const A = valuesOf('float32', 7 * 9, 5);
      const B = valuesOf(half, 7 * 9, 6);
      await agree(`float32 + ${half}, transposed operands`, () => [
        mx.add(make(A, [7, 9], 'float32').t(), make(B, [9, 7], half)),
        mx.add(make(A, [9, 7], 'float32'), make(B, [7, 9], half).t()),
      ]);
      await assertNative('add', () => mx.add(make(A, [7, 9], 'float32').t(), make(B, [9, 7], half)), `float32 + ${half} transposed`);
    }
  });

  it('divBackwardDivisor: (-g a) / (b b) in float64, rounded once; broadcast and 0-dim', async () => {
    for (const dtype of FLOATS) {
      for (const n of [1, 5, 37]) {
        const A = valuesOf(dtype, n, n);
        const B = valuesOf(dtype, n, n + 1);
        const G = valuesOf(dtype, n, n + 2);
        const f = () => apply('divBackwardDivisor', [make(A, [n], dtype), make(B, [n], dtype), make(G, [n], dtype)]);
        await agree(`${dtype} n=${n}`, f);
        await assertNative('divBackwardDivisor', f, `divBackwardDivisor ${dtype}`);
      }
      await agree(`${dtype} broadcast`, () => [
        apply('divBackwardDivisor', [make([3], [1], dtype).expand([4, 5]), make(valuesOf(dtype, 5, 1), [5], dtype).expand([4, 5]), make(valuesOf(dtype, 20, 2), [4, 5], dtype)]),
        apply('divBackwardDivisor', [make([2.5], [], dtype), make([0.75], [], dtype), make([-1], [], dtype)]),
      ]);
    }
  });
});

describe('transposing copies', () => {
  it('transposed and permuted views of every dtype (4x4 / 8x8 register blocks, ragged edges)', async () => {
    const shapes: number[][] = [[400, 120], [120, 84], [37, 53], [8, 8], [4, 4], [9, 16], [16, 9], [3, 5], [1, 7]];
    for (const dtype of ALL) {
      for (const [m, n] of shapes) {
        const X = valuesOf(dtype, m! * n!, m! + n!);
        const f = () => [make(X, [m!, n!], dtype).t().contiguous(), make(X, [m!, n!], dtype).t().narrow(1, 1, m! - 1).contiguous()];
        await agree(`${dtype} [${m}, ${n}] transposed`, f);
      }
      const Y = valuesOf(dtype, 2 * 10 * 12 * 3, 7);
      await agree(`${dtype} permuted [2, 10, 12, 3]`, () => [
        make(Y, [2, 10, 12, 3], dtype).permute([0, 3, 2, 1]).contiguous(),
        make(Y, [2, 10, 12, 3], dtype).permute([3, 0, 1, 2]).contiguous(),
        make(Y, [2, 10, 12, 3], dtype).transpose(1, 2).contiguous(),
      ]);
      await assertNative('copy', () => make(valuesOf(dtype, 400 * 120, 1), [400, 120], dtype).t().contiguous(), `transpose ${dtype}`);
    }
  });
});

/* ================================================================== softmax */

describe('softmax, logSoftmax and their gradients', () => {
  /** Logits with some structure: moderate values, a large spread, rows of -Inf, NaN, ties. */
  function logits(n: number, seed: number, special: boolean): number[] {
    const r = rng(seed);
    return Array.from({ length: n }, (_, i) => {
      const u = r();
      if (special && u < 0.03) return NaN;
      if (special && u < 0.08) return -Infinity;
      if (u < 0.15) return Math.round(r() * 4);
      return (r() - 0.5) * (i % 3 === 0 ? 60 : 6);
    });
  }

  it('along every axis of float32 / float16 / bfloat16 tensors (LeNet logits, odd sizes, -Inf rows, NaN)', async () => {
    const cases: [number[], number][] = [[[64, 10], 1], [[64, 10], 0], [[3, 5, 7], 0], [[3, 5, 7], 1], [[3, 5, 7], 2], [[1], 0], [[7], 0], [[2, 1, 3], 1], [[33, 17], 1], [[], 0]];
    for (const dtype of FLOATS) {
      for (const [shape, dim] of cases) {
        for (const special of [false, true]) {
          const X = logits(numel(shape), shape.length * 10 + dim + 3, special);
          const G = logits(numel(shape), 7, false);
          await agree(`${dtype} ${JSON.stringify(shape)} dim ${dim}${special ? ' with -Inf / NaN' : ''}`, () => {
            const x = make(X, shape, dtype);
            const g = make(G, shape, dtype);
            const y = apply('softmax', [x], { dim });
            const ly = apply('logSoftmax', [x], { dim });
            return [y, ly, apply('softmaxBackward', [y, g], { dim }), apply('logSoftmaxBackward', [ly, g], { dim })];
          }, { ulps: 1 });
        }
      }
      const x = () => make(logits(640, 1, false), [64, 10], dtype);
      await assertNative('logSoftmax', () => apply('logSoftmax', [x()], { dim: 1 }), `logSoftmax ${dtype}`);
      await assertNative('softmax', () => apply('softmax', [x()], { dim: 0 }), `softmax ${dtype}`);
      await assertNative('logSoftmaxBackward', () => apply('logSoftmaxBackward', [x(), x()], { dim: 1 }), `logSoftmaxBackward ${dtype}`);
      await assertNative('softmaxBackward', () => apply('softmaxBackward', [x(), x()], { dim: 1 }), `softmaxBackward ${dtype}`);
    }
    // a row with every logit -Inf: m = 0, sum 0 (NaN outputs), as the reference; an empty axis
    await agree('-Inf rows and empty tensors', () => {
      const x = make([-Infinity, -Infinity, 1, 2], [2, 2], 'float32');
      return [apply('softmax', [x], { dim: 1 }), apply('logSoftmax', [x], { dim: 1 }), apply('softmax', [make([], [0, 3], 'float32')], { dim: 1 })];
    });
    // a non-contiguous input falls back
    const f = () => apply('logSoftmax', [make(logits(30, 2, false), [5, 6], 'float32').t()], { dim: 1 });
    await agree('transposed input', f, { ulps: 1 });
    assert.equal((await calls(f))['logSoftmax']?.fallback, 1);
  });

  it('a large softmax splits across threads with the same bits as one thread', async () => {
    const X = logits(300 * 257, 4, false);
    const y4 = await on('wm-t4', () => storage(apply('logSoftmax', [make(X, [300, 257], 'float32')], { dim: 1 })));
    const y1 = await on('wm-t1', () => storage(apply('logSoftmax', [make(X, [300, 257], 'float32')], { dim: 1 })));
    assert.deepEqual(Array.from(y4), Array.from(y1));
  });
});

/* ================================================================== gather, scatterAdd */

describe('gather and scatterAdd', () => {
  it('along every axis, negative indices, duplicate targets (float64 accumulation, rounded once)', async () => {
    const cases: [number[], number, number][] = [[[64, 10], 1, 1], [[64, 10], 0, 3], [[4, 6, 5], 0, 7], [[4, 6, 5], 1, 2], [[4, 6, 5], 2, 9], [[1], 0, 1], [[3], 0, 5]];
    for (const dtype of [...FLOATS, 'int32', 'bool', 'float64'] as const) {
      for (const [shape, dim, K] of cases) {
        const n = shape[dim]!;
        const ishape = shape.map((d, i) => (i === dim ? K : d));
        const r = rng(numel(shape) + K);
        const I = Array.from({ length: numel(ishape) }, () => Math.floor(r() * 2 * n) - n); // [-n, n)
        const X = valuesOf(dtype, numel(shape), 3);
        const S = valuesOf(dtype, numel(ishape), 4);
        await agree(`${dtype} ${JSON.stringify(shape)} dim ${dim} K=${K}`, () => {
          const idx = mx.tensor(Int32Array.from(I), { dtype: 'int32', shape: ishape });
          const out = [mx.gather(make(X, shape, dtype), dim, idx)];
          if (dtype !== 'int32' && dtype !== 'bool' && dtype !== 'float64') out.push(apply('scatterAdd', [make(S, ishape, dtype), idx], { dim, shape }));
          return out;
        });
      }
    }
    // many additions into one place: 16-bit sums rounded once, not per addition
    for (const dtype of FLOATS) {
      const S = Array.from({ length: 300 }, (_, i) => 1 + (i % 7) * 2 ** -9);
      const I = Int32Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 0 : 2));
      const f = () => apply('scatterAdd', [make(S, [1, 300], dtype), mx.tensor(I, { dtype: 'int32', shape: [1, 300] })], { dim: 1, shape: [1, 4] });
      await agree(`${dtype} scatterAdd of 300 into 2 places`, f);
      await assertNative('scatterAdd', f, `scatterAdd ${dtype}`);
    }
    const T = Int32Array.from({ length: 64 }, (_, i) => i % 10);
    await assertNative('gather', () => mx.gather(make(valuesOf('float32', 640, 1), [64, 10], 'float32'), 1, mx.tensor(T, { dtype: 'int32', shape: [64, 1] })));
  });

  it('out-of-range indices fall back to the reference, which throws its error', async () => {
    for (const name of WASM) {
      await assert.rejects(
        on(name, async () => mx.gather(make([1, 2, 3, 4], [2, 2], 'float32'), 1, mx.tensor(Int32Array.from([0, 2]), { dtype: 'int32', shape: [2, 1] }))),
        /gather: index 2 is out of range for dimension of size 2/,
      );
      await assert.rejects(
        on(name, async () => apply('scatterAdd', [make([1, 2], [2, 1], 'float32'), mx.tensor(Int32Array.from([-3, 0]), { dtype: 'int32', shape: [2, 1] })], { dim: 1, shape: [2, 2] })),
        /scatterAdd: index -3 is out of range/,
      );
    }
    // an index smaller than the input outside the axis (PyTorch allows it): fallback, same values
    const f = () => mx.gather(make(valuesOf('float32', 12, 2), [3, 4], 'float32'), 1, mx.tensor(Int32Array.from([3, 0]), { dtype: 'int32', shape: [2, 1] }));
    await agree('smaller index', f);
    assert.equal((await calls(f))['gather']?.fallback, 1);
  });
});

/* ================================================================== max-pool */

describe('max-pool forward and backward against the reference', () => {
  it('2x2 / stride 2 (the SIMD paths) at every row width, odd sizes, ties, ±0, -Inf and NaN; other geometries', async () => {
    const geoms: { shape: number[]; kernel: number; stride?: number; padding?: number }[] = [
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 16, 17, 23].map((OW) => ({ shape: [2, 3, 2 * (OW % 3) + 3, 2 * OW + (OW & 1)], kernel: 2 })),
      { shape: [4, 6, 28, 28], kernel: 2 }, // LeNet
      { shape: [4, 16, 10, 10], kernel: 2 },
      { shape: [3, 7, 9], kernel: 3, stride: 2, padding: 1 }, // overlapping windows, padding
      { shape: [1, 2, 6, 7], kernel: 2, stride: 1 },
    ];
    for (const dtype of FLOATS) {
      for (const g of geoms) {
        for (const special of [false, true]) {
          const r = rng(numel(g.shape) + (special ? 1 : 0));
          const X = Array.from({ length: numel(g.shape) }, () => {
            const u = r();
            if (special && u < 0.03) return NaN;
            if (special && u < 0.06) return -Infinity;
            if (u > 0.93) return -0;
            return Math.floor(r() * 9 - 4) / 4; // many ties
          });
          const F = mx.nn.functional;
          const opts = { stride: g.stride, padding: g.padding };
          const what = `${dtype} ${JSON.stringify(g)}${special ? ' NaN/-Inf' : ''}`;
          // forward: the same values (a 16-bit window of -0 and +0 may give +0 where the reference gives -0)
          await agree(`forward ${what}`, () => F.maxPool2d(make(X, g.shape, dtype), g.kernel, opts), { byValue: true });
          // backward: the gradient routed to the same element (the first maximum; the first NaN), same bits
          await agree(`backward ${what}`, () => {
            const x = make(X, g.shape, dtype).requiresGrad_();
            const y = F.maxPool2d(x, g.kernel, opts);
            y.backward(make(valuesOf('float32', y.numel, 5).map((v) => (Number.isFinite(v) ? v : 1)), y.shape, dtype));
            return x.grad!;
          });
        }
      }
      await assertNative('maxPool2d', () => mx.nn.functional.maxPool2d(make(valuesOf('float32', 4 * 6 * 28 * 28, 1), [4, 6, 28, 28], dtype), 2));
    }
  });
});

/* ================================================================== thread splits */

describe('calls large enough to split across threads', () => {
  it('give the reference bits, and the same bits as one thread (sums over chunked rows included)', async () => {
    const parts: Record<string, number> = {};
    const run = t4.pool.run.bind(t4.pool);
    t4.pool.run = (kernel, p) => {
      parts[kernel] = Math.max(parts[kernel] ?? 0, p.length);
      run(kernel, p);
    };
    try {
      const n = 1 << 20;
      const X = valuesOf('float32', n, 1);
      const Y = valuesOf('float32', n, 2);
      const C = valuesOf('bool', n, 3);
      for (const dtype of FLOATS) {
        await agree(`${dtype} elementwise, ${n} elements`, () => {
          const x = make(X, [n], dtype);
          const y = make(Y, [n], dtype);
          return [mx.add(x, y), mx.mul(x, 3), x.relu(), mx.lt(x, y), mx.where(make(C, [n], 'bool'), x, y), mx.neg(x), mx.isfinite(x), x.to(dtype === 'float32' ? 'float16' : 'float32')];
        });
        // a convolution's bias gradient: few outputs over many rows (rows summed in fixed chunks)
        const B = valuesOf('float32', 64 * 6 * 28 * 28, 4).map((v) => (Number.isFinite(v) ? v : 0.25));
        await agree(`${dtype} sum over [N, H, W] of [64, 6, 28, 28]`, () => [make(B, [64, 6, 28, 28], dtype).sum([0, 2, 3]), make(B, [64, 6, 28, 28], dtype).sum([0, 2, 3], true).mul(0)]);
      }
    } finally {
      t4.pool.run = run;
    }
    for (const k of ['add_f16', 'muls_f32', 'relu_f32', 'cmp_f32', 'where32', 'sign_f32', 'test_f16', 'cast_f32_f16', 'sum3c_f16']) {
      assert.ok((parts[k] ?? 0) > 1, `${k} ran in ${parts[k] ?? 0} parts`);
    }
  });
});

/* ================================================================== training step */

describe('a LeNet training step', () => {
  it('runs every kernel natively in fp32, fp16 and bf16 (no reference fallback)', async () => {
    for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
      await mx.setBackend('wm-t4');
      let res: Awaited<ReturnType<typeof benchTrain>>;
      try {
        res = await benchTrain({ precision, batchSize: 8, steps: 2, warmup: 1 });
      } finally {
        await mx.setBackend('reference');
      }
      assert.deepEqual(res.fallback_kernels, {}, `${precision}: kernels on the fallback`);
      assert.ok(Number.isFinite(res.loss), `${precision}: loss ${res.loss}`);
    }
  });
});

/* ================================================================== activations, cat, strided arithmetic */

describe('tanh, sigmoid, leakyRelu and their gradients; cat; arithmetic on transposed operands', () => {
  it('tanh, sigmoid, leakyRelu and gradients on every float format, contiguous and strided (an LSTM gate)', async () => {
    for (const dtype of FLOATS) {
      for (const n of [1, 15, 67]) {
        const X = valuesOf(dtype, n, 40 + n);
        const G = valuesOf(dtype, n, 50 + n);
        // one unit in the last place: the module's float64 tanh / exp and JavaScript's may differ in the last bit
        await agree(`${dtype} n=${n}`, () => {
          const x = make(X, [n], dtype);
          const g = make(G, [n], dtype);
          return [
            mx.tanh(x), mx.sigmoid(x), mx.nn.functional.leakyRelu(x, 0.2),
            apply('tanhBackward', [x, g]), apply('sigmoidBackward', [x, g]), apply('leakyReluBackward', [x, g], { negativeSlope: 0.2 }),
          ];
        }, { ulps: 1 });
      }
      // signed zeros, tiny values (tanh's series), both sides of its 0.1 switch, saturation, specials
      const S = [0, -0, 1e-30, -1e-30, 1e-7, -3e-5, 0.0999, 0.1, 0.1001, -0.1, 0.5, 1, 9, 19, 20, -25, 40, 104, -104, 710, -800, Infinity, -Infinity, NaN];
      await agree(`${dtype} specials`, () => {
        const x = make(S, [S.length], dtype);
        return [mx.tanh(x), mx.sigmoid(x), apply('tanhBackward', [x, x]), apply('sigmoidBackward', [x, x])];
      }, { ulps: 1 });
      const r = rng(99);
      const W = Array.from({ length: 20000 }, () => (r() - 0.5) * 2 ** Math.floor(r() * 12 - 8));
      await agree(`${dtype} 20000 values over 12 binades`, () => {
        const x = make(W, [W.length], dtype);
        return [mx.tanh(x), mx.sigmoid(x)];
      }, { ulps: 1 });
      const X = valuesOf(dtype, 6 * 16, 7);
      await agree(`${dtype} strided`, () => {
        const gates = make(X, [6, 16], dtype);
        return [mx.sigmoid(gates.narrow(1, 4, 4)), mx.tanh(gates.narrow(1, 8, 4)), apply('tanhBackward', [gates.narrow(1, 0, 4), gates.narrow(1, 12, 4)])];
      }, { ulps: 1 });
      for (const op of ['tanh', 'sigmoid'] as const) await assertNative(op, () => mx[op](make(X, [6, 16], dtype).narrow(1, 4, 4)), `${op} ${dtype} strided`);
      await assertNative('leakyReluBackward', () => apply('leakyReluBackward', [make(X, [96], dtype), make(X, [96], dtype)], { negativeSlope: 0.01 }));
    }
  });

  it('cat along any axis (contiguous pieces, a strided piece, empty pieces) gives the reference bytes', async () => {
    for (const dtype of ALL) {
      const A = valuesOf(dtype, 2 * 3 * 4, 61);
      const B = valuesOf(dtype, 2 * 1 * 4, 62);
      await agree(`${dtype} cat`, () => {
        const a = make(A, [2, 3, 4], dtype);
        const b = make(B, [2, 1, 4], dtype);
        return [mx.cat([a, b, a], 1), mx.cat([a, a], 0), mx.cat([a, make([], [2, 3, 0], dtype), a], 2), mx.cat([a.permute([1, 0, 2]), a.permute([1, 0, 2])], 0)];
      });
      await assertNative('cat', () => mx.cat([make(A, [2, 3, 4], dtype), make(B, [2, 1, 4], dtype)], 1), `cat ${dtype}`);
    }
  });

  it('add / mul with a transposed operand (a weight gradient added to the previous step\'s): gathered, then native', async () => {
    for (const dtype of FLOATS) {
      const A = valuesOf(dtype, 24 * 40, 71);
      const B = valuesOf(dtype, 24 * 40, 72);
      const f = () => mx.add(make(A, [24, 40], dtype), make(B, [40, 24], dtype).transpose(0, 1));
      await agree(`${dtype} add transposed`, () => [f(), mx.mul(make(B, [40, 24], dtype).transpose(0, 1), make(A, [24, 40], dtype))]);
      await assertNative('add', f, `add ${dtype} transposed`);
    }
  });

  it('an LSTM language-model step (fp16 and bf16, loss scaling, clipping) runs every kernel natively', async () => {
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const c = await calls(() => {
        mx.manualSeed(1);
        const model = new mx.models.CharLSTM({ vocabSize: 11, embedDim: 8, hidden: 16, layers: 2 });
        const opt = new mx.optim.AdamW(model.parameters(), { lr: 0.01 });
        const scaler = new mx.amp.GradScaler({ enabled: dtype === 'float16' });
        const ids = mx.randint(0, 11, [9, 4], { dtype: 'int32' });
        const precision = dtype === 'float16' ? 'fp16' : 'bf16';
        const ctx = { model, optimizer: opt, scaler, precision, clipGradNorm: 1, loss: (x: Tensor, y: Tensor) => lmLoss(model, x, y) } as const;
        trainStep(ctx, ids.narrow(0, 0, 8), ids.narrow(0, 1, 8)).loss.dispose();
      });
      const fell = Object.entries(c).filter(([, v]) => v.fallback > 0).map(([k]) => k).sort();
      assert.deepEqual(fell, [], `${dtype}: kernels on the reference fallback`);
    }
  });
});

describe("a transformer's kernels: gelu, reciprocal, clamp, pow, indexSelect, indexAdd; a GPT step", () => {
  it('gelu (erf and tanh) and its gradient on every float format: contiguous, strided, specials, 12 binades', async () => {
    for (const dtype of FLOATS) {
      for (const approximate of ['none', 'tanh'] as const) {
        const S = [0, -0, 1e-30, -1e-7, 0.5, -0.5, 1, -1, 2.9, 3, 3.1, -2.9, -3, -3.1, 5, -5, 9, -9, 27, -27, 28, -40, 1e5, -1e5, Infinity, -Infinity, NaN];
        const r = rng(5);
        const W = Array.from({ length: 5000 }, () => (r() - 0.5) * 2 ** Math.floor(r() * 12 - 8));
        for (const [what, X] of [['specials', S], ['5000 values over 12 binades', W]] as const) {
          // one unit in the last place: the module's float64 exp / tanh and JavaScript's may differ in the last bit
          await agree(`${dtype} gelu ${approximate} ${what}`, () => {
            const x = make(X, [X.length], dtype);
            return [mx.nn.functional.gelu(x, { approximate }), apply('geluBackward', [x, make([...X].reverse(), [X.length], dtype)], { approximate })];
          }, { ulps: 1 });
        }
        const X = valuesOf(dtype, 8 * 12, 17);
        await agree(`${dtype} gelu ${approximate} strided`, () => mx.nn.functional.gelu(make(X, [8, 12], dtype).narrow(1, 2, 7), { approximate }), { ulps: 1 });
        await assertNative('gelu', () => mx.nn.functional.gelu(make(X, [96], dtype), { approximate }), `gelu ${approximate} ${dtype}`);
        await assertNative('geluBackward', () => apply('geluBackward', [make(X, [96], dtype), make(X, [96], dtype)], { approximate }), `geluBackward ${approximate} ${dtype}`);
      }
    }
  });

  it("exact gelu and its gradient on every float16 and every bfloat16 pattern: within one unit of the reference (gelu16.ts's tables)", async () => {
    for (const dtype of ['float16', 'bfloat16'] as const) {
      // all 65536 patterns as values (NaNs included), in an order that leaves a 5-element tail
      const X = Array.from({ length: 65536 }, (_, i) => valueOf(dtype, i)).concat([0.75, -2.5, 7, -11, 3]);
      const G = X.map((_, i) => [1, -0.5, 3.25, 1e-3][i % 4]!);
      await agree(`${dtype} gelu every pattern`, () => {
        const x = make(X, [X.length], dtype);
        return [mx.nn.functional.gelu(x), apply('geluBackward', [x, make(G, [X.length], dtype)], { approximate: 'none' })];
      }, { ulps: 1 });
    }
  });

  it('reciprocal, clamp and pow (tensor and broadcast exponents, 0-dim: gradient clipping) give the reference bits', async () => {
    for (const dtype of FLOATS) {
      const X = valuesOf(dtype, 67, 31);
      const Y = valuesOf(dtype, 67, 32).map((v) => (Number.isFinite(v) ? v / 4 : v));
      await agree(`${dtype} reciprocal, clamp`, () => {
        const x = make(X, [67], dtype);
        return [mx.reciprocal(x), mx.clamp(x, -1.5, 2), mx.clamp(x, null, 0.25), mx.clamp(x, 0.1), mx.clamp(x, 3, -3), mx.reciprocal(make([4], [], dtype)), mx.clamp(make([1e-7], [], dtype), null, 1)];
      });
      await agree(`${dtype} pow`, () => {
        const x = make(X.map(Math.abs), [67], dtype);
        return [mx.pow(x, make(Y, [67], dtype)), mx.pow(x, 0.5), mx.pow(x, -1.5), mx.pow(make([2.25], [], dtype), 0.5), mx.pow(make(X, [67], dtype), 2)];
      }, { ulps: 1 });
      for (const [kernel, f] of [['reciprocal', () => mx.reciprocal(make(X, [67], dtype))], ['clamp', () => mx.clamp(make(X, [67], dtype), null, 1)], ['pow', () => mx.pow(make(X, [67], dtype), 0.5)]] as const) {
        await assertNative(kernel, f, `${kernel} ${dtype}`);
      }
    }
  });

  it('indexSelect (every dtype) and indexAdd (float64 sums in index order, rounded once) along every axis, negative and repeated indices', async () => {
    const idx = [3, 0, -1, 3, 2, 3, -4];
    for (const dtype of ALL) {
      const X = valuesOf(dtype, 5 * 4 * 3, 81);
      await agree(`${dtype} indexSelect`, () => {
        const x = make(X, [4, 5, 3], dtype);
        const i = mx.tensor(idx, { dtype: 'int32' });
        return [mx.indexSelect(x, 0, i), mx.indexSelect(x, 1, i), mx.indexSelect(x, 2, mx.tensor([2, -3], { dtype: 'int32' }))];
      });
      await assertNative('indexSelect', () => mx.indexSelect(make(X, [4, 5, 3], dtype), 1, mx.tensor(idx, { dtype: 'int32' })), `indexSelect ${dtype}`);
    }
    for (const dtype of FLOATS) {
      const S = valuesOf(dtype, 7 * 6 * 3, 82).map((v) => (Number.isFinite(v) ? v : 1.5));
      await agree(`${dtype} indexAdd`, () => {
        const i = mx.tensor(idx, { dtype: 'int32' });
        return [apply('indexAdd', [make(S, [7, 18], dtype), i], { dim: 0, shape: [4, 18] }), apply('indexAdd', [make(S, [6, 7, 3], dtype), i], { dim: 1, shape: [6, 4, 3] })];
      });
      await assertNative('indexAdd', () => apply('indexAdd', [make(S, [7, 18], dtype), mx.tensor(idx, { dtype: 'int32' })], { dim: 0, shape: [4, 18] }), `indexAdd ${dtype}`);
    }
    // an embedding's backward: many repeated rows, split across threads
    const E = valuesOf('float32', 3000 * 16, 83).map((v) => (Number.isFinite(v) ? v : 0.25));
    const ids = Array.from({ length: 3000 }, (_, k) => (k * 7919) % 65);
    await agree('float32 indexAdd of 3000 rows into 65', () => apply('indexAdd', [make(E, [3000, 16], 'float32'), mx.tensor(ids, { dtype: 'int32' })], { dim: 0, shape: [65, 16] }));
  });

  it('out-of-range indices of indexSelect and indexAdd go to the reference, which throws its error', async () => {
    await on('wm-t4', () => {
      const x = mx.ones([3, 2]);
      assert.throws(() => mx.indexSelect(x, 0, mx.tensor([0, 3], { dtype: 'int32' })), /indexSelect: index 3 is out of range for dimension of size 3/);
      assert.throws(() => apply('indexAdd', [x, mx.tensor([0, 1, -4], { dtype: 'int32' })], { dim: 0, shape: [3, 2] }), /indexAdd: index -4 is out of range/);
    });
  });

  it('a GPT training step (fp32, fp16 with loss scaling, bf16; clipping) runs every kernel natively, the fused attention included', async () => {
    for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
      const c = await calls(async () => {
        mx.manualSeed(2);
        const model = mx.models.gpt({ nLayer: 2, nHead: 2, nEmbd: 16, blockSize: 16, vocabSize: 11, bias: true, dropout: 0.1 });
        const optimizer = new mx.optim.AdamW(nanoGptParamGroups(model, 0.1), { lr: 1e-3, betas: [0.9, 0.99] });
        const scaler = new mx.amp.GradScaler({ enabled: precision === 'fp16' });
        const ids = mx.randint(0, 11, [3, 17], { dtype: 'int32' });
        const ctx = { model, optimizer, scaler, precision, clipGradNorm: 1, loss: (x: Tensor, y: Tensor) => gptLoss(model, x, y) } as const;
        const { loss } = trainStep(ctx, ids.narrow(1, 0, 16), ids.narrow(1, 1, 16));
        assert.ok(Number.isFinite(await loss.item()));
      });
      for (const k of ['flashAttentionForward', 'flashAttentionBackward', 'gelu', 'geluBackward', 'indexSelect', 'indexAdd']) assert.ok((c[k]?.native ?? 0) > 0, `${precision}: ${k} ran natively`);
      const fell = Object.entries(c).filter(([, v]) => v.fallback > 0).map(([k]) => k).sort();
      assert.deepEqual(fell, [], `${precision}: kernels on the reference fallback`);
    }
  });
});

describe('the multi-tensor kernels check that no two tensors share memory', () => {
  // k views into one float32 buffer each for the parameters and the gradients, [start, length] apiece
  const adamMulti = (pieces: readonly (readonly [number, number])[]) => () => {
    const n = 64;
    const w = make(valuesOf('float32', n, 7).map((v) => (Number.isFinite(v) ? v : 0.5)), [n], 'float32');
    const g = make(valuesOf('float32', n, 8).map((v) => (Number.isFinite(v) ? v : -0.25)), [n], 'float32');
    const ws = pieces.map(([s, l]) => w.narrow(0, s, l));
    const gs = pieces.map(([s, l]) => g.narrow(0, s, l));
    const ms = pieces.map(([, l]) => mx.full([l], 0.125, { dtype: 'float32' }));
    const vs = pieces.map(([, l]) => mx.full([l], 0.5, { dtype: 'float32' }));
    const params = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, decoupled: true, amsgrad: false, maximize: false, stepInput: false, foundInfInput: false, biasCorrection1: 0.1, biasCorrection2Sqrt: Math.sqrt(0.01), count: pieces.length };
    const own = [...ws, ...ms, ...vs];
    mx.getBackend().run('adamUpdateMulti', [...ws, ...gs, ...ms, ...vs].map(kernelView), own.map(kernelView), params);
    return [w, ...ms, ...vs];
  };

  it('adamUpdateMulti: views side by side (and in any order, and empty ones) run natively; overlapping ones fall back: the reference bits', async () => {
    const apart = adamMulti([[40, 9], [0, 16], [16, 0], [16, 17], [33, 7]]);
    await agree('adamUpdateMulti, views side by side', apart);
    await assertNative('adamUpdateMulti', apart);
    for (const [label, pieces] of [['overlapping parameters', [[0, 16], [20, 9], [15, 3]]], ['the same parameter twice', [[3, 5], [3, 5]]]] as const) {
      const f = adamMulti(pieces);
      await agree(`adamUpdateMulti, ${label}`, f);
      assert.equal((await calls(f))['adamUpdateMulti']?.fallback, 1, label);
    }
  });

  // sgdUpdateMulti with momentum, isFirst flags (one set, the others not) and next flags: pieces as adamMulti's
  const sgdMulti = (pieces: readonly (readonly [number, number])[], flagsAt = (i: number) => i, n = 64) => () => {
    const w = make(valuesOf('float16', n, 7).map((v) => (Number.isFinite(v) && Math.abs(v) < 1e4 ? v : 0.5)), [n], 'float16');
    const g = make(valuesOf('float32', n, 8).map((v) => (Number.isFinite(v) ? v : -0.25)), [n], 'float32');
    const ws = pieces.map(([s, l]) => w.narrow(0, s, l));
    const gs = pieces.map(([s, l]) => g.narrow(0, s, l));
    const bufs = pieces.map(([, l]) => mx.full([l], 0.125, { dtype: 'float32' }));
    const firsts = mx.tensor(pieces.map((_, i) => (i === 1 ? 1 : 0)), { dtype: 'float32' });
    const isFirst = pieces.map((_, i) => firsts.narrow(0, i, 1).reshape([]));
    const nexts = mx.full([pieces.length + 1], 7, { dtype: 'float32' });
    const next = pieces.map((_, i) => nexts.narrow(0, flagsAt(i), 1).reshape([]));
    const found = mx.zeros([], { dtype: 'float32' });
    const params = { lr: 0.01, momentum: 0.9, dampening: 0.1, weightDecay: 0.1, nesterov: false, maximize: false, first: false, firstInput: true, foundInfInput: true, flagOutput: true, count: pieces.length };
    mx.getBackend().run('sgdUpdateMulti', [...ws, ...gs, ...bufs, ...isFirst, found].map(kernelView), [...ws, ...bufs, ...next].map(kernelView), params);
    return [w, ...bufs, nexts];
  };

  it('sgdUpdateMulti: views side by side (and in any order, and empty ones) run natively; overlapping ones fall back: the reference bits', async () => {
    const apart = sgdMulti([[40, 9], [0, 16], [16, 0], [16, 17], [33, 7]]);
    await agree('sgdUpdateMulti, views side by side', apart);
    await assertNative('sgdUpdateMulti', apart);
    for (const [label, f] of [
      ['overlapping parameters', sgdMulti([[0, 16], [20, 9], [15, 3]])],
      ['the same parameter twice', sgdMulti([[3, 5], [3, 5]])],
      ['two next flags in one place', sgdMulti([[0, 8], [8, 8]], () => 0)],
    ] as const) {
      await agree(`sgdUpdateMulti, ${label}`, f);
      assert.equal((await calls(f))['sgdUpdateMulti']?.fallback, 1, label);
    }
  });

  it('sgdUpdateMulti split across 4 threads (parts starting inside a tensor and spanning several) equals the reference and one thread', async () => {
    const big = sgdMulti([[0, 200003], [200003, 5], [200008, 13], [200021, 300000]], (i) => i, 500021);
    await agree('sgdUpdateMulti, 500021 elements', big);
    await assertNative('sgdUpdateMulti', big);
  });

  it('ampUnscale: gradients side by side run natively, overlapping ones fall back: the reference bits', async () => {
    const unscale = (pieces: readonly (readonly [number, number])[]) => () => {
      const g = make(valuesOf('float16', 48, 9).map((v) => (Number.isFinite(v) && Math.abs(v) < 6e4 ? v : 0.75)), [48], 'float16');
      const views = pieces.map(([s, l]) => kernelView(g.narrow(0, s, l)));
      const inv = mx.tensor([Math.fround(1 / 1024)], { dtype: 'float32', shape: [] });
      const found = mx.zeros([], { dtype: 'float32' });
      mx.getBackend().run('ampUnscale', [...views, kernelView(inv), kernelView(found)], [...views, kernelView(found)], {});
      return [g, found];
    };
    const apart = unscale([[30, 18], [0, 10], [10, 20]]);
    await agree('ampUnscale, side by side', apart);
    await assertNative('ampUnscale', apart);
    const overlapping = unscale([[0, 10], [9, 20]]);
    await agree('ampUnscale, overlapping', overlapping);
    assert.equal((await calls(overlapping))['ampUnscale']?.fallback, 1);
  });
});

/* ================================================================== ResNet's kernels */

describe('the multi-tensor loss-scale unscale (ampUnscale)', () => {
  it('unscales a list of float32 / float16 / bfloat16 gradients in place (SIMD and tail lengths) and raises the flag on inf / NaN: the reference bits', async () => {
    const lengths = [1, 3, 4, 7, 8, 9, 31, 1000];
    for (const [label, poison] of [['finite', null], ['inf', Infinity], ['nan', NaN], ['-inf', -Infinity]] as const) {
      const run = () => {
        const grads = FLOATS.flatMap((dtype, d) => lengths.map((n, i) => {
          const X = valuesOf(dtype, n, 100 + 10 * d + i).map((v) => (Number.isFinite(v) && Math.abs(v) < 6e4 ? v : 0.75)); // finite in float16 too
          if (poison !== null && d === 1 && i === 5) X[n - 1] = poison; // the float16 tail lane of a 9-element gradient
          return make(X, [n], dtype);
        }));
        const inv = mx.tensor([Math.fround(1 / 65536)], { dtype: 'float32', shape: [] });
        const found = mx.zeros([], { dtype: 'float32' });
        const views = grads.map(kernelView);
        mx.getBackend().run('ampUnscale', [...views, kernelView(inv), kernelView(found)], [...views, kernelView(found)], {});
        return [...grads, found];
      };
      await agree(`ampUnscale ${label}`, run);
      const flag = await on('wm-t1', async () => (await run().at(-1)!.data())[0]);
      assert.equal(flag, poison === null ? 0 : 1, `${label}: the found-inf flag`);
      await assertNative('ampUnscale', run, `ampUnscale ${label}`);
    }
  });
});

describe("ResNet's kernels: rsqrt and its gradient, adaptive average pooling, int32 add / sub", () => {
  it('rsqrt (the same bits) and rsqrtBackward (one unit in the last place) on every float format, with the specials', async () => {
    for (const dtype of FLOATS) {
      for (const n of [1, 15, 67]) {
        const X = valuesOf(dtype, n, 80 + n).map((v) => (Number.isNaN(v) ? v : Math.abs(v)));
        const G = valuesOf(dtype, n, 90 + n);
        await agree(`${dtype} rsqrt n=${n}`, () => mx.rsqrt(make(X, [n], dtype)));
        // the module's x^-1.5 is 1 / (x sqrt(x)), JavaScript's Math.pow: they may differ in the last float64 bit
        await agree(`${dtype} rsqrtBackward n=${n}`, () => apply('rsqrtBackward', [make(X, [n], dtype), make(G, [n], dtype)]), { ulps: 1 });
      }
      // signed zeros, subnormals, negatives (NaN), huge values, infinities; batch norm's var + eps
      const S = [0, -0, 1e-40, 1e-30, 1e-5, 1.00001e-5, 0.25, 1, 4, 3, -1, -0.5, 1e30, 65504, Infinity, -Infinity, NaN];
      await agree(`${dtype} specials`, () => {
        const x = make(S, [S.length], dtype);
        return [mx.rsqrt(x), apply('rsqrtBackward', [x, make(S.map(() => 1.5), [S.length], dtype)])];
      }, { ulps: 1 });
      await assertNative('rsqrt', () => mx.rsqrt(make(S, [S.length], dtype)), `rsqrt ${dtype}`);
      await assertNative('rsqrtBackward', () => apply('rsqrtBackward', [make(S, [S.length], dtype), make(S, [S.length], dtype)]), `rsqrtBackward ${dtype}`);
    }
  });

  it('adaptiveAvgPool2d and its gradient on every float format: global, dividing, overlapping windows, enlarging (the same bits)', async () => {
    const cases: [number[], [number, number]][] = [
      [[2, 3, 7, 5], [1, 1]], // ResNet's global pool
      [[2, 4, 6, 6], [3, 2]], // windows that divide
      [[3, 7, 5], [3, 2]], // 3-d input; windows that overlap (7 rows into 3, 5 columns into 2)
      [[1, 2, 3, 3], [5, 4]], // more outputs than inputs: every input in several windows
      [[0, 2, 4, 4], [1, 1]], // no planes
    ];
    for (const dtype of FLOATS) {
      for (const [shape, out] of cases) {
        const X = valuesOf(dtype, numel(shape), 300 + numel(shape));
        const outShape = [...shape.slice(0, -2), ...out];
        const G = valuesOf(dtype, numel(outShape), 400 + numel(outShape));
        const what = `${dtype} [${shape}] -> ${out}`;
        await agree(`${what} forward`, () => mx.nn.functional.adaptiveAvgPool2d(make(X, shape, dtype), out));
        await agree(`${what} backward`, () => apply('adaptiveAvgPool2dBackward', [make(G, outShape, dtype)], { inputShape: shape }));
        if (numel(shape) > 0) {
          await assertNative('adaptiveAvgPool2d', () => mx.nn.functional.adaptiveAvgPool2d(make(X, shape, dtype), out), `${what} forward`);
          await assertNative('adaptiveAvgPool2dBackward', () => apply('adaptiveAvgPool2dBackward', [make(G, outShape, dtype)], { inputShape: shape }), `${what} backward`);
        }
      }
    }
    // a strided input (a transposed image) is outside the native coverage: the reference result still
    const X = valuesOf('float32', 2 * 3 * 4 * 5, 7);
    await agree('strided input', () => mx.nn.functional.adaptiveAvgPool2d(make(X, [2, 3, 4, 5], 'float32').transpose(2, 3), [2, 2]));
  });

  it('int32 add and sub: contiguous, broadcast, 0-dim and JS-number operands, wrapping at 2^31 (a batch counter)', async () => {
    const A = valuesOf('int32', 6 * 7, 11);
    const B = valuesOf('int32', 6 * 7, 12);
    const R = valuesOf('int32', 7, 13);
    await agree('int32', () => {
      const a = make(A, [6, 7], 'int32');
      const b = make(B, [6, 7], 'int32');
      const row = make(R, [7], 'int32');
      const col = make(R.slice(0, 6), [6, 1], 'int32');
      const max = make([2147483647], [], 'int32');
      return [mx.add(a, b), mx.sub(a, b), mx.add(a, row), mx.sub(col, a), mx.add(a, 5), mx.sub(3, a), mx.add(max, 1), mx.sub(make([-2147483648], [], 'int32'), 1), mx.add(max, max)];
    });
    await assertNative('add', () => mx.add(make([41], [], 'int32'), make([1], [], 'int32')), 'int32 0-dim add');
    await assertNative('sub', () => mx.sub(make(A, [6, 7], 'int32'), 2), 'int32 sub of a JS number');
  });
});

describe('a ResNet training step', () => {
  it('runs every kernel natively: resnet18 and resnet50, cifar and imagenet stems, fp32, fp16 and bf16', async () => {
    for (const [model, width] of [['resnet18', 4], ['resnet50', 2]] as const) {
      for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
        await mx.setBackend('wm-t4');
        let res: Awaited<ReturnType<typeof benchTrain>>;
        try {
          res = await benchTrain({ model, width, precision, batchSize: 2, steps: 1, warmup: 1 });
        } finally {
          await mx.setBackend('reference');
        }
        assert.deepEqual(res.fallback_kernels, {}, `${model} ${precision}: kernels on the fallback`);
        assert.ok(Number.isFinite(res.loss), `${model} ${precision}: loss ${res.loss}`);
      }
    }
    // the cifar stem (3x3 stride 1, no max-pool), under bf16 autocast, through trainStep directly
    const c = await calls(() => {
      mx.manualSeed(2);
      const model = mx.models.createResNet('resnet18', { stem: 'cifar', width: 4, numClasses: 10 });
      const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const x = mx.randn([2, 3, 16, 16]);
      const y = mx.randint(0, 10, [2], { dtype: 'int32' });
      for (let i = 0; i < 2; i++) trainStep({ model, optimizer, scaler: new mx.amp.GradScaler({ enabled: false }), precision: 'bf16' }, x, y).loss.dispose();
      model.eval();
      mx.noGrad(() => mx.amp.autocast({ dtype: 'bfloat16' }, () => model.call(x))).dispose();
    });
    assert.deepEqual(Object.entries(c).filter(([, v]) => v.fallback > 0), [], 'cifar stem: nothing fell back');
  });
});
