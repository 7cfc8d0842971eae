/**
 * Bit-exact dtype conversions against NumPy (float16) and PyTorch (bfloat16).
 *
 * Fixtures come from tools/gen_dtype_fixtures.py (see its docstring for the exact layout). The
 * narrowing inputs are regenerated here rather than stored: xorshift32 random float32 bit patterns,
 * the stored specials, and every float16/bfloat16 rounding tie with its float32 neighbours.
 *
 * NaN policy: a NaN input must give a NaN (exponent all ones, mantissa nonzero) with the input's
 * sign; payloads are not compared (the references disagree: PyTorch even drops the sign).
 * Everything else must match bit for bit, so -0 and the direction of every tie are checked.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

import {
  F16_TO_F32,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  roundToBfloat16,
  roundToFloat16,
} from '../src/dtype/convert.js';
import { finfoOf, type DTypeName, type FInfo } from '../src/dtype/dtype.js';
import { fixturePath, readFixtureBytes, readJson, readU16, readU32 } from './helpers/fixtures.js';

// ---------------------------------------------------------------------------------------------
// Fixtures and regenerated inputs

interface Manifest {
  prng: { name: string; shifts: number[]; seed: number; count: number; first: number[]; last: number };
  segments: { name: string; count: number }[];
  inputs_total: number;
  inputs_sha256: string;
  files: Record<string, { bytes: number; sha256: string }>;
  finfo: Record<'float16' | 'bfloat16' | 'float32' | 'float64', FInfo>;
}

const DIR = 'dtype';
const SIGN = 0x80000000;

/** xorshift32 (13, 17, 5); each output is the state after a step. */
function xorshift32(seed: number, n: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
function bitsOfF32(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0]!;
}

/** For each positive finite float16 h, the float32 midpoint m between h and h+1: m-1, m, m+1 and their negatives. */
function tiesF16(): Uint32Array {
  const out = new Uint32Array(0x7c00 * 6);
  let k = 0;
  for (let h = 0; h < 0x7c00; h++) {
    const m = h < 0x400 ? bitsOfF32((2 * h + 1) * 2 ** -25) : (((((h >>> 10) + 112) << 23) | ((h & 0x3ff) << 13)) + 0x1000) >>> 0;
    for (const s of [0, SIGN]) for (const b of [m - 1, m, m + 1]) out[k++] = (b | s) >>> 0;
  }
  return out;
}

/** For each positive finite bfloat16 b, m = b << 16 | 0x8000: m-1, m, m+1 and their negatives. */
function tiesBf16(): Uint32Array {
  const out = new Uint32Array(0x7f80 * 6);
  let k = 0;
  for (let b16 = 0; b16 < 0x7f80; b16++) {
    const m = (b16 << 16) | 0x8000;
    for (const s of [0, SIGN]) for (const b of [m - 1, m, m + 1]) out[k++] = (b | s) >>> 0;
  }
  return out;
}

interface Fixtures {
  manifest: Manifest;
  /** All narrowing inputs as float32 bit patterns, segments in manifest order. */
  inputs: Uint32Array;
  /** Where each segment starts in `inputs`. */
  segmentStarts: { name: string; start: number; count: number }[];
  f16FromF32: Uint16Array;
  bf16FromF32: Uint16Array;
  f16ToF32: Uint32Array;
  bf16ToF32: Uint32Array;
}

let cached: Fixtures | undefined;
function fixtures(): Fixtures {
  if (cached) return cached;
  const manifest = readJson<Manifest>(DIR, 'manifest.json');
  const parts: Record<string, Uint32Array> = {
    random: xorshift32(manifest.prng.seed, manifest.prng.count),
    specials: readU32(DIR, 'specials_f32.bin'),
    ties_f16: tiesF16(),
    ties_bf16: tiesBf16(),
  };
  const inputs = new Uint32Array(manifest.inputs_total);
  const segmentStarts: Fixtures['segmentStarts'] = [];
  let at = 0;
  for (const seg of manifest.segments) {
    const part = parts[seg.name];
    assert.ok(part, `manifest names an unknown segment '${seg.name}'`);
    assert.equal(part.length, seg.count, `segment ${seg.name}: regenerated ${part.length} values, manifest says ${seg.count}`);
    inputs.set(part, at);
    segmentStarts.push({ name: seg.name, start: at, count: seg.count });
    at += seg.count;
  }
  assert.equal(at, manifest.inputs_total);
  cached = {
    manifest,
    inputs,
    segmentStarts,
    f16FromF32: readU16(DIR, 'f16_from_f32.bin'),
    bf16FromF32: readU16(DIR, 'bf16_from_f32.bin'),
    f16ToF32: readU32(DIR, 'f16_to_f32.bin'),
    bf16ToF32: readU32(DIR, 'bf16_to_f32.bin'),
  };
  return cached;
}

// ---------------------------------------------------------------------------------------------
// Comparison with the NaN policy, reporting the first mismatches in hex

const hex = (x: number, digits: number) => '0x' + (x >>> 0).toString(16).padStart(digits, '0');

interface Format {
  name: string;
  /** Exponent mask of the 16-bit format (0x7c00 float16, 0x7f80 bfloat16). */
  expMask: number;
}
const F16: Format = { name: 'float16', expMask: 0x7c00 };
const BF16: Format = { name: 'bfloat16', expMask: 0x7f80 };

const isNaN32 = (b: number) => (b & 0x7fffffff) >>> 0 > 0x7f800000;
const isNaN16 = (b: number, f: Format) => (b & 0x7fff) > f.expMask;
const MAX_REPORTED = 12;

function where(f: Fixtures, i: number): string {
  for (const s of f.segmentStarts) if (i >= s.start && i < s.start + s.count) return `${s.name}[${i - s.start}]`;
  return `#${i}`;
}

/** float32 -> 16-bit: `actual` and `expected` are 16-bit patterns of f.inputs. Returns the number checked. */
function checkNarrowing(f: Fixtures, fmt: Format, actual: Uint16Array, expected: Uint16Array, what: string): number {
  const { inputs } = f;
  assert.equal(actual.length, inputs.length, `${what}: output length`);
  assert.equal(expected.length, inputs.length, `${what}: fixture length (regenerate the fixtures?)`);
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!;
    const a = actual[i]!;
    const e = expected[i]!;
    if (a === e && !isNaN32(x)) continue;
    let why: string | null = null;
    if (isNaN32(x)) {
      if (!isNaN16(e, fmt)) why = 'fixture is not NaN for a NaN input';
      else if (!isNaN16(a, fmt)) why = 'NaN input did not give NaN';
      else if ((a & 0x8000) !== (x >>> 16 & 0x8000)) why = 'NaN sign lost';
    } else {
      why = 'bits differ';
    }
    if (why === null) continue;
    if (nBad++ < MAX_REPORTED) {
      f32Scratch.fill(0);
      u32Scratch[0] = x;
      bad.push(`  in ${hex(x, 8)} (${f32Scratch[0]}) at ${where(f, i)}: expected ${hex(e, 4)}, got ${hex(a, 4)} - ${why}`);
    }
  }
  assert.equal(nBad, 0, `${what}: ${nBad} of ${inputs.length} values wrong; first ones:\n${bad.join('\n')}`);
  return inputs.length;
}

/** 16-bit -> float32 for all 65,536 patterns: `actual` and `expected` are float32 bit patterns. */
function checkWidening(fmt: Format, actual: Uint32Array, expected: Uint32Array, what: string): number {
  assert.equal(actual.length, 65536, `${what}: output length`);
  assert.equal(expected.length, 65536, `${what}: fixture length`);
  const bad: string[] = [];
  let nBad = 0;
  for (let h = 0; h < 65536; h++) {
    const a = actual[h]!;
    const e = expected[h]!;
    let why: string | null = null;
    if (isNaN16(h, fmt)) {
      if (!isNaN32(e)) why = 'fixture is not NaN for a NaN input';
      else if (!isNaN32(a)) why = 'NaN input did not give NaN';
      else if ((a & SIGN) >>> 0 !== ((h & 0x8000) << 16) >>> 0) why = 'NaN sign lost';
    } else if (a !== e) {
      why = 'bits differ';
    }
    if (why === null) continue;
    if (nBad++ < MAX_REPORTED) bad.push(`  ${fmt.name} ${hex(h, 4)}: expected ${hex(e, 8)}, got ${hex(a, 8)} - ${why}`);
  }
  assert.equal(nBad, 0, `${what}: ${nBad} of 65536 patterns wrong; first ones:\n${bad.join('\n')}`);
  return 65536;
}

const bitsView = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const inputsAsF32 = (f: Fixtures) => new Float32Array(f.inputs.buffer, f.inputs.byteOffset, f.inputs.length);
const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** The widened value of each fixture's narrowing result, as float32 bits, via the reference's own widening table. */
function expectedWidened(narrowed: Uint16Array, widen: Uint32Array): Uint32Array {
  const out = new Uint32Array(narrowed.length);
  for (let i = 0; i < narrowed.length; i++) out[i] = widen[narrowed[i]!]!;
  return out;
}

/** float32 -> 16-bit -> float32 round trip (as `await t.data()` returns it) against the reference. */
function checkRoundTrip(f: Fixtures, fmt: Format, actual: Float32Array, expected: Uint32Array, what: string): number {
  assert.equal(actual.length, f.inputs.length, `${what}: output length`);
  const a32 = bitsView(actual);
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < a32.length; i++) {
    const x = f.inputs[i]!;
    const a = a32[i]!;
    const e = expected[i]!;
    let why: string | null = null;
    if (isNaN32(x)) {
      if (!isNaN32(a)) why = 'NaN input did not give NaN';
      else if ((a & SIGN) >>> 0 !== (x & SIGN) >>> 0) why = 'NaN sign lost';
    } else if (a !== e) {
      why = 'bits differ';
    }
    if (why === null) continue;
    if (nBad++ < MAX_REPORTED) bad.push(`  in ${hex(x, 8)} at ${where(f, i)}: expected ${hex(e, 8)}, got ${hex(a, 8)} - ${why}`);
  }
  assert.equal(nBad, 0, `${what} (${fmt.name}): ${nBad} of ${a32.length} values wrong; first ones:\n${bad.join('\n')}`);
  return a32.length;
}

// ---------------------------------------------------------------------------------------------
// finfo: literal values, themselves checked against torch.finfo / numpy.finfo in the manifest

const EXPECTED_FINFO: Record<'float16' | 'bfloat16' | 'float32' | 'float64', FInfo> = {
  float16: {
    bits: 16, max: 65504, min: -65504, eps: 2 ** -10, tiny: 2 ** -14,
    smallestNormal: 2 ** -14, smallestSubnormal: 2 ** -24, resolution: 1e-3,
  },
  bfloat16: {
    bits: 16, max: (2 - 2 ** -7) * 2 ** 127, min: -(2 - 2 ** -7) * 2 ** 127, eps: 2 ** -7, tiny: 2 ** -126,
    smallestNormal: 2 ** -126, smallestSubnormal: 2 ** -133, resolution: 1e-2,
  },
  float32: {
    bits: 32, max: (2 - 2 ** -23) * 2 ** 127, min: -(2 - 2 ** -23) * 2 ** 127, eps: 2 ** -23, tiny: 2 ** -126,
    smallestNormal: 2 ** -126, smallestSubnormal: 2 ** -149, resolution: 1e-6,
  },
  float64: {
    bits: 64, max: Number.MAX_VALUE, min: -Number.MAX_VALUE, eps: Number.EPSILON, tiny: 2 ** -1022,
    smallestNormal: 2 ** -1022, smallestSubnormal: Number.MIN_VALUE, resolution: 1e-15,
  },
};
const FLOAT_NAMES = ['float16', 'bfloat16', 'float32', 'float64'] as const;

/** The FInfo keys of `got`, so extra fields an implementation adds do not fail the comparison. */
function pickFinfo(got: unknown): Record<string, unknown> {
  assert.ok(got !== null && typeof got === 'object', 'finfo must return an object');
  const src = got as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(EXPECTED_FINFO.float16)) out[k] = src[k];
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('dtype fixtures', () => {
  it('match the manifest (sizes, hashes, regenerated inputs)', () => {
    const f = fixtures();
    for (const [name, info] of Object.entries(f.manifest.files)) {
      const bytes = new Uint8Array(readFixtureBytes(DIR, name));
      assert.equal(bytes.length, info.bytes, `${fixturePath(DIR, name)}: size (a Git LFS pointer?)`);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), info.sha256, `${name}: sha256`);
    }
    const rnd = f.inputs.subarray(0, f.manifest.prng.count);
    assert.deepEqual(Array.from(rnd.subarray(0, 4)), f.manifest.prng.first, 'xorshift32: first outputs');
    assert.equal(rnd[rnd.length - 1], f.manifest.prng.last, 'xorshift32: last output');
    if (endianness() === 'LE') {
      const digest = createHash('sha256').update(new Uint8Array(f.inputs.buffer)).digest('hex');
      assert.equal(digest, f.manifest.inputs_sha256, 'regenerated inputs differ from the generator\'s');
    }
    // the random inputs really do cover every exponent, both signs, NaN and Inf
    const exps = new Set<number>();
    for (const x of rnd) exps.add((x >>> 23) & 0x1ff);
    assert.equal(exps.size, 512, 'random inputs cover all sign/exponent combinations');
  });
});

describe('dtype conversions (src/dtype/convert.ts) vs NumPy / PyTorch', () => {
  it('float16 -> float32: all 65,536 patterns exact (NumPy)', () => {
    const f = fixtures();
    checkWidening(F16, bitsView(float16ToFloat32(ALL16)), f.f16ToF32, 'float16ToFloat32');
    checkWidening(F16, bitsView(F16_TO_F32), f.f16ToF32, 'F16_TO_F32 table');
  });

  it('bfloat16 -> float32: all 65,536 patterns exact (PyTorch)', () => {
    const f = fixtures();
    checkWidening(BF16, bitsView(bfloat16ToFloat32(ALL16)), f.bf16ToF32, 'bfloat16ToFloat32');
  });

  it('float32 -> float16: random, specials and every tie round to nearest even (NumPy)', () => {
    const f = fixtures();
    checkNarrowing(f, F16, float32ToFloat16(inputsAsF32(f)), f.f16FromF32, 'float32ToFloat16');
  });

  it('float32 -> bfloat16: random, specials and every tie round to nearest even (PyTorch)', () => {
    const f = fixtures();
    checkNarrowing(f, BF16, float32ToBfloat16(inputsAsF32(f)), f.bf16FromF32, 'float32ToBfloat16');
  });

  it('narrowing and widening work on subarray views (byteOffset != 0)', () => {
    const f = fixtures();
    const view = new Float32Array(f.inputs.buffer, 4 * 1000, 5000);
    const copy = view.slice();
    assert.deepEqual(float32ToFloat16(view), float32ToFloat16(copy));
    assert.deepEqual(float32ToBfloat16(view), float32ToBfloat16(copy));
    const h = ALL16.subarray(1000, 6000);
    assert.deepEqual(bitsView(float16ToFloat32(h)), bitsView(float16ToFloat32(h.slice())));
    assert.deepEqual(bitsView(bfloat16ToFloat32(h)), bitsView(bfloat16ToFloat32(h.slice())));
  });

  it('roundToFloat16 / roundToBfloat16 agree with the references on every input', () => {
    const f = fixtures();
    const x = inputsAsF32(f);
    for (const [fmt, round, narrowed, widen] of [
      [F16, roundToFloat16, f.f16FromF32, f.f16ToF32],
      [BF16, roundToBfloat16, f.bf16FromF32, f.bf16ToF32],
    ] as const) {
      const got = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) got[i] = round(x[i]!);
      checkRoundTrip(f, fmt, got, expectedWidened(narrowed, widen), fmt === F16 ? 'roundToFloat16' : 'roundToBfloat16');
    }
  });

  it('named special cases', () => {
    const f16 = (bits: number) => float32ToFloat16(new Float32Array(new Uint32Array([bits]).buffer))[0]!;
    const bf16 = (bits: number) => float32ToBfloat16(new Float32Array(new Uint32Array([bits]).buffer))[0]!;
    const cases: [string, number, number, number][] = [
      // [what, float32 bits, float16 bits, bfloat16 bits]
      ['+0', 0x00000000, 0x0000, 0x0000],
      ['-0', 0x80000000, 0x8000, 0x8000],
      ['+Inf', 0x7f800000, 0x7c00, 0x7f80],
      ['-Inf', 0xff800000, 0xfc00, 0xff80],
      ['1', 0x3f800000, 0x3c00, 0x3f80],
      ['65504 = float16 max', 0x477fe000, 0x7bff, 0x4780],
      ['largest float32 below 65520 -> 65504', 0x477fefff, 0x7bff, 0x4780],
      ['65520: tie with odd 0x7bff -> Inf', 0x477ff000, 0x7c00, 0x4780],
      ['-65520 -> -Inf', 0xc77ff000, 0xfc00, 0xc780],
      ['float32 max', 0x7f7fffff, 0x7c00, 0x7f80],
      ['2^-24 = smallest float16 subnormal', 0x33800000, 0x0001, 0x3380],
      ['2^-25: tie -> 0', 0x33000000, 0x0000, 0x3300],
      ['-2^-25: tie -> -0', 0xb3000000, 0x8000, 0xb300],
      ['just above 2^-25 -> 2^-24', 0x33000001, 0x0001, 0x3300],
      ['3*2^-26 -> 2^-24', 0x33400000, 0x0001, 0x3340],
      ['1.5*2^-24: tie with odd 1 -> 2', 0x33c00000, 0x0002, 0x33c0],
      ['2.5*2^-24: tie with even 2 -> 2', 0x34200000, 0x0002, 0x3420],
      ['largest float16 subnormal', 0x387fc000, 0x03ff, 0x3880],
      ['tie between largest subnormal and 2^-14 -> 2^-14', 0x387fe000, 0x0400, 0x3880],
      ['2^-14 = smallest float16 normal', 0x38800000, 0x0400, 0x3880],
      ['1 + 2^-11: tie with even 0x3c00 -> down', 0x3f801000, 0x3c00, 0x3f80],
      ['1 + 3*2^-11: tie with odd 0x3c01 -> up', 0x3f803000, 0x3c02, 0x3f80],
      ['1 + 2^-8: bfloat16 tie with even 0x3f80 -> down', 0x3f808000, 0x3c04, 0x3f80],
      ['1 + 3*2^-8: bfloat16 tie with odd 0x3f81 -> up', 0x3f818000, 0x3c0c, 0x3f82],
      ['bfloat16 max', 0x7f7f0000, 0x7c00, 0x7f7f],
      ['bfloat16 tie above max -> Inf', 0x7f7f8000, 0x7c00, 0x7f80],
      ['just below the bfloat16 tie above max -> max', 0x7f7f7fff, 0x7c00, 0x7f7f],
      ['smallest float32 subnormal', 0x00000001, 0x0000, 0x0000],
      ['-smallest float32 subnormal', 0x80000001, 0x8000, 0x8000],
      ['2^-133 = smallest bfloat16 subnormal', 0x00010000, 0x0000, 0x0001],
      ['2^-134: bfloat16 tie -> 0', 0x00008000, 0x0000, 0x0000],
      ['bfloat16 tie below 2^-126 with odd 0x007f -> 2^-126', 0x007f8000, 0x0000, 0x0080],
    ];
    const bad: string[] = [];
    for (const [what, x, e16, eb16] of cases) {
      const a16 = f16(x);
      const ab16 = bf16(x);
      if (a16 !== e16) bad.push(`${what} (${hex(x, 8)}): float16 expected ${hex(e16, 4)}, got ${hex(a16, 4)}`);
      if (ab16 !== eb16) bad.push(`${what} (${hex(x, 8)}): bfloat16 expected ${hex(eb16, 4)}, got ${hex(ab16, 4)}`);
    }
    // NaNs whose payload lives only in the bits narrowing drops must not become Inf, and keep their sign
    for (const x of [0x7f800001, 0xff800001, 0x7f801fff, 0x7f80ffff, 0xff80ffff, 0x7fc00000, 0xffc00000, 0x7fffffff, 0xffffffff]) {
      const a16 = f16(x);
      const ab16 = bf16(x);
      if (!isNaN16(a16, F16) || (a16 & 0x8000) !== (x >>> 16 & 0x8000)) bad.push(`NaN ${hex(x, 8)}: float16 got ${hex(a16, 4)}`);
      if (!isNaN16(ab16, BF16) || (ab16 & 0x8000) !== (x >>> 16 & 0x8000)) bad.push(`NaN ${hex(x, 8)}: bfloat16 got ${hex(ab16, 4)}`);
    }
    assert.deepEqual(bad, []);
  });

  it('finfoOf matches torch.finfo / numpy.finfo', () => {
    const { manifest } = fixtures();
    for (const name of FLOAT_NAMES) {
      assert.deepEqual(EXPECTED_FINFO[name], manifest.finfo[name], `expected literals for ${name} vs the manifest`);
      assert.deepEqual(pickFinfo(finfoOf(name as DTypeName)), EXPECTED_FINFO[name], `finfoOf('${name}')`);
    }
  });
});

describe('dtype conversions through the public API', () => {
  let mx: typeof import('../src/index.js');
  before(async () => {
    mx = await import('../src/index.js');
  });

  for (const [fmt, dtype] of [
    [F16, 'float16'],
    [BF16, 'bfloat16'],
  ] as const) {
    it(`tensor(float32).to('${dtype}').data() matches the reference`, async () => {
      const f = fixtures();
      const expected = fmt === F16 ? expectedWidened(f.f16FromF32, f.f16ToF32) : expectedWidened(f.bf16FromF32, f.bf16ToF32);
      const t = mx.tensor(inputsAsF32(f).slice(), { dtype: 'float32' });
      const d = await t.to(dtype).data();
      assert.ok(d instanceof Float32Array, `data() of a ${dtype} tensor must be a Float32Array`);
      checkRoundTrip(f, fmt, d, expected, `tensor(float32).to('${dtype}')`);
    });

    it(`tensor(float32 values, {dtype: '${dtype}'}).data() matches the reference`, async () => {
      const f = fixtures();
      const expected = fmt === F16 ? expectedWidened(f.f16FromF32, f.f16ToF32) : expectedWidened(f.bf16FromF32, f.bf16ToF32);
      const d = await mx.tensor(inputsAsF32(f).slice(), { dtype }).data();
      assert.ok(d instanceof Float32Array, `data() of a ${dtype} tensor must be a Float32Array`);
      checkRoundTrip(f, fmt, d, expected, `tensor(values, {dtype: '${dtype}'})`);
    });
  }

  it('dtypes.finfo matches torch.finfo / numpy.finfo', () => {
    for (const name of FLOAT_NAMES) {
      assert.deepEqual(pickFinfo(mx.dtypes.finfo(name)), EXPECTED_FINFO[name], `mx.dtypes.finfo('${name}')`);
    }
  });
});
