/**
 * Valid seed files for the reader fuzzers, with their layout: regions (for truncation at every
 * boundary), numeric fields, and structural mutators that keep the integrity checks intact (PNG
 * CRCs, tar checksums, a safetensors header's length field) so mutations reach the checks behind them.
 */
import { crc32, deflateSync } from 'node:zlib';
import type { Field, Rand, Region, Structural } from './mutations.js';

// ----------------------------------------------------------------------------------------------
// safetensors (and checkpoints, which are safetensors files)

export interface SafetensorsLayout {
  headerLength: number;
  header: Record<string, any>;
  data: Uint8Array;
}

/** Split a safetensors file into its header object and data section (null when it does not parse). */
export function splitSafetensors(bytes: Uint8Array): SafetensorsLayout | null {
  if (bytes.length < 8) return null;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) return null;
  try {
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return null;
    return { headerLength: n, header, data: bytes.subarray(8 + n) };
  } catch {
    return null;
  }
}

/** A safetensors file from a header text (padded to 8 bytes) and a data section. */
export function joinSafetensors(headerText: string, data: Uint8Array): Uint8Array {
  const json = Buffer.from(headerText, 'utf8');
  const n = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + n + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.fill(0x20, 8, 8 + n);
  out.set(json, 8);
  out.set(data, 8 + n);
  return out;
}

export function safetensorsRegions(bytes: Uint8Array): Region[] {
  const layout = splitSafetensors(bytes)!;
  const start = 8 + layout.headerLength;
  const regions: Region[] = [{ name: 'length', start: 0, end: 8 }, { name: 'header', start: 8, end: start }];
  for (const [name, e] of Object.entries(layout.header)) {
    if (name === '__metadata__') continue;
    regions.push({ name: `data:${name}`, start: start + e.data_offsets[0], end: start + e.data_offsets[1] });
  }
  return regions;
}

/** Nested arrays `depth` deep around `inner`, as JSON text. */
export function nested(depth: number, inner = '0'): string {
  return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
}

const WEIRD_NAMES = ['', '__metadata__', 'a\nb', 'tab\there', '\u0000', 'x'.repeat(100_000), 'é中😀', '../../etc/passwd', 'constructor', '__proto__'];
const WEIRD_DTYPES: unknown[] = ['F17', 'U8', 'I8', 'F8_E4M3', 'C64', 'I64', 'F32', 'F16', 'BF16', 'BOOL', '', 'f32', 42, null, ['F32'], 'X'.repeat(10_000)];
const WEIRD_SHAPES: unknown[] = [[2 ** 53], [-1], [1.5], [], ['3'], [[2]], null, [2 ** 31, 2 ** 31], [0], [1e308], 'abc', [2 ** 40, 2 ** 40, 2 ** 40], [1, 1, 1, 1, 1, 1, 1, 1]];

function weirdOffsets(rand: Rand, dataLength: number, others: number[][]): unknown {
  const huge = [2 ** 53, 2 ** 64, 1e308, 2 ** 32, 2 ** 31];
  const choices: unknown[] = [
    [rand.pick(huge), rand.pick(huge)], [-1, 4], [0], [4, 0], [0, 2 ** 64], [0, dataLength + 1], [dataLength, dataLength + 8],
    [0.5, 1], 'x', null, [0, 0], [1, 1 + rand.int(64)], [0, -8], others.length ? rand.pick(others) : [0, 4],
  ];
  return rand.pick(choices);
}

/** Header edits shared by safetensors files and checkpoints (re-encoded with a correct length field). */
export function headerMutators(): Structural[] {
  const edit = (name: string, fn: (h: Record<string, any>, layout: SafetensorsLayout, rand: Rand) => string | void): Structural => ({
    name,
    apply: (bytes, rand) => {
      const layout = splitSafetensors(bytes);
      if (!layout) return bytes;
      const text = fn(layout.header, layout, rand);
      return joinSafetensors(text ?? JSON.stringify(layout.header), layout.data);
    },
  });
  const tensorKeys = (h: Record<string, any>) => Object.keys(h).filter((k) => k !== '__metadata__');
  const someTensor = (h: Record<string, any>, rand: Rand) => {
    const keys = tensorKeys(h);
    return keys.length ? h[rand.pick(keys)] : null;
  };
  return [
    edit('dtype', (h, _, r) => {
      const t = someTensor(h, r);
      if (t) t.dtype = r.pick(WEIRD_DTYPES);
    }),
    edit('shape', (h, _, r) => {
      const t = someTensor(h, r);
      if (!t) return;
      if (r.int(3) === 0 && Array.isArray(t.shape) && t.shape.length) t.shape[r.int(t.shape.length)] += r.pick([-1, 1, 2, 1000]);
      else t.shape = r.pick(WEIRD_SHAPES);
    }),
    edit('offsets', (h, layout, r) => {
      const keys = tensorKeys(h);
      const t = someTensor(h, r);
      if (t) t.data_offsets = weirdOffsets(r, layout.data.length, keys.map((k) => h[k].data_offsets).filter(Array.isArray));
    }),
    edit('drop-field', (h, _, r) => {
      const t = someTensor(h, r);
      if (t) delete t[r.pick(['dtype', 'shape', 'data_offsets'])];
    }),
    edit('extra-field', (h, _, r) => {
      const t = someTensor(h, r);
      if (t) t[r.pick(['extra', 'dtype2', '__proto__'])] = r.pick([1, 'x', [1, 2], { a: 1 }]);
    }),
    edit('rename', (h, _, r) => {
      const keys = tensorKeys(h);
      if (!keys.length) return;
      const k = r.pick(keys);
      const v = h[k];
      delete h[k];
      h[r.pick(WEIRD_NAMES)] = v;
    }),
    edit('drop-tensor', (h, _, r) => {
      const keys = tensorKeys(h);
      if (keys.length) delete h[r.pick(keys)];
    }),
    edit('duplicate-key', (h, _, r) => {
      // JSON.parse keeps the last of two equal keys: the text has both.
      const keys = tensorKeys(h);
      if (!keys.length) return;
      const k = r.pick(keys);
      const other = someTensor(h, r);
      return `{${JSON.stringify(k)}:${JSON.stringify(other)},${JSON.stringify(h).slice(1)}`;
    }),
    edit('metadata', (h, _, r) => {
      h['__metadata__'] = r.pick<unknown>([42, [], { a: 1 }, { a: null }, 'str', { k: 'x'.repeat(100_000) }, null, { 'a\nb': 'c' }, { nested: { a: 'b' } }]);
    }),
    edit('deep', (h, _, r) => {
      const depth = r.pick([4, 5, 64, 10_000, 200_000]);
      const keys = tensorKeys(h);
      if (r.int(2) === 0 && keys.length) {
        const t = h[r.pick(keys)];
        return JSON.stringify(h).replace(JSON.stringify(t.shape), nested(depth, '2'));
      }
      return `{"deep":${nested(depth)},${JSON.stringify(h).slice(1)}`;
    }),
    edit('many-entries', (h, layout, r) => {
      // Zero-size tensors at the end of the data section are valid: a huge but legal header.
      const end = layout.data.length;
      const count = r.pick([100, 5_000, 20_000]);
      for (let i = 0; i < count; i++) h[`z${i}`] = { dtype: 'F32', shape: [0], data_offsets: [end, end] };
    }),
    edit('padding', (h, _, r) => `${JSON.stringify(h)}${' '.repeat(r.pick([1, 8, 1 << 16, 1 << 22]))}`),
    edit('not-an-object', (_, __, r) => r.pick(['[]', '"x"', '1', 'null', '{', '{"a":}', ' {}', '{}x', '\ufeff{}', '{"a":1}{}'])),
    {
      name: 'raw-utf8',
      apply: (bytes, r) => {
        const layout = splitSafetensors(bytes);
        if (!layout) return bytes;
        const out = bytes.slice();
        out[8 + 1 + r.int(Math.max(1, layout.headerLength - 2))] = r.pick([0xff, 0xc0, 0xed, 0x80, 0x00, 0x0a]);
        return out;
      },
    },
  ];
}

// ----------------------------------------------------------------------------------------------
// tar

/** Recompute a tar header's checksum (the header block starts at `at`). */
export function fixTarChecksum(bytes: Uint8Array, at: number): void {
  if (at + 512 > bytes.length) return;
  for (let i = 148; i < 156; i++) bytes[at + i] = 0x20;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += bytes[at + i]!;
  const text = `${sum.toString(8).padStart(6, '0')}\0 `;
  for (let i = 0; i < 8; i++) bytes[at + 148 + i] = text.charCodeAt(i);
}

/** The header offsets of a tar's members (walking sizes; stops at the end blocks). */
export function tarHeaders(bytes: Uint8Array): { at: number; size: number; name: string }[] {
  const out: { at: number; size: number; name: string }[] = [];
  let at = 0;
  while (at + 512 <= bytes.length && bytes[at] !== 0) {
    const size = parseInt(String.fromCharCode(...bytes.subarray(at + 124, at + 135)).replace(/[^0-7]/g, '') || '0', 8);
    const name = String.fromCharCode(...bytes.subarray(at, at + 100)).replace(/\0.*$/s, '');
    out.push({ at, size, name });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function tarLayout(bytes: Uint8Array): { regions: Region[]; fields: Field[] } {
  const regions: Region[] = [];
  const fields: Field[] = [];
  for (const { at, size, name } of tarHeaders(bytes)) {
    const fix = (b: Uint8Array) => fixTarChecksum(b, at);
    regions.push(
      { name: `${name}:name`, start: at, end: at + 100 },
      { name: `${name}:size`, start: at + 124, end: at + 136 },
      { name: `${name}:checksum`, start: at + 148, end: at + 156 },
      { name: `${name}:typeflag`, start: at + 156, end: at + 157 },
      { name: `${name}:magic`, start: at + 257, end: at + 265 },
      { name: `${name}:header`, start: at, end: at + 512 },
      { name: `${name}:data`, start: at + 512, end: at + 512 + size },
      { name: `${name}:padding`, start: at + 512 + size, end: at + 512 + Math.ceil(size / 512) * 512 },
    );
    fields.push(
      { name: `${name}:size`, offset: at + 124, kind: 'octal12', fixup: fix },
      { name: `${name}:size-raw`, offset: at + 124, kind: 'octal12' },
      { name: `${name}:typeflag`, offset: at + 156, kind: 'u8', fixup: fix },
      { name: `${name}:checksum`, offset: at + 148, kind: 'u8' },
      { name: `${name}:mode`, offset: at + 100, kind: 'u32be', fixup: fix },
    );
  }
  return { regions, fields };
}

export function tarMutators(): Structural[] {
  const headerEdit = (name: string, fn: (b: Uint8Array, at: number, r: Rand) => void): Structural => ({
    name,
    apply: (bytes, r) => {
      const headers = tarHeaders(bytes);
      if (!headers.length) return bytes;
      const out = bytes.slice();
      const { at } = r.pick(headers);
      fn(out, at, r);
      fixTarChecksum(out, at);
      return out;
    },
  });
  const setText = (b: Uint8Array, at: number, text: string, width: number) => {
    for (let i = 0; i < width; i++) b[at + i] = i < text.length ? text.charCodeAt(i) & 0xff : 0;
  };
  return [
    headerEdit('name', (b, at, r) => setText(b, at, r.pick(['', 'cifar-10-batches-bin/data_batch_1.bin', 'data_batch_2.bin', 'x\n', '/abs/test_batch.bin', 'a'.repeat(100)]), 100)),
    headerEdit('typeflag', (b, at, r) => (b[at + 156] = r.pick(['0', '1', '2', '5', 'L', 'K', 'x', 'g', 'S', '7', 'Z', '\0']).charCodeAt(0))),
    headerEdit('size', (b, at, r) => setText(b, at + 124, r.pick(['77777777777\0', '00000000000\0', '7777777777777', '-1', '1e9', ' 123 ', '\u0080\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u00ff\u00ff\u00ff\u00ff']), 12)),
    headerEdit('magic', (b, at, r) => setText(b, at + 257, r.pick(['ustar\u000000', 'ustar  \u0000', 'junk!!', '\0\0\0\0\0\0']), 8)),
    {
      name: 'pax',
      apply: (bytes, r) => {
        // A pax extended header before the first member, with odd records.
        const record = r.pick(['30 path=cifar-10-batches-bin/x\n', '20 size=99999999999\n', '9 path=\n', '999999 path=a\n', 'abc\n', '12 size=-5\n']);
        const body = Buffer.from(record, 'latin1');
        const header = new Uint8Array(512);
        setText(header, 0, 'PaxHeader', 100);
        setText(header, 100, '0000644\0', 8);
        setText(header, 124, `${body.length.toString(8).padStart(11, '0')}\0`, 12);
        header[156] = 'x'.charCodeAt(0);
        setText(header, 257, 'ustar\u000000', 8);
        fixTarChecksum(header, 0);
        const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
        padded.set(body);
        return new Uint8Array([...header, ...padded, ...bytes]);
      },
    },
  ];
}

// ----------------------------------------------------------------------------------------------
// PNG

export interface PngSpec {
  width: number;
  height: number;
  color: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  interlace: 0 | 1;
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG of any colour type, bit depth and interlacing, with a deterministic pattern. */
export function encodePng(spec: PngSpec): Uint8Array {
  const { width, height, color, depth, interlace } = spec;
  const bits = CHANNELS[color] * depth;
  const max = 2 ** depth - 1;
  const rows: number[] = [];
  const pass = (x0: number, y0: number, dx: number, dy: number) => {
    for (let y = y0; y < height; y += dy) {
      const samples: number[] = [];
      for (let x = x0; x < width; x += dx) for (let c = 0; c < CHANNELS[color]; c++) samples.push(((x * 7 + y * 13 + c * 5) % (color === 3 ? 4 : max + 1)));
      if (samples.length === 0) continue;
      rows.push(0); // filter: none
      const rowBytes = Math.ceil((samples.length * depth) / 8);
      const row = new Array<number>(rowBytes).fill(0);
      samples.forEach((v, i) => {
        if (depth === 16) {
          row[2 * i] = v >> 8;
          row[2 * i + 1] = v & 0xff;
        } else {
          const bit = i * depth;
          row[bit >> 3]! |= v << (8 - depth - (bit & 7));
        }
      });
      rows.push(...row);
      void bits;
    }
  };
  if (interlace) for (const [x0, y0, dx, dy] of ADAM7) pass(x0, y0, dx, dy);
  else pass(0, 0, 1, 1);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([depth, color, 0, 0, interlace], 8);
  const chunks = [pngChunk('IHDR', ihdr)];
  if (color === 3) chunks.push(pngChunk('PLTE', Uint8Array.from([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])));
  const idat = deflateSync(Uint8Array.from(rows));
  // Two IDAT chunks, so splitting, dropping and reordering them is possible.
  const half = idat.length >> 1;
  chunks.push(pngChunk('IDAT', idat.subarray(0, half)), pngChunk('IDAT', idat.subarray(half)), pngChunk('IEND', new Uint8Array(0)));
  return concat([Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PngChunkInfo {
  at: number;
  length: number;
  type: string;
}

export function pngChunks(bytes: Uint8Array): PngChunkInfo[] {
  const out: PngChunkInfo[] = [];
  let at = 8;
  while (at + 12 <= bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) break;
    out.push({ at, length, type });
    at += 12 + length;
  }
  return out;
}

function fixPngCrc(bytes: Uint8Array, c: PngChunkInfo): void {
  if (c.at + 12 + c.length > bytes.length) return;
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(c.at + 8 + c.length, crc32(bytes.subarray(c.at + 4, c.at + 8 + c.length)));
}

export function pngLayout(bytes: Uint8Array): { regions: Region[]; fields: Field[] } {
  const regions: Region[] = [{ name: 'signature', start: 0, end: 8 }];
  const fields: Field[] = [];
  for (const c of pngChunks(bytes)) {
    regions.push(
      { name: `${c.type}@${c.at}:length`, start: c.at, end: c.at + 4 },
      { name: `${c.type}@${c.at}:type`, start: c.at + 4, end: c.at + 8 },
      { name: `${c.type}@${c.at}:data`, start: c.at + 8, end: c.at + 8 + c.length },
      { name: `${c.type}@${c.at}:crc`, start: c.at + 8 + c.length, end: c.at + 12 + c.length },
    );
    fields.push({ name: `${c.type}@${c.at}:length`, offset: c.at, kind: 'u32be' });
    if (c.type === 'IHDR') {
      const fix = (b: Uint8Array) => fixPngCrc(b, c);
      fields.push(
        { name: 'IHDR:width', offset: c.at + 8, kind: 'u32be', fixup: fix },
        { name: 'IHDR:height', offset: c.at + 12, kind: 'u32be', fixup: fix },
        { name: 'IHDR:depth', offset: c.at + 16, kind: 'u8', fixup: fix },
        { name: 'IHDR:color', offset: c.at + 17, kind: 'u8', fixup: fix },
        { name: 'IHDR:compression', offset: c.at + 18, kind: 'u8', fixup: fix },
        { name: 'IHDR:filter', offset: c.at + 19, kind: 'u8', fixup: fix },
        { name: 'IHDR:interlace', offset: c.at + 20, kind: 'u8', fixup: fix },
      );
    }
  }
  return { regions, fields };
}

export function pngMutators(): Structural[] {
  const rebuild = (name: string, fn: (chunks: { type: string; data: Uint8Array }[], r: Rand) => void): Structural => ({
    name,
    apply: (bytes, r) => {
      const chunks = pngChunks(bytes).map((c) => ({ type: c.type, data: bytes.slice(c.at + 8, c.at + 8 + c.length) }));
      if (!chunks.length) return bytes;
      fn(chunks, r);
      return concat([bytes.subarray(0, 8), ...chunks.map((c) => pngChunk(c.type, c.data))]);
    },
  });
  return [
    rebuild('drop-chunk', (cs, r) => void cs.splice(r.int(cs.length), 1)),
    rebuild('duplicate-chunk', (cs, r) => {
      const i = r.int(cs.length);
      cs.splice(i, 0, cs[i]!);
    }),
    rebuild('swap-chunks', (cs, r) => {
      const i = r.int(cs.length);
      const j = r.int(cs.length);
      [cs[i], cs[j]] = [cs[j]!, cs[i]!];
    }),
    rebuild('split-idat', (cs) => {
      const i = cs.findIndex((c) => c.type === 'IDAT');
      if (i < 0) return;
      const d = cs[i]!.data;
      cs.splice(i, 1, ...Array.from(d, (b) => ({ type: 'IDAT', data: Uint8Array.of(b) })));
    }),
    rebuild('ihdr-dims', (cs, r) => {
      const h = cs.find((c) => c.type === 'IHDR');
      if (!h || h.data.length < 8) return;
      const v = new DataView(h.data.buffer, h.data.byteOffset);
      v.setUint32(r.int(2) * 4, r.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 65535, 65536, 100_000, 3000]));
    }),
    rebuild('ihdr-length', (cs, r) => {
      const h = cs.find((c) => c.type === 'IHDR');
      if (h) h.data = r.int(2) ? h.data.subarray(0, r.int(13)) : concat([h.data, new Uint8Array(1 + r.int(8))]);
    }),
    rebuild('bomb', (cs, r) => {
      // Image data that inflates far beyond what the header asks for (or a header that asks for a lot).
      const idat = deflateSync(new Uint8Array(r.pick([1 << 16, 1 << 20, 1 << 22])));
      const first = cs.findIndex((c) => c.type === 'IDAT');
      const rest = cs.filter((c) => c.type !== 'IDAT');
      rest.splice(first < 0 ? 1 : first, 0, { type: 'IDAT', data: idat });
      cs.splice(0, cs.length, ...rest);
      if (r.int(2)) {
        const h = cs.find((c) => c.type === 'IHDR');
        if (h && h.data.length >= 8) {
          new DataView(h.data.buffer, h.data.byteOffset).setUint32(0, 2048);
          new DataView(h.data.buffer, h.data.byteOffset).setUint32(4, 2048);
        }
      }
    }),
    rebuild('bad-deflate', (cs, r) => {
      const c = cs.find((x) => x.type === 'IDAT');
      if (c && c.data.length) c.data[r.int(c.data.length)] ^= 1 << r.int(8);
    }),
    rebuild('palette', (cs, r) => {
      const p = cs.find((c) => c.type === 'PLTE');
      const data = new Uint8Array(r.pick([0, 1, 3, 6, 768, 771]));
      if (p) p.data = data;
      else cs.splice(1, 0, { type: 'PLTE', data });
    }),
    rebuild('trailing', (cs, r) => cs.push({ type: r.pick(['IDAT', 'tEXt', 'IEND', 'zzzz']), data: new Uint8Array(r.int(100)) })),
  ];
}

// ----------------------------------------------------------------------------------------------
// JPEG

export interface JpegSegment {
  at: number;
  marker: number;
  /** Segment length (without the marker); 0 for markers without one. */
  length: number;
}

/** The segments of a JPEG up to its scan data, and where the scan data ends. */
export function jpegSegments(bytes: Uint8Array): { segments: JpegSegment[]; scanStart: number; scanEnd: number } {
  const segments: JpegSegment[] = [];
  let at = 2;
  let scanStart = bytes.length;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1]!;
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    segments.push({ at, marker, length });
    at += 2 + length;
    if (marker === 0xda) {
      scanStart = at;
      break;
    }
  }
  let scanEnd = bytes.length;
  for (let i = scanStart; i + 1 < bytes.length; i++) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) scanEnd = i;
  return { segments, scanStart, scanEnd };
}

export function jpegLayout(bytes: Uint8Array): { regions: Region[]; fields: Field[] } {
  const { segments, scanStart, scanEnd } = jpegSegments(bytes);
  const regions: Region[] = [{ name: 'SOI', start: 0, end: 2 }];
  const fields: Field[] = [];
  for (const s of segments) {
    const tag = `FF${s.marker.toString(16).toUpperCase()}@${s.at}`;
    regions.push({ name: `${tag}:marker`, start: s.at, end: s.at + 2 }, { name: `${tag}:length`, start: s.at + 2, end: s.at + 4 }, { name: `${tag}:payload`, start: s.at + 4, end: s.at + 2 + s.length });
    fields.push({ name: `${tag}:length`, offset: s.at + 2, kind: 'u16be' }, { name: `${tag}:marker`, offset: s.at + 1, kind: 'u8' });
    if (s.marker >= 0xc0 && s.marker <= 0xc2) {
      fields.push(
        { name: 'SOF:precision', offset: s.at + 4, kind: 'u8' },
        { name: 'SOF:height', offset: s.at + 5, kind: 'u16be' },
        { name: 'SOF:width', offset: s.at + 7, kind: 'u16be' },
        { name: 'SOF:components', offset: s.at + 9, kind: 'u8' },
        { name: 'SOF:sampling0', offset: s.at + 11, kind: 'u8' },
        { name: 'SOF:table0', offset: s.at + 12, kind: 'u8' },
      );
    }
    if (s.marker === 0xda) fields.push({ name: 'SOS:components', offset: s.at + 4, kind: 'u8' }, { name: 'SOS:table0', offset: s.at + 6, kind: 'u8' });
    if (s.marker === 0xc4) fields.push({ name: `DHT@${s.at}:class`, offset: s.at + 4, kind: 'u8' }, { name: `DHT@${s.at}:count1`, offset: s.at + 5, kind: 'u8' });
    if (s.marker === 0xdb) fields.push({ name: `DQT@${s.at}:precision`, offset: s.at + 4, kind: 'u8' });
  }
  regions.push({ name: 'scan', start: scanStart, end: scanEnd }, { name: 'EOI', start: scanEnd, end: bytes.length });
  return { regions, fields };
}

export function jpegMutators(): Structural[] {
  const rebuild = (name: string, fn: (parts: Uint8Array[], scan: Uint8Array, r: Rand) => Uint8Array[] | void): Structural => ({
    name,
    apply: (bytes, r) => {
      const { segments, scanStart } = jpegSegments(bytes);
      if (!segments.length) return bytes;
      const parts = segments.map((s) => bytes.slice(s.at, Math.min(bytes.length, s.at + 2 + s.length)));
      const scan = bytes.slice(scanStart);
      const out = fn(parts, scan, r) ?? [...parts, scan];
      return concat([bytes.subarray(0, 2), ...out]);
    },
  });
  return [
    rebuild('drop-segment', (parts, scan, r) => {
      parts.splice(r.int(parts.length), 1);
      return [...parts, scan];
    }),
    rebuild('duplicate-segment', (parts, scan, r) => {
      const i = r.int(parts.length);
      parts.splice(i, 0, parts[i]!);
      return [...parts, scan];
    }),
    rebuild('progressive', (parts, scan, r) => {
      const sof = parts.find((p) => p[1]! >= 0xc0 && p[1]! <= 0xc2);
      if (sof) sof[1] = r.pick([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc9]);
      return [...parts, scan];
    }),
    rebuild('restart-markers', (parts, scan, r) => {
      const out = Array.from(scan);
      for (let k = 0; k < 4; k++) out.splice(r.int(out.length), 0, 0xff, 0xd0 + r.int(8));
      return [...parts, Uint8Array.from(out)];
    }),
    rebuild('no-eoi', (parts, scan) => [...parts, scan.subarray(0, Math.max(0, scan.length - 2))]),
    rebuild('scan-garbage', (parts, scan, r) => {
      const out = scan.slice();
      for (let k = 0; k < 8; k++) out[r.int(out.length)] = r.int(256);
      return [...parts, out];
    }),
    rebuild('huge-dims', (parts, scan, r) => {
      const sof = parts.find((p) => p[1]! >= 0xc0 && p[1]! <= 0xc2);
      if (sof && sof.length >= 9) {
        const v = new DataView(sof.buffer, sof.byteOffset);
        v.setUint16(3, r.pick([0, 1, 65535, 4096, 30000]));
        v.setUint16(5, r.pick([0, 1, 65535, 4096, 30000]));
      }
      return [...parts, scan];
    }),
    rebuild('sampling', (parts, scan, r) => {
      const sof = parts.find((p) => p[1]! >= 0xc0 && p[1]! <= 0xc2);
      if (sof && sof.length >= 12) for (let c = 0; c < sof[9]! && 11 + 3 * c < sof.length; c++) sof[11 + 3 * c] = r.pick([0x11, 0x22, 0x44, 0x00, 0xff, 0x14, 0x41]);
      return [...parts, scan];
    }),
  ];
}

// ----------------------------------------------------------------------------------------------
// gzip

/** The fields of a gzip member (RFC 1952): header flags, and the trailer's CRC and length. */
export function gzipLayout(bytes: Uint8Array): { regions: Region[]; fields: Field[] } {
  const n = bytes.length;
  return {
    regions: [{ name: 'header', start: 0, end: 10 }, { name: 'deflate', start: 10, end: n - 8 }, { name: 'crc', start: n - 8, end: n - 4 }, { name: 'isize', start: n - 4, end: n }],
    fields: [
      { name: 'method', offset: 2, kind: 'u8' },
      { name: 'flags', offset: 3, kind: 'u8' },
      { name: 'crc', offset: n - 8, kind: 'u32le' },
      { name: 'isize', offset: n - 4, kind: 'u32le' },
    ],
  };
}

// ----------------------------------------------------------------------------------------------
// zip (PyTorch files)

/** A stored (uncompressed) zip archive of `entries`, with correct CRCs: what a structural edit rebuilds. */
export function storedZip(entries: readonly (readonly [string, Uint8Array])[]): Uint8Array {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = new Uint8Array(30 + nameBytes.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(12, 0x21, true); // 1980-01-01
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const central = new Uint8Array(46 + nameBytes.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nameBytes.length, true);
    cv.setUint32(42, offset, true);
    central.set(nameBytes, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const dirSize = centrals.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, offset, true);
  return concat([...locals, ...centrals, end]);
}

interface ZipDirEntry {
  name: string;
  central: number;
  local: number;
  dataStart: number;
  size: number;
}

/** The central directory's entries (null when the end record or the directory cannot be read). */
export function zipEntries(bytes: Uint8Array): { entries: ZipDirEntry[]; end: number; dirOffset: number } | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let e = bytes.length - 22; e >= 0; e--) if (v.getUint32(e, true) === 0x06054b50) { end = e; break; }
  if (end < 0) return null;
  const count = v.getUint16(end + 10, true);
  const dirOffset = v.getUint32(end + 16, true);
  const entries: ZipDirEntry[] = [];
  let at = dirOffset;
  for (let i = 0; i < count && at + 46 <= bytes.length && v.getUint32(at, true) === 0x02014b50; i++) {
    const nameLen = v.getUint16(at + 28, true);
    const extra = v.getUint16(at + 30, true);
    const comment = v.getUint16(at + 32, true);
    const local = v.getUint32(at + 42, true);
    const name = Buffer.from(bytes.subarray(at + 46, at + 46 + nameLen)).toString('utf8');
    const localOk = local + 30 <= bytes.length && v.getUint32(local, true) === 0x04034b50;
    const dataStart = localOk ? local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true) : local;
    entries.push({ name, central: at, local, dataStart, size: v.getUint32(at + 20, true) });
    at += 46 + nameLen + extra + comment;
  }
  return { entries, end, dirOffset };
}

export function zipLayout(bytes: Uint8Array): { regions: Region[]; fields: Field[] } {
  const z = zipEntries(bytes)!;
  const regions: Region[] = [];
  const fields: Field[] = [];
  for (const e of z.entries) {
    regions.push(
      { name: `${e.name}:local`, start: e.local, end: e.dataStart },
      { name: `${e.name}:data`, start: e.dataStart, end: e.dataStart + e.size },
      { name: `${e.name}:central`, start: e.central, end: e.central + 46 + Buffer.byteLength(e.name) },
    );
    fields.push(
      { name: `${e.name}:local-size`, offset: e.local + 18, kind: 'u32le' },
      { name: `${e.name}:local-name-length`, offset: e.local + 26, kind: 'u16le' },
      { name: `${e.name}:local-extra-length`, offset: e.local + 28, kind: 'u16le' },
      { name: `${e.name}:method`, offset: e.central + 10, kind: 'u16le' },
      { name: `${e.name}:size`, offset: e.central + 20, kind: 'u32le' },
      { name: `${e.name}:original-size`, offset: e.central + 24, kind: 'u32le' },
      { name: `${e.name}:offset`, offset: e.central + 42, kind: 'u32le' },
    );
  }
  regions.push({ name: 'end-record', start: z.end, end: z.end + 22 });
  fields.push(
    { name: 'entries', offset: z.end + 10, kind: 'u16le' },
    { name: 'directory-size', offset: z.end + 12, kind: 'u32le' },
    { name: 'directory-offset', offset: z.end + 16, kind: 'u32le' },
  );
  return { regions, fields };
}

const u32le = (n: number) => Uint8Array.of(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Edits of a PyTorch file's entries (the pickle, the storages), the archive rebuilt with right CRCs. */
export function torchMutators(unzip: (bytes: Uint8Array) => Record<string, Uint8Array>): Structural[] {
  const rebuild = (name: string, fn: (entries: [string, Uint8Array][], pkl: number, r: Rand) => void): Structural => ({
    name,
    apply: (bytes, r) => {
      const entries = Object.entries(unzip(bytes));
      const pkl = entries.findIndex(([n]) => n.endsWith('/data.pkl'));
      if (pkl < 0) return bytes;
      fn(entries, pkl, r);
      return storedZip(entries);
    },
  });
  const setPickle = (name: string, make: (r: Rand, old: Uint8Array) => Uint8Array) =>
    rebuild(name, (entries, pkl, r) => void (entries[pkl]![1] = make(r, entries[pkl]![1])));
  return [
    setPickle('pickle-deep', (r) => {
      // `depth` empty lists, each appended to the one before: a list nested that deep.
      const depth = r.pick([64, 1000, 100_000]);
      return concat([Uint8Array.of(0x80, 2), new Uint8Array(depth).fill(0x5d), new Uint8Array(depth - 1).fill(0x61), ascii('.')]);
    }),
    setPickle('pickle-deep-dict', (r) => {
      const depth = r.pick([64, 10_000]);
      const open = concat(Array.from({ length: depth }, () => concat([ascii('}'), ascii('X'), u32le(1), ascii('k')])));
      return concat([Uint8Array.of(0x80, 2), open, ascii('}'), new Uint8Array(depth).fill(0x73), ascii('.')]);
    }),
    setPickle('pickle-huge-length', (r) => concat([Uint8Array.of(0x80, 2), ascii(r.pick(['X', 'B', 'T'])), u32le(r.pick([0xfffffff0, 0x7fffffff, 1 << 30])), ascii('abc.')])),
    setPickle('pickle-memo', (r) => concat([Uint8Array.of(0x80, 2), ascii('j'), u32le(r.pick([999_999, 0xffffffff, 1])), ascii('.')])),
    setPickle('pickle-global', (r) => ascii(r.pick(['\x80\x02cos\nsystem\nq\x00.', '\x80\x02cbuiltins\neval\n.', '\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.', '\x80\x02ccollections\nOrderedDict\n)R}b.', '\x80\x09.', '\x80\x02\xff.']))),
    setPickle('pickle-truncate', (r, old) => old.slice(0, r.int(old.length))),
    setPickle('pickle-flip', (r, old) => {
      const out = old.slice();
      for (let k = 0; k < 4; k++) out[r.int(out.length)] ^= 1 << r.int(8);
      return out;
    }),
    rebuild('drop-entry', (entries, _, r) => void entries.splice(r.int(entries.length), 1)),
    rebuild('storage-size', (entries, _, r) => {
      const storages = entries.filter(([n]) => /\/data\/\d+$/.test(n));
      if (storages.length) {
        const s = r.pick(storages);
        s[1] = r.int(2) ? s[1].slice(0, r.int(s[1].length)) : concat([s[1], new Uint8Array(1 + r.int(64))]);
      }
    }),
    rebuild('byteorder', (entries, pkl, r) => {
      const prefix = entries[pkl]![0].replace(/data\.pkl$/, '');
      const i = entries.findIndex(([n]) => n === `${prefix}byteorder`);
      const value = ascii(r.pick(['big', 'little', 'middle', '', 'x'.repeat(1000)]));
      if (i >= 0) entries[i]![1] = value;
      else entries.push([`${prefix}byteorder`, value]);
    }),
    rebuild('rename-prefix', (entries, _, r) => {
      const prefix = r.pick(['', 'a/b/', 'other/', '../']);
      entries.forEach((e) => (e[0] = prefix + e[0].slice(e[0].indexOf('/') + 1)));
    }),
  ];
}
