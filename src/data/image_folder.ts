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

/** Decode PNG or JPEG bytes (recognised by their signature) into an RGB HWC uint8 Image; alpha is dropped. */
export function decodeImage(bytes: Uint8Array, name = 'image'): Image {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width: number;
  let height: number;
  let rgba: Uint8Array;
  let channels: 3 | 4;
  try {
    if (buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47) {
      const png = pngjs.PNG.sync.read(buf);
      ({ width, height } = png);
      rgba = png.data;
      channels = 4;
    } else if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false });
      ({ width, height } = img);
      rgba = img.data;
      channels = 3;
    } else {
      throw new Error('not a PNG or JPEG file');
    }
  } catch (e) {
    throw new Error(`cannot decode ${name}: ${(e as Error).message}`, { cause: e });
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
  return decodeImage(readFileSync(path), path);
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
    if (!isDir) throw new Error(`ImageFolder: cannot find the folder ${root} (expected root/<class>/<image>.png|jpg)`);
    const exts = (options.extensions ?? IMAGE_EXTENSIONS).map((e) => e.toLowerCase());
    this.classes = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort(byName);
    if (this.classes.length === 0) throw new Error(`ImageFolder: ${root} has no class folders (expected root/<class>/<image>.png|jpg)`);
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
      throw new Error(`ImageFolder: found no ${exts.join('/')} files for the classes ${empty.join(', ')} in ${root} (allowEmpty: true accepts empty classes)`);
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
      throw new Error(`ImageFolder: ${(e as Error).message}`, { cause: e });
    }
    return [
      this.transform ? applyTransform(this.transform, img, ctx.generator) : img,
      this.targetTransform ? this.targetTransform(label) : label,
    ];
  }
}
