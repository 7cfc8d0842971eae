/**
 * Datasets: anything with `length` and `getItem(index)`; optionally `getBatch(indices)` for a
 * vectorised path the DataLoader prefers (ImageArrayDataset, TensorDataset, Subset).
 */
import { Tensor } from '../tensor/tensor.js';
import { int32 } from '../dtype/dtype.js';
import { indexSelect } from '../ops/shape.js';
import { noGrad } from '../autograd/mode.js';
import type { Generator } from '../random/generator.js';
import { applyTransform, supportsBatch, transformBatch, type TransformLike } from './transforms.js';
import { defaultCollate, imageBatchToTensor, labelsToTensor } from './collate.js';
import type { Image, ImageBatch } from './image.js';

/** What the DataLoader passes to getItem/getBatch. */
export interface SampleContext {
  /** Draw the batch's random augmentations from this (see transforms.ts). */
  generator?: Generator;
  epoch?: number;
  batch?: number;
}

export interface Dataset<T = unknown, B = unknown> {
  readonly length: number;
  getItem(index: number, ctx?: SampleContext): T | Promise<T>;
  /** Optional fast path: the collated batch of these samples (used when the loader has no custom collate). */
  getBatch?(indices: Int32Array, ctx?: SampleContext): B | Promise<B>;
}

function checkIndex(name: string, index: number, length: number): number {
  if (!Number.isInteger(index)) throw new TypeError(`${name}: index must be an integer, got ${index}`);
  const i = index < 0 ? index + length : index;
  if (i < 0 || i >= length) throw new RangeError(`${name}: index ${index} is out of range for a dataset of ${length} samples`);
  return i;
}

export interface ImageArrayDatasetOptions {
  /** Applied to each image (an uint8 CHW Image); whole batches at once when it supports them. */
  transform?: TransformLike | null;
  /** Applied to each label. */
  targetTransform?: ((label: number) => number) | null;
  classes?: readonly string[];
}

/**
 * Images held in memory as ONE uint8 array (N x C x H x W, each image CHW) plus their labels: the
 * storage of CIFAR10 and MNIST. `getItem(i)` gives `[Image, label]`; `getBatch(indices)` gathers the
 * rows into one buffer, runs the transform over the whole batch (when it supports batches) and returns
 * `[x, y]`: x a float32 tensor [B, C, H, W] (raw 0-255 values if there is no ToTensor), y int32 [B].
 */
export class ImageArrayDataset implements Dataset<[Image, number], [Tensor, Tensor]> {
  /** Mutable: e.g. set augmentation on the train split and only normalisation on the test split. */
  transform: TransformLike | null;
  targetTransform: ((label: number) => number) | null;
  readonly classes: readonly string[];
  readonly channels: number;
  readonly height: number;
  readonly width: number;

  constructor(
    readonly images: Uint8Array,
    readonly labels: Uint8Array | Int32Array,
    shape: readonly [number, number, number],
    options: ImageArrayDatasetOptions = {},
  ) {
    const [c, h, w] = shape;
    if (![c, h, w].every((d) => Number.isInteger(d) && d > 0)) throw new RangeError(`ImageArrayDataset: image shape must be [C, H, W] positive integers, got ${JSON.stringify(shape)}`);
    if (images.length !== labels.length * c * h * w) {
      throw new RangeError(`ImageArrayDataset: ${images.length} pixel values do not hold ${labels.length} images of ${c}x${h}x${w}`);
    }
    this.channels = c;
    this.height = h;
    this.width = w;
    this.transform = options.transform ?? null;
    this.targetTransform = options.targetTransform ?? null;
    this.classes = options.classes ? [...options.classes] : [];
  }

  get length(): number {
    return this.labels.length;
  }

  get imageSize(): number {
    return this.channels * this.height * this.width;
  }

  /** The raw uint8 CHW image at `index` (a copy) */
  rawImage(index: number): Image {
    const i = checkIndex(this.constructor.name, index, this.length);
    const n = this.imageSize;
    return { data: this.images.slice(i * n, (i + 1) * n), channels: this.channels, height: this.height, width: this.width, layout: 'CHW' };
  }

  getItem(index: number, ctx: SampleContext = {}): [any, number] {
    const img = this.rawImage(index);
    const label = this.labels[index < 0 ? index + this.length : index]!;
    return [
      this.transform ? applyTransform(this.transform, img, ctx.generator) : img,
      this.targetTransform ? this.targetTransform(label) : label,
    ];
  }

  /** The rows `indices` as one uint8 batch (no transform). */
  gather(indices: ArrayLike<number>): ImageBatch {
    const n = this.imageSize;
    const data = new Uint8Array(indices.length * n);
    for (let k = 0; k < indices.length; k++) {
      const i = checkIndex(this.constructor.name, indices[k]!, this.length);
      data.set(this.images.subarray(i * n, (i + 1) * n), k * n);
    }
    return { data, channels: this.channels, height: this.height, width: this.width, layout: 'CHW', count: indices.length, scratch: true };
  }

  getBatch(indices: Int32Array, ctx: SampleContext = {}): [Tensor, Tensor] {
    if (this.transform && !supportsBatch(this.transform)) {
      // A transform that cannot map batches (e.g. a function returning tensors): sample by sample.
      return defaultCollate(Array.from(indices, (i) => this.getItem(i, ctx))) as [Tensor, Tensor];
    }
    let batch = this.gather(indices);
    if (this.transform) batch = transformBatch(this.transform, batch, ctx.generator);
    const labels = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const label = this.labels[indices[k]!]!;
      labels[k] = this.targetTransform ? this.targetTransform(label) : label;
    }
    return [imageBatchToTensor(batch), labelsToTensor(labels)];
  }

  /** Count of each label value (index = label). */
  labelCounts(): number[] {
    const counts: number[] = [];
    for (const l of this.labels) counts[l] = (counts[l] ?? 0) + 1;
    return Array.from(counts, (c) => c ?? 0);
  }
}

/** Rows of tensors sharing their first dimension: getItem(i) gives the i-th rows (views). */
export class TensorDataset implements Dataset<Tensor[], Tensor[]> {
  readonly tensors: readonly Tensor[];

  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw new RangeError('TensorDataset: expected at least one tensor');
    const n = tensors[0]!.shape[0];
    for (const t of tensors) {
      if (!(t instanceof Tensor) || t.ndim === 0 || t.shape[0] !== n) throw new RangeError('TensorDataset: every tensor must have the same size in the first dimension');
    }
    this.tensors = tensors;
  }

  get length(): number {
    return this.tensors[0]!.shape[0]!;
  }

  getItem(index: number): Tensor[] {
    const i = checkIndex('TensorDataset', index, this.length);
    return noGrad(() => this.tensors.map((t) => t.narrow(0, i, 1).squeeze(0)));
  }

  getBatch(indices: Int32Array): Tensor[] {
    for (const i of indices) checkIndex('TensorDataset', i, this.length);
    const idx = Tensor.fromStorage(Int32Array.from(indices), [indices.length], int32);
    try {
      return noGrad(() => this.tensors.map((t) => indexSelect(t, 0, idx)));
    } finally {
      idx.dispose();
    }
  }
}

/** The samples `indices` of another dataset. */
export class Subset<T = unknown, B = unknown> implements Dataset<T, B> {
  readonly indices: Int32Array;
  getBatch?: (indices: Int32Array, ctx?: SampleContext) => B | Promise<B>;

  constructor(readonly dataset: Dataset<T, B>, indices: ArrayLike<number>) {
    this.indices = Int32Array.from(indices, (i) => checkIndex('Subset', i, dataset.length));
    if (dataset.getBatch) {
      const inner = dataset.getBatch.bind(dataset);
      this.getBatch = (idx, ctx) => inner(Int32Array.from(idx, (i) => this.indices[checkIndex('Subset', i, this.length)]!), ctx);
    }
  }

  get length(): number {
    return this.indices.length;
  }

  getItem(index: number, ctx?: SampleContext): T | Promise<T> {
    return this.dataset.getItem(this.indices[checkIndex('Subset', index, this.length)]!, ctx);
  }
}
