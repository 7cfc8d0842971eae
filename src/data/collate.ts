/** Collation: a list of samples to one batch of tensors (PyTorch's default_collate, for our types). */
import { Tensor } from '../tensor/tensor.js';
import { bool, float32, int32 } from '../dtype/dtype.js';
import { stack } from '../ops/shape.js';
import { batchShape, checkImage, imageSize, isImage, type Image, type ImageBatch } from './image.js';

/** A float32 tensor [N, C, H, W] (or [N, H, W, C]) holding a batch; uint8 pixels keep their 0-255 values. */
export function imageBatchToTensor(b: ImageBatch): Tensor {
  checkImage('imageBatchToTensor', b);
  const data = b.data instanceof Float32Array ? b.data : Float32Array.from(b.data);
  return Tensor.fromStorage(data, batchShape(b), float32);
}

/** An int32 tensor [N] of labels. */
export function labelsToTensor(labels: Int32Array): Tensor {
  return Tensor.fromStorage(labels, [labels.length], int32);
}

function describe(v: unknown): string {
  if (v === null || typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'object';
}

/**
 * Stack samples into a batch:
 * - Images (all one shape): one float32 tensor [N, C, H, W] (CHW) or [N, H, W, C] (HWC);
 * - mx.Tensors: stacked along a new first dimension;
 * - numbers: int32 [N] when all are integers, else float32 [N]; booleans: bool [N];
 * - typed arrays of one length: [N, length] (int32 for Int32Array, else float32);
 * - arrays (tuples such as [image, label]) and plain objects: collated position by position / key by key.
 */
export function defaultCollate(samples: readonly unknown[]): any {
  if (samples.length === 0) throw new RangeError('defaultCollate: empty batch');
  const first = samples[0];
  if (first instanceof Tensor) return stack(samples as Tensor[]);
  if (isImage(first)) {
    const imgs = samples as Image[];
    const size = imageSize(first);
    const data = new Float32Array(imgs.length * size);
    imgs.forEach((im, k) => {
      if (!isImage(im) || im.channels !== first.channels || im.height !== first.height || im.width !== first.width || im.layout !== first.layout) {
        throw new RangeError(`defaultCollate: sample ${k} is not an image of the shape of sample 0 (${first.channels}x${first.height}x${first.width} ${first.layout}); resize or crop them to one size`);
      }
      checkImage('defaultCollate', im);
      data.set(im.data, k * size);
    });
    return imageBatchToTensor({ ...first, data, count: imgs.length });
  }
  if (typeof first === 'number') {
    if (!samples.every((s) => typeof s === 'number')) throw new TypeError('defaultCollate: mixed numbers and other values in one position');
    const nums = samples as number[];
    if (nums.every(Number.isInteger)) return Tensor.fromStorage(Int32Array.from(nums), [nums.length], int32);
    return Tensor.fromStorage(Float32Array.from(nums), [nums.length], float32);
  }
  if (typeof first === 'boolean') return Tensor.fromStorage(Uint8Array.from(samples as boolean[], (b) => (b ? 1 : 0)), [samples.length], bool);
  if (ArrayBuffer.isView(first) && !(first instanceof DataView)) {
    const len = (first as unknown as ArrayLike<number>).length;
    const isInt = first instanceof Int32Array;
    const out = isInt ? new Int32Array(samples.length * len) : new Float32Array(samples.length * len);
    samples.forEach((s, k) => {
      const a = s as ArrayLike<number>;
      if (!ArrayBuffer.isView(s) || a.length !== len) throw new RangeError(`defaultCollate: sample ${k} is not an array of ${len} values like sample 0`);
      out.set(a, k * len);
    });
    return Tensor.fromStorage(out, [samples.length, len], isInt ? int32 : float32);
  }
  if (Array.isArray(first)) {
    const n = first.length;
    for (const [k, s] of samples.entries()) {
      if (!Array.isArray(s) || s.length !== n) throw new RangeError(`defaultCollate: sample ${k} is not a list of ${n} items like sample 0`);
    }
    return Array.from({ length: n }, (_, i) => defaultCollate(samples.map((s) => (s as unknown[])[i])));
  }
  if (first && typeof first === 'object' && Object.getPrototypeOf(first) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first)) out[key] = defaultCollate(samples.map((s) => (s as Record<string, unknown>)[key]));
    return out;
  }
  throw new TypeError(`defaultCollate: cannot collate samples of type ${describe(first)}; pass a collate function`);
}
