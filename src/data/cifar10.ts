/**
 * CIFAR-10 from the official binary layout: `cifar-10-batches-bin/data_batch_1.bin` ... `data_batch_5.bin`
 * (train) and `test_batch.bin` (test), each 10,000 records of 1 label byte + 3,072 pixel bytes (the
 * 1,024 R, 1,024 G and 1,024 B values of a 32x32 image, row-major). Read from the
 * `cifar-10-binary.tar.gz` archive directly (streamed: gunzip + tar, only the .bin members kept) or
 * from its extracted folder. The images are stored as one uint8 array, N x 3 x 32 x 32, as in the file.
 *
 *   const { train, test } = await mx.data.CIFAR10.loadSplits('data', { download: true });
 *   const train = await mx.data.CIFAR10.load('data/cifar-10-binary.tar.gz', { train: true, transform });
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ImageArrayDataset, type ImageArrayDatasetOptions } from './dataset.js';
import { readTar } from './tar.js';
import { downloadFile, type ProgressCallback } from './download.js';
import type { TransformLike } from './transforms.js';
import { CIFAR10_CLASSES, PIXELS, TEST_FILES, TRAIN_FILES, decodeBatchFile, type CifarSplit as Split } from './cifar10_format.js';

export { CIFAR10_CLASSES } from './cifar10_format.js';

export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';

const ARCHIVE = 'cifar-10-binary.tar.gz';
const FOLDER = 'cifar-10-batches-bin';

export interface CIFAR10SourceOptions {
  /** Fetch the archive into `root` when it cannot be found there (default false). */
  download?: boolean;
  /** Archive URL for download (default the official one). */
  url?: string;
  /** md5 the download must have (default the official archive's; null skips the check). */
  md5?: string | null;
  /** Download progress: a bar on a TTY (default), false, or a callback. */
  progress?: boolean | ProgressCallback;
  /** Records in each batch file: 10000 in the official layout; smaller only for test fixtures or subsets. */
  recordsPerFile?: number;
}

export interface CIFAR10Options extends CIFAR10SourceOptions, Omit<ImageArrayDatasetOptions, 'classes'> {
  /** The 50,000 training images (default) or the 10,000 test images. */
  train?: boolean;
}

export interface CIFAR10SplitsOptions extends CIFAR10SourceOptions {
  trainTransform?: TransformLike | null;
  testTransform?: TransformLike | null;
  targetTransform?: ((label: number) => number) | null;
}

type Source = { kind: 'archive'; file: string } | { kind: 'folder'; dir: string };

async function exists(path: string): Promise<'file' | 'dir' | null> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

const EXPECTED = `expected ${ARCHIVE} or a folder containing ${FOLDER}/data_batch_1.bin ... data_batch_5.bin and test_batch.bin`;

/** Where the data is: an archive file, a folder of .bin files, downloading the archive if asked to. */
async function locate(root: string, options: CIFAR10SourceOptions): Promise<Source> {
  const kind = await exists(root);
  if (kind === 'file') return { kind: 'archive', file: root };
  if (kind === 'dir') {
    if ((await exists(join(root, FOLDER))) === 'dir') return { kind: 'folder', dir: join(root, FOLDER) };
    if ((await exists(join(root, 'data_batch_1.bin'))) || (await exists(join(root, 'test_batch.bin')))) return { kind: 'folder', dir: root };
    if ((await exists(join(root, ARCHIVE))) === 'file') return { kind: 'archive', file: join(root, ARCHIVE) };
  }
  if (options.download) {
    const dest = kind === null && /\.(tar\.gz|tgz)$/.test(root) ? root : join(root, ARCHIVE);
    await downloadFile(options.url ?? CIFAR10_URL, dest, { md5: options.md5 === undefined ? CIFAR10_MD5 : options.md5, progress: options.progress });
    return { kind: 'archive', file: dest };
  }
  throw new Error(`CIFAR10: cannot find ${kind === 'dir' ? `the dataset in ${root}` : root}: ${EXPECTED} (use download: true to fetch it)`);
}

/** Read the requested splits of CIFAR-10 from `root` (an archive or folder; see the module comment). */
export async function readCIFAR10(root: string, splits: { train?: boolean; test?: boolean }, options: CIFAR10SourceOptions = {}): Promise<{ train?: Split; test?: Split }> {
  const records = options.recordsPerFile ?? 10000;
  if (!Number.isInteger(records) || records <= 0) throw new RangeError(`CIFAR10: recordsPerFile must be a positive integer, got ${records}`);
  const source = await locate(root, options);
  const out: { train?: Split; test?: Split } = {};
  const wanted = new Map<string, { split: Split; slot: number }>();
  const alloc = (files: readonly string[]): Split => {
    const split = { images: new Uint8Array(files.length * records * PIXELS), labels: new Uint8Array(files.length * records) };
    files.forEach((f, slot) => wanted.set(f, { split, slot }));
    return split;
  };
  if (splits.train) out.train = alloc(TRAIN_FILES);
  if (splits.test) out.test = alloc(TEST_FILES);

  if (source.kind === 'folder') {
    for (const [file, { split, slot }] of wanted) {
      const path = join(source.dir, file);
      let buf: Buffer;
      try {
        buf = await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new Error(`CIFAR10: cannot find ${path}: the folder ${source.dir} should hold data_batch_1.bin ... data_batch_5.bin and test_batch.bin`, { cause: e });
        }
        throw new Error(`CIFAR10: cannot read ${path}: ${(e as Error).message}`, { cause: e });
      }
      decodeBatchFile(buf, path, records, split, slot);
    }
    return out;
  }

  const seen = new Set<string>();
  try {
    await readTar(source.file, {
      select: (h) => wanted.has(basename(h.name)) && !seen.has(basename(h.name)),
      onEntry: (h, data) => {
        const file = basename(h.name);
        seen.add(file);
        const { split, slot } = wanted.get(file)!;
        decodeBatchFile(data, `${source.file} (member ${h.name})`, records, split, slot);
      },
    });
  } catch (e) {
    const msg = (e as Error).message;
    throw msg.startsWith('CIFAR10:') ? e : new Error(`CIFAR10: cannot read ${msg.startsWith(source.file) ? '' : `${source.file}: `}${msg}`, { cause: e });
  }
  const missing = [...wanted.keys()].filter((f) => !seen.has(f));
  if (missing.length) {
    throw new Error(`CIFAR10: ${source.file} has no member ${FOLDER}/${missing[0]}${missing.length > 1 ? ` (nor ${missing.length - 1} more)` : ''}: ${EXPECTED} (the binary version of CIFAR-10, not the python or matlab one)`);
  }
  return out;
}

/** CIFAR-10: `[image, label]` samples of uint8 CHW 3x32x32 images (see ImageArrayDataset). */
export class CIFAR10 extends ImageArrayDataset {
  static readonly classes = CIFAR10_CLASSES;
  static readonly url = CIFAR10_URL;
  static readonly md5 = CIFAR10_MD5;

  constructor(images: Uint8Array, labels: Uint8Array, readonly train: boolean, options: Omit<ImageArrayDatasetOptions, 'classes'> = {}) {
    super(images, labels, [3, 32, 32], { ...options, classes: CIFAR10_CLASSES });
  }

  /** One split, from `root`: the .tar.gz, a folder holding it, or the extracted folder. */
  static async load(root: string, options: CIFAR10Options = {}): Promise<CIFAR10> {
    const train = options.train ?? true;
    const data = await readCIFAR10(root, { train, test: !train }, options);
    const split = (train ? data.train : data.test)!;
    return new CIFAR10(split.images, split.labels, train, options);
  }

  /** Both splits, reading the archive once. */
  static async loadSplits(root: string, options: CIFAR10SplitsOptions = {}): Promise<{ train: CIFAR10; test: CIFAR10 }> {
    const data = await readCIFAR10(root, { train: true, test: true }, options);
    const { targetTransform } = options;
    return {
      train: new CIFAR10(data.train!.images, data.train!.labels, true, { transform: options.trainTransform, targetTransform }),
      test: new CIFAR10(data.test!.images, data.test!.labels, false, { transform: options.testTransform, targetTransform }),
    };
  }
}
