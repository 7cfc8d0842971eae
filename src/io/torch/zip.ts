/**
 * The zip container of PyTorch files, through fflate (reading and writing). What fflate does not
 * check is checked here, so that a damaged or hostile archive gets one line and no allocation beyond
 * what its size warrants: the end-of-archive record must be there (a truncated file loses it), the
 * central directory must lie inside the file with room for every entry it announces, entries must be
 * stored or deflated (PyTorch stores them) with a size the deflate format can reach from their bytes,
 * and every entry must come out at the size the directory says.
 *
 * Writing follows PyTorch's layout: entries stored uncompressed, each entry's data aligned to 64
 * bytes by padding in a local "FB" extra field (as PyTorch's writer does, so the file can be mapped).
 */
import { Zip, ZipPassThrough, unzipSync } from 'fflate';

/** A problem with the archive; the caller puts the file name in front. */
export class ZipError extends Error {
  override name = 'ZipError';
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const CENTRAL_ENTRY_MIN = 46;
/** Deflate cannot expand more than ~1032x; a claim beyond that is a lie meant to make us allocate. */
const MAX_DEFLATE_RATIO = 1032;

function findEndRecord(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lowest = Math.max(0, bytes.length - EOCD_SIZE - 0xffff);
  for (let e = bytes.length - EOCD_SIZE; e >= lowest; e--) {
    if (view.getUint32(e, true) === EOCD_SIGNATURE) return e;
  }
  return -1;
}

/** All entries of a zip archive by name, validated (see the module comment). */
export function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  if (bytes.length < EOCD_SIZE) throw new ZipError(`the file has ${bytes.length} bytes, too few for a zip archive (truncated?)`);
  const end = findEndRecord(bytes);
  if (end < 0) throw new ZipError('the zip archive has no end-of-archive record: the file is truncated or not a zip archive');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = view.getUint16(end + 10, true);
  let dirSize = view.getUint32(end + 12, true);
  let dirOffset = view.getUint32(end + 16, true);
  // Zip64: the locator sits just before the end record and points at the zip64 end record.
  if (end >= 20 && view.getUint32(end - 20, true) === 0x07064b50) {
    const z = Number(view.getBigUint64(end - 12, true));
    if (!(z >= 0 && z + 56 <= end) || view.getUint32(z, true) !== 0x06064b50) throw new ZipError('the zip64 end record is missing or outside the file: truncated or corrupt');
    count = Number(view.getBigUint64(z + 32, true));
    dirSize = Number(view.getBigUint64(z + 40, true));
    dirOffset = Number(view.getBigUint64(z + 48, true));
  }
  if (!(dirOffset + dirSize <= end)) {
    throw new ZipError(`the zip directory (${dirSize} bytes at ${dirOffset}) lies beyond the ${bytes.length}-byte file: truncated or corrupt`);
  }
  if (count * CENTRAL_ENTRY_MIN > dirSize) throw new ZipError(`the zip directory announces ${count} entries in ${dirSize} bytes: corrupt`);
  const sizes = new Map<string, number>();
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        if (f.compression !== 0 && f.compression !== 8) throw new ZipError(`entry ${f.name} uses compression method ${f.compression}; expected stored or deflated entries`);
        const limit = f.compression === 0 ? f.size : f.size * MAX_DEFLATE_RATIO + 64;
        if (f.originalSize > limit || f.size > bytes.length) {
          throw new ZipError(`entry ${f.name} claims ${f.originalSize} bytes from ${f.size} in a ${bytes.length}-byte file: corrupt`);
        }
        sizes.set(f.name, f.originalSize);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ZipError) throw e;
    throw new ZipError(`the zip archive is damaged (${(e as Error).message}): truncated or corrupt`);
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(files)) {
    const expected = sizes.get(name);
    if (data.length !== expected) throw new ZipError(`entry ${name} holds ${data.length} bytes where the zip directory says ${expected}: truncated or corrupt`);
    out.set(name, data);
  }
  return out;
}

/** One entry of an archive being written: its name and its bytes (or a promise of them). */
export interface ZipEntry {
  name: string;
  data: Uint8Array | (() => Promise<Uint8Array>);
}

const ALIGNMENT = 64;
const LOCAL_HEADER = 30;
const DATA_DESCRIPTOR = 16;
/** PyTorch's padding extra field id ('FB'). */
const PADDING_FIELD = 0x4246;
/** A fixed time stamp (fflate needs one from 1980 on): the same content gives the same bytes. */
const MTIME = new Date(1980, 0, 1, 0, 0, 0);
const ZIP32_LIMIT = 2 ** 32 - 1;

/**
 * Write entries as a stored zip archive, entry by entry: the chunks are yielded as they are made, so
 * only one entry's bytes are in memory at a time.
 */
export async function* writeZip(entries: Iterable<ZipEntry>): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let failure: Error | null = null;
  const zip = new Zip((err, chunk) => {
    if (err) failure = err;
    else pending.push(chunk);
  });
  const utf8 = new TextEncoder();
  let offset = 0;
  for (const entry of entries) {
    const data = typeof entry.data === 'function' ? await entry.data() : entry.data;
    const nameBytes = utf8.encode(entry.name).length;
    if (offset + data.length >= ZIP32_LIMIT) throw new ZipError(`the archive would pass 4 GiB at entry ${entry.name}; this writer makes zip archives below 4 GiB (no zip64)`);
    // Pad with an extra field so the data starts on a 64-byte boundary (4 bytes of field header).
    const pad = (ALIGNMENT - ((offset + LOCAL_HEADER + nameBytes + 4) % ALIGNMENT)) % ALIGNMENT;
    const file = new ZipPassThrough(entry.name);
    Object.assign(file, { mtime: MTIME, extra: { [PADDING_FIELD]: new Uint8Array(pad).fill(0x5a) } });
    zip.add(file);
    file.push(data, true);
    offset += LOCAL_HEADER + nameBytes + 4 + pad + data.length + DATA_DESCRIPTOR;
    if (failure) throw failure;
    const out = pending;
    pending = [];
    yield* out;
  }
  zip.end();
  if (failure) throw failure;
  yield* pending;
}
