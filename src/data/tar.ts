/**
 * A small streaming tar reader (ustar, pax and GNU long names), gunzipping on the fly: enough to pick
 * members out of dataset archives such as cifar-10-binary.tar.gz without extracting them. Members the
 * caller does not select are skipped without being copied. Also a tar writer, for tests and fixtures.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';

export interface TarHeader {
  name: string;
  size: number;
  /** '0' file, '5' directory, ... (the ustar typeflag; '\0' is reported as '0'). */
  type: string;
}

export interface ReadTarOptions {
  /** Whether to collect a regular-file member's bytes. */
  select: (header: TarHeader) => boolean;
  /** Receives each selected member, complete. */
  onEntry: (header: TarHeader, data: Uint8Array) => void;
}

const BLOCK = 512;

function cstring(b: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8');
}

function parseNumber(b: Uint8Array, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // GNU base-256 (big-endian, first byte's top bit set).
    let v = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstring(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  const stored = parseNumber(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

function parsePax(data: Uint8Array): Record<string, string> {
  // Records "<length> <key>=<value>\n", the length counting bytes (UTF-8) of the whole record.
  const out: Record<string, string> = {};
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(buf.toString('latin1', pos, space), 10);
    if (!(len > 0) || pos + len > buf.length) break;
    const rec = buf.toString('utf8', space + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** Whether the file starts with the gzip magic bytes. */
export async function isGzipFile(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/**
 * Stream a tar (or .tar.gz) file, handing each selected member to `onEntry`. Errors name the file:
 * corrupt gzip data, a block that is not a tar header, or an archive cut short inside a member.
 */
export async function readTar(file: string, options: ReadTarOptions): Promise<void> {
  const gz = await isGzipFile(file);
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  let source: Readable = raw;
  if (gz) {
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    pipeline(raw, gunzip, () => undefined); // errors surface through gunzip's iteration
    source = gunzip;
  }
  const header = new Uint8Array(BLOCK);
  let headerFill = 0;
  let offset = 0; // archive byte offset of the next unread byte
  let member: { header: TarHeader; data: Uint8Array | null; kind: 'file' | 'pax' | 'longname' | 'skip'; got: number; pad: number } | null = null;
  let pending: { path?: string; longName?: string } = {};
  let ended = false;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let pos = 0;
      while (pos < chunk.length && !ended) {
        if (member) {
          const want = member.header.size - member.got;
          if (want > 0) {
            const n = Math.min(want, chunk.length - pos);
            if (member.data) member.data.set(chunk.subarray(pos, pos + n), member.got);
            member.got += n;
            pos += n;
            offset += n;
            continue;
          }
          if (member.pad > 0) {
            const n = Math.min(member.pad, chunk.length - pos);
            member.pad -= n;
            pos += n;
            offset += n;
            if (member.pad > 0) continue;
          }
          const m = member;
          member = null;
          if (m.kind === 'file') options.onEntry(m.header, m.data!);
          else if (m.kind === 'pax') {
            const rec = parsePax(m.data!);
            if (rec.path !== undefined) pending.path = rec.path;
          } else if (m.kind === 'longname') pending.longName = cstring(m.data!, 0, m.data!.length);
          continue;
        }
        const n = Math.min(BLOCK - headerFill, chunk.length - pos);
        header.set(chunk.subarray(pos, pos + n), headerFill);
        headerFill += n;
        pos += n;
        offset += n;
        if (headerFill < BLOCK) continue;
        headerFill = 0;
        if (header.every((v) => v === 0)) {
          ended = true; // end-of-archive marker
          break;
        }
        if (!checksumOk(header)) {
          throw new Error(`${file}: not a valid tar archive (bad header checksum at byte ${offset - BLOCK}${gz ? ' of the decompressed stream' : ''})`);
        }
        let name = cstring(header, 0, 100);
        const magic = cstring(header, 257, 6);
        if (magic.startsWith('ustar')) {
          const prefix = cstring(header, 345, 155);
          if (prefix) name = `${prefix}/${name}`;
        }
        if (pending.path !== undefined) name = pending.path;
        else if (pending.longName !== undefined) name = pending.longName;
        const flag = String.fromCharCode(header[156]!);
        const type = flag === '\0' ? '0' : flag;
        const size = parseNumber(header, 124, 12);
        if (!Number.isFinite(size) || size < 0) throw new Error(`${file}: not a valid tar archive (bad size field in the header of ${JSON.stringify(name)})`);
        const h: TarHeader = { name, size, type };
        let kind: 'file' | 'pax' | 'longname' | 'skip' = 'skip';
        if (type === 'x') kind = 'pax';
        else if (type === 'L') kind = 'longname';
        else if (type === 'g' || type === 'K') kind = 'skip';
        else {
          pending = {};
          if ((type === '0' || type === '7') && options.select(h)) kind = 'file';
        }
        const data = kind === 'skip' ? null : kind === 'file' ? Buffer.allocUnsafe(size) : new Uint8Array(size);
        member = { header: h, data, kind, got: 0, pad: (BLOCK - (size % BLOCK)) % BLOCK };
        if (size === 0 && member.pad === 0) {
          // Empty member: finish it at once (a chunk boundary might otherwise hide it).
          member = null;
          if (kind === 'file') options.onEntry(h, data!);
        }
      }
      if (ended) break;
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code && err.code.startsWith('Z_')) {
      throw new Error(`${file}: corrupt or truncated gzip data (${err.message})`, { cause: e });
    }
    if (err.code === 'ENOENT') throw new Error(`${file}: no such file`, { cause: e });
    throw e;
  } finally {
    if (!source.destroyed) source.destroy();
    if (!raw.destroyed) raw.destroy();
  }
  if (member) {
    if (member.got < member.header.size) {
      throw new Error(`${file}: truncated tar archive: member ${member.header.name} has ${member.got} of its ${member.header.size} bytes`);
    }
    // Only the padding after the last member is missing: accept the member.
    if (member.kind === 'file') options.onEntry(member.header, member.data!);
  } else if (headerFill > 0) {
    throw new Error(`${file}: truncated tar archive (ends inside a header at byte ${offset})`);
  }
}

export interface TarEntry {
  name: string;
  data?: Uint8Array;
  /** 'file' (default) or 'dir'. */
  type?: 'file' | 'dir';
}

function writeOctal(h: Uint8Array, start: number, len: number, v: number): void {
  const s = v.toString(8).padStart(len - 1, '0');
  if (s.length > len - 1) throw new RangeError(`tar: value ${v} does not fit a ${len}-byte field`);
  h.set(Buffer.from(s + '\0', 'ascii'), start);
}

/** A ustar archive of `entries` (names up to 100 bytes, or split at a '/' with a 155-byte prefix). */
export function writeTar(entries: readonly TarEntry[], options: { gzip?: boolean; mtime?: number } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const isDir = e.type === 'dir';
    const data = isDir ? new Uint8Array(0) : e.data ?? new Uint8Array(0);
    const name = isDir && !e.name.endsWith('/') ? `${e.name}/` : e.name;
    let prefix = '';
    let base = name;
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 2);
      prefix = name.slice(0, cut);
      base = name.slice(cut + 1);
      if (cut < 0 || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new RangeError(`tar: name too long: ${name}`);
    }
    const h = new Uint8Array(BLOCK);
    h.set(Buffer.from(base, 'utf8'), 0);
    writeOctal(h, 100, 8, isDir ? 0o755 : 0o644);
    writeOctal(h, 108, 8, 0);
    writeOctal(h, 116, 8, 0);
    writeOctal(h, 124, 12, data.length);
    writeOctal(h, 136, 12, Math.floor(options.mtime ?? 0));
    h.fill(32, 148, 156);
    h[156] = (isDir ? '5' : '0').charCodeAt(0);
    h.set(Buffer.from('ustar\u000000', 'latin1'), 257);
    if (prefix) h.set(Buffer.from(prefix, 'utf8'), 345);
    let sum = 0;
    for (const v of h) sum += v;
    h.set(Buffer.from(sum.toString(8).padStart(6, '0') + '\0 ', 'ascii'), 148);
    parts.push(h, data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(2 * BLOCK));
  const tar = Buffer.concat(parts);
  return options.gzip ? gzipSync(tar) : tar;
}
