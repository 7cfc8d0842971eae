/**
 * Downloads for datasets: stream to a temporary file next to the destination, with an md5 check and a
 * progress bar on a TTY, then rename into place (atomic on one file system), so an interrupted or
 * corrupt download never leaves a file at the destination.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, basename } from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';

export type ProgressCallback = (received: number, total: number | null) => void;

export interface DownloadOptions {
  /** Expected md5 (hex) of the file; a mismatch is an error and nothing is saved. */
  md5?: string | null;
  /** true: a progress bar on stderr when it is a TTY (default); false: silent; or a callback. */
  progress?: boolean | ProgressCallback;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/** A one-line progress bar redrawn in place on a TTY, at most 10 times a second. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): { update: ProgressCallback; done: () => void } {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  const start = Date.now();
  let last = 0;
  let lastLine = '';
  const draw = (received: number, total: number | null): void => {
    const secs = Math.max((Date.now() - start) / 1000, 1e-3);
    const rate = `${mb(received / secs)} MB/s`;
    const cols = stream.columns || 100;
    let line: string;
    if (total) {
      const frac = Math.min(received / total, 1);
      const tail = ` ${(frac * 100).toFixed(1).padStart(5)}% ${mb(received)}/${mb(total)} MB ${rate}`;
      const width = Math.max(10, Math.min(30, cols - 1 - label.length - tail.length - 3));
      const fill = Math.round(frac * width);
      line = `${label} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}]${tail}`;
    } else {
      line = `${label} ${mb(received)} MB ${rate}`;
    }
    if (line.length > cols - 1) line = line.slice(0, cols - 1);
    stream.write(`\r${line.padEnd(lastLine.length)}`);
    lastLine = line;
  };
  let state: [number, number | null] = [0, null];
  return {
    update: (received, total) => {
      state = [received, total];
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw(received, total);
      }
    },
    done: () => {
      draw(...state);
      stream.write('\n');
    },
  };
}

/** md5 of a file, hex. */
export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Fetch `url` into `dest` (parent folders created). Resolves to `dest`; throws on an HTTP error, a
 * network error or an md5 mismatch, leaving nothing at `dest`.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<string> {
  await mkdir(dirname(dest), { recursive: true });
  const temp = `${dest}.part-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const bar = typeof options.progress === 'function' ? { update: options.progress, done: () => undefined }
    : options.progress === false ? { update: () => undefined, done: () => undefined }
    : progressBar(`downloading ${basename(dest)}`);
  const hash = createHash('md5');
  let out: ReturnType<typeof createWriteStream> | null = null;
  try {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (e) {
      throw new Error(`download: GET ${url} failed: ${(e as Error).message}${(e as Error).cause ? ` (${String((e as { cause: unknown }).cause)})` : ''}`, { cause: e });
    }
    if (!res.ok || !res.body) throw new Error(`download: GET ${url} failed: HTTP ${res.status} ${res.statusText}`);
    const lengthHeader = res.headers.get('content-length');
    const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    out = createWriteStream(temp);
    let received = 0;
    bar.update(0, total);
    for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)) {
      const buf = chunk as Buffer;
      hash.update(buf);
      received += buf.length;
      bar.update(received, total);
      if (!out.write(buf)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    out = null;
    bar.done();
    if (total !== null && received !== total) throw new Error(`download: ${url}: received ${received} bytes, expected ${total} (connection cut short)`);
    const md5 = hash.digest('hex');
    if (options.md5 && md5.toLowerCase() !== options.md5.toLowerCase()) {
      throw new Error(`download: ${url}: md5 mismatch: got ${md5}, expected ${options.md5.toLowerCase()} (the file was not saved)`);
    }
    await rename(temp, dest);
    return dest;
  } catch (e) {
    if (out) out.destroy();
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}
