/**
 * The readers under fuzz, each with valid seed files and how a case is read. Adding a reader is one
 * entry in TARGETS: its seeds (bytes, layout, structural mutators) and its read call.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { unzipSync } from 'fflate';
import * as mx from '../../../src/api.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { MAX_DEFLATE_RATIO } from '../../../src/util/file_budget.js';
import { JPEG_EXPANSION, PNG_EXPANSION } from '../../../src/data/image_probe.js';
import { gzip, Rand, type Field, type Region, type Seed, type Structural } from './mutations.js';
import {
  encodePng, gzipLayout, headerMutators, jpegLayout, jpegMutators, nested, pngLayout, pngMutators, safetensorsRegions,
  splitSafetensors, joinSafetensors, tarLayout, tarMutators, torchMutators, zipLayout, type PngSpec,
} from './formats.js';
import { fixturesDir } from '../fixtures.js';

export interface TargetSeed extends Seed {
  /** Where the mutated file goes, relative to the case's folder. */
  path: string;
  /** The case's other files (written once per seed), relative to the folder. */
  others?: Record<string, Uint8Array>;
}

export interface FuzzTarget {
  name: string;
  /** What the seeds are, for the report. */
  description: string;
  seeds(): Promise<TargetSeed[]>;
  /** Read a case: `root` is its folder, `file` the mutated file. */
  read(root: string, file: string): Promise<unknown>;
  /** Bytes the reader may allocate per byte of the case's files: what the format warrants. */
  expansion: number;
}

// ----------------------------------------------------------------------------------------------

function safetensorsSeeds(): TargetSeed[] {
  const f32 = Float32Array.from({ length: 6 }, (_, i) => i * 0.5 - 1);
  const tensors = {
    'fc.weight': { dtype: 'float32' as const, shape: [2, 3], data: f32 },
    'fc.bias': { dtype: 'float16' as const, shape: [4], data: Uint16Array.from([0x3c00, 0xbc00, 0x7c00, 0x0001]) },
    'emb': { dtype: 'bfloat16' as const, shape: [2, 2], data: Uint16Array.from([0x3f80, 0x4000, 0x7fc0, 0x8000]) },
    'idx': { dtype: 'int32' as const, shape: [3], data: Int32Array.from([-1, 0, 7]) },
    'mask': { dtype: 'bool' as const, shape: [5], data: Uint8Array.from([1, 0, 1, 1, 0]) },
    'x64': { dtype: 'float64' as const, shape: [1], data: Float64Array.from([Math.PI]) },
    'empty': { dtype: 'float32' as const, shape: [0, 3], data: new Float32Array(0) },
  };
  const main = mx.io.encodeSafetensors(tensors, { epoch: '3', note: 'seed' });
  // I64 is read (as int32) but never written by mixprec: a hand-made file.
  const i64 = new Uint8Array(16);
  new DataView(i64.buffer).setBigInt64(0, -5n, true);
  new DataView(i64.buffer).setBigInt64(8, 123n, true);
  const withI64 = joinSafetensors(JSON.stringify({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }), i64);
  const bare = mx.io.encodeSafetensors({ w: { dtype: 'float32', shape: [3], data: new Float32Array(3) } });
  return [main, withI64, bare].map((bytes, k) => ({
    label: ['seven-dtypes', 'i64', 'one-tensor'][k]!,
    path: 'model.safetensors',
    bytes,
    regions: safetensorsRegions(bytes),
    fields: [{ name: 'header-length', offset: 0, kind: 'u64le' as const }],
    structural: headerMutators(),
  }));
}

/** Edits of the training state a checkpoint keeps as JSON in `__metadata__.mixprec`. */
function stateMutators(): Structural[] {
  const editState = (name: string, fn: (state: any, r: Rand) => string | void): Structural => ({
    name,
    apply: (bytes, r) => {
      const layout = splitSafetensors(bytes);
      const raw = layout?.header['__metadata__']?.mixprec;
      if (!layout || typeof raw !== 'string') return bytes;
      let state: any;
      try {
        state = JSON.parse(raw);
      } catch {
        return bytes; // an earlier mutation broke the state: nothing to edit
      }
      if (state === null || typeof state !== 'object' || state.meta === null || typeof state.meta !== 'object') return bytes;
      const text = fn(state, r);
      layout.header['__metadata__'].mixprec = text ?? JSON.stringify(state);
      return joinSafetensors(JSON.stringify(layout.header), layout.data);
    },
  });
  const markers = (v: any, out: any[] = []): any[] => {
    if (v && typeof v === 'object') {
      if (!Array.isArray(v) && '$tensor' in v) out.push(v);
      else Object.values(v).forEach((x) => markers(x, out));
    }
    return out;
  };
  return [
    editState('tensor-ref', (s, r) => {
      const ms = markers(s);
      if (ms.length) r.pick(ms).$tensor = r.pick<unknown>(['missing', 5, null, '', 'fc.weight', { a: 1 }, 'x'.repeat(10_000)]);
    }),
    editState('marker', (s, r) => {
      s.meta.odd = r.pick<unknown>([{ $number: 'bogus' }, { $number: 5 }, { $foo: 1 }, { $object: 5 }, { $object: { $tensor: 'missing' } }, { $tensor: 'a', extra: 1 }]);
    }),
    editState('version', (s, r) => {
      s.version = r.pick<unknown>([2, 99, '1', -1, 1e308, null, 1.5]);
      if (r.int(3) === 0) s.format = r.pick<unknown>(['x', null, 1]);
    }),
    editState('deep', (s, r) => {
      s.meta.deep = JSON.parse(nested(r.pick([10, 63, 64, 65, 1000]), '1'));
      if (r.int(2)) return JSON.stringify(s).replace('"deep":', `"deeper":${nested(r.pick([100_000, 1_000_000]))},"deep":`);
    }),
    editState('not-json', (_, r) => r.pick(['', '{', 'null', '[]', '1', '{"format":"mixprec.checkpoint"}', 'x'.repeat(1 << 20)])),
    editState('drop-meta', (s, r) => {
      delete s.meta[r.pick(Object.keys(s.meta))];
    }),
  ];
}

async function checkpointSeeds(): Promise<{ seeds: TargetSeed[]; expect: Map<string, { shape: number[]; dtype: mx.DTypeName }> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mixprec-fuzz-seed-'));
  try {
    mx.manualSeed(0);
    const model = new mx.nn.Sequential(new mx.nn.Linear(3, 4), new mx.nn.ReLU(), new mx.nn.Linear(4, 2));
    const opt = new mx.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const scaler = new mx.amp.GradScaler();
    const loss = model.call(mx.randn([5, 3])).sum();
    scaler.scale(loss).backward();
    scaler.step(opt);
    scaler.update();
    const path = join(dir, 'ckpt.safetensors');
    await mx.io.saveCheckpoint(path, {
      tensors: model.stateDict(),
      meta: { epoch: 2, step: 17, optimizer: opt.stateDict(), scaler: scaler.stateDict(), rng: mx.defaultGenerator.getState(), order: [3, 1, 2], nan: NaN },
    });
    const bytes = readFileSync(path);
    const expect = new Map(Object.entries(model.stateDict()).map(([k, t]) => [k, { shape: [...t.shape], dtype: t.dtype }]));
    const seed: TargetSeed = {
      label: 'sgd-momentum-checkpoint',
      path: 'ckpt.safetensors',
      bytes,
      regions: safetensorsRegions(bytes),
      fields: [{ name: 'header-length', offset: 0, kind: 'u64le' }],
      structural: [...headerMutators(), ...stateMutators()],
    };
    return { seeds: [seed], expect };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------------------------------
// CIFAR-10

const RECORDS = 2;
const CIFAR_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];

function cifarBatch(k: number): Uint8Array {
  const out = new Uint8Array(RECORDS * 3073);
  for (let r = 0; r < RECORDS; r++) {
    out[r * 3073] = (k + r) % 10;
    for (let p = 1; p < 3073; p++) out[r * 3073 + p] = (p * 7 + k * 31 + r) & 0xff;
  }
  return out;
}

function cifarRecordLayout(): { regions: Region[]; fields: Field[] } {
  const regions: Region[] = [];
  const fields: Field[] = [];
  for (let r = 0; r < RECORDS; r++) {
    regions.push({ name: `record${r}:label`, start: r * 3073, end: r * 3073 + 1 }, { name: `record${r}:pixels`, start: r * 3073 + 1, end: (r + 1) * 3073 });
    fields.push({ name: `record${r}:label`, offset: r * 3073, kind: 'u8' });
  }
  return { regions, fields };
}

const recordMutators: Structural[] = [
  { name: 'extra-record', apply: (b, r) => new Uint8Array([...b, ...new Uint8Array(r.pick([1, 3073, 3074]))]) },
  { name: 'label', apply: (b, r) => (b.length ? Object.assign(b.slice(), { [r.int(RECORDS) * 3073 % b.length]: r.pick([10, 11, 128, 255]) }) : b) },
];

function cifarBatchSeeds(): TargetSeed[] {
  const files = Object.fromEntries(CIFAR_FILES.map((f, k) => [`cifar-10-batches-bin/${f}`, cifarBatch(k)]));
  return ['data_batch_3.bin', 'test_batch.bin'].map((f) => {
    const path = `cifar-10-batches-bin/${f}`;
    const others = { ...files };
    delete others[path];
    return { label: f, path, bytes: files[path]!, others, ...cifarRecordLayout(), structural: recordMutators };
  });
}

async function cifarArchiveSeeds(): Promise<TargetSeed[]> {
  const tar = await mx.data.writeTar(CIFAR_FILES.map((f, k) => ({ name: `cifar-10-batches-bin/${f}`, data: cifarBatch(k) })));
  const gz = gzip(tar);
  const tl = tarLayout(tar);
  return [
    { label: 'tar-then-gzip', path: 'cifar-10-binary.tar.gz', bytes: tar, ...tl, structural: tarMutators(), encode: gzip },
    { label: 'plain-tar', path: 'cifar-10-binary.tar', bytes: tar, ...tl, structural: tarMutators() },
    { label: 'gzip-bytes', path: 'cifar-10-binary.tar.gz', bytes: gz, ...gzipLayout(gz), structural: [] },
  ];
}

// ----------------------------------------------------------------------------------------------
// MNIST

function idx(dims: number[], fill: (i: number) => number): Uint8Array {
  const header = 4 + 4 * dims.length;
  const count = dims.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(header + count);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0800 | dims.length);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  for (let i = 0; i < count; i++) out[header + i] = fill(i);
  return out;
}

function idxLayout(bytes: Uint8Array, ndim: number): { regions: Region[]; fields: Field[] } {
  const regions: Region[] = [{ name: 'magic', start: 0, end: 4 }];
  const fields: Field[] = [0, 1, 2, 3].map((i) => ({ name: `magic${i}`, offset: i, kind: 'u8' as const }));
  for (let d = 0; d < ndim; d++) {
    regions.push({ name: `dim${d}`, start: 4 + 4 * d, end: 8 + 4 * d });
    fields.push({ name: `dim${d}`, offset: 4 + 4 * d, kind: 'u32be' });
  }
  regions.push({ name: 'data', start: 4 + 4 * ndim, end: bytes.length });
  return { regions, fields };
}

function mnistSeeds(): TargetSeed[] {
  const n = 4;
  const images = idx([n, 6, 5], (i) => (i * 37) & 0xff);
  const labels = idx([n], (i) => i % 10);
  const imagesGz = gzip(images);
  return [
    { label: 'images', path: 'train-images-idx3-ubyte', bytes: images, others: { 'train-labels-idx1-ubyte': labels }, ...idxLayout(images, 3), structural: [] },
    { label: 'labels', path: 'train-labels-idx1-ubyte', bytes: labels, others: { 'train-images-idx3-ubyte': images }, ...idxLayout(labels, 1), structural: [] },
    { label: 'images-then-gzip', path: 'train-images-idx3-ubyte.gz', bytes: images, encode: gzip, others: { 'train-labels-idx1-ubyte': labels }, ...idxLayout(images, 3), structural: [] },
    { label: 'gzip-bytes', path: 'train-images-idx3-ubyte.gz', bytes: imagesGz, others: { 'train-labels-idx1-ubyte': labels }, ...gzipLayout(imagesGz), structural: [] },
  ];
}

// ----------------------------------------------------------------------------------------------
// images

function pngSeeds(): TargetSeed[] {
  const specs: PngSpec[] = [
    { width: 5, height: 4, color: 6, depth: 8, interlace: 0 },
    { width: 7, height: 3, color: 2, depth: 16, interlace: 0 },
    { width: 9, height: 9, color: 0, depth: 1, interlace: 1 },
    { width: 6, height: 5, color: 3, depth: 2, interlace: 0 },
    { width: 4, height: 6, color: 4, depth: 8, interlace: 1 },
  ];
  return specs.map((s) => {
    const bytes = encodePng(s);
    return { label: `png-c${s.color}-d${s.depth}${s.interlace ? '-i' : ''}`, path: 'cls/image.png', bytes, ...pngLayout(bytes), structural: pngMutators() };
  });
}

function jpegSeeds(): TargetSeed[] {
  return [[8, 8, 90], [17, 9, 50], [33, 20, 75]].map(([width, height, quality]) => {
    const data = Buffer.alloc(width! * height! * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 5)) & 0xff;
    const bytes = new Uint8Array(jpeg.encode({ data, width: width!, height: height! }, quality).data);
    return { label: `jpeg-${width}x${height}`, path: 'cls/image.jpg', bytes, ...jpegLayout(bytes), structural: jpegMutators() };
  });
}

// ----------------------------------------------------------------------------------------------
// text

function textSeeds(): TargetSeed[] {
  const texts = [
    'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n',
    'naïve café — 中文 😀 résumé\nΚαλημέρα κόσμε\n',
  ];
  const invalid = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x00], [0xef, 0xbb, 0xbf], [0xf0, 0x9f, 0x98]];
  const structural: Structural[] = [
    { name: 'invalid-utf8', apply: (b, r) => { const at = r.int(b.length + 1); return new Uint8Array([...b.subarray(0, at), ...r.pick(invalid), ...b.subarray(at)]); } },
    { name: 'crlf', apply: (b) => new Uint8Array(Buffer.from(Buffer.from(b).toString('latin1').replace(/\n/g, '\r\n'), 'latin1')) },
  ];
  return texts.map((t, k) => {
    const bytes = new Uint8Array(Buffer.from(t, 'utf8'));
    const regions: Region[] = [];
    let at = 0;
    for (const ch of t) {
      const n = Buffer.byteLength(ch);
      if (n > 1 || ch === '\n') regions.push({ name: `char@${at}`, start: at, end: at + n });
      at += n;
    }
    return { label: k ? 'utf8-multibyte' : 'ascii', path: 'corpus.txt', bytes, regions, fields: [], structural };
  });
}

// ----------------------------------------------------------------------------------------------
// PyTorch files

/** Files written by torch.save (tools/gen_torch_fixtures.py) and by mx.io.saveTorch. */
function torchSeeds(): TargetSeed[] {
  const unzip = (bytes: Uint8Array) => unzipSync(bytes);
  return ['checkpoint.pt', 'dtypes.pt', 'saved_by_mixprec.pt'].map((name) => {
    const bytes = new Uint8Array(readFileSync(join(fixturesDir(), 'torch', name)));
    return { label: name, path: 'model.pt', bytes, ...zipLayout(bytes), structural: torchMutators(unzip) };
  });
}

// ----------------------------------------------------------------------------------------------

let checkpointExpect: Map<string, { shape: number[]; dtype: mx.DTypeName }> | null = null;

export const TARGETS: FuzzTarget[] = [
  {
    name: 'safetensors',
    description: 'mx.io.loadSafetensors on files of every dtype (one hand-made I64 file), 1 to 7 tensors with metadata',
    seeds: async () => safetensorsSeeds(),
    read: (_root, file) => mx.io.loadSafetensors(file),
    expansion: 1,
  },
  {
    name: 'checkpoint',
    description: 'mx.io.loadCheckpoint (with expect) on a checkpoint of a 2-layer MLP after one SGD-momentum step, with GradScaler and RNG state',
    seeds: async () => {
      const { seeds, expect } = await checkpointSeeds();
      checkpointExpect = expect;
      return seeds;
    },
    read: (_root, file) => mx.io.loadCheckpoint(file, { expect: checkpointExpect! }),
    expansion: 1,
  },
  {
    name: 'torch',
    description: 'mx.io.loadTorch on a nested training checkpoint and a file of every dtype written by torch.save, and a state dict written by mx.io.saveTorch',
    seeds: async () => torchSeeds(),
    read: (_root, file) => mx.io.loadTorch(file),
    // entries inflate to 1032x at most, storages widen to int32 at most 4x (src/io/torch/load.ts)
    expansion: 4 * MAX_DEFLATE_RATIO,
  },
  {
    name: 'cifar10-batches',
    description: 'mx.data.readCIFAR10 on a folder of the six batch files (2 records each), one of them mutated',
    seeds: async () => cifarBatchSeeds(),
    read: (root) => mx.data.readCIFAR10(root, { train: true, test: true }, { recordsPerFile: RECORDS }),
    expansion: 1,
  },
  {
    name: 'cifar10-archive',
    description: 'mx.data.readCIFAR10 on cifar-10-binary.tar.gz: the tar mutated then gzipped, a plain .tar, and the gzip bytes mutated',
    seeds: cifarArchiveSeeds,
    read: (_root, file) => mx.data.readCIFAR10(file, { train: true, test: true }, { recordsPerFile: RECORDS }),
    // A split is allocated when its first member arrives: 5 members, each within 1032x the archive.
    expansion: 5 * MAX_DEFLATE_RATIO,
  },
  {
    name: 'mnist-idx',
    description: 'mx.data.MNIST.load on IDX images and labels, plain and gzipped (the IDX mutated then gzipped, or the gzip bytes)',
    seeds: async () => mnistSeeds(),
    read: (root) => mx.data.MNIST.load(root, { train: true }),
    expansion: MAX_DEFLATE_RATIO,
  },
  {
    name: 'imagefolder-png',
    description: 'mx.data.ImageFolder getItem on PNGs: RGBA 8-bit, RGB 16-bit, 1-bit grey interlaced, 2-bit palette, grey+alpha interlaced',
    seeds: async () => pngSeeds(),
    read: async (root) => new mx.data.ImageFolder(root).getItem(0),
    expansion: PNG_EXPANSION,
  },
  {
    name: 'imagefolder-jpeg',
    description: 'mx.data.ImageFolder getItem on baseline JPEGs (jpeg-js) of 8x8, 17x9 and 33x20 pixels',
    seeds: async () => jpegSeeds(),
    read: async (root) => new mx.data.ImageFolder(root).getItem(0),
    expansion: JPEG_EXPANSION,
  },
  {
    name: 'text-corpus',
    description: 'mx.data.CharCorpus.fromFile on ASCII and multi-byte UTF-8 text',
    seeds: async () => textSeeds(),
    read: (_root, file) => mx.data.CharCorpus.fromFile(file),
    expansion: 1,
  },
];

/** Free what a successful read returned (tensors made outside any scope). */
export function disposeResult(value: unknown, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    value.dispose();
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  const children = value instanceof Map ? [...value.values()] : Array.isArray(value) ? value : Object.values(value);
  for (const c of children) disposeResult(c, seen);
}
