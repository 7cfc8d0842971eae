/**
 * Tar archives through tar-stream: a streaming reader (ustar, pax and GNU long names), gunzipping on
 * the fly with node:zlib, enough to pick members out of dataset archives such as
 * cifar-10-binary.tar.gz without extracting them (members the caller does not select are skipped
 * without being copied), and a writer, for tests and fixtures. What is added here is errors that
 * name the archive and say what was wrong: corrupt gzip data, a block that is not a tar header, an
 * archive cut short inside a member or a header.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip, gzip } from 'node:zlib';
import { pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { extract as tarExtract, pack as tarPack, type Extract } from 'tar-stream';
import { FileError, fileSystemError, quoteName } from '../util/file_error.js';
import { fileBudget, reserve, MAX_DEFLATE_RATIO, type FileBudget } from '../util/file_budget.js';

export interface TarHeader {
  name: string;
  size: number;
  /** '0' file, '5' directory, ... (the ustar typeflag; '\0' is reported as '0'). */
  type: string;
}

export interface ReadTarOptions {
  /**
   * Whether to collect a regular-file member's bytes. It may throw (e.g. on a member of the wrong
   * size): the reading ends and the error is rethrown as it is, before anything is allocated.
   */
  select: (header: TarHeader) => boolean;
  /** Receives each selected member, complete. */
  onEntry: (header: TarHeader, data: Uint8Array) => void;
}

const BLOCK = 512;

/** tar-stream's member types as ustar typeflags (what TarHeader.type has always reported). */
const TYPEFLAG: Record<string, string> = {
  file: '0', link: '1', symlink: '2', 'character-device': '3', 'block-device': '4', directory: '5', fifo: '6', 'contiguous-file': '7',
};

/** Whether the file starts with the gzip magic bytes. */
export async function isGzipFile(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw fileSystemError(file, e, 'tar or .tar.gz archive');
  }
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** Resolves when the writable can take more (or has closed, e.g. on an error). */
function drained(w: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

/**
 * What an archive can hold: its size, or for a .tar.gz deflate's largest ratio times its size. A
 * member's bytes are allocated only within it (a size field of a corrupt header fails in one line).
 */
export async function tarBudget(file: string): Promise<FileBudget> {
  const gz = await isGzipFile(file);
  const { size } = await stat(file);
  return gz
    ? fileBudget(file, size, { expansion: MAX_DEFLATE_RATIO, basis: `${MAX_DEFLATE_RATIO}x its compressed size, deflate's largest ratio` })
    : fileBudget(file, size);
}

/**
 * Stream a tar (or .tar.gz) file, handing each selected member to `onEntry`. Errors are FileErrors
 * naming the file: corrupt gzip data, a block that is not a tar header, a member larger than the
 * archive can hold, or an archive cut short inside a member. An error thrown by `select` or
 * `onEntry` ends the reading and is rethrown as it is.
 */
export async function readTar(file: string, options: ReadTarOptions): Promise<void> {
  const gz = await isGzipFile(file);
  const budget = await tarBudget(file);
  const inStream = gz ? ' of the decompressed stream' : '';
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  let source: Readable = raw;
  if (gz) {
    const gunzip = createGunzip({ chunkSize: 1 << 20 });
    pipeline(raw, gunzip, () => undefined); // errors surface through gunzip's iteration
    source = gunzip;
  }

  // Old-style (pre-POSIX) headers are accepted too, as long as their checksum holds.
  const extract = tarExtract({ allowUnknownFormat: true } as Parameters<typeof tarExtract>[0]); // an option the typings lack
  let fed = 0; // bytes of tar data written to the extractor
  /** The member last seen: its header, the header's offset in the archive, how many bytes of it arrived. */
  let member = null as { header: TarHeader; offset: number; got: number } | null;
  let entryError: unknown = null; // thrown by onEntry
  extract.on('entry', (h, stream, next) => {
    const type = (h.type !== null && TYPEFLAG[h.type]) || '?';
    const header: TarHeader = { name: h.name, size: h.size, type };
    const m = { header, offset: stream.offset, got: 0 };
    member = m;
    stream.on('error', () => undefined); // the extractor reports the same error
    let data: Buffer | null = null;
    try {
      // tar-stream never ends the stream of an entry whose size field it could not read (a base-256
      // field starting with neither 0x80 nor 0xFF gives null, and null >= 0 passes its check), nor of
      // a folder entry that claims data: the reading would wait forever (the process then exits with
      // the promise unsettled).
      if (typeof h.size !== 'number' || !Number.isSafeInteger(h.size) || h.size < 0) {
        throw new FileError(file, `${file}: not a valid tar archive (bad size field in the header of member ${quoteName(header.name)}${inStream})`);
      }
      if (h.type === 'directory' && h.size > 0) {
        throw new FileError(file, `${file}: not a valid tar archive (member ${header.name} is a folder entry claiming ${h.size} bytes of data; expected 0${inStream})`);
      }
      if ((type === '0' || type === '7') && options.select(header)) {
        reserve(budget, h.size, `member ${header.name}`);
        data = Buffer.allocUnsafe(h.size);
      }
    } catch (e) {
      entryError = e;
      extract.destroy(e as Error);
      stream.resume();
      return;
    }
    let delivered = false;
    const deliver = (): void => {
      if (delivered || !data) return;
      delivered = true;
      try {
        options.onEntry(header, data);
      } catch (e) {
        entryError = e;
        extract.destroy(e as Error);
      }
    };
    stream.on('data', (bytes) => {
      const chunk = bytes as Buffer;
      if (data) data.set(chunk, m.got);
      m.got += chunk.length;
      // Deliver as soon as the bytes are all there: a stream missing only the final padding still
      // fails the extractor, before this member's 'end' would come.
      if (m.got === h.size) deliver();
    });
    stream.on('end', () => {
      if (m.got === h.size) deliver();
      next();
    });
  });
  const finished = new Promise<void>((resolve, reject) => {
    extract.on('error', reject);
    extract.on('finish', () => resolve());
    extract.on('close', () => resolve());
  });
  finished.catch(() => undefined); // awaited below, unless feeding fails first

  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (extract.destroying) break;
      fed += chunk.length;
      if (!extract.write(chunk)) await drained(extract);
    }
    if (!extract.destroying) extract.end(null); // (the typings want an argument; null is no data)
  } catch (e) {
    extract.destroy();
    const err = e as NodeJS.ErrnoException;
    if (err.code && err.code.startsWith('Z_')) {
      throw new FileError(file, `${file}: corrupt or truncated gzip data (${err.message})`, { cause: e });
    }
    throw fileSystemError(file, e, 'tar or .tar.gz archive');
  } finally {
    if (!source.destroyed) source.destroy();
    if (!raw.destroyed) raw.destroy();
  }

  try {
    await finished;
  } catch (e) {
    if (entryError !== null) throw entryError;
    const msg = (e as Error).message;
    const m = member;
    const after = m ? `after member ${m.header.name}` : 'in the first header';
    if (msg === 'Unexpected end of data') {
      if (m && m.got < m.header.size) {
        throw new FileError(file, `${file}: truncated tar archive: member ${m.header.name} has ${m.got} of its ${m.header.size} bytes`, { cause: e });
      }
      // Only the padding after the last member is missing: accept the archive (its members all came).
      const paddedEnd = m ? m.offset + BLOCK + Math.ceil(m.header.size / BLOCK) * BLOCK : 0;
      if (m && fed <= paddedEnd) return;
      throw new FileError(file, `${file}: truncated tar archive (ends inside a header at byte ${fed}${inStream})`, { cause: e });
    }
    if (msg.startsWith('Invalid tar header')) {
      throw new FileError(file, `${file}: not a valid tar archive (bad header checksum ${after}${inStream})`, { cause: e });
    }
    if (msg === 'Invalid header') {
      throw new FileError(file, `${file}: not a valid tar archive (bad size field in the header ${after}${inStream})`, { cause: e });
    }
    throw new FileError(file, `${file}: not a valid tar archive (${msg}, ${after}${inStream})`, { cause: e });
  }
}

export interface TarEntry {
  name: string;
  data?: Uint8Array;
  /** 'file' (default) or 'dir'. */
  type?: 'file' | 'dir';
}

const gzipAsync = promisify(gzip);

/**
 * A tar archive of `entries` (ustar; names that do not fit a ustar header get a pax header), gzipped
 * if asked. Entries have uid/gid 0, mode 644 (755 for folders) and mtime `options.mtime` (seconds, default 0).
 */
export async function writeTar(entries: readonly TarEntry[], options: { gzip?: boolean; mtime?: number } = {}): Promise<Uint8Array> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  collected.catch(() => undefined); // awaited below
  const mtime = new Date(Math.floor(options.mtime ?? 0) * 1000);
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === 'dir') {
        pack.entry({ name: e.name, type: 'directory', mtime }, done);
      } else {
        const data = e.data ?? new Uint8Array(0);
        // tar-stream takes the body only as a Buffer (a plain Uint8Array would be read as no body).
        pack.entry({ name: e.name, type: 'file', mtime }, Buffer.from(data.buffer, data.byteOffset, data.byteLength), done);
      }
    });
  }
  pack.finalize();
  await collected;
  const tar = Buffer.concat(chunks);
  return options.gzip ? gzipAsync(tar) : tar;
}
