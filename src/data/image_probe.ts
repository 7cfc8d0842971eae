/**
 * A PNG's or JPEG's structure and dimensions, read before a decoder allocates anything: the decoders
 * (pngjs, jpeg-js) size their buffers from the width and height in the header, so a corrupt header
 * could ask for gigabytes. A header is accepted only when the file could hold an image that large:
 *
 * - PNG: the image data (IDAT chunks) is deflate-compressed, so it decodes to at most 1032 bytes per
 *   compressed byte (MAX_DEFLATE_RATIO); the filtered rows of a W x H image need a known number of
 *   bytes, so a header asking for more than the IDAT chunks can hold is refused;
 * - JPEG: every 8 x 8 block of the first component costs at least one bit of coded data (its DC
 *   coefficient), so a W x H image needs ceil(W/8) * ceil(H/8) / 8 bytes of it: a header asking for
 *   more blocks than 8 per byte of the file is refused.
 * The decoded size is then reserved through the file budget (decodeImage).
 */
import { inflateSync } from 'node:zlib';
import { FileError } from '../util/file_error.js';
import { MAX_DEFLATE_RATIO } from '../util/file_budget.js';

export interface ImageProbe {
  format: 'PNG' | 'JPEG';
  width: number;
  height: number;
  /** Bytes the decoder and decodeImage allocate for this image, at most (an estimate from above). */
  decodeBytes: number;
}

export interface PngProbe extends ImageProbe {
  /** Bytes of filtered rows the header describes. */
  rowBytes: number;
  interlaced: boolean;
  /** [start, end) of each IDAT chunk's data. */
  idat: [number, number][];
}

/** Decoded bytes a valid PNG can need per byte of it (raw rows, RGBA output, RGB copy): see decodeBytes. */
export const PNG_EXPANSION = 64 * MAX_DEFLATE_RATIO;
/**
 * The same for JPEG: 8 blocks of 64 pixels per byte at most, MCU padding at most 4x that (a 1 x 1
 * image is one 16 x 16 MCU), 35 bytes per padded pixel (4 components of int32 coefficients, RGB).
 */
export const JPEG_EXPANSION = 8 * 64 * 4 * 35;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Channels per PNG colour type, and the bit depths each allows. */
const PNG_COLOR: Record<number, { channels: number; depths: number[]; name: string }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16], name: 'greyscale' },
  2: { channels: 3, depths: [8, 16], name: 'RGB' },
  3: { channels: 1, depths: [1, 2, 4, 8], name: 'palette' },
  4: { channels: 2, depths: [8, 16], name: 'greyscale + alpha' },
  6: { channels: 4, depths: [8, 16], name: 'RGBA' },
};
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) + b[at + 1]!;
const chunkType = (b: Uint8Array, at: number): string => JSON.stringify(String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!)).slice(1, -1);

/** Check a PNG's chunk layout and header against its size; throws a FileError naming `file`. */
export function probePng(bytes: Uint8Array, file: string): PngProbe {
  const bad = (problem: string): never => {
    throw new FileError(file, `cannot decode ${file}: ${problem}`);
  };
  if (!isPng(bytes)) bad('not a PNG file (no PNG signature)');
  let at = 8;
  let header: { width: number; height: number; depth: number; color: number; interlace: number } | null = null;
  let idat = 0;
  const idatChunks: [number, number][] = [];
  while (at < bytes.length) {
    if (at + 8 > bytes.length) bad(`the PNG ends inside a chunk header at byte ${at} (truncated file?)`);
    const length = u32(bytes, at);
    const type = chunkType(bytes, at + 4);
    if (length > 0x7fffffff) bad(`PNG chunk ${type} at byte ${at} has length ${length}; expected at most 2^31 - 1`);
    if (at + 12 + length > bytes.length) {
      bad(`PNG chunk ${type} at byte ${at} claims ${length} bytes but ${Math.max(0, bytes.length - at - 12)} remain (truncated file?)`);
    }
    if (header === null) {
      if (type !== 'IHDR' || length !== 13) bad(`the PNG starts with chunk ${type} of ${length} bytes; expected IHDR of 13 bytes`);
      const h = { width: u32(bytes, at + 8), height: u32(bytes, at + 12), depth: bytes[at + 16]!, color: bytes[at + 17]!, interlace: bytes[at + 20]! };
      if (h.width === 0 || h.height === 0 || h.width > 0x7fffffff || h.height > 0x7fffffff) {
        bad(`the PNG header says ${h.width} x ${h.height} pixels; expected 1 to 2^31 - 1 each way`);
      }
      const color = PNG_COLOR[h.color];
      if (!color) bad(`the PNG header has colour type ${h.color}; expected 0, 2, 3, 4 or 6`);
      if (!color!.depths.includes(h.depth)) bad(`the PNG header has bit depth ${h.depth} for ${color!.name}; expected ${color!.depths.join(', ')}`);
      if (h.interlace > 1) bad(`the PNG header has interlace method ${h.interlace}; expected 0 or 1`);
      header = h;
    } else if (type === 'IDAT') {
      idat += length;
      idatChunks.push([at + 8, at + 8 + length]);
    }
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  if (header === null) return bad('the PNG has no IHDR chunk');
  if (idat === 0) bad('the PNG has no image data (no IDAT chunk)');
  const { width, height, depth, color, interlace } = header;
  const bits = PNG_COLOR[color]!.channels * depth;
  // pngjs computes a row's bytes with 32-bit shifts: a wider row would come out negative.
  if (width * bits + 7 > 0x7fffffff) bad(`the PNG header says ${width} pixels of ${bits} bits per row; rows of more than 2^31 bits are not supported`);
  const rowBytes = (w: number): number => (w === 0 ? 0 : 1 + Math.ceil((w * bits) / 8));
  let raw = 0;
  if (interlace === 0) raw = height * rowBytes(width);
  else {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const w = width > x0 ? Math.ceil((width - x0) / dx) : 0;
      const h = height > y0 ? Math.ceil((height - y0) / dy) : 0;
      raw += h * rowBytes(w);
    }
  }
  // zlib's 2-byte header and 4-byte checksum surround the deflate data.
  if (raw > MAX_DEFLATE_RATIO * Math.max(0, idat - 6) + MAX_DEFLATE_RATIO) {
    bad(`the PNG header says ${width} x ${height} pixels (${raw} bytes of rows) but its ${idat} bytes of image data can hold at most ${MAX_DEFLATE_RATIO}x that; truncated or corrupt`);
  }
  // pngjs inflates the rows and writes RGBA; decodeImage then copies RGB.
  return { format: 'PNG', width, height, decodeBytes: raw + 7 * width * height, rowBytes: raw, interlaced: interlace === 1, idat: idatChunks };
}

/**
 * Inflate an interlaced PNG's image data with its header's size as the limit: pngjs inflates
 * interlaced images without one (non-interlaced ones with one), so image data that inflates to far
 * more than its rows (up to 1032 times its size) would all be allocated.
 */
export function checkPngInflate(bytes: Uint8Array, probe: PngProbe, file: string): void {
  if (!probe.interlaced) return;
  const data = new Uint8Array(probe.idat.reduce((n, [a, b]) => n + b - a, 0));
  let at = 0;
  for (const [a, b] of probe.idat) {
    data.set(bytes.subarray(a, b), at);
    at += b - a;
  }
  try {
    inflateSync(data, { maxOutputLength: probe.rowBytes });
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new FileError(
      file,
      tooLarge
        ? `cannot decode ${file}: the PNG image data inflates to more than the ${probe.rowBytes} bytes of rows its ${probe.width} x ${probe.height} header describes`
        : `cannot decode ${file}: the PNG image data is not valid zlib data (${(e as Error).message})`,
      { cause: e },
    );
  }
}

const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Check a JPEG's segments up to its frame header against its size; throws a FileError naming `file`. */
export function probeJpeg(bytes: Uint8Array, file: string): ImageProbe {
  const bad = (problem: string): never => {
    throw new FileError(file, `cannot decode ${file}: ${problem}`);
  };
  if (!isJpeg(bytes)) bad('not a JPEG file (no start-of-image marker)');
  let at = 2;
  for (;;) {
    while (at < bytes.length && bytes[at] === 0xff && bytes[at + 1] === 0xff) at++; // fill bytes
    if (at + 4 > bytes.length) bad(`the JPEG ends at byte ${at} before its frame header (truncated file?)`);
    if (bytes[at] !== 0xff) bad(`byte ${at} of the JPEG is 0x${bytes[at]!.toString(16)}; expected a marker (0xFF) before the frame header`);
    const marker = bytes[at + 1]!;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) bad(`the JPEG reaches ${marker === 0xd9 ? 'its end' : 'its image data'} at byte ${at} without a frame header (SOF)`);
    const length = u16(bytes, at + 2);
    if (length < 2 || at + 2 + length > bytes.length) bad(`JPEG segment 0xFF${marker.toString(16).toUpperCase()} at byte ${at} has length ${length}, beyond the file's ${bytes.length} bytes (truncated file?)`);
    if (SOF_MARKERS.has(marker)) {
      if (length < 8) bad(`the JPEG frame header at byte ${at} has length ${length}; expected at least 8`);
      const height = u16(bytes, at + 5);
      const width = u16(bytes, at + 7);
      const components = bytes[at + 9]!;
      if (width === 0 || height === 0) bad(`the JPEG frame header says ${width} x ${height} pixels; expected at least 1 x 1`);
      if (components < 1 || components > 4) bad(`the JPEG frame header has ${components} components; expected 1 to 4`);
      const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
      if (blocks > 8 * bytes.length) {
        bad(`the JPEG frame header says ${width} x ${height} pixels (${blocks} blocks of 8 x 8) but a ${bytes.length}-byte file codes at most ${8 * bytes.length}; truncated or corrupt`);
      }
      // jpeg-js keeps each component as 8 x 8 blocks of int32 coefficients (MCU-padded), then writes RGB.
      const padded = Math.ceil(width / 16) * 16 * Math.ceil(height / 16) * 16;
      return { format: 'JPEG', width, height, decodeBytes: padded * (3 + 8 * components) };
    }
    at += 2 + length;
  }
}
