/**
 * Downloads for datasets and pretrained weights: stream to a temporary file next to the destination,
 * with an md5 or sha256-prefix check and a progress bar on a TTY (the shared ProgressBar of util/progress_bar.ts, in bytes), then rename into
 * place (atomic on one file system), so an interrupted or corrupt download never leaves a file at the
 * destination.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, basename } from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { ProgressBar } from '../util/progress_bar.js';

export type ProgressCallback = (received: number, total: number | null) => void;

export interface DownloadOptions {
  /** Expected md5 (hex) of the file; a mismatch is an error and nothing is saved. */
  md5?: string | null;
  /**
   * Expected leading hex digits of the file's sha256 (torch.hub's check of the `-<hash>.` in a file
   * name); a mismatch is an error and nothing is saved.
   */
  sha256Prefix?: string | null;
  /** true: a progress bar on stderr when it is a TTY (default); false: silent; or a callback. */
  progress?: boolean | ProgressCallback;
}

/** A download bar in bytes (MB, MB/s; no bar while the length is unknown), drawn only on a TTY. */
function byteBar(label: string): { update: ProgressCallback; done: () => void } {
  const bar = new ProgressBar(label, { unit: 'bytes' });
  return { update: (received, total) => bar.update(received, { total }), done: () => bar.stop() };
}

/** md5 of a file, hex. */
export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Fetch `url` into `dest` (parent folders created). Resolves to `dest`; throws on an HTTP error, a
 * network error or a hash mismatch, leaving nothing at `dest`.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions = {}): Promise<string> {
  await mkdir(dirname(dest), { recursive: true });
  const temp = `${dest}.part-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const bar: { update: ProgressCallback; done: () => void } = typeof options.progress === 'function' ? { update: options.progress, done: () => undefined }
    : options.progress === false ? { update: () => undefined, done: () => undefined }
    : byteBar(`downloading ${basename(dest)}`);
  const hash = createHash('md5');
  const sha256 = options.sha256Prefix ? createHash('sha256') : null;
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
      sha256?.update(buf);
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
    if (sha256 && options.sha256Prefix) {
      const digest = sha256.digest('hex');
      const prefix = options.sha256Prefix.toLowerCase();
      if (!digest.startsWith(prefix)) {
        throw new Error(`download: ${url}: invalid hash value: its sha256 starts with ${digest.slice(0, prefix.length)}, expected ${prefix} (the file was not saved)`);
      }
    }
    await rename(temp, dest);
    return dest;
  } catch (e) {
    bar.done(); // end the bar's line (and its redraw timer) before the error is reported
    if (out) out.destroy();
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}
