/**
 * The wasm attention kernels' float16 row loader (assembly/kernels/attention_desc.ts loadRow: rows of
 * whole 8s widened 8 at a time in 16-bit lanes, a row holding an Inf or NaN widened again by the
 * 4-lane path): every one of the 65,536 float16 patterns through it, against the reference backend.
 *
 * Each (batch, head) entry has one query and one key, so its softmax weight is exactly 1 and the
 * output row is its value row: V's widened patterns, rounded back to float16, which gives the
 * pattern itself (NaN-aware: any NaN matches any NaN; -0 gives +0, the sum starting at +0). Q, K, V and the gradients' rows all go through
 * the same loader; the query and key here are finite (zeros), so no NaN comes from the scores.
 *
 * Makes its own backend and switches to it explicitly, whatever MIXPREC_BACKEND says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { float16 } from '../src/dtype/dtype.js';
import { wasmBackends } from './helpers/backends.js';

await wasmBackends({ 'attention-widen': { threads: 2, native: true } });

const F = mx.nn.functional;
const E = 8;
const ENTRIES = 65536 / E;
const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** The fused attention output's float16 bits for V = every pattern, on backend `name`. */
async function outputBits(name: string): Promise<Uint16Array> {
  await mx.setBackend(name);
  try {
    const shape = [ENTRIES, 1, 1, E];
    const zeros = new Uint16Array(65536);
    const q = Tensor.fromStorage(zeros, shape, float16);
    const k = Tensor.fromStorage(zeros, shape, float16);
    const v = Tensor.fromStorage(ALL16, shape, float16);
    const out = F.scaledDotProductAttention(q, k, v, { fused: true });
    assert.equal(out.dtype, 'float16');
    const bits = Uint16Array.from(await out.storage.backend.read(out.storage.buffer) as Uint16Array);
    return bits;
  } finally {
    await mx.setBackend('reference');
  }
}

describe('wasm attention: float16 row widening, all 65,536 patterns', () => {
  it('one query and one key per entry: the output is V, bit for bit (NaN-aware), as on the reference', async () => {
    const ref = await outputBits('reference');
    const got = await outputBits('attention-widen');
    const isNaN16 = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      // the sum starts at +0, so -0 comes out +0 on both backends
      const want = h === 0x8000 ? 0 : h;
      const same = isNaN16(h) ? isNaN16(got[h]!) && isNaN16(ref[h]!) : got[h] === want && ref[h] === want;
      if (!same && bad.length < 8) bad.push(`pattern 0x${h.toString(16)}: wasm 0x${got[h]!.toString(16)}, reference 0x${ref[h]!.toString(16)}`);
    }
    assert.equal(bad.length, 0, bad.join('\n'));
  });
});
