/**
 * What a file can hold, checked before a reader allocates. Every allocation a reader sizes from a
 * file's contents (a header's length field, a tensor's offsets, a tar member's size, an image's
 * width x height) goes through `allocate` or `reserve` here, which compare the request with what a
 * valid file of that size could decode to and throw a FileError instead of allocating when it is
 * more: a corrupt size field fails in one line, never as a multi-gigabyte allocation or a crash.
 *
 *   const budget = fileBudget(path, size);                    // raw formats: at most the file's bytes
 *   const json = allocate(budget, Uint8Array, n, 'the JSON header');
 *   const png = fileBudget(path, size, { expansion: PNG_EXPANSION }); // compressed formats: a ratio
 *
 * The largest request since the last reset is kept for the fuzz tests (readerAllocations()).
 */
import { FileError } from './file_error.js';

/**
 * Deflate's largest compression ratio: a 258-byte match costs at least 2 bits once a Huffman table
 * is set up, so 1 compressed byte can stand for at most 258 * 4 = 1032 output bytes (zlib's docs).
 */
export const MAX_DEFLATE_RATIO = 1032;

export interface FileBudget {
  readonly file: string;
  /** The file's size. */
  readonly fileBytes: number;
  /** The most bytes one allocation for this file may take. */
  readonly limit: number;
  /** Why the limit is what it is, for the error message ("the file's size", "1032x the compressed size"). */
  readonly basis: string;
}

export interface FileBudgetOptions {
  /** Output bytes a valid file can decode to per byte of it (1 for raw formats; default 1). */
  expansion?: number;
  /** Explains `expansion` in errors (default "the file's size"). */
  basis?: string;
}

export function fileBudget(file: string, fileBytes: number, options: FileBudgetOptions = {}): FileBudget {
  const expansion = options.expansion ?? 1;
  return { file, fileBytes, limit: fileBytes * expansion, basis: options.basis ?? "the file's size" };
}

let largest = 0;
let requests = 0;

/** The largest request since the last reset, and how many requests were checked. */
export function readerAllocations(): { largest: number; requests: number } {
  return { largest, requests };
}

export function resetReaderAllocations(): void {
  largest = 0;
  requests = 0;
}

/**
 * Check that `bytes` for `what` fit the budget (a decoder library will allocate them); throws a
 * FileError naming the file otherwise.
 */
export function reserve(budget: FileBudget, bytes: number, what: string): void {
  if (!(Number.isSafeInteger(bytes) && bytes >= 0) || bytes > budget.limit) {
    const size = Number.isFinite(bytes) ? `${bytes} bytes` : String(bytes);
    throw new FileError(
      budget.file,
      `${budget.file}: ${what} would take ${size}, more than a ${budget.fileBytes}-byte file can hold (at most ${budget.limit} bytes, from ${budget.basis}); the file is corrupt or truncated`,
    );
  }
  requests++;
  if (bytes > largest) largest = bytes;
}

type ArrayOf<T> = new (length: number) => T;

/** A zero-filled array of `length` elements, once `reserve` has accepted its bytes. */
export function allocate<T extends { readonly byteLength: number }>(
  budget: FileBudget,
  ctor: ArrayOf<T> & { readonly BYTES_PER_ELEMENT: number },
  length: number,
  what: string,
): T {
  reserve(budget, length * ctor.BYTES_PER_ELEMENT, what);
  return new ctor(length);
}
