/**
 * Resampling for the Resize transform (transforms.ts): every image of a batch to `size`, as
 * torchvision's `Resize(size, BILINEAR, antialias=True)` and PIL do. Each output pixel is the
 * triangle-filter average of the input pixels under it, the filter widened by the scale when
 * shrinking (so downscaling averages instead of skipping pixels: antialiasing), with half-pixel
 * centres; when enlarging this is ordinary bilinear interpolation (align_corners=False, edges
 * clamped). Separable: rows, then columns, weights computed once per axis. float32 images stay
 * float32; uint8 images are rounded (half to even, as torchvision) and clamped back to 0-255.
 */
import { checkImage, type ImageBatch } from './image.js';

/** torch.round's rounding (half to even), which torchvision applies to uint8 results. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** For each output index: the first input index and the normalised weights of the inputs from there. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  /** `taps` weights per output index (zero past `count`). */
  weights: Float64Array;
  taps: number;
}

function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the bilinear (triangle) filter has support 1
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.floor(center - support + 0.5), 0);
    const hi = Math.min(Math.floor(center + support + 0.5), inSize);
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) / filterScale));
      weights[i * taps + (j - lo)] = w;
      total += w;
    }
    for (let j = 0; j < hi - lo; j++) weights[i * taps + j] = total > 0 ? weights[i * taps + j]! / total : 0;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, taps };
}

/** Resize a batch to [height, width] (see the module comment); the batch itself when it has that size already. */
export function resizeBatch(x: ImageBatch, size: readonly [number, number]): ImageBatch {
  checkImage('Resize', x);
  const { count, channels: c, height: h, width: w, layout } = x;
  const [oh, ow] = size;
  if (oh === h && ow === w) return x;
  const rows = axisWeights(h, oh);
  const cols = axisWeights(w, ow);
  const isByte = x.data instanceof Uint8Array;
  const src = x.data;
  const out = isByte ? new Uint8Array(count * c * oh * ow) : new Float32Array(count * c * oh * ow);
  // Strides of (image, channel, row, column) in the input and the output, for either layout.
  const chw = layout === 'CHW';
  const [sc, sy, sx] = chw ? [h * w, w, 1] : [1, w * c, c];
  const [dc, dy, dx] = chw ? [oh * ow, ow, 1] : [1, ow * c, c];
  const tmp = new Float64Array(h * ow); // one channel, columns resampled
  for (let n = 0; n < count; n++) {
    for (let ch = 0; ch < c; ch++) {
      const sBase = n * c * h * w + ch * sc;
      const dBase = n * c * oh * ow + ch * dc;
      for (let y = 0; y < h; y++) {
        for (let ox = 0; ox < ow; ox++) {
          const lo = cols.start[ox]!;
          const k = cols.count[ox]!;
          const wb = ox * cols.taps;
          let acc = 0;
          for (let t = 0; t < k; t++) acc += cols.weights[wb + t]! * src[sBase + y * sy + (lo + t) * sx]!;
          tmp[y * ow + ox] = acc;
        }
      }
      for (let oy = 0; oy < oh; oy++) {
        const lo = rows.start[oy]!;
        const k = rows.count[oy]!;
        const wb = oy * rows.taps;
        for (let ox = 0; ox < ow; ox++) {
          let acc = 0;
          for (let t = 0; t < k; t++) acc += rows.weights[wb + t]! * tmp[(lo + t) * ow + ox]!;
          out[dBase + oy * dy + ox * dx] = isByte ? Math.min(255, Math.max(0, roundHalfEven(acc))) : acc;
        }
      }
    }
  }
  return { data: out, channels: c, height: oh, width: ow, layout, count, scratch: true };
}
