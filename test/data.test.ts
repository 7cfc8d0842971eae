/**
 * mx.data: CIFAR-10 (folder, .tar.gz, errors, download from a local server), MNIST IDX files,
 * ImageFolder (PNG and JPEG), transforms, and the DataLoader (batching, seeded shuffling, resumable
 * state, prefetch, disposal). Every input is generated in a temporary folder; the network is never
 * used. One test reads ../shared/datasets/cifar-10-binary.tar.gz when it exists.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { scalerFor, trainStep } from '../src/train/classifier.js';
import { readJson } from './helpers/fixtures.js';

const D = mx.data;
const T = mx.data.transforms;

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mixprec-data-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Synthetic CIFAR-10

const R = 3; // records per file in the synthetic data
const TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

/** Label and pixel value of a synthetic record: file f, record r, plane p (0 R, 1 G, 2 B), pixel q. */
const synthLabel = (f: number, r: number): number => (f * 7 + r * 3) % 10;
const synthPixel = (f: number, r: number, p: number, q: number): number => (f * 50 + r * 20 + p * 80 + q) & 255;

function cifarFile(f: number, records = R): Uint8Array {
  const buf = new Uint8Array(records * 3073);
  for (let r = 0; r < records; r++) {
    buf[r * 3073] = synthLabel(f, r);
    for (let p = 0; p < 3; p++) for (let q = 0; q < 1024; q++) buf[r * 3073 + 1 + p * 1024 + q] = synthPixel(f, r, p, q);
  }
  return buf;
}

/** Files by name: data_batch_1..5 are f = 0..4, test_batch is f = 5. */
function cifarFiles(): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  TRAIN_FILES.forEach((n, f) => m.set(n, cifarFile(f)));
  m.set('test_batch.bin', cifarFile(5));
  return m;
}

function writeCifarFolder(root: string, files = cifarFiles()): string {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  for (const [n, b] of files) writeFileSync(join(dir, n), b);
  writeFileSync(join(dir, 'batches.meta.txt'), D.CIFAR10_CLASSES.join('\n'));
  return root;
}

async function cifarArchive(files = cifarFiles()): Promise<Uint8Array> {
  const entries: { name: string; data?: Uint8Array; type?: 'dir' }[] = [{ name: 'cifar-10-batches-bin', type: 'dir' }];
  entries.push({ name: 'cifar-10-batches-bin/readme.html', data: new TextEncoder().encode('<p>hello</p>') });
  for (const [n, b] of files) entries.push({ name: `cifar-10-batches-bin/${n}`, data: b });
  return D.writeTar(entries, { gzip: true });
}

function checkSynthetic(ds: mx.data.CIFAR10, files: number[]): void {
  assert.equal(ds.length, files.length * R);
  let i = 0;
  for (const f of files) {
    for (let r = 0; r < R; r++, i++) {
      const [img, label] = ds.getItem(i);
      assert.equal(label, synthLabel(f, r));
      assert.equal(img.layout, 'CHW');
      assert.deepEqual([img.channels, img.height, img.width], [3, 32, 32]);
      for (const [p, q] of [[0, 0], [0, 1023], [1, 5], [2, 0], [2, 777]] as const) {
        assert.equal(img.data[p * 1024 + q], synthPixel(f, r, p, q), `file ${f} record ${r} plane ${p} pixel ${q}`);
      }
    }
  }
}

test('CIFAR10 reads the extracted folder: labels, R/G/B planes, train = batches 1..5, test', async () => {
  const root = writeCifarFolder(join(tmp, 'cifar-folder'));
  const train = await D.CIFAR10.load(root, { recordsPerFile: R });
  checkSynthetic(train, [0, 1, 2, 3, 4]);
  assert.equal(train.train, true);
  assert.equal(train.classes[0], 'airplane');
  const test_ = await D.CIFAR10.load(root, { train: false, recordsPerFile: R });
  checkSynthetic(test_, [5]);
  // The cifar-10-batches-bin folder itself is accepted too.
  const direct = await D.CIFAR10.load(join(root, 'cifar-10-batches-bin'), { train: false, recordsPerFile: R });
  assert.deepEqual(direct.images, test_.images);
});

test('CIFAR10 reads the .tar.gz directly (file path or a folder holding it), same data as the folder', async () => {
  const dir = join(tmp, 'cifar-archive');
  mkdirSync(dir, { recursive: true });
  const archive = join(dir, 'cifar-10-binary.tar.gz');
  writeFileSync(archive, await cifarArchive());
  const { train, test: test_ } = await D.CIFAR10.loadSplits(archive, { recordsPerFile: R });
  checkSynthetic(train, [0, 1, 2, 3, 4]);
  checkSynthetic(test_, [5]);
  const viaDir = await D.CIFAR10.load(dir, { train: false, recordsPerFile: R });
  assert.deepEqual(viaDir.images, test_.images);
  assert.deepEqual(viaDir.labels, test_.labels);
  // An uncompressed tar works as well.
  const tarOnly = join(dir, 'plain.tar');
  writeFileSync(tarOnly, await D.writeTar([...cifarFiles()].map(([n, b]) => ({ name: `cifar-10-batches-bin/${n}`, data: b }))));
  const plain = await D.CIFAR10.load(tarOnly, { recordsPerFile: R });
  assert.deepEqual(plain.images, train.images);
});

test('CIFAR10 errors name the file and the expected size', async () => {
  await assert.rejects(D.CIFAR10.load(join(tmp, 'nowhere')), (e: Error) => {
    assert.match(e.message, /^CIFAR10: cannot find .*nowhere: expected cifar-10-binary\.tar\.gz or a folder containing cifar-10-batches-bin\/data_batch_1\.bin/);
    assert.match(e.message, /download: true/);
    return true;
  });
  const empty = join(tmp, 'cifar-empty');
  mkdirSync(empty, { recursive: true });
  await assert.rejects(D.CIFAR10.load(empty), /CIFAR10: cannot find the dataset in .*cifar-empty: expected/);

  // A truncated batch file in a folder.
  const files = cifarFiles();
  files.set('data_batch_3.bin', cifarFile(2).subarray(0, 3073 * 2 + 100));
  const root = writeCifarFolder(join(tmp, 'cifar-truncated'), files);
  await assert.rejects(D.CIFAR10.load(root, { recordsPerFile: R }), (e: Error) => {
    assert.equal(e.message, `CIFAR10: ${join(root, 'cifar-10-batches-bin', 'data_batch_3.bin')} has ${3073 * 2 + 100} bytes, expected ${3073 * R} (${R} records of 3073 bytes)`);
    return true;
  });
  // The official size by default.
  await assert.rejects(D.CIFAR10.load(root, { train: false }), /test_batch\.bin has 9219 bytes, expected 30730000 \(10000 records of 3073 bytes\)/);
  // A missing file in the folder.
  writeFileSync(join(root, 'cifar-10-batches-bin', 'data_batch_3.bin'), cifarFile(2));
  rmSync(join(root, 'cifar-10-batches-bin', 'data_batch_5.bin'));
  await assert.rejects(D.CIFAR10.load(root, { recordsPerFile: R }), /CIFAR10: cannot find .*data_batch_5\.bin/);

  // A malformed member in the archive, a truncated archive, corrupt gzip, a missing member, a bad label.
  const bad = cifarFiles();
  bad.set('data_batch_2.bin', cifarFile(1).subarray(0, 5000));
  const badArchive = join(tmp, 'bad-member.tar.gz');
  writeFileSync(badArchive, await cifarArchive(bad));
  await assert.rejects(D.CIFAR10.load(badArchive, { recordsPerFile: R }),
    /^Error: CIFAR10: .*bad-member\.tar\.gz \(member cifar-10-batches-bin\/data_batch_2\.bin\) has 5000 bytes, expected 9219 \(3 records of 3073 bytes\)/);

  const gz = await cifarArchive();
  const cut = join(tmp, 'cut.tar.gz');
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length / 2)));
  await assert.rejects(D.CIFAR10.load(cut, { recordsPerFile: R }), (e: Error) => {
    assert.match(e.message, /^CIFAR10: cannot read .*cut\.tar\.gz/);
    return true;
  });
  const tarCut = join(tmp, 'cut.tar');
  const tar = await D.writeTar([...cifarFiles()].map(([n, b]) => ({ name: `cifar-10-batches-bin/${n}`, data: b })));
  writeFileSync(tarCut, tar.subarray(0, 512 + 19 * 512 + 512 + 4000)); // member 1 (9219 bytes padded to 19 blocks), header 2, 4000 bytes
  await assert.rejects(D.CIFAR10.load(tarCut, { recordsPerFile: R }),
    /CIFAR10: cannot read .*cut\.tar: truncated tar archive: member cifar-10-batches-bin\/data_batch_2\.bin has 4000 of its 9219 bytes/);

  const corrupt = Buffer.from(gz);
  for (let i = 20; i < 60; i++) corrupt[i] ^= 0x5a;
  const corruptPath = join(tmp, 'corrupt.tar.gz');
  writeFileSync(corruptPath, corrupt);
  await assert.rejects(D.CIFAR10.load(corruptPath, { recordsPerFile: R }), /CIFAR10: cannot read .*corrupt\.tar\.gz/);

  const notTar = join(tmp, 'not-a-tar.tar.gz');
  writeFileSync(notTar, gzipSync(Buffer.alloc(3000, 65)));
  await assert.rejects(D.CIFAR10.load(notTar, { recordsPerFile: R }), /CIFAR10: cannot read .*not-a-tar\.tar\.gz: not a valid tar archive/);

  const partial = cifarFiles();
  partial.delete('data_batch_4.bin');
  const partialPath = join(tmp, 'partial.tar.gz');
  writeFileSync(partialPath, await cifarArchive(partial));
  await assert.rejects(D.CIFAR10.load(partialPath, { recordsPerFile: R }), /partial\.tar\.gz has no member cifar-10-batches-bin\/data_batch_4\.bin/);
  // The test split alone does not need the train members.
  assert.equal((await D.CIFAR10.load(partialPath, { train: false, recordsPerFile: R })).length, R);

  const labels = cifarFiles();
  const lb = labels.get('test_batch.bin')!;
  lb[3073] = 200;
  const labelRoot = writeCifarFolder(join(tmp, 'cifar-bad-label'), labels);
  await assert.rejects(D.CIFAR10.load(labelRoot, { train: false, recordsPerFile: R }), /test_batch\.bin record 1 has label 200, expected 0-9/);
});

test('readTar reads archives made by the system tar (GNU long names, pax headers, UTF-8 names)', async (t) => {
  if (spawnSync('tar', ['--version']).status !== 0) {
    t.skip('no tar command');
    return;
  }
  const src = join(tmp, 'tar-src');
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/longfile_\u00f1.bin`;
  mkdirSync(join(src, dirname(long)), { recursive: true });
  const payload = Uint8Array.from({ length: 1500 }, (_, i) => (i * 31) & 255);
  writeFileSync(join(src, long), payload);
  writeFileSync(join(src, 'short.txt'), 'hi\n');
  for (const format of ['gnu', 'pax', 'ustar']) {
    const archive = join(tmp, `sys-${format}.tar.gz`);
    const r = spawnSync('tar', [`--format=${format}`, '-czf', archive, '-C', src, '.']);
    assert.equal(r.status, 0, r.stderr.toString());
    const got = new Map<string, Uint8Array>();
    await D.readTar(archive, { select: () => true, onEntry: (h, d) => got.set(h.name.replace(/^\.\//, ''), d) });
    assert.deepEqual([...got.keys()].sort(), [long, 'short.txt'].sort(), format);
    assert.deepEqual(new Uint8Array(got.get(long)!), payload, format);
  }
});

// ---------------------------------------------------------------------------------------------
// Download from a local server

async function withServer(routes: Record<string, Uint8Array>, fn: (base: string, hits: string[]) => Promise<void>): Promise<void> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const body = routes[req.url ?? ''];
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(body.length) });
    // Several chunks, so progress reports more than once.
    const step = Math.ceil(body.length / 4);
    for (let i = 0; i < body.length; i += step) res.write(body.subarray(i, i + step));
    res.end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  try {
    await fn(`http://127.0.0.1:${port}`, hits);
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

test('download: fetches from a local server, checks the md5, renames into place; mismatch and 404 fail cleanly', async () => {
  const archive = await cifarArchive();
  const md5 = createHash('md5').update(archive).digest('hex');
  await withServer({ '/cifar.tar.gz': archive }, async (base, hits) => {
    // CIFAR10 with download: true and the URL and md5 overridden.
    const root = join(tmp, 'dl-ok');
    const progress: [number, number | null][] = [];
    const ds = await D.CIFAR10.load(root, {
      train: false, download: true, url: `${base}/cifar.tar.gz`, md5, recordsPerFile: R,
      progress: (got, total) => progress.push([got, total]),
    });
    checkSynthetic(ds, [5]);
    assert.deepEqual(readdirSync(root), ['cifar-10-binary.tar.gz'], 'only the archive, no temporary file left');
    assert.ok(progress.length >= 2);
    assert.deepEqual(progress[progress.length - 1], [archive.length, archive.length]);
    // Present now: no second download.
    const again = await D.CIFAR10.load(root, { train: false, download: true, url: `${base}/cifar.tar.gz`, md5, recordsPerFile: R });
    assert.equal(again.length, R);
    assert.equal(hits.length, 1);

    // md5 mismatch: an error, nothing saved.
    const bad = join(tmp, 'dl-bad');
    await assert.rejects(
      D.CIFAR10.load(bad, { download: true, url: `${base}/cifar.tar.gz`, md5: '0'.repeat(32), recordsPerFile: R, progress: false }),
      new RegExp(`md5 mismatch: got ${md5}, expected 0{32} \\(the file was not saved\\)`),
    );
    assert.deepEqual(readdirSync(bad), []);
    // The official md5 is the default, so the synthetic archive is refused.
    await assert.rejects(D.CIFAR10.load(join(tmp, 'dl-default'), { download: true, url: `${base}/cifar.tar.gz`, progress: false }),
      new RegExp(`expected ${D.CIFAR10_MD5}`));

    // HTTP errors.
    await assert.rejects(D.downloadFile(`${base}/missing`, join(tmp, 'dl-404', 'x.bin'), { progress: false }), /GET http:\/\/127\.0\.0\.1:\d+\/missing failed: HTTP 404/);
    assert.deepEqual(readdirSync(join(tmp, 'dl-404')), []);
    // A plain download to an explicit path.
    const dest = join(tmp, 'dl-file', 'a.tar.gz');
    assert.equal(await D.downloadFile(`${base}/cifar.tar.gz`, dest, { md5: md5.toUpperCase(), progress: false }), dest);
    assert.equal(await D.md5File(dest), md5);
  });
});

// ---------------------------------------------------------------------------------------------
// MNIST

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

test('MNIST reads IDX files, plain and gzipped, and validates magic numbers and sizes', async () => {
  const n = 5;
  const images = new Uint8Array(n * 28 * 28).map((_, i) => (i * 13) & 255);
  const labels = Uint8Array.from([3, 1, 4, 1, 5]);
  const plain = join(tmp, 'mnist-plain');
  const gz = join(tmp, 'mnist-gz');
  mkdirSync(plain);
  mkdirSync(gz);
  for (const prefix of ['train', 't10k']) {
    writeFileSync(join(plain, `${prefix}-images-idx3-ubyte`), idx([n, 28, 28], images));
    writeFileSync(join(plain, `${prefix}-labels-idx1-ubyte`), idx([n], labels));
    writeFileSync(join(gz, `${prefix}-images-idx3-ubyte.gz`), gzipSync(idx([n, 28, 28], images)));
    writeFileSync(join(gz, `${prefix}-labels-idx1-ubyte.gz`), gzipSync(idx([n], labels)));
  }
  for (const root of [plain, gz]) {
    for (const train of [true, false]) {
      const ds = await D.MNIST.load(root, { train });
      assert.equal(ds.length, n);
      assert.deepEqual([ds.channels, ds.height, ds.width], [1, 28, 28]);
      assert.deepEqual([...ds.labels], [...labels]);
      const [img, label] = ds.getItem(2);
      assert.equal(label, 4);
      assert.deepEqual([...img.data], [...images.subarray(2 * 784, 3 * 784)]);
    }
  }
  // Through the loader with ToTensor: float32 [B, 1, 28, 28] in [0, 1].
  const ds = await D.MNIST.load(gz, { transform: new T.ToTensor() });
  const loader = new D.DataLoader(ds, { batchSize: 4, autoDispose: false });
  const batches: [Tensor, Tensor][] = [];
  for await (const b of loader) batches.push(b);
  assert.deepEqual(batches.map(([x]) => x.shape), [[4, 1, 28, 28], [1, 1, 28, 28]]);
  assert.equal(batches[0]![1].dtype, 'int32');
  assert.deepEqual([...(await batches[0]![1].data())], [3, 1, 4, 1]);
  const x0 = await batches[0]![0].data();
  assert.equal(x0[1], Math.fround(13 / 255));

  // Errors: wrong magic, wrong size, missing file, count mismatch.
  const bad = join(tmp, 'mnist-bad');
  mkdirSync(bad);
  const wrongMagic = Buffer.from(idx([n], labels));
  wrongMagic[3] = 2;
  writeFileSync(join(bad, 'train-images-idx3-ubyte'), idx([n, 28, 28], images));
  writeFileSync(join(bad, 'train-labels-idx1-ubyte'), wrongMagic);
  await assert.rejects(D.MNIST.load(bad), /MNIST: .*train-labels-idx1-ubyte is not an IDX file of unsigned bytes with 1 dimension: magic 0x00000802 .*expected 0x00000801/);
  writeFileSync(join(bad, 'train-labels-idx1-ubyte'), idx([n], labels));
  writeFileSync(join(bad, 'train-images-idx3-ubyte'), idx([n, 28, 28], images).subarray(0, 1000));
  await assert.rejects(D.MNIST.load(bad), /MNIST: .*train-images-idx3-ubyte has 1000 bytes, expected 3936 \(a 16-byte header and 5 x 28 x 28 values\)/);
  writeFileSync(join(bad, 'train-images-idx3-ubyte'), idx([n, 28, 28], images));
  writeFileSync(join(bad, 'train-labels-idx1-ubyte'), idx([n - 1], labels.subarray(0, n - 1)));
  await assert.rejects(D.MNIST.load(bad), /train images and labels disagree: 5 images but 4 labels/);
  await assert.rejects(D.MNIST.load(bad, { train: false }), /MNIST: cannot find t10k-images-idx3-ubyte \(or t10k-images-idx3-ubyte\.gz\)/);
  await assert.rejects(D.MNIST.load(join(tmp, 'no-mnist')), /MNIST: cannot find the folder/);
});

// ---------------------------------------------------------------------------------------------
// ImageFolder

test('ImageFolder: sorted classes, PNG and JPEG decoded to RGB, transforms, loader', async () => {
  const root = join(tmp, 'folder');
  const w = 6;
  const h = 4;
  const rgba = (r: number, g: number, b: number): Buffer => {
    const d = Buffer.alloc(w * h * 4);
    for (let p = 0; p < w * h; p++) d.set([r, g + p, b, p % 2 ? 255 : 0], p * 4);
    return d;
  };
  mkdirSync(join(root, 'zebra'), { recursive: true });
  mkdirSync(join(root, 'cat', 'nested'), { recursive: true });
  mkdirSync(join(root, 'dog'), { recursive: true });
  writeFileSync(join(root, 'cat', 'b.png'), pngjs.PNG.sync.write({ width: w, height: h, data: rgba(10, 20, 30) } as never));
  writeFileSync(join(root, 'cat', 'a.PNG'), pngjs.PNG.sync.write({ width: w, height: h, data: rgba(40, 50, 60) } as never));
  writeFileSync(join(root, 'cat', 'nested', 'c.png'), pngjs.PNG.sync.write({ width: w, height: h, data: rgba(1, 2, 3) } as never));
  writeFileSync(join(root, 'cat', 'notes.txt'), 'ignored');
  writeFileSync(join(root, 'dog', 'x.jpg'), jpeg.encode({ width: w, height: h, data: rgba(200, 100, 50) }, 100).data);
  writeFileSync(join(root, 'zebra', 'y.jpeg'), jpeg.encode({ width: w, height: h, data: rgba(0, 0, 250) }, 100).data);

  const ds = new D.ImageFolder(root);
  assert.deepEqual(ds.classes, ['cat', 'dog', 'zebra']);
  assert.deepEqual(ds.classToIdx, { cat: 0, dog: 1, zebra: 2 });
  assert.deepEqual(ds.samples.map(([p, l]) => [p.slice(root.length + 1), l]), [
    [join('cat', 'a.PNG'), 0], [join('cat', 'b.png'), 0], [join('cat', 'nested', 'c.png'), 0], [join('dog', 'x.jpg'), 1], [join('zebra', 'y.jpeg'), 2],
  ]);
  const [png, l0] = ds.getItem(1);
  assert.equal(l0, 0);
  assert.equal(png.layout, 'HWC');
  assert.deepEqual([png.height, png.width, png.channels], [h, w, 3]);
  assert.deepEqual([...png.data.subarray(0, 6)], [10, 20, 30, 10, 21, 30], 'RGB, alpha dropped');
  const [jpg, l1] = ds.getItem(3);
  assert.equal(l1, 1);
  for (const [i, v] of [[0, 200], [1, 100], [2, 50]] as const) assert.ok(Math.abs(jpg.data[i]! - v) <= 4, `jpeg channel ${i}: ${jpg.data[i]}`);

  // ToTensor makes float CHW; the loader stacks [B, 3, H, W] and int32 labels.
  const tds = new D.ImageFolder(root, { transform: new T.Compose([new T.ToTensor()]) });
  const [t0] = tds.getItem(1);
  assert.equal(t0.layout, 'CHW');
  assert.equal(t0.data[0], Math.fround(10 / 255));
  assert.equal(t0.data[w * h], Math.fround(20 / 255), 'G plane after the R plane');
  const loader = new D.DataLoader(tds, { batchSize: 2, autoDispose: false });
  const got: [Tensor, Tensor][] = [];
  for await (const b of loader) got.push(b);
  assert.deepEqual(got.map(([x]) => x.shape), [[2, 3, h, w], [2, 3, h, w], [1, 3, h, w]]);
  assert.deepEqual([...(await got[1]![1].data())], [0, 1]);

  // Errors.
  writeFileSync(join(root, 'dog', 'broken.png'), Buffer.from('not an image'));
  const withBroken = new D.ImageFolder(root);
  const bi = withBroken.samples.findIndex(([p]) => p.endsWith('broken.png'));
  assert.throws(() => withBroken.getItem(bi), /ImageFolder: cannot decode .*broken\.png: not a PNG or JPEG file/);
  mkdirSync(join(root, 'empty'));
  assert.throws(() => new D.ImageFolder(root), /found no \.png\/\.jpg\/\.jpeg files for the classes empty/);
  assert.equal(new D.ImageFolder(root, { allowEmpty: true }).classes.length, 4);
  assert.throws(() => new D.ImageFolder(join(tmp, 'no-folder')), /ImageFolder: cannot find the folder/);
});

// ---------------------------------------------------------------------------------------------
// Transforms

function chwImage(c: number, h: number, w: number, f = (i: number) => i % 256): mx.data.Image {
  return { data: Uint8Array.from({ length: c * h * w }, (_, i) => f(i)), channels: c, height: h, width: w, layout: 'CHW' };
}

test('ToTensor: uint8 to float32 in [0, 1] (x / 255), HWC to CHW', () => {
  const img = chwImage(3, 2, 2, (i) => i * 20);
  const t = new T.ToTensor().apply(img);
  assert.ok(t.data instanceof Float32Array);
  assert.deepEqual([...t.data], [...img.data].map((v) => Math.fround(v / 255)));
  assert.equal(new T.ToTensor().call({ ...img, data: Uint8Array.of(0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9) }).data[1], 1);
  // HWC [2, 2, 3]: pixel p has channels (p*3, p*3+1, p*3+2).
  const hwc: mx.data.Image = { data: Uint8Array.from({ length: 12 }, (_, i) => i), channels: 3, height: 2, width: 2, layout: 'HWC' };
  const c = new T.ToTensor().apply(hwc);
  assert.equal(c.layout, 'CHW');
  assert.deepEqual([...c.data].map((v) => Math.round(v * 255)), [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
});

test('Normalize: (x - mean) / std per channel, rounded like torch in float32; input untouched', () => {
  const x: mx.data.Image = { data: Float32Array.from([0, 0.5, 1, 0.25, 0.1, 0.2, 0.3, 0.4]), channels: 2, height: 2, width: 2, layout: 'CHW' };
  const copy = x.data.slice();
  const y = new T.Normalize([0.5, 0.1], [0.25, 0.3]).apply(x);
  const want = [...x.data].map((v, i) => {
    const m = Math.fround(i < 4 ? 0.5 : 0.1);
    const s = Math.fround(i < 4 ? 0.25 : 0.3);
    return Math.fround(Math.fround(v - m) / s);
  });
  assert.deepEqual([...y.data], want);
  assert.deepEqual(x.data, copy);
  assert.throws(() => new T.Normalize([0.5], [0]), /division by zero/);
  assert.throws(() => new T.Normalize([0.5, 0.5, 0.5], [1, 1, 1]).apply(x), /mean has 3 values for an image of 2 channels/);
  assert.throws(() => new T.Normalize(0.5, 0.5).apply(chwImage(1, 2, 2)), /apply ToTensor first/);
});

test('RandomCrop with padding keeps the shape, takes a shifted window, zero-pads, and is seeded', () => {
  const img = chwImage(3, 8, 8, (i) => 1 + (i % 250));
  const crop = new T.RandomCrop(8, { padding: 2 });
  const seen = new Set<string>();
  const g = new mx.Generator(5);
  for (let trial = 0; trial < 40; trial++) {
    const out = crop.apply(img, g);
    assert.deepEqual([out.channels, out.height, out.width, out.layout], [3, 8, 8, 'CHW']);
    // Find the offset: the output is the padded image's window at (top, left), zeros outside.
    let found = false;
    for (let top = 0; top <= 4 && !found; top++) {
      for (let left = 0; left <= 4 && !found; left++) {
        let ok = true;
        for (let ch = 0; ch < 3 && ok; ch++) for (let y = 0; y < 8 && ok; y++) for (let x = 0; x < 8 && ok; x++) {
          const sy = top + y - 2;
          const sx = left + x - 2;
          const want = sy < 0 || sy >= 8 || sx < 0 || sx >= 8 ? 0 : img.data[ch * 64 + sy * 8 + sx];
          ok = out.data[ch * 64 + y * 8 + x] === want;
        }
        if (ok) {
          found = true;
          seen.add(`${top},${left}`);
        }
      }
    }
    assert.ok(found, 'output is a window of the padded image');
  }
  assert.ok(seen.size > 10, `offsets vary (${seen.size} distinct)`);
  // Same generator state, same crops; torchvision's order: top then left, each uniform.
  const a = crop.apply(img, new mx.Generator(9));
  const b = crop.apply(img, new mx.Generator(9));
  assert.deepEqual(a.data, b.data);
  const g2 = new mx.Generator(9);
  const top = g2.nextInt(0, 5);
  const left = g2.nextInt(0, 5);
  assert.equal(a.data[(2 - top + 2) * 8 + (2 - left + 2)] /* out pixel mapping to src (2, 2) */, img.data[2 * 8 + 2]);
  // Without padding and the same size: identity, no draw.
  const g3 = new mx.Generator(1);
  const before = g3.getState();
  assert.deepEqual(new T.RandomCrop(8).apply(img, g3).data, img.data);
  assert.deepEqual(g3.getState(), before);
  // A smaller crop; HWC layout; other padding modes keep values from the image.
  assert.deepEqual(new T.RandomCrop([4, 6]).apply(img, g).height, 4);
  const hwc = new T.RandomCrop(8, { padding: 3 }).apply({ ...img, layout: 'HWC' }, g);
  assert.deepEqual([hwc.height, hwc.width, hwc.layout], [8, 8, 'HWC']);
  const reflect = new T.RandomCrop(8, { padding: 4, paddingMode: 'reflect' }).apply(img, g);
  assert.ok([...reflect.data].every((v) => v !== 0));
  assert.throws(() => new T.RandomCrop(10).apply(img), /required crop size 10x10 is larger than the \(padded\) input image size 8x8/);
  assert.equal(new T.RandomCrop(10, { padIfNeeded: true }).apply(img, g).width, 10);
  // The module-level default generator is used when none is given: reproducible with manualSeed.
  mx.manualSeed(3);
  const d1 = crop.apply(img);
  mx.manualSeed(3);
  assert.deepEqual(crop.apply(img).data, d1.data);
});

test('RandomHorizontalFlip mirrors rows with probability p; Compose chains; batch mode matches', () => {
  const img = chwImage(2, 2, 3, (i) => i);
  assert.deepEqual([...new T.RandomHorizontalFlip(1).apply(img).data], [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]);
  assert.deepEqual([...new T.RandomHorizontalFlip(0).apply(img).data], [...img.data]);
  assert.deepEqual([...new T.RandomVerticalFlip(1).apply(img).data], [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]);
  const hwc: mx.data.Image = { data: Uint8Array.from({ length: 12 }, (_, i) => i), channels: 2, height: 2, width: 3, layout: 'HWC' };
  assert.deepEqual([...new T.RandomHorizontalFlip(1).apply(hwc).data], [4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7]);
  assert.deepEqual([...img.data], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'input untouched');
  // About half flipped at p = 0.5.
  const g = new mx.Generator(2);
  let flips = 0;
  for (let i = 0; i < 400; i++) if (new T.RandomHorizontalFlip().apply(img, g).data[0] === 2) flips++;
  assert.ok(flips > 150 && flips < 250, `${flips} of 400`);

  const pipeline = new T.Compose([new T.RandomHorizontalFlip(1), new T.ToTensor(), new T.Normalize(0.5, 0.5), (x: mx.data.Image) => x]);
  const out = pipeline.call(img);
  assert.equal(out.data[0], Math.fround(Math.fround(2 / 255 - 0.5) / 0.5));
  assert.ok(D.transforms.supportsBatch(new T.Compose([new T.ToTensor()])));
  assert.ok(!D.transforms.supportsBatch(pipeline));
  // Batch mode (also through a function transform, image by image) equals the images one by one
  // when nothing is random.
  const batch: mx.data.ImageBatch = { ...chwImage(2, 2, 3, (i) => (i * 7) % 256), data: Uint8Array.from({ length: 36 }, (_, i) => (i * 7) % 256), count: 3 };
  const pb = pipeline.applyBatch(batch);
  for (let k = 0; k < 3; k++) {
    const one = pipeline.apply({ ...batch, data: batch.data.slice(k * 12, k * 12 + 12) });
    assert.deepEqual([...pb.data.subarray(k * 12, k * 12 + 12)], [...one.data]);
  }
  assert.throws(() => new T.Compose([{} as never]), /is not a transform/);
});

// ---------------------------------------------------------------------------------------------
// DataLoader

function numbered(n: number, c = 1, h = 2, w = 2): mx.data.ImageArrayDataset {
  const size = c * h * w;
  const images = new Uint8Array(n * size);
  for (let i = 0; i < n; i++) images.fill(i % 256, i * size, (i + 1) * size);
  return new D.ImageArrayDataset(images, Int32Array.from({ length: n }, (_, i) => i), [c, h, w]);
}

async function collectLabels(loader: mx.data.DataLoader): Promise<number[][]> {
  const out: number[][] = [];
  for await (const [, y] of loader) out.push([...(await y.data())]);
  return out;
}

test('DataLoader batches in order, with length, dropLast and int32 labels / float32 images', async () => {
  const ds = numbered(10);
  const loader = new D.DataLoader(ds, { batchSize: 4 });
  assert.equal(loader.length, 3);
  assert.deepEqual(await collectLabels(loader), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const dropped = new D.DataLoader(ds, { batchSize: 4, dropLast: true });
  assert.equal(dropped.length, 2);
  assert.deepEqual(await collectLabels(dropped), [[0, 1, 2, 3], [4, 5, 6, 7]]);
  for await (const [x, y] of new D.DataLoader(ds, { batchSize: 3 })) {
    assert.equal(x.dtype, 'float32');
    assert.equal(y.dtype, 'int32');
    assert.deepEqual(x.shape, [y.shape[0], 1, 2, 2]);
    const xv = await x.data();
    const yv = await y.data();
    for (let k = 0; k < yv.length; k++) assert.equal(xv[k * 4], yv[k], 'raw 0-255 values without ToTensor');
  }
  assert.equal(new D.DataLoader(ds).length, 10);
  assert.throws(() => new D.DataLoader(ds, { batchSize: 0 }), /batchSize must be an integer >= 1/);
});

test('DataLoader shuffle: reproducible from the seed, a new permutation every epoch, manualSeed works', async () => {
  const ds = numbered(50);
  const a = new D.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 123 });
  const b = new D.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 123 });
  const a0 = (await collectLabels(a)).flat();
  const a1 = (await collectLabels(a)).flat();
  assert.equal(a.epoch, 2);
  assert.deepEqual((await collectLabels(b)).flat(), a0, 'same seed, same order');
  assert.deepEqual((await collectLabels(b)).flat(), a1, 'epoch 1 too');
  assert.notDeepEqual(a0, a1, 'epochs differ');
  assert.deepEqual([...a0].sort((p, q) => p - q), Array.from({ length: 50 }, (_, i) => i), 'a permutation');
  assert.notDeepEqual(a0, Array.from({ length: 50 }, (_, i) => i));
  const c = new D.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 124 });
  assert.notDeepEqual((await collectLabels(c)).flat(), a0);
  // Epoch e's order is a pure function of (seed, e).
  b.setEpoch(0);
  assert.deepEqual((await collectLabels(b)).flat(), a0);
  assert.deepEqual([...D.epochPermutation(50, 123, 1)], a1);
  // Seed drawn from mx.defaultGenerator (or a given generator) at construction.
  mx.manualSeed(7);
  const m1 = (await collectLabels(new D.DataLoader(ds, { batchSize: 8, shuffle: true }))).flat();
  mx.manualSeed(7);
  const m2 = (await collectLabels(new D.DataLoader(ds, { batchSize: 8, shuffle: true }))).flat();
  assert.deepEqual(m1, m2);
  const g1 = (await collectLabels(new D.DataLoader(ds, { batchSize: 8, shuffle: true, generator: new mx.Generator(4) }))).flat();
  const g2 = (await collectLabels(new D.DataLoader(ds, { batchSize: 8, shuffle: true, generator: new mx.Generator(4) }))).flat();
  assert.deepEqual(g1, g2);
});

test('DataLoader state/loadState resumes the exact stream mid-epoch, augmentation included', async () => {
  const base = await D.CIFAR10.load(writeCifarFolder(join(tmp, 'cifar-resume')), { recordsPerFile: R });
  const aug = new T.Compose([new T.RandomCrop(32, { padding: 4 }), new T.RandomHorizontalFlip(), new T.ToTensor(), new T.Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])]);
  base.transform = aug;
  const opts = { batchSize: 4, shuffle: true, seed: 99 };
  const run = async (loader: mx.data.DataLoader, stopAfter = Infinity): Promise<string[]> => {
    const out: string[] = [];
    for await (const [x, y] of loader) {
      const h = createHash('md5').update(new Uint8Array((await x.data()).buffer)).update(new Uint8Array((await y.data()).buffer)).digest('hex');
      out.push(h);
      if (out.length >= stopAfter) break;
    }
    return out;
  };
  const ref = new D.DataLoader(base, opts);
  const e0 = await run(ref);
  const e1 = await run(ref);
  assert.equal(e0.length, 4);
  assert.notDeepEqual(e0, e1);
  // A loader stopped after 2 batches of epoch 1, its state saved as JSON, restored into a new loader.
  const first = new D.DataLoader(base, opts);
  await run(first);
  let saved = '';
  let count = 0;
  for await (const _ of first) {
    if (++count === 2) {
      saved = JSON.stringify(first.state());
      break;
    }
  }
  assert.deepEqual(JSON.parse(saved), { seed: 99, epoch: 1, batch: 2 });
  assert.deepEqual(first.state(), { seed: 99, epoch: 2, batch: 0 }, 'a finished or broken loop moves to the next epoch');
  const resumed = new D.DataLoader(base, { ...opts, seed: 1 });
  resumed.loadState(JSON.parse(saved));
  assert.deepEqual(await run(resumed), e1.slice(2), 'the rest of epoch 1, bitwise');
  // Resume at an epoch boundary; mx.defaultGenerator draws in between do not matter.
  const boundary = new D.DataLoader(base, { ...opts, seed: 5 });
  boundary.loadState({ seed: 99, epoch: 0, batch: 4 });
  mx.randn([10]);
  assert.deepEqual(await run(boundary), e1);
  // Prefetch depth does not change the data.
  for (const prefetch of [0, 1, 5]) assert.deepEqual(await run(new D.DataLoader(base, { ...opts, prefetch })), e0);
  assert.throws(() => resumed.loadState({ seed: 1.5, epoch: 0, batch: 0 }), /seed must be an integer/);
});

test('DataLoader prefetches the next batches while the consumer awaits', async () => {
  const ds = numbered(40);
  const requested: number[] = [];
  const spy = {
    length: ds.length,
    getItem: (i: number) => ds.getItem(i),
    getBatch: (idx: Int32Array, ctx?: mx.data.SampleContext) => {
      requested.push(ctx!.batch!);
      return ds.getBatch(idx, ctx);
    },
  };
  const loader = new D.DataLoader(spy, { batchSize: 4, prefetch: 2 });
  let step = 0;
  for await (const [, y] of loader) {
    assert.equal((await y.data())[0], step * 4);
    // While the consumer works (awaits a timer here), batches step+1 and step+2 get assembled.
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(requested, Array.from({ length: Math.min(step + 3, 10) }, (_, i) => i), `at step ${step}`);
    step++;
  }
  assert.equal(step, 10);
  // With prefetch 0, only on demand.
  requested.length = 0;
  step = 0;
  for await (const _ of new D.DataLoader(spy, { batchSize: 4, prefetch: 0 })) {
    await new Promise((r) => setTimeout(r, 2));
    assert.deepEqual(requested, Array.from({ length: step + 1 }, (_, i) => i));
    step++;
  }
});

test('DataLoader disposes each batch when the next is requested, so live buffers stay constant', async () => {
  const ds = numbered(30);
  const loader = new D.DataLoader(ds, { batchSize: 4, prefetch: 2 });
  const seen: Tensor[] = [];
  const live: number[] = [];
  for await (const [x, y] of loader) {
    assert.equal(x.storage.disposed, false);
    if (seen.length) assert.equal(seen[seen.length - 1]!.storage.disposed, true, 'the previous batch was disposed');
    seen.push(x, y);
    // A step in a scope: the batch survives it, and the step frees its own tensors.
    const loss = mx.scope(() => x.mul(2).sum().add(y.sum()));
    loss.dispose();
    live.push(mx.memory().liveBuffers);
  }
  assert.ok(seen.every((t) => t.storage.disposed), 'all disposed after the loop');
  assert.ok(live.slice(1).every((n) => n <= live[0]! + 4), `constant live buffers: ${live.join(',')}`);
  // A break disposes the current batch and the prefetched ones.
  let kept: Tensor | undefined;
  for await (const [x] of new D.DataLoader(ds, { batchSize: 4 })) {
    kept = x;
    break;
  }
  assert.equal(kept!.storage.disposed, true);
  // autoDispose: false leaves them to the consumer.
  const mine: Tensor[] = [];
  for await (const [x, y] of new D.DataLoader(ds, { batchSize: 4, autoDispose: false })) mine.push(x, y);
  assert.ok(mine.every((t) => !t.storage.disposed));
  for (const t of mine) t.dispose();
});

test('DataLoader without getBatch: getItem + defaultCollate, a custom collate, errors propagate', async () => {
  const items = {
    length: 7,
    getItem: (i: number) => ({ x: [i, i + 0.5], n: i, v: Float32Array.of(i, -i) }),
  };
  const batches: any[] = [];
  for await (const b of new D.DataLoader<any>(items, { batchSize: 3, autoDispose: false })) batches.push(b);
  assert.equal(batches.length, 3);
  assert.deepEqual(batches[0].n.shape, [3]);
  assert.equal(batches[0].n.dtype, 'int32');
  assert.equal(batches[0].x[1].dtype, 'float32');
  assert.deepEqual([...(await batches[0].x[1].data())], [0.5, 1.5, 2.5]);
  assert.deepEqual(batches[2].v.shape, [1, 2]);
  // Async getItem and a custom collate.
  const asyncItems = { length: 5, getItem: async (i: number) => i * 10 };
  const sums: number[] = [];
  for await (const s of new D.DataLoader(asyncItems, { batchSize: 2, collate: (xs: number[]) => xs.reduce((p, q) => p + q, 0) })) sums.push(s);
  assert.deepEqual(sums, [10, 50, 40]);
  // TensorDataset and Subset.
  const td = new D.TensorDataset(mx.arange(0, 12).reshape([6, 2]), mx.arange(0, 6));
  const rows: number[][] = [];
  for await (const [a, b] of new D.DataLoader<Tensor[]>(new D.Subset(td, [5, 1, 3]), { batchSize: 2 })) {
    assert.deepEqual(a!.shape[1], 2);
    rows.push([...(await b!.data())]);
  }
  assert.deepEqual(rows, [[5, 1], [3]]);
  assert.deepEqual([...(await td.getItem(2)[0]!.data())], [4, 5]);
  // An image dataset whose transform returns tensors falls back to getItem + defaultCollate.
  const tensorTransform = numbered(5);
  tensorTransform.transform = (img: mx.data.Image) => mx.tensor(Float32Array.from(img.data), { shape: [img.channels, img.height, img.width] });
  const stacked: number[][] = [];
  for await (const [x, y] of new D.DataLoader(tensorTransform, { batchSize: 3 })) {
    assert.deepEqual(x.shape, [y.shape[0], 1, 2, 2]);
    stacked.push([...(await y.data())]);
  }
  assert.deepEqual(stacked, [[0, 1, 2], [3, 4]]);
  // Errors from the dataset reach the consumer.
  const failing = { length: 10, getItem: (i: number) => { if (i === 6) throw new Error('bad sample 6'); return i; } };
  await assert.rejects(async () => {
    for await (const _ of new D.DataLoader(failing, { batchSize: 2 })) { /* consume */ }
  }, /bad sample 6/);
  await assert.rejects(async () => {
    for await (const _ of new D.DataLoader({ length: 2, getItem: () => Symbol('x') }, { batchSize: 2 })) { /* consume */ }
  }, /defaultCollate: cannot collate samples of type symbol/);
});

// ---------------------------------------------------------------------------------------------
// The real CIFAR-10 archive (../shared next to the repository), when present

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src', 'data'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

const realArchive = resolve(repoRoot(), '..', 'shared', 'datasets', 'cifar-10-binary.tar.gz');

test('real CIFAR-10 archive: 50,000 + 10,000 records, 5,000 / 1,000 per class, load time', { skip: existsSync(realArchive) ? false : `${realArchive} not found (the shared datasets folder is not next to this checkout)` }, async () => {
  const t0 = performance.now();
  const { train, test: test_ } = await D.CIFAR10.loadSplits(realArchive);
  const ms = performance.now() - t0;
  console.log(`# CIFAR-10: read ${realArchive} (train + test) in ${(ms / 1000).toFixed(2)} s`);
  assert.equal(train.length, 50000);
  assert.equal(test_.length, 10000);
  assert.deepEqual(train.labelCounts(), Array(10).fill(5000));
  assert.deepEqual(test_.labelCounts(), Array(10).fill(1000));
  assert.equal(train.images.length, 50000 * 3072);
  // One epoch of the standard augmentation through the loader.
  train.transform = new T.Compose([new T.RandomCrop(32, { padding: 4 }), new T.RandomHorizontalFlip(), new T.ToTensor(),
    new T.Normalize([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])]);
  const loader = new D.DataLoader(train, { batchSize: 128, shuffle: true, dropLast: true, seed: 0 });
  const t1 = performance.now();
  let batches = 0;
  for await (const [x, y] of loader) {
    if (batches === 0) {
      assert.deepEqual(x.shape, [128, 3, 32, 32]);
      assert.deepEqual(y.shape, [128]);
    }
    batches++;
  }
  console.log(`# CIFAR-10: one augmented epoch (${batches} batches of 128) assembled in ${((performance.now() - t1) / 1000).toFixed(2)} s`);
  assert.equal(batches, 390);
});

test('DataLoader dtype: 16-bit batches hold the float32 values rounded once; labels keep int32; training on them is bitwise the same', async () => {
  const ds = numbered(6);
  const xs32: number[][] = [];
  for await (const [x] of new D.DataLoader(ds, { batchSize: 3, collate: (s) => { const [xb, yb] = D.defaultCollate(s) as [Tensor, Tensor]; return [mx.mul(mx.add(xb, 0.1), 1 / 3), yb]; } })) xs32.push(Array.from(await x.data() as Float32Array));
  for (const dtype of ['float16', 'bfloat16'] as const) {
    let b = 0;
    const loader = new D.DataLoader(ds, { batchSize: 3, dtype, collate: (s) => { const [xb, yb] = D.defaultCollate(s) as [Tensor, Tensor]; return [mx.mul(mx.add(xb, 0.1), 1 / 3), yb]; } });
    for await (const [x, y] of loader) {
      assert.equal(x.dtype, dtype);
      assert.equal(y.dtype, 'int32');
      const expected = await mx.tensor(Float32Array.from(xs32[b]!)).to(dtype).data();
      assert.deepEqual(Array.from(await x.data() as ArrayLike<number>), Array.from(expected as ArrayLike<number>));
      b++;
    }
    assert.equal(b, 2);
  }
  assert.throws(() => new D.DataLoader(ds, { dtype: 'int32' }), /dtype must be a floating dtype, got int32/);

  // One fp16 and one bf16 LeNet step from a float32 batch and from the same batch in the autocast
  // dtype: the same loss and the same gradients, bit for bit (autocast rounds the input once either way).
  for (const precision of ['fp16', 'bf16'] as const) {
    const gen = new mx.Generator(7);
    const x32 = mx.randn([4, 3, 32, 32], { generator: gen });
    const y = mx.randint(0, 10, [4], { generator: gen });
    const run = async (x: Tensor) => {
      mx.manualSeed(3);
      const model = new mx.models.LeNet({ inChannels: 3, imageSize: 32, numClasses: 10 });
      const opt = new mx.optim.SGD(model.parameters(), { lr: 0.01 });
      const { loss } = trainStep({ model, optimizer: opt, scaler: scalerFor(precision), precision }, x, y);
      const grads = await Promise.all(model.parameters().map(async (p) => Array.from(await p.data() as Float32Array)));
      return { loss: await loss.item(), grads };
    };
    const a = await run(x32);
    const b16 = await run(x32.to(precision === 'fp16' ? 'float16' : 'bfloat16'));
    assert.equal(b16.loss, a.loss, precision);
    assert.deepEqual(b16.grads, a.grads, `${precision}: parameters after one step`);
  }
});

test("Resize matches torchvision's Resize(BILINEAR, antialias=True) on float and uint8 images, enlarged and shrunk", () => {
  const f = readJson<{ input: number[]; input_u8: number[]; shape: number[]; cases: { size: [number, number]; output: number[]; output_u8: number[] }[] }>('torch', 'resize.json');
  const [n, c, h, w] = f.shape as [number, number, number, number];
  for (const { size, output, output_u8 } of f.cases) {
    const t = new mx.data.Resize(size);
    const y = t.applyBatch({ data: Float32Array.from(f.input), channels: c, height: h, width: w, layout: 'CHW', count: n });
    assert.deepEqual([y.height, y.width], size);
    let maxErr = 0;
    output.forEach((v, i) => (maxErr = Math.max(maxErr, Math.abs(y.data[i]! - v))));
    assert.ok(maxErr < 1e-6, `float ${size}: max error ${maxErr}`);
    const yu = t.applyBatch({ data: Uint8Array.from(f.input_u8), channels: c, height: h, width: w, layout: 'CHW', count: n });
    assert.ok(yu.data instanceof Uint8Array);
    // torchvision rounds its float32 sum, whose rounding error decides exact ties (x.5): every
    // difference must be such a tie, within 1.
    const exact = t.applyBatch({ data: Float32Array.from(f.input_u8), channels: c, height: h, width: w, layout: 'CHW', count: n });
    output_u8.forEach((v, i) => {
      if (yu.data[i] === v) return;
      assert.ok(Math.abs(yu.data[i]! - v) === 1 && Math.abs((exact.data[i]! % 1) - 0.5) < 1e-4, `uint8 ${size}[${i}]: ${yu.data[i]} vs torchvision ${v} (unrounded ${exact.data[i]})`);
    });
    // HWC gives the same pixels as CHW.
    const hwc = new Float32Array(f.input.length);
    for (let k = 0; k < n; k++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) hwc[(k * h * w + p) * c + ch] = f.input[(k * c + ch) * h * w + p]!;
    const yh = t.applyBatch({ data: hwc, channels: c, height: h, width: w, layout: 'HWC', count: n });
    assert.equal(yh.layout, 'HWC');
    assert.ok(Math.abs(yh.data[c * 1 + 2]! - y.data[2 * size[0] * size[1] + 1]!) < 1e-6);
  }
  assert.throws(() => new mx.data.Resize(0), /size must be a positive integer/);
});
