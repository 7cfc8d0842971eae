/**
 * MNIST from a folder of the standard IDX files, each optionally gzipped (`name` or `name.gz`):
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte`. The folder may also be torchvision's root (files in `MNIST/raw`).
 * Images are stored as one uint8 array N x 1 x H x W (28 x 28 for MNIST; Fashion-MNIST has the same
 * layout and file names).
 *
 *   const train = await mx.data.MNIST.load('data/mnist', { train: true, transform: new mx.data.transforms.ToTensor() });
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ImageArrayDataset, type ImageArrayDatasetOptions } from './dataset.js';
import { FileError, fileSystemError } from '../util/file_error.js';
import { allocate, fileBudget, MAX_DEFLATE_RATIO, type FileBudget } from '../util/file_budget.js';
import { readFileInto } from '../util/read_file.js';

export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
  /** The file it was read from (the name given to parseIdx). */
  file: string;
}

const IDX_TYPES: Record<number, string> = { 0x08: 'ubyte', 0x09: 'byte', 0x0b: 'short', 0x0c: 'int', 0x0d: 'float', 0x0e: 'double' };

/**
 * Parse an IDX file of unsigned bytes with `ndim` dimensions (magic 0x0000080N), validating the magic
 * number and that the size matches the header. `name` is used in errors.
 */
export function parseIdx(buf: Uint8Array, name: string, ndim: number): IdxArray {
  const { dims, size } = parseIdxHeader(buf, buf.length, name, ndim);
  if (buf.length !== size) throw idxSizeError(name, buf.length, dims);
  return { dims, data: buf.subarray(idxHeaderSize(ndim)), file: name };
}

const idxHeaderSize = (ndim: number): number => 4 + 4 * ndim;

function idxSizeError(name: string, got: number, dims: number[], what = 'has'): FileError {
  const header = idxHeaderSize(dims.length);
  const want = header + dims.reduce((a, b) => a * b, 1);
  return new FileError(name, `MNIST: ${name} ${what} ${got} bytes, expected ${want} (a ${header}-byte header and ${dims.join(' x ')} values)`);
}

/**
 * Validate the magic number of an IDX file of unsigned bytes with `ndim` dimensions and read its
 * dimensions from `head` (the first bytes, at least 4 + 4 * ndim when `length`, the file's whole
 * length, allows); `size` is the length the header announces.
 */
function parseIdxHeader(head: Uint8Array, length: number, name: string, ndim: number): { dims: number[]; size: number } {
  const magic = (ndim | 0x0800).toString(16).padStart(8, '0');
  if (length < 4) throw new FileError(name, `MNIST: ${name} has ${length} bytes, too short for an IDX header (magic 0x${magic})`);
  if (head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08 || head[3] !== ndim) {
    const got = Buffer.from(head.subarray(0, 4)).toString('hex');
    const what = head[0] === 0 && head[1] === 0 && IDX_TYPES[head[2]!] ? ` (an IDX file of ${IDX_TYPES[head[2]!]} with ${head[3]} dimensions)` : '';
    throw new FileError(name, `MNIST: ${name} is not an IDX file of unsigned bytes with ${ndim} dimension${ndim > 1 ? 's' : ''}: magic 0x${got}${what}, expected 0x${magic}`);
  }
  const header = idxHeaderSize(ndim);
  if (length < header) throw new FileError(name, `MNIST: ${name} has ${length} bytes, too short for its ${header}-byte IDX header`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  return { dims, size: header + dims.reduce((a, b) => a * b, 1) };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Read `base` from `dir` (plain or .gz, or the dotted variant `train-images.idx3-ubyte`). */
async function readIdxFile(dirs: string[], base: string, ndim: number): Promise<IdxArray> {
  const names = [base, `${base}.gz`, base.replace(/-idx/, '.idx'), `${base.replace(/-idx/, '.idx')}.gz`];
  for (const dir of dirs) {
    for (const n of names) {
      const path = join(dir, n);
      if (!(await isFile(path))) continue;
      const buf = await readIdxBytes(path, ndim);
      return parseIdx(buf, path, ndim);
    }
  }
  throw new FileError(
    join(dirs[0]!, base),
    `MNIST: cannot find ${base} (or ${base}.gz) in ${dirs.join(' or ')}: expected the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte`,
  );
}

/**
 * The bytes of an IDX file, gunzipped when it is gzipped. The header is read first and the array
 * allocated at the size it announces, once that size is known to fit the file (plain: exactly the
 * file's size; gzipped: within deflate's largest ratio of it): a corrupt dimension fails before
 * anything large is allocated, and a gzip bomb is cut off at the announced size.
 */
async function readIdxBytes(path: string, ndim: number): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fileSystemError(path, e, 'IDX file');
  }
  let size: number;
  const head = Buffer.alloc(idxHeaderSize(ndim));
  let headLength: number;
  try {
    size = (await fh.stat()).size;
    headLength = (await fh.read(head, 0, head.length, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  if (headLength >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    return gunzipIdx(path, fileBudget(path, size, { expansion: MAX_DEFLATE_RATIO, basis: `${MAX_DEFLATE_RATIO}x its compressed size, deflate's largest ratio` }), ndim);
  }
  const { dims, size: want } = parseIdxHeader(head.subarray(0, headLength), size, path, ndim);
  if (want !== size) throw idxSizeError(path, size, dims);
  const out = allocate(fileBudget(path, size), Uint8Array, size, 'the IDX array');
  await readFileInto(path, out, 'IDX file');
  return out;
}

/** Stream-gunzip an IDX file into an array of exactly the size its header announces. */
async function gunzipIdx(path: string, budget: FileBudget, ndim: number): Promise<Uint8Array> {
  const header = idxHeaderSize(ndim);
  const head = new Uint8Array(header);
  let got = 0; // decompressed bytes so far
  let out: Uint8Array | null = null;
  let dims: number[] = [];
  const gunzip = createGunzip();
  const raw = createReadStream(path);
  raw.on('error', (e) => gunzip.destroy(e));
  raw.pipe(gunzip);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let bytes: Uint8Array = chunk;
      if (!out) {
        const take = Math.min(header - got, bytes.length);
        head.set(bytes.subarray(0, take), got);
        got += take;
        bytes = bytes.subarray(take);
        if (got < header) continue;
        const parsed = parseIdxHeader(head, header, path, ndim);
        dims = parsed.dims;
        out = allocate(budget, Uint8Array, parsed.size, 'the decompressed IDX array');
        out.set(head);
      }
      if (got + bytes.length > out.length) throw idxSizeError(path, got + bytes.length, dims, 'decompresses to more than');
      out.set(bytes, got);
      got += bytes.length;
    }
  } catch (e) {
    if (e instanceof FileError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code?.startsWith('Z_') || err.code === 'ERR_INVALID_ARG_TYPE') {
      throw new FileError(path, `MNIST: cannot read ${path}: corrupt gzip data (${err.message})`, { cause: e });
    }
    throw fileSystemError(path, e, 'IDX file');
  } finally {
    raw.destroy();
    gunzip.destroy();
  }
  if (!out) {
    parseIdxHeader(head.subarray(0, got), got, path, ndim); // throws: too short for the header
    throw new FileError(path, `MNIST: ${path} decompresses to ${got} bytes, too short for its IDX header`);
  }
  if (got !== out.length) throw idxSizeError(path, got, dims, 'decompresses to');
  return out;
}

export interface MNISTOptions extends Omit<ImageArrayDatasetOptions, 'classes'> {
  /** The training files (default) or the t10k test files. */
  train?: boolean;
  classes?: readonly string[];
}

/** MNIST: `[image, label]` samples of uint8 1x28x28 images (see ImageArrayDataset). */
export class MNIST extends ImageArrayDataset {
  static readonly classes = MNIST_CLASSES;

  constructor(images: Uint8Array, labels: Uint8Array, shape: readonly [number, number, number], readonly train: boolean, options: MNISTOptions = {}) {
    super(images, labels, shape, { ...options, classes: options.classes ?? MNIST_CLASSES });
  }

  static async load(root: string, options: MNISTOptions = {}): Promise<MNIST> {
    const train = options.train ?? true;
    let isDir = false;
    try {
      isDir = (await stat(root)).isDirectory();
    } catch {
      /* reported below */
    }
    if (!isDir) {
      throw new FileError(root, `MNIST: cannot find the folder ${root} (expected a folder with the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz)`);
    }
    const dirs = [root, join(root, 'MNIST', 'raw'), join(root, 'raw')];
    const prefix = train ? 'train' : 't10k';
    const images = await readIdxFile(dirs, `${prefix}-images-idx3-ubyte`, 3);
    const labels = await readIdxFile(dirs, `${prefix}-labels-idx1-ubyte`, 1);
    const [n, h, w] = images.dims as [number, number, number];
    if (labels.dims[0] !== n) throw new FileError(root, `MNIST: ${prefix} images and labels disagree: ${n} images but ${labels.dims[0]} labels (in ${root})`);
    const imagesFile = images.file;
    if (n > 0 && (h === 0 || w === 0)) throw new FileError(imagesFile, `MNIST: ${imagesFile} holds ${n} images of ${h} x ${w} pixels; expected images at least 1 x 1`);
    const classes = options.classes ?? MNIST_CLASSES;
    const bad = labels.data.findIndex((l) => l >= classes.length);
    if (bad >= 0) throw new FileError(labels.file, `MNIST: ${labels.file} label ${bad} is ${labels.data[bad]}, expected 0-${classes.length - 1}`);
    // The arrays are this reader's own (allocated for these files), so views of them are kept.
    return new MNIST(images.data, labels.data, [1, h, w], train, options);
  }
}
