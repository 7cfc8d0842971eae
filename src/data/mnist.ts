/**
 * MNIST from a folder of the standard IDX files, each optionally gzipped (`name` or `name.gz`):
 * `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte`. The folder may also be torchvision's root (files in `MNIST/raw`).
 * Images are stored as one uint8 array N x 1 x H x W (28 x 28 for MNIST; Fashion-MNIST has the same
 * layout and file names).
 *
 *   const train = await mx.data.MNIST.load('data/mnist', { train: true, transform: new mx.data.transforms.ToTensor() });
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { ImageArrayDataset, type ImageArrayDatasetOptions } from './dataset.js';

const gunzipAsync = promisify(gunzip);

export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const IDX_TYPES: Record<number, string> = { 0x08: 'ubyte', 0x09: 'byte', 0x0b: 'short', 0x0c: 'int', 0x0d: 'float', 0x0e: 'double' };

/**
 * Parse an IDX file of unsigned bytes with `ndim` dimensions (magic 0x0000080N), validating the magic
 * number and that the size matches the header. `name` is used in errors.
 */
export function parseIdx(buf: Uint8Array, name: string, ndim: number): IdxArray {
  const magic = (ndim | 0x0800).toString(16).padStart(8, '0');
  if (buf.length < 4) throw new Error(`MNIST: ${name} has ${buf.length} bytes, too short for an IDX header (magic 0x${magic})`);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== ndim) {
    const got = Buffer.from(buf.subarray(0, 4)).toString('hex');
    const what = buf[0] === 0 && buf[1] === 0 && IDX_TYPES[buf[2]!] ? ` (an IDX file of ${IDX_TYPES[buf[2]!]} with ${buf[3]} dimensions)` : '';
    throw new Error(`MNIST: ${name} is not an IDX file of unsigned bytes with ${ndim} dimension${ndim > 1 ? 's' : ''}: magic 0x${got}${what}, expected 0x${magic}`);
  }
  const header = 4 + 4 * ndim;
  if (buf.length < header) throw new Error(`MNIST: ${name} has ${buf.length} bytes, too short for its ${header}-byte IDX header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== header + count) {
    throw new Error(`MNIST: ${name} has ${buf.length} bytes, expected ${header + count} (a ${header}-byte header and ${dims.join(' x ')} values)`);
  }
  return { dims, data: buf.subarray(header) };
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
      let buf: Uint8Array = await readFile(path);
      if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
        try {
          buf = await gunzipAsync(buf);
        } catch (e) {
          throw new Error(`MNIST: cannot read ${path}: corrupt gzip data (${(e as Error).message})`, { cause: e });
        }
      }
      return parseIdx(buf, path, ndim);
    }
  }
  throw new Error(`MNIST: cannot find ${base} (or ${base}.gz) in ${dirs.join(' or ')}: expected the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte`);
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
    try {
      if (!(await stat(root)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new Error(`MNIST: cannot find the folder ${root} (expected a folder with the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally .gz)`);
    }
    const dirs = [root, join(root, 'MNIST', 'raw'), join(root, 'raw')];
    const prefix = train ? 'train' : 't10k';
    const images = await readIdxFile(dirs, `${prefix}-images-idx3-ubyte`, 3);
    const labels = await readIdxFile(dirs, `${prefix}-labels-idx1-ubyte`, 1);
    const [n, h, w] = images.dims as [number, number, number];
    if (labels.dims[0] !== n) throw new Error(`MNIST: ${prefix} images and labels disagree: ${n} images but ${labels.dims[0]} labels`);
    // Own copies (the file buffers may be pooled or larger).
    return new MNIST(images.data.slice(), labels.data.slice(), [1, h, w], train, options);
  }
}
