/**
 * Image transforms (torchvision's names): ToTensor, Normalize, Resize (bilinear, antialiased),
 * RandomCrop (with padding), RandomHorizontalFlip, RandomVerticalFlip, Lambda and Compose.
 *
 * Each transform maps an `Image` (one host image) with `apply(x)` (alias `call(x)`), and the built-in
 * ones also map a whole `ImageBatch` with `applyBatch(b)`: the data loader gathers a batch of uint8
 * images into one array, runs the pipeline over it and makes ONE tensor per batch. ToTensor gives a
 * float32 CHW Image (a host array, not an mx.Tensor): collation turns images into the batch tensor.
 * Transforms never modify their input.
 *
 * Randomness: a random transform draws from, in order of precedence, the `generator` given to its
 * constructor, the generator passed to `apply`/`applyBatch` (the DataLoader passes one per batch,
 * derived from its seed, the epoch and the batch index, so augmentation is reproducible and
 * independent of prefetch timing), else `mx.defaultGenerator` (reproducible with `mx.manualSeed`).
 * In batch mode each transform makes its draws for every image of the batch in turn (crop offsets of
 * image 0, 1, ..., then the flips of image 0, 1, ...), so a batch and the same images one at a time
 * draw in a different order.
 */
import { defaultGenerator, type Generator } from '../random/generator.js';
import { asBatch, batchItem, checkImage, imageSize, isImage, type Image, type ImageBatch } from './image.js';
import { resizeBatch } from './resize.js';

export interface Transform<I = any, O = any> {
  apply(x: I, generator?: Generator): O;
}

/** A transform of images that also maps whole batches (see ImageTransform). */
export interface BatchTransform extends Transform<Image, Image> {
  applyBatch(x: ImageBatch, generator?: Generator): ImageBatch;
}

/** A transform object or a plain function `(x, generator?) => y`. */
export type TransformLike<I = any, O = any> = Transform<I, O> | ((x: I, generator?: Generator) => O);

/** Apply a transform object or function. */
export function applyTransform<I, O>(t: TransformLike<I, O>, x: I, generator?: Generator): O {
  return typeof t === 'function' ? t(x, generator) : t.apply(x, generator);
}

/** Whether `t` maps whole ImageBatches natively (a Compose when all its transforms do). */
export function supportsBatch(t: TransformLike): boolean {
  if (t instanceof Compose) return t.transforms.every(supportsBatch);
  return typeof t !== 'function' && typeof (t as Partial<BatchTransform>).applyBatch === 'function';
}

/**
 * Map a batch through `t`: natively when it supports batches, otherwise image by image (each result
 * must be an Image, all of one shape, gathered back into a batch).
 */
export function transformBatch(t: TransformLike, b: ImageBatch, generator?: Generator): ImageBatch {
  if (supportsBatch(t) || t instanceof Compose) return (t as BatchTransform).applyBatch(b, generator);
  let out: ImageBatch | null = null;
  for (let k = 0; k < b.count; k++) {
    const r = applyTransform(t, batchItem(b, k), generator);
    if (!isImage(r)) throw new TypeError(`transform ${describe(t)} returned ${describeValue(r)}, not an Image, so the batch cannot be assembled`);
    checkImage(describe(t), r);
    if (!out) {
      const Ctor = r.data instanceof Uint8Array ? Uint8Array : Float32Array;
      out = { data: new Ctor(b.count * imageSize(r)), channels: r.channels, height: r.height, width: r.width, layout: r.layout, count: b.count };
    } else if (r.channels !== out.channels || r.height !== out.height || r.width !== out.width || r.layout !== out.layout ||
      (r.data instanceof Uint8Array) !== (out.data instanceof Uint8Array)) {
      throw new RangeError(`transform ${describe(t)} returned images of different shapes or types in one batch`);
    }
    out.data.set(r.data, k * imageSize(r));
  }
  return out ?? { ...b, data: b.data.slice(0, 0) };
}

function describe(t: TransformLike): string {
  return typeof t === 'function' ? (t.name || 'function') : t.constructor.name;
}

function describeValue(v: unknown): string {
  if (v === null || typeof v !== 'object') return String(v);
  return `a ${(v as object).constructor?.name ?? 'object'}`;
}

/**
 * Base of the image transforms: implement `applyBatch`; `apply(image)` runs it on a batch of one.
 */
export abstract class ImageTransform implements BatchTransform {
  abstract applyBatch(x: ImageBatch, generator?: Generator): ImageBatch;

  apply(x: Image, generator?: Generator): Image {
    if (!isImage(x)) throw new TypeError(`${this.constructor.name}: expected an Image ({ data, channels, height, width, layout }), got ${describeValue(x)}`);
    const r = this.applyBatch(asBatch(x), generator);
    return { data: r.data, channels: r.channels, height: r.height, width: r.width, layout: r.layout };
  }

  /** Alias of apply. */
  call(x: Image, generator?: Generator): Image {
    return this.apply(x, generator);
  }
}

/** Run transforms in order. */
export class Compose implements Transform {
  readonly transforms: TransformLike[];

  constructor(transforms: readonly TransformLike[]) {
    if (!Array.isArray(transforms)) throw new TypeError('Compose: expected a list of transforms');
    for (const t of transforms) {
      if (typeof t !== 'function' && (!t || typeof (t as Transform).apply !== 'function')) {
        throw new TypeError(`Compose: ${describeValue(t)} is not a transform (an object with apply(), or a function)`);
      }
    }
    this.transforms = [...transforms];
  }

  apply(x: any, generator?: Generator): any {
    for (const t of this.transforms) x = applyTransform(t, x, generator);
    return x;
  }

  call(x: any, generator?: Generator): any {
    return this.apply(x, generator);
  }

  /** Each transform over the whole batch (natively when it can, else image by image). */
  applyBatch(x: ImageBatch, generator?: Generator): ImageBatch {
    for (const t of this.transforms) x = transformBatch(t, x, generator);
    return x;
  }
}

/** Wrap a function as a transform. */
export class Lambda<I = any, O = any> implements Transform<I, O> {
  constructor(readonly fn: (x: I, generator?: Generator) => O) {
    if (typeof fn !== 'function') throw new TypeError('Lambda: expected a function');
  }
  apply(x: I, generator?: Generator): O {
    return this.fn(x, generator);
  }
  call(x: I, generator?: Generator): O {
    return this.apply(x, generator);
  }
}

const BYTE_TO_UNIT = new Float32Array(256).map((_, i) => i / 255);

/**
 * uint8 images (CHW or HWC) to float32 CHW in [0, 1] (x / 255, rounded once to float32, as
 * `torch.ByteTensor.float().div(255)`). float32 input is only made CHW (not scaled), as torchvision does
 * for float arrays.
 */
export class ToTensor extends ImageTransform {
  applyBatch(x: ImageBatch): ImageBatch {
    checkImage('ToTensor', x);
    const { count, channels: c, height: h, width: w } = x;
    const src = x.data;
    const isByte = src instanceof Uint8Array;
    if (x.layout === 'CHW') {
      if (!isByte) return x;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = BYTE_TO_UNIT[src[i]!]!;
      return { ...x, data: out, scratch: true };
    }
    const out = new Float32Array(src.length);
    const hw = h * w;
    const size = c * hw;
    for (let k = 0; k < count; k++) {
      const base = k * size;
      for (let ch = 0; ch < c; ch++) {
        const dst = base + ch * hw;
        if (isByte) for (let p = 0, s = base + ch; p < hw; p++, s += c) out[dst + p] = BYTE_TO_UNIT[src[s]!]!;
        else for (let p = 0, s = base + ch; p < hw; p++, s += c) out[dst + p] = src[s]!;
      }
    }
    return { data: out, channels: c, height: h, width: w, layout: 'CHW', count, scratch: true };
  }
}

function perChannel(op: string, name: string, v: number | readonly number[], channels: number): Float32Array {
  const list = typeof v === 'number' ? [v] : [...v];
  if (list.length !== 1 && list.length !== channels) {
    throw new RangeError(`${op}: ${name} has ${list.length} values for an image of ${channels} channels`);
  }
  if (list.some((a) => typeof a !== 'number' || !Number.isFinite(a))) throw new TypeError(`${op}: ${name} must hold finite numbers, got ${JSON.stringify(v)}`);
  return Float32Array.from({ length: channels }, (_, i) => list.length === 1 ? list[0]! : list[i]!);
}

/**
 * (x - mean[c]) / std[c] per channel of float images, computed as torchvision does in float32:
 * subtract, round, divide, round.
 */
export class Normalize extends ImageTransform {
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(mean: number | readonly number[], std: number | readonly number[]) {
    super();
    this.mean = typeof mean === 'number' ? [mean] : [...mean];
    this.std = typeof std === 'number' ? [std] : [...std];
    if (this.mean.length === 0 || this.std.length === 0) throw new RangeError('Normalize: mean and std must not be empty');
    if (this.std.some((s) => s === 0)) throw new RangeError(`Normalize: std evaluated to zero (${JSON.stringify(this.std)}), leading to division by zero`);
  }

  applyBatch(x: ImageBatch): ImageBatch {
    if (!(x.data instanceof Float32Array)) throw new TypeError('Normalize: expects a float32 image; apply ToTensor first');
    checkImage('Normalize', x);
    const { count, channels: c, height: h, width: w } = x;
    const mean = perChannel('Normalize', 'mean', this.mean, c);
    const std = perChannel('Normalize', 'std', this.std, c);
    const src = x.data;
    const out = x.scratch ? src : new Float32Array(src.length);
    const hw = h * w;
    if (x.layout === 'CHW') {
      for (let k = 0; k < count; k++) {
        for (let ch = 0; ch < c; ch++) {
          const m = mean[ch]!;
          const s = std[ch]!;
          const end = (k * c + ch + 1) * hw;
          for (let i = end - hw; i < end; i++) out[i] = Math.fround(src[i]! - m) / s;
        }
      }
    } else {
      for (let i = 0; i < src.length; i++) {
        const ch = i % c;
        out[i] = Math.fround(src[i]! - mean[ch]!) / std[ch]!;
      }
    }
    return { ...x, data: out, scratch: true };
  }
}

/**
 * Bilinear resize of every image to `size` ([height, width], or one number for a square), as
 * torchvision's `Resize(size, antialias=True)` (and PIL): see resize.ts. float32 stays float32,
 * uint8 is rounded back to 0-255.
 */
export class Resize extends ImageTransform {
  readonly size: readonly [number, number];

  constructor(size: number | readonly [number, number]) {
    super();
    const s = typeof size === 'number' ? [size, size] : [...size];
    if (s.length !== 2 || s.some((d) => !Number.isInteger(d) || d <= 0)) throw new RangeError(`Resize: size must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
    this.size = [s[0]!, s[1]!];
  }

  applyBatch(x: ImageBatch): ImageBatch {
    return resizeBatch(x, this.size);
  }
}

export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';

export interface RandomCropOptions {
  /** Border added before cropping: all sides, [left/right, top/bottom] or [left, top, right, bottom]. */
  padding?: number | readonly number[];
  /** Pad further when the image is smaller than the crop. */
  padIfNeeded?: boolean;
  /** Value of constant padding (a number or one per channel); raw 0-255 for uint8 images. */
  fill?: number | readonly number[];
  paddingMode?: PaddingMode;
  generator?: Generator;
}

/** Index into [0, n) of padded coordinate i (i may lie outside), or -1 for the constant fill. */
function mapIndex(i: number, n: number, mode: PaddingMode): number {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case 'constant':
      return -1;
    case 'edge':
      return i < 0 ? 0 : n - 1;
    case 'reflect':
      if (n === 1) return 0;
      while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
      return i;
    case 'symmetric':
      while (i < 0 || i >= n) i = i < 0 ? -i - 1 : 2 * n - 1 - i;
      return i;
  }
}

/**
 * Crop a random `size` window, after padding each image by `padding` (CIFAR: RandomCrop(32,
 * { padding: 4 })). Offsets are drawn as torchvision does: top in [0, H - h], then left in [0, W - w]
 * (no draw when the padded image already has the crop's size).
 */
export class RandomCrop extends ImageTransform {
  readonly size: readonly [number, number];
  readonly padding: readonly [number, number, number, number];
  readonly padIfNeeded: boolean;
  readonly fill: number | readonly number[];
  readonly paddingMode: PaddingMode;
  readonly generator: Generator | undefined;

  constructor(size: number | readonly [number, number], options: RandomCropOptions = {}) {
    super();
    const s = typeof size === 'number' ? [size, size] : [...size];
    if (s.length !== 2 || s.some((d) => !Number.isInteger(d) || d <= 0)) throw new RangeError(`RandomCrop: size must be a positive integer or [height, width], got ${JSON.stringify(size)}`);
    this.size = [s[0]!, s[1]!];
    const p = options.padding ?? 0;
    const pl = typeof p === 'number' ? [p] : [...p];
    if (![1, 2, 4].includes(pl.length) || pl.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new RangeError(`RandomCrop: padding must be a non-negative integer or a list of 2 or 4 of them, got ${JSON.stringify(p)}`);
    }
    this.padding = pl.length === 1 ? [pl[0]!, pl[0]!, pl[0]!, pl[0]!] : pl.length === 2 ? [pl[0]!, pl[1]!, pl[0]!, pl[1]!] : [pl[0]!, pl[1]!, pl[2]!, pl[3]!];
    this.padIfNeeded = options.padIfNeeded ?? false;
    this.fill = options.fill ?? 0;
    this.paddingMode = options.paddingMode ?? 'constant';
    if (!['constant', 'edge', 'reflect', 'symmetric'].includes(this.paddingMode)) throw new RangeError(`RandomCrop: unknown paddingMode ${JSON.stringify(this.paddingMode)}`);
    this.generator = options.generator;
  }

  applyBatch(x: ImageBatch, generator?: Generator): ImageBatch {
    checkImage('RandomCrop', x);
    const g = this.generator ?? generator ?? defaultGenerator;
    const { count, channels: c, height: h, width: w, layout } = x;
    const [th, tw] = this.size;
    let [pl, pt, pr, pb] = this.padding;
    if (this.padIfNeeded && h + pt + pb < th) {
      const d = th - (h + pt + pb);
      pt += d;
      pb += d;
    }
    if (this.padIfNeeded && w + pl + pr < tw) {
      const d = tw - (w + pl + pr);
      pl += d;
      pr += d;
    }
    const H = h + pt + pb;
    const W = w + pl + pr;
    if (H < th || W < tw) throw new RangeError(`RandomCrop: required crop size ${th}x${tw} is larger than the (padded) input image size ${H}x${W}`);
    const isByte = x.data instanceof Uint8Array;
    const fills = perChannel('RandomCrop', 'fill', this.fill, c);
    if (isByte) for (let i = 0; i < c; i++) fills[i] = Math.min(255, Math.max(0, Math.round(fills[i]!)));
    const src = x.data;
    const out = isByte ? new Uint8Array(count * c * th * tw) : new Float32Array(count * c * th * tw);
    const rowMap = new Int32Array(th);
    const colMap = new Int32Array(tw);
    const inSize = c * h * w;
    const outSize = c * th * tw;
    for (let k = 0; k < count; k++) {
      let top = 0;
      let left = 0;
      if (H !== th || W !== tw) {
        top = g.nextInt(0, H - th + 1);
        left = g.nextInt(0, W - tw + 1);
      }
      for (let y = 0; y < th; y++) rowMap[y] = mapIndex(top + y - pt, h, this.paddingMode);
      for (let q = 0; q < tw; q++) colMap[q] = mapIndex(left + q - pl, w, this.paddingMode);
      const sBase = k * inSize;
      const dBase = k * outSize;
      if (layout === 'CHW') {
        // Constant padding: the columns taken from the image are one contiguous run [q0, q1).
        const shift = left - pl;
        const q0 = Math.max(0, -shift);
        const q1 = Math.min(tw, w - shift);
        const constant = this.paddingMode === 'constant';
        for (let ch = 0; ch < c; ch++) {
          const fv = fills[ch]!;
          const sPlane = sBase + ch * h * w;
          for (let y = 0; y < th; y++) {
            const r = rowMap[y]!;
            const d = dBase + (ch * th + y) * tw;
            if (r < 0) {
              for (let q = 0; q < tw; q++) out[d + q] = fv;
              continue;
            }
            const sRow = sPlane + r * w;
            if (constant) {
              for (let q = 0; q < q0; q++) out[d + q] = fv;
              for (let q = q0, s = sRow + q0 + shift; q < q1; q++, s++) out[d + q] = src[s]!;
              for (let q = Math.max(q0, q1); q < tw; q++) out[d + q] = fv;
            } else {
              for (let q = 0; q < tw; q++) out[d + q] = src[sRow + colMap[q]!]!;
            }
          }
        }
      } else {
        for (let y = 0; y < th; y++) {
          const r = rowMap[y]!;
          const d = dBase + y * tw * c;
          for (let q = 0; q < tw; q++) {
            const col = colMap[q]!;
            const o = d + q * c;
            if (r < 0 || col < 0) for (let ch = 0; ch < c; ch++) out[o + ch] = fills[ch]!;
            else {
              const s = sBase + (r * w + col) * c;
              for (let ch = 0; ch < c; ch++) out[o + ch] = src[s + ch]!;
            }
          }
        }
      }
    }
    return { data: out, channels: c, height: th, width: tw, layout, count, scratch: true };
  }
}

export interface RandomFlipOptions {
  generator?: Generator;
}

abstract class RandomFlip extends ImageTransform {
  readonly generator: Generator | undefined;

  constructor(readonly p = 0.5, options: RandomFlipOptions = {}) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${this.constructor.name}: p must be a probability in [0, 1], got ${p}`);
    this.generator = options.generator;
  }

  /** Flip the image at `base` of `a` in place. */
  protected abstract flipOne(a: Image['data'], base: number, x: ImageBatch): void;

  applyBatch(x: ImageBatch, generator?: Generator): ImageBatch {
    checkImage(this.constructor.name, x);
    const g = this.generator ?? generator ?? defaultGenerator;
    const size = imageSize(x);
    let out = x.data;
    // One draw per image, as torchvision's `torch.rand(1) < p`; flipped in place on scratch data.
    for (let k = 0; k < x.count; k++) {
      if (g.nextDouble() < this.p) {
        if (out === x.data && !x.scratch) out = x.data.slice();
        this.flipOne(out, k * size, x);
      }
    }
    return { ...x, data: out, scratch: x.scratch || out !== x.data };
  }
}

/** Mirror each image left-right with probability p. */
export class RandomHorizontalFlip extends RandomFlip {
  protected flipOne(a: Image['data'], base: number, x: ImageBatch): void {
    const { channels: c, height: h, width: w } = x;
    if (x.layout === 'CHW') {
      for (let row = 0; row < c * h; row++) {
        for (let i = base + row * w, j = i + w - 1; i < j; i++, j--) {
          const t = a[i]!;
          a[i] = a[j]!;
          a[j] = t;
        }
      }
    } else {
      for (let y = 0; y < h; y++) {
        const r = base + y * w * c;
        for (let q = 0; q < w >> 1; q++) {
          for (let ch = 0; ch < c; ch++) {
            const i = r + q * c + ch;
            const j = r + (w - 1 - q) * c + ch;
            const t = a[i]!;
            a[i] = a[j]!;
            a[j] = t;
          }
        }
      }
    }
  }
}

/** Mirror each image top-bottom with probability p. */
export class RandomVerticalFlip extends RandomFlip {
  protected flipOne(a: Image['data'], base: number, x: ImageBatch): void {
    const { channels: c, height: h, width: w } = x;
    const planes = x.layout === 'CHW' ? c : 1;
    const rowLen = x.layout === 'CHW' ? w : w * c;
    for (let ch = 0; ch < planes; ch++) {
      const plane = base + ch * h * rowLen;
      for (let y = 0; y < h >> 1; y++) {
        const top = plane + y * rowLen;
        const bottom = plane + (h - 1 - y) * rowLen;
        for (let q = 0; q < rowLen; q++) {
          const t = a[top + q]!;
          a[top + q] = a[bottom + q]!;
          a[bottom + q] = t;
        }
      }
    }
  }
}
