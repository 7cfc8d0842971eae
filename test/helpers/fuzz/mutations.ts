/**
 * Mutations of valid files for the reader fuzzers (test/fuzz_readers.test.ts), as fast-check
 * arbitraries: a case is a seed file and one to three mutations applied in order. Every mutation is
 * data (positions, values, a parameter for a seeded generator), so fast-check can shrink a failing
 * case and print it, and a case replays exactly.
 *
 * A seed says where its regions begin and end (truncation at every boundary is run exhaustively as
 * the first examples), which numeric fields it has (overwritten with huge, negative-as-unsigned and
 * edge values) and its own structural mutators (a JSON header edited and re-encoded, a PNG chunk
 * changed with its CRC recomputed, a tar header with its checksum recomputed), which reach the
 * checks behind the integrity checks that random bytes would stop at.
 */
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';

export interface Region {
  name: string;
  start: number;
  end: number;
}

export type FieldKind = 'u8' | 'u16be' | 'u16le' | 'u32be' | 'u32le' | 'u64le' | 'octal12';

export interface Field {
  name: string;
  offset: number;
  kind: FieldKind;
  /** Run after the field is written (a checksum or CRC over it). */
  fixup?: (bytes: Uint8Array) => void;
}

/** A seeded source of numbers for structural mutators (xorshift32): a case replays exactly. */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

export interface Structural {
  name: string;
  apply: (bytes: Uint8Array, rand: Rand) => Uint8Array;
}

export interface Seed {
  label: string;
  /** The file under mutation (before `encode`). */
  bytes: Uint8Array;
  regions: Region[];
  fields: Field[];
  structural: Structural[];
  /** Applied after the mutations (e.g. gzip, to fuzz what is inside a compressed file). */
  encode?: (bytes: Uint8Array) => Uint8Array;
}

/** Values written into numeric fields: zero, small, around every power-of-two limit, all ones. */
export const INTERESTING: readonly bigint[] = [
  0n, 1n, 2n, 3n, 7n, 8n, 9n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n,
  0xffffffffn, 0x100000000n, 0x1fffffffffffffn, 0x20000000000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn,
];

/** Other formats' first bytes (and junk) written over a file's start. */
export const MAGICS: readonly number[][] = [
  [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0x50, 0x4b, 0x03, 0x04], [0x1f, 0x8b, 0x08, 0x00], [0xff, 0xd8, 0xff, 0xe0],
  [0x80, 0x02, 0x63], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], [0x00, 0x00, 0x08, 0x03], [0x00, 0x00, 0x08, 0x01],
  [0x7b, 0x7d], [0x5b, 0x5d], [0xef, 0xbb, 0xbf], [0xff, 0xfe], [0, 0, 0, 0, 0, 0, 0, 0], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
];

export type Mutation =
  | { kind: 'truncate'; boundary: number; delta: number }
  | { kind: 'cut'; at: number }
  | { kind: 'flip'; bits: number[] }
  | { kind: 'field'; field: number; value: bigint; mode: 'set' | 'add' | 'sub' }
  | { kind: 'copy'; from: number; to: number; length: number }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'insert'; at: number; bytes: number[]; repeat: number }
  | { kind: 'magic'; which: number }
  | { kind: 'empty' }
  | { kind: 'structural'; which: number; param: number };

export interface FuzzCase {
  seed: number;
  mutations: Mutation[];
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('truncate' as const), boundary: fc.nat(), delta: fc.integer({ min: -2, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('field' as const),
      field: fc.noBias(fc.nat()),
      value: fc.oneof(fc.constantFrom(...INTERESTING), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      mode: fc.constantFrom('set' as const, 'set' as const, 'add' as const, 'sub' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('copy' as const), from: fc.nat(), to: fc.nat(), length: fc.nat({ max: 4096 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.nat({ max: 1024 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }),
      repeat: fc.oneof(fc.constant(1), fc.nat({ max: 64 }), fc.constant(100_000)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('magic' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'empty' as const }) },
  // Unbiased: fast-check favours small numbers, which would favour the first mutators of a seed.
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('structural' as const), which: fc.noBias(fc.nat()), param: fc.noBias(fc.nat()) }) },
);

export const caseArb: fc.Arbitrary<FuzzCase> = fc.record({ seed: fc.noBias(fc.nat()), mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) });

/** Every region boundary of a seed (deduplicated, in order). */
export function boundaries(seed: Seed): number[] {
  const set = new Set<number>([0, seed.bytes.length]);
  for (const r of seed.regions) {
    set.add(r.start);
    set.add(r.end);
  }
  return [...set].sort((a, b) => a - b);
}

/** Truncation at every boundary and one byte either side, for every seed: the first examples. */
export function boundaryCases(seeds: readonly Seed[]): FuzzCase[] {
  return seeds.flatMap((s, seed) =>
    boundaries(s).flatMap((_, boundary) => [-1, 0, 1].map((delta) => ({ seed, mutations: [{ kind: 'truncate' as const, boundary, delta }] }))),
  );
}

function writeField(bytes: Uint8Array, f: Field, raw: bigint, mode: 'set' | 'add' | 'sub'): void {
  const width = { u8: 1, u16be: 2, u16le: 2, u32be: 4, u32le: 4, u64le: 8, octal12: 12 }[f.kind];
  if (f.offset + width > bytes.length) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = BigInt(Math.min(width, 8) * 8);
  const mask = (1n << bits) - 1n;
  const old = readField(view, bytes, f);
  const value = (mode === 'set' ? raw : mode === 'add' ? old + (raw % 16n) + 1n : old - (raw % 16n) - 1n) & (f.kind === 'octal12' ? (1n << 36n) - 1n : mask);
  switch (f.kind) {
    case 'u8':
      view.setUint8(f.offset, Number(value));
      break;
    case 'u16be':
      view.setUint16(f.offset, Number(value), false);
      break;
    case 'u16le':
      view.setUint16(f.offset, Number(value), true);
      break;
    case 'u32be':
      view.setUint32(f.offset, Number(value), false);
      break;
    case 'u32le':
      view.setUint32(f.offset, Number(value), true);
      break;
    case 'u64le':
      view.setBigUint64(f.offset, value, true);
      break;
    case 'octal12': {
      // ustar numbers: 11 octal digits and a NUL; raw values past 8^11 use the GNU base-256 form.
      const text = value < 8n ** 11n ? `${value.toString(8).padStart(11, '0')}\0` : null;
      if (text) for (let i = 0; i < 12; i++) bytes[f.offset + i] = text.charCodeAt(i);
      else {
        bytes[f.offset] = 0x80;
        for (let i = 11; i >= 1; i--) bytes[f.offset + i] = Number((value >> BigInt(8 * (11 - i))) & 0xffn);
      }
      break;
    }
  }
  f.fixup?.(bytes);
}

function readField(view: DataView, bytes: Uint8Array, f: Field): bigint {
  switch (f.kind) {
    case 'u8':
      return BigInt(view.getUint8(f.offset));
    case 'u16be':
      return BigInt(view.getUint16(f.offset, false));
    case 'u16le':
      return BigInt(view.getUint16(f.offset, true));
    case 'u32be':
      return BigInt(view.getUint32(f.offset, false));
    case 'u32le':
      return BigInt(view.getUint32(f.offset, true));
    case 'u64le':
      return view.getBigUint64(f.offset, true);
    case 'octal12': {
      const text = String.fromCharCode(...bytes.subarray(f.offset, f.offset + 11)).replace(/[^0-7]/g, '');
      return text ? BigInt(`0o${text}`) : 0n;
    }
  }
}

/** Apply one mutation (positions are taken modulo the current length). */
export function applyMutation(bytes: Uint8Array, m: Mutation, seed: Seed): Uint8Array {
  const n = bytes.length;
  const at = (x: number, len = n): number => (len === 0 ? 0 : x % (len + 1));
  switch (m.kind) {
    case 'truncate': {
      const b = boundaries(seed);
      const cut = Math.max(0, Math.min(n, b[m.boundary % b.length]! + m.delta));
      return bytes.slice(0, cut);
    }
    case 'cut':
      return bytes.slice(0, at(m.at));
    case 'flip': {
      const out = bytes.slice();
      if (n === 0) return out;
      for (const bit of m.bits) out[(bit >>> 3) % n]! ^= 1 << (bit & 7);
      return out;
    }
    case 'field': {
      if (seed.fields.length === 0) return bytes;
      const out = bytes.slice();
      writeField(out, seed.fields[m.field % seed.fields.length]!, m.value, m.mode);
      return out;
    }
    case 'copy': {
      if (n === 0) return bytes;
      const out = bytes.slice();
      const from = m.from % n;
      const to = m.to % n;
      out.copyWithin(to, from, Math.min(n, from + m.length));
      return out;
    }
    case 'delete': {
      const start = at(m.at);
      return new Uint8Array([...bytes.subarray(0, start), ...bytes.subarray(Math.min(n, start + m.length))]);
    }
    case 'insert': {
      const start = at(m.at);
      const block = new Uint8Array(m.bytes.length * m.repeat);
      for (let i = 0; i < block.length; i++) block[i] = m.bytes[i % m.bytes.length]!;
      const out = new Uint8Array(n + block.length);
      out.set(bytes.subarray(0, start));
      out.set(block, start);
      out.set(bytes.subarray(start), start + block.length);
      return out;
    }
    case 'magic': {
      const magic = MAGICS[m.which % MAGICS.length]!;
      const out = bytes.slice();
      out.set(magic.slice(0, n));
      return out;
    }
    case 'empty':
      return new Uint8Array(0);
    case 'structural': {
      if (seed.structural.length === 0) return bytes;
      try {
        return seed.structural[m.which % seed.structural.length]!.apply(bytes, new Rand(m.param));
      } catch {
        return bytes; // the edit does not apply to what earlier mutations made (e.g. too deep to re-encode)
      }
    }
  }
}

/** The bytes a case writes: the seed mutated in order, then encoded. */
export function caseBytes<S extends Seed>(seeds: readonly S[], c: FuzzCase): { seed: S; bytes: Uint8Array } {
  const seed = seeds[c.seed % seeds.length]!;
  let bytes: Uint8Array = plain(seed.bytes);
  for (const m of c.mutations) bytes = plain(applyMutation(bytes, m, seed));
  return { seed, bytes: seed.encode ? seed.encode(bytes) : bytes };
}

/**
 * A plain Uint8Array: the mutations copy with slice(), which on a Node Buffer is a view (the seed
 * itself would be mutated, and every later case would start from a corrupted seed).
 */
function plain(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes) : bytes;
}

/** A compact description of a case for logs and the watchdog. */
export function describeCase(seeds: readonly Seed[], c: FuzzCase): string {
  const seed = seeds[c.seed % seeds.length]!;
  const text = c.mutations.map((m) => {
    if (m.kind === 'structural') return `structural:${seed.structural[m.which % Math.max(1, seed.structural.length)]?.name ?? '-'}(${m.param})`;
    if (m.kind === 'field') return `field:${seed.fields[m.field % Math.max(1, seed.fields.length)]?.name ?? '-'}=${m.mode}:${m.value}`;
    if (m.kind === 'truncate') return `truncate:${boundaries(seed)[m.boundary % boundaries(seed).length]}${m.delta >= 0 ? '+' : ''}${m.delta}`;
    return JSON.stringify(m, (_, v) => (typeof v === 'bigint' ? String(v) : v));
  });
  return `${seed.label}: ${text.join(' then ')}`;
}

/** gzip, as a seed's encode step. */
export const gzip = (bytes: Uint8Array): Uint8Array => gzipSync(bytes);
