/**
 * ImageFolder: `root/<class>/**\/*.png|jpg|jpeg`, classes sorted by name (label = index), files sorted
 * within each class, as torchvision's. Images are decoded on access (getItem) with pngjs and jpeg-js
 * (pure JavaScript) into uint8 RGB HWC Images; add ToTensor to the transform for float32 CHW.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import { applyTransform, type TransformLike } from './transforms.js';
import type { Dataset, SampleContext } from './dataset.js';
import type { Image } from './image.js';
import { checkPngInflate, isJpeg, isPng, probeJpeg, probePng, JPEG_EXPANSION, PNG_EXPANSION } from './image_probe.js';
import { FileError, fileSystemError } from '../util/file_error.js';
import { fileBudget, reserve } from '../util/file_budget.js';

/**
 * Decode PNG or JPEG bytes (recognised by their signature) into an RGB HWC uint8 Image; alpha is
 * dropped. The header is checked against the file's size before the decoder allocates (image_probe.ts);
 * errors are FileErrors naming `name`.
 */
export function decodeImage(bytes: Uint8Array, name = 'image'): Image {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  let channels: 3 | 4;
  const png = isPng(buf);
  if (!png && !isJpeg(buf)) throw new FileError(name, `cannot decode ${name}: not a PNG or JPEG file`);
  const pngProbe = png ? probePng(buf, name) : null;
  const probe = pngProbe ?? probeJpeg(buf, name);
  const budget = fileBudget(name, buf.length, png
    ? { expansion: PNG_EXPANSION, basis: 'deflate\'s largest ratio for its image data' }
    : { expansion: JPEG_EXPANSION, basis: 'at least one bit of coded data per 8 x 8 block' });
  reserve(budget, probe.decodeBytes, `decoding its ${probe.width} x ${probe.height} pixels`);
  if (pngProbe) checkPngInflate(buf, pngProbe, name);
  try {
    if (png) {
      const image = pngjs.PNG.sync.read(buf);
      ({ width, height } = image);
      rgba = image.data;
      channels = 4;
    } else {
      const image = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: Math.ceil(budget.limit / 2 ** 20) });
      ({ width, height } = image);
      rgba = image.data;
      channels = 3;
    }
  } catch (e) {
    throw new FileError(name, `cannot decode ${name}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  if (width !== probe.width || height !== probe.height || rgba.length !== width * height * channels) {
    throw new FileError(name, `cannot decode ${name}: the ${probe.format} decoder returned ${rgba.length} values for ${width} x ${height} pixels; expected ${probe.width} x ${probe.height} x ${channels}`);
  }
  if (channels === 3) return { data: rgba, channels: 3, height, width, layout: 'HWC' };
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0, s = 0, d = 0; p < n; p++, s += 4, d += 3) {
    rgb[d] = rgba[s]!;
    rgb[d + 1] = rgba[s + 1]!;
    rgb[d + 2] = rgba[s + 2]!;
  }
  return { data: rgb, channels: 3, height, width, layout: 'HWC' };
}

/** Read and decode an image file. */
export function loadImage(path: string): Image {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw fileSystemError(path, e, 'PNG or JPEG image');
  }
  return decodeImage(bytes, path);
}

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];

export interface ImageFolderOptions {
  transform?: TransformLike | null;
  targetTransform?: ((label: number) => number) | null;
  /** File extensions taken, lower case with the dot (default .png, .jpg, .jpeg; matched case-insensitively). */
  extensions?: readonly string[];
  /** Accept class folders without images (default false: an error names them). */
  allowEmpty?: boolean;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class ImageFolder implements Dataset<[any, number]> {
  readonly classes: string[];
  readonly classToIdx: Record<string, number>;
  /** [path, label] of every image, in order. */
  readonly samples: [string, number][];
  readonly targets: number[];
  transform: TransformLike | null;
  targetTransform: ((label: number) => number) | null;

  constructor(readonly root: string, options: ImageFolderOptions = {}) {
    let isDir = false;
    try {
      isDir = statSync(root).isDirectory();
    } catch {
      /* reported below */
    }
    if (!isDir) throw new FileError(root, `ImageFolder: cannot find the folder ${root} (expected root/<class>/<image>.png|jpg)`);
    const exts = (options.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase());
    this.classes = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort(byName);
    if (this.classes.length === 0) throw new FileError(root, `ImageFolder: ${root} has no class folders (expected root/<class>/<image>.png|jpg)`);
    this.classToIdx = Object.fromEntries(this.classes.map((c, i) => [c, i]));
    this.samples = [];
    const empty: string[] = [];
    this.classes.forEach((cls, label) => {
      const before = this.samples.length;
      const walk = (dir: string): void => {
        const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => byName(a.name, b.name));
        for (const e of entries) {
          const path = join(dir, e.name);
          if (e.isDirectory()) walk(path);
          else if (exts.includes(extname(e.name).toLowerCase())) this.samples.push([path, label]);
        }
      };
      walk(join(root, cls));
      if (this.samples.length === before) empty.push(cls);
    });
    if (empty.length && !options.allowEmpty) {
      throw new FileError(root, `ImageFolder: found no ${exts.join('/')} files for the classes ${empty.join(', ')} in ${root} (allowEmpty: true accepts empty classes)`);
    }
    this.targets = this.samples.map(([, l]) => l);
    this.transform = options.transform ?? null;
    this.targetTransform = options.targetTransform ?? null;
  }

  get length(): number {
    return this.samples.length;
  }

  getItem(index: number, ctx: SampleContext = {}): [any, number] {
    if (!Number.isInteger(index) || index < -this.length || index >= this.length) {
      throw new RangeError(`ImageFolder: index ${index} is out of range for a dataset of ${this.length} samples`);
    }
    const [path, label] = this.samples[index < 0 ? index + this.length : index]!;
    let img: Image;
    try {
      img = loadImage(path);
    } catch (e) {
      throw new FileError(path, `ImageFolder: ${(e as Error).message}`, { cause: e });
    }
    return [
      this.transform ? applyTransform(this.transform, img, ctx.generator) : img,
      this.targetTransform ? this.targetTransform(label) : label,
    ];
  }
}
