/**
 * Reading exactly the bytes a reader has sized (by stat, or from a header it has validated): a file
 * that ends early, having shrunk since it was sized, is a FileError naming it.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { FileError, fileSystemError } from './file_error.js';

/** Fill `into` from the open file `fh`, starting at byte `position`. */
export async function readExactly(fh: FileHandle, into: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) {
      throw new FileError(path, `${path} ended after byte ${position + done} while ${into.length} bytes from byte ${position} were being read (changed while being read?)`);
    }
    done += bytesRead;
  }
}

/** Open `path` and fill `into` from its first byte; `what` names the kind of file in errors. */
export async function readFileInto(path: string, into: Uint8Array, what: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fileSystemError(path, e, what);
  }
  try {
    await readExactly(fh, into, 0, path);
  } finally {
    await fh.close();
  }
}
