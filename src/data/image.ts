/**
 * Host-side images: the values the transforms work on before a batch becomes one mx.Tensor.
 *
 * An `Image` is a typed array plus its shape and layout (`CHW`, the CIFAR/MNIST storage and what
 * ToTensor produces, or `HWC`, what image decoders produce). An `ImageBatch` is `count` images of
 * the same shape back to back in one array, so that a transform pipeline runs over a whole batch
 * without allocating an object per sample (let alone per pixel).
 */

export type ImageLayout = 'CHW' | 'HWC';
export type ImageArray = Uint8Array | Float32Array;

export interface Image {
  /** uint8 (raw pixels, 0-255) or float32 (after ToTensor) values. */
  data: ImageArray;
  channels: number;
  height: number;
  width: number;
  layout: ImageLayout;
}

/** `count` images of one shape, stored back to back (each in `layout`). */
export interface ImageBatch extends Image {
  count: number;
  /**
   * The data is a temporary owned by the pipeline (a batch the loader gathered, or a transform's
   * output), so the next transform may overwrite it instead of allocating: typed-array allocation is
   * the main cost of a batch. Never set on user data or on views of a dataset's storage.
   */
  scratch?: boolean;
}

export function isImage(x: unknown): x is Image {
  if (!x || typeof x !== 'object') return false;
  const i = x as Partial<Image>;
  return (i.data instanceof Uint8Array || i.data instanceof Float32Array) && typeof i.channels === 'number' &&
    typeof i.height === 'number' && typeof i.width === 'number' && (i.layout === 'CHW' || i.layout === 'HWC');
}

export function imageSize(x: Image): number {
  return x.channels * x.height * x.width;
}

/** Check that an image's array holds exactly its shape (and `count` images for a batch). */
export function checkImage(op: string, x: Image | ImageBatch): void {
  const count = 'count' in x ? x.count : 1;
  const want = count * imageSize(x);
  if (x.data.length !== want) {
    const shape = `${x.layout === 'CHW' ? `${x.channels}x${x.height}x${x.width}` : `${x.height}x${x.width}x${x.channels}`} (${x.layout})`;
    throw new RangeError(`${op}: image data has ${x.data.length} values, expected ${want} for ${count} image(s) of ${shape}`);
  }
}

/** A single image seen as a batch of one (no copy). */
export function asBatch(x: Image): ImageBatch {
  return { data: x.data, channels: x.channels, height: x.height, width: x.width, layout: x.layout, count: 1 };
}

/** The image at `index` of a batch, as a view (no copy). */
export function batchItem(b: ImageBatch, index: number): Image {
  const size = imageSize(b);
  return { data: b.data.subarray(index * size, (index + 1) * size), channels: b.channels, height: b.height, width: b.width, layout: b.layout };
}

/** The batch's shape as a tensor shape: [N, C, H, W] or [N, H, W, C]. */
export function batchShape(b: ImageBatch): number[] {
  return b.layout === 'CHW' ? [b.count, b.channels, b.height, b.width] : [b.count, b.height, b.width, b.channels];
}

/** The image's shape as a tensor shape: [C, H, W] or [H, W, C]. */
export function imageShape(x: Image): number[] {
  return x.layout === 'CHW' ? [x.channels, x.height, x.width] : [x.height, x.width, x.channels];
}
