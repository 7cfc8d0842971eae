/**
 * A batch of images as one PNG grid (torchvision's make_grid + save_image): tensor [N, C, H, W]
 * (C = 1 or 3) with values in [-1, 1] (a Tanh output; `range` picks another), laid out `nrow` per
 * row with a `padding`-pixel black border around and between the images, written with pngjs
 * atomically (temporary file + rename, as checkpoints are), so a reader never sees half a PNG.
 *
 *   await saveImageGrid('samples.png', generator.call(z));   // 64 images: 8x8, 2-px border
 */
import pngjs from 'pngjs';
import type { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic } from './checkpoint.js';

export interface ImageGridOptions {
  /** Images per row (default 8). */
  nrow?: number;
  /** Border width in pixels, around and between the images (default 2). */
  padding?: number;
  /** The value range mapped to 0..255 (default [-1, 1]); values outside are clamped, NaN is black. */
  range?: readonly [number, number];
}

export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, row-major, 4 bytes a pixel. */
  data: Uint8Array;
}

/** The grid of `values` (row-major [N, C, H, W]) as RGBA pixels. */
export function imageGrid(values: ArrayLike<number>, shape: readonly number[], options: ImageGridOptions = {}): RgbaImage {
  if (shape.length !== 4) throw new RangeError(`imageGrid: expected images [N, C, H, W], got [${shape.join(', ')}]`);
  const [n, c, h, w] = shape as [number, number, number, number];
  if (c !== 1 && c !== 3) throw new RangeError(`imageGrid: expected 1 or 3 channels, got ${c} (shape [${shape.join(', ')}])`);
  if (n < 1) throw new RangeError('imageGrid: no images');
  if (values.length !== n * c * h * w) throw new RangeError(`imageGrid: ${values.length} values do not fill [${shape.join(', ')}]`);
  const nrow = options.nrow ?? 8;
  const pad = options.padding ?? 2;
  const [lo, hi] = options.range ?? [-1, 1];
  if (!Number.isInteger(nrow) || nrow < 1) throw new RangeError(`imageGrid: nrow must be a positive integer, got ${nrow}`);
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`imageGrid: padding must be an integer >= 0, got ${pad}`);
  if (!(hi > lo)) throw new RangeError(`imageGrid: range must be [low, high] with low < high, got [${lo}, ${hi}]`);
  const cols = Math.min(nrow, n);
  const rows = Math.ceil(n / cols);
  const width = cols * (w + pad) + pad;
  const height = rows * (h + pad) + pad;
  const data = new Uint8Array(width * height * 4);
  for (let p = 3; p < data.length; p += 4) data[p] = 255; // opaque black border
  const toByte = (v: number) => (v > lo ? (v < hi ? Math.round(((v - lo) / (hi - lo)) * 255) : 255) : 0); // NaN -> 0
  const plane = h * w;
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % cols) * (w + pad);
    const y0 = pad + Math.floor(k / cols) * (h + pad);
    const base = k * c * plane;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = base + y * w + x;
        const dst = ((y0 + y) * width + x0 + x) * 4;
        for (let ch = 0; ch < 3; ch++) data[dst + ch] = toByte(values[src + (c === 3 ? ch * plane : 0)]!);
      }
    }
  }
  return { width, height, data };
}

/** PNG bytes of an RGBA image. */
export function encodePng(image: RgbaImage): Uint8Array {
  const png = new pngjs.PNG({ width: image.width, height: image.height });
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return pngjs.PNG.sync.write(png);
}

/** Write `images` ([N, C, H, W], any floating dtype, any backend) to `path` as a PNG grid, atomically. */
export async function saveImageGrid(path: string, images: Tensor, options: ImageGridOptions = {}): Promise<void> {
  const grid = imageGrid(await images.data(), images.shape, options);
  await writeFileAtomic(path, [encodePng(grid)]);
}
