/**
 * The wasm float16 -> float32 cast (assembly/kernels/elementwise.ts cast_f16_f32: blocks of 512 values
 * widened 8 at a time in 16-bit lanes, a block holding an Inf or NaN widened again by the 4-lane
 * path): every one of the 65,536 float16 patterns through it, against the reference backend, bit for
 * bit. NaN: the reference's is a NaN (its JavaScript codec quiets a signalling one); wasm's keeps
 * the pattern's sign and payload unquieted, as its 4-lane path always did: sign | 0x7f800000 |
 * mantissa << 13.
 *
 * Layouts: the patterns in order (whole blocks of finite values, blocks with Inf / NaN, a scalar tail
 * of 5 more values); shuffled (almost every block holds a NaN, so the redo path runs everywhere); and
 * finite values with a single Inf or NaN at the start, middle or end of a block, or in the tail.
 * On one thread of the plain SIMD build and three of the default build (their parts split the blocks
 * at other places).
 *
 * Makes its own backends and switches to them explicitly, whatever MIXPREC_BACKEND says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { float16 } from '../src/dtype/dtype.js';
import { wasmBackends } from './helpers/backends.js';

await wasmBackends({ 'cast-widen-t1': { threads: 1, native: true, simd: 'plain' }, 'cast-widen-t3': { threads: 3, native: true } });

/** float32 bits of `patterns` (float16) cast on backend `name`. */
async function castBits(name: string, patterns: Uint16Array): Promise<Uint32Array> {
  await mx.setBackend(name);
  try {
    const x = Tensor.fromStorage(patterns, [patterns.length], float16);
    const y = x.to('float32');
    assert.equal(y.dtype, 'float32');
    const out = await y.storage.backend.read(y.storage.buffer) as Float32Array;
    // the bits as stored (a copy through numbers could quiet a signalling NaN)
    return Uint32Array.from(new Uint32Array(out.buffer, out.byteOffset, out.length));
  } finally {
    await mx.setBackend('reference');
  }
}

async function assertSameAsReference(patterns: Uint16Array): Promise<void> {
  const ref = await castBits('reference', patterns);
  for (const name of ['cast-widen-t1', 'cast-widen-t3']) {
    const got = await castBits(name, patterns);
    const bad: string[] = [];
    for (let i = 0; i < patterns.length; i++) {
      const h = patterns[i]!;
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        const want = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
        const refNaN = (ref[i]! & 0x7f800000) === 0x7f800000 && (ref[i]! & 0x7fffff) !== 0;
        if ((got[i] !== want || !refNaN) && bad.length < 8) bad.push(`${name} [${i}] NaN pattern 0x${h.toString(16)}: wasm 0x${got[i]!.toString(16)} (want 0x${want.toString(16)}), reference 0x${ref[i]!.toString(16)}`);
        continue;
      }
      if (got[i] !== ref[i] && bad.length < 8) bad.push(`${name} [${i}] pattern 0x${patterns[i]!.toString(16)}: wasm 0x${got[i]!.toString(16)}, reference 0x${ref[i]!.toString(16)}`);
    }
    assert.equal(bad.length, 0, bad.join('\n'));
  }
}

/** A deterministic permutation (xorshift32 Fisher-Yates). */
function shuffled(a: Uint16Array, seed: number): Uint16Array {
  const out = a.slice();
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

describe('wasm cast float16 -> float32: all 65,536 patterns', () => {
  it('in order, plus a 5-value tail: same bits as the reference', async () => {
    const a = new Uint16Array(65541);
    a.set(ALL16);
    a.set([0x7c00, 0x0001, 0xfe01, 0x83ff, 0x3c00], 65536);
    await assertSameAsReference(a);
  });

  it('shuffled (Inf / NaN in nearly every block): same bits as the reference', async () => {
    await assertSameAsReference(shuffled(ALL16, 17));
  });

  it('finite values (subnormals among them) with one Inf or NaN at a block edge, inside, or in the tail', async () => {
    // finite patterns: every 7th of the finite ones, both signs (normals, subnormals, zeros)
    const finite = ALL16.filter((h) => (h & 0x7c00) !== 0x7c00 && h % 7 === 0);
    for (const special of [0x7c00, 0xfc00, 0x7e01, 0xfd55]) {
      for (const at of [0, 7, 8, 300, 511, 512, 1023, 2051, 2052]) {
        const a = finite.slice(0, 2053);
        a[at] = special;
        await assertSameAsReference(a);
      }
    }
  });
});
