/**
 * The wasm GEMM's float16 -> float32 widening in its packing (assembly/kernels/gemm_pack_f16.ts: 8
 * values at a time for zeros and normal numbers, a panel with a subnormal, Inf or NaN redone by the
 * exact general path), every one of the 65,536 float16 patterns through each packing path, against
 * the reference backend bit for bit (NaN-aware: any NaN matches any NaN).
 *
 * Each product's exact result is the widened value: a row (or column) holding one pattern p repeated
 * K times, times weights 2^-1, 2^-2, ..., 2^-(K-1), 2^-(K-1) (sum 1). Every partial sum
 * p (1 - 2^-j) needs at most 11 + K - 1 <= 24 significant bits and no product is Inf * 0, so the
 * float32 output is p exactly, in any summation order, fused or not. K = 13 runs the 8-wide steps,
 * the 4-wide tail and a scalar tail; 65,539 rows / columns (the patterns, then 3 more) end in a
 * partial panel (the general path's scalar loops). Both operands A (rows) and B (columns), stored
 * plainly and transposed. (A signed zero does not survive the sum, which starts at +0: the
 * fast path's sign is the same bits for every lane, zero or not.)
 *
 * Makes its own backend and switches to it explicitly, whatever MIXPREC_BACKEND says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { KernelTensor } from '../src/index.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { kernelView } from '../src/ops/dispatch.js';
import { Tensor } from '../src/tensor/tensor.js';
import { float16 } from '../src/dtype/dtype.js';
import { f32BitsToF16Bits } from '../src/dtype/convert.js';
import { contiguousStrides } from '../src/shape/strides.js';
import { wasmBackends } from './helpers/backends.js';

// one thread on the plain SIMD build, three on the default one (relaxed SIMD where the engine runs it)
await wasmBackends({ 'gemm-widen-t1': { threads: 1, native: true, simd: 'plain' }, 'gemm-widen-t3': { threads: 3, native: true } });

const K = 13;
/** Every float16 pattern, then three more (a subnormal, a NaN, a negative normal) for a partial panel. */
const PATTERNS = Uint16Array.from([...Array.from({ length: 65536 }, (_, i) => i), 0x0001, 0x7e01, 0x8123]);
const P = PATTERNS.length;
/** float16 bits of 2^-1 .. 2^-(K-1), 2^-(K-1): exact in float16, sum 1. */
const WEIGHTS = Uint16Array.from({ length: K }, (_, k) => f32BitsToF16Bits(new Uint32Array(new Float32Array([2 ** -Math.min(k + 1, K - 1)]).buffer)[0]!));

interface Operand {
  bits: Uint16Array;
  shape: number[];
  strides: number[];
}

/** A [1, rows, cols] float16 operand whose element (r, c) is value(r, c), stored row-major or transposed. */
function operand(rows: number, cols: number, trans: boolean, value: (r: number, c: number) => number): Operand {
  const bits = new Uint16Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) bits[trans ? c * rows + r : r * cols + c] = value(r, c);
  return { bits, shape: [1, rows, cols], strides: trans ? [rows * cols, 1, rows] : [rows * cols, cols, 1] };
}

/** bmm of the two float16 operands into float32 on backend `name`. */
function bmm(name: string, a: Operand, b: Operand): Float32Array {
  void mx.setBackend(name); // settles synchronously: every backend here is initialised
  try {
    return mx.scope(() => {
      const backend = mx.getBackend();
      const views: KernelTensor[] = [a, b].map((o) => {
        const t = Tensor.fromStorage(o.bits, [o.bits.length], float16);
        return { buffer: t.storage.buffer, dtype: t.dt, shape: o.shape, strides: o.strides, offset: 0 };
      });
      const shape = [1, a.shape[1]!, b.shape[2]!];
      const out = mx.full(shape, NaN, { dtype: 'float32' });
      const before = backend instanceof WasmBackend ? backend.kernelStats()['bmm'] : undefined;
      backend.run('bmm', views, [kernelView(out)], {});
      if (backend instanceof WasmBackend) {
        const now = backend.kernelStats()['bmm']!;
        assert.equal(now.native - (before?.native ?? 0), 1, `${name}: bmm runs natively`);
      }
      assert.deepEqual(out.shape, shape);
      assert.deepEqual(out.strides, contiguousStrides(shape));
      return Float32Array.from(out.dataSync());
    });
  } finally {
    void mx.setBackend('reference');
  }
}

/** Element i of `actual` and `expected` the same float32 bits (any NaN matching any NaN); the patterns' values checked too. */
function sameWidened(actual: Float32Array, expected: Float32Array, pattern: (i: number) => number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a32 = new Uint32Array(actual.buffer), e32 = new Uint32Array(expected.buffer);
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const same = Number.isNaN(actual[i]) ? Number.isNaN(expected[i]) : a32[i] === e32[i];
    if (!same && bad.length < 8) bad.push(`element ${i} (float16 0x${pattern(i).toString(16)}): 0x${a32[i]!.toString(16)} vs reference 0x${e32[i]!.toString(16)}`);
  }
  assert.equal(bad.length, 0, `${what}:\n${bad.join('\n')}`);
}

describe('wasm GEMM packing: float16 widening, all 65,536 patterns', () => {
  const weight = (k: number): number => WEIGHTS[k]!;
  for (const trans of [false, true]) {
    it(`A ${trans ? 'transposed' : 'row-major'}: row r = pattern r repeated K times, times K x 8 weights`, () => {
      const a = operand(P, K, trans, (r) => PATTERNS[r]!);
      const b = operand(K, 8, false, (k) => weight(k));
      const ref = bmm('reference', a, b);
      for (const name of ['gemm-widen-t1', 'gemm-widen-t3']) sameWidened(bmm(name, a, b), ref, (i) => PATTERNS[Math.floor(i / 8)]!, `A${trans ? '^T' : ''} on ${name}`);
    });
    it(`B ${trans ? 'transposed' : 'row-major'}: column c = pattern c repeated K times, 4 rows of weights times it`, () => {
      const a = operand(4, K, false, (_, k) => weight(k));
      const b = operand(K, P, trans, (_, c) => PATTERNS[c]!);
      const ref = bmm('reference', a, b);
      for (const name of ['gemm-widen-t1', 'gemm-widen-t3']) sameWidened(bmm(name, a, b), ref, (i) => PATTERNS[i % P]!, `B${trans ? '^T' : ''} on ${name}`);
    });
  }
  it('the products are the widened patterns themselves (the test shape is exact)', () => {
    const a = operand(P, K, false, (r) => PATTERNS[r]!);
    const b = operand(K, 8, false, (k) => weight(k));
    const ref = bmm('reference', a, b);
    for (let r = 0; r < P; r += 97) {
      const h = PATTERNS[r]!;
      const e = (h & 0x7c00) === 0x7c00 ? ((h & 0x3ff) !== 0 ? NaN : h & 0x8000 ? -Infinity : Infinity) : (h & 0x8000 ? -1 : 1) * ((h & 0x7c00) === 0 ? (h & 0x3ff) * 2 ** -24 : (1 + (h & 0x3ff) / 1024) * 2 ** (((h >> 10) & 31) - 15));
      const got = ref[r * 8]!;
      assert.ok(Number.isNaN(e) ? Number.isNaN(got) : got === e, `pattern 0x${h.toString(16)}: ${got} vs ${e}`);
    }
  });
});
