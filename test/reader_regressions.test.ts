/**
 * Regressions of the failures the reader fuzzers found (test/fuzz_readers.test.ts; the list with
 * what each did before is in docs/reliability.md), each as the smallest file that showed it; the
 * allocation budget (src/util/file_budget.ts: a size field asking for more than the file holds fails
 * before anything is allocated); and `mixprec train --resume` on a checkpoint whose state is wrong.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import * as mx from '../src/api.js';
import { readerAllocations, resetReaderAllocations } from '../src/util/file_budget.js';
import { encodePng, fixTarChecksum, joinSafetensors, nested, pngChunk, pngChunks, concat, splitSafetensors, storedZip, zipEntries } from './helpers/fuzz/formats.js';
import { runCli } from './helpers/cli.js';
import { writeMnist } from './helpers/data.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mixprec-regress-'));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, bytes: Uint8Array | string): string {
  const path = join(tmp, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** The reader fails with a one-line FileError naming `file` whose message matches `pattern`. */
async function refuses(read: () => Promise<unknown> | unknown, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => read(), (e: Error) => {
    assert.ok(e instanceof mx.FileError, `a FileError, got ${e.name}: ${e.message}`);
    assert.ok(!/[\r\n]/.test(e.message), `one line: ${JSON.stringify(e.message)}`);
    assert.ok(e.message.includes(file), `names ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('safetensors: a header nested 200,000 levels deep is refused (was: RangeError, call stack exceeded)', async () => {
  const file = write('deep.safetensors', joinSafetensors(`{"deep":${nested(200_000)}}`, new Uint8Array(0)));
  await refuses(() => mx.io.loadSafetensors(file), file, /nests arrays or objects more than 3 levels deep/);
  const shape = write('deep-shape.safetensors', joinSafetensors(`{"w":{"dtype":"F32","shape":${nested(100_000, '2')},"data_offsets":[0,8]}}`, new Uint8Array(8)));
  await refuses(() => mx.io.loadSafetensors(shape), shape, /more than 3 levels deep/);
});

test('safetensors: a message quoting the header stays one line (was: a line break from the JSON error and from names)', async () => {
  const badJson = write('newline.safetensors', joinSafetensors('{"w":{"dtype":"F32",\n"shape":[2],}}', new Uint8Array(8)));
  await refuses(() => mx.io.loadSafetensors(badJson), badJson, /header is not valid JSON/);
  const name = write('name.safetensors', joinSafetensors(JSON.stringify({ 'a\nb': { dtype: 'F17', shape: [2], data_offsets: [0, 8] } }), new Uint8Array(8)));
  await refuses(() => mx.io.loadSafetensors(name), name, /tensor 'a\\nb' has an unknown dtype "F17"/);
  const long = write('long.safetensors', joinSafetensors(JSON.stringify({ ['x'.repeat(100_000)]: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }), new Uint8Array(4)));
  await assert.rejects(mx.io.loadSafetensors(long), (e: Error) => e instanceof mx.FileError && e.message.length < 2000 && /'x{60}\.\.\.' \(100000 characters\)/.test(e.message));
});

test('checkpoint: a training state nested 100,000 levels deep is refused (was: RangeError, call stack exceeded)', async () => {
  const state = JSON.stringify({ format: 'mixprec.checkpoint', version: 1, meta: { deep: JSON.parse('0') } }).replace('"deep":0', `"deep":${nested(100_000)}`);
  const file = write('deep-state.safetensors', joinSafetensors(JSON.stringify({ __metadata__: { mixprec: state } }), new Uint8Array(0)));
  await refuses(() => mx.io.loadCheckpoint(file), file, /__metadata__\.mixprec nests more than 64 levels deep/);
});

/** A one-member tar (data_batch_1.bin of `size` bytes per its header, `data` actually following). */
function tarWith(header: { size: string; type?: string }, data: Uint8Array): Uint8Array {
  const block = new Uint8Array(512);
  const text = (at: number, s: string) => {
    for (let i = 0; i < s.length; i++) block[at + i] = s.charCodeAt(i);
  };
  text(0, 'cifar-10-batches-bin/data_batch_1.bin');
  text(100, '0000644\0');
  text(124, header.size);
  text(156, header.type ?? '0');
  text(257, 'ustar\u000000');
  fixTarChecksum(block, 0);
  const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
  padded.set(data);
  return concat([block, padded, new Uint8Array(1024)]);
}

test('tar: a member whose size field says 8 GiB fails in one line (was: ERR_OUT_OF_RANGE thrown in an event handler, a crash)', async () => {
  const file = write('huge-member.tar.gz', gzipSync(tarWith({ size: '77777777777\0' }, new Uint8Array(3073 * 2))));
  resetReaderAllocations();
  await refuses(() => mx.data.readCIFAR10(file, { train: true }, { recordsPerFile: 2 }), file, /has 8589934591 bytes, expected 6146/);
  // Without the record-size check of CIFAR-10, the tar reader's own budget stops it.
  await refuses(
    () => mx.data.readTar(file, { select: () => true, onEntry: () => undefined }),
    file,
    /member cifar-10-batches-bin\/data_batch_1\.bin would take 8589934591 bytes, more than a \d+-byte file can hold/,
  );
  assert.ok(readerAllocations().largest < 1 << 20, 'nothing large was allocated');
});

test('tar: a folder entry claiming data is refused (was: the read never settled and the process exited with code 13)', async () => {
  const file = write('dir-with-data.tar.gz', gzipSync(tarWith({ size: '00000014002\0', type: '5' }, new Uint8Array(6146))));
  await refuses(() => mx.data.readCIFAR10(file, { train: true }, { recordsPerFile: 2 }), file, /is a folder entry claiming 6146 bytes of data; expected 0/);
});

test('tar: a size field that tar-stream cannot read is refused (was: the read never settled)', async () => {
  // A base-256 size must start with 0x80 or 0xFF; tar-stream reads 0x81... as null and then waits forever.
  const file = write('bad-size.tar.gz', gzipSync(tarWith({ size: '\u0081\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0018\u0002' }, new Uint8Array(6146))));
  await refuses(() => mx.data.readCIFAR10(file, { train: true }, { recordsPerFile: 2 }), file, /bad size field in the header of member 'cifar-10-batches-bin\/data_batch_1\.bin'/);
});

test('torch: a pickle of lists nested 100,000 levels deep is refused (was: RangeError, call stack exceeded)', async () => {
  const depth = 100_000;
  // PROTO 2, `depth` EMPTY_LISTs, each APPENDed to the one before, STOP.
  const pickle = concat([Uint8Array.of(0x80, 2), new Uint8Array(depth).fill(0x5d), new Uint8Array(depth - 1).fill(0x61), Uint8Array.of(0x2e)]);
  const file = write('deep.pt', storedZip([['archive/data.pkl', pickle], ['archive/version', Uint8Array.of(0x33)]]));
  await refuses(() => mx.io.loadTorch(file), file, /its containers nest more than 1000 levels deep/);
  // 999 levels still load.
  const ok = concat([Uint8Array.of(0x80, 2), new Uint8Array(999).fill(0x5d), new Uint8Array(998).fill(0x61), Uint8Array.of(0x2e)]);
  let v = await mx.io.loadTorch(write('ok.pt', storedZip([['archive/data.pkl', ok], ['archive/version', Uint8Array.of(0x33)]])));
  let levels = 0;
  while (Array.isArray(v)) {
    levels++;
    v = v[0];
  }
  assert.equal(levels, 999);
});

/** The error's message, the file's path aside, has at most `max` characters. */
const shortBesides = (file: string, max: number) => (e: Error) => e.message.split(file).join('').length <= max;

test('torch: names read from the file are quoted and cut in messages (was: a 20,000-character entry name, and a global of any length, copied whole)', async () => {
  const junk = '\u000e'.repeat(20_000);
  // An entry whose name is 20,000 control characters and whose compression method (central directory, byte 10) is 99.
  const zip = storedZip([['archive/data.pkl', Uint8Array.of(0x80, 2, 0x4e, 0x2e)], [junk, Uint8Array.of(1)]]);
  const central = zipEntries(zip)!.entries[1]!.central;
  new DataView(zip.buffer, zip.byteOffset).setUint16(central + 10, 99, true);
  const file = write('long-entry.pt', zip);
  await refuses(() => mx.io.loadTorch(file), file, /entry '(\\u000e){10}.*\.\.\.' \(20000 characters\) uses compression method 99; expected stored or deflated entries/);
  await assert.rejects(async () => mx.io.loadTorch(file), shortBesides(file, 300));
  // GLOBAL 'os' + a 20,000-character name: refused, the name cut.
  const pickle = concat([Uint8Array.of(0x80, 2, 0x63), Buffer.from(`os\n${'x'.repeat(20_000)}\n`), Uint8Array.of(0x2e)]);
  const global = write('long-global.pt', storedZip([['archive/data.pkl', pickle], ['archive/version', Uint8Array.of(0x33)]]));
  await refuses(() => mx.io.loadTorch(global), global, /names the global 'os\.x{50,}\.\.\.' \(20003 characters\), which is not on the allow-list/);
  await assert.rejects(async () => mx.io.loadTorch(global), shortBesides(global, 400));
});

test('torch: a persistent id that is a tuple nested 100,000 levels, 20,000 items wide or a 20,000-character string is refused in a short line (was: RangeError, call stack exceeded; messages of every item)', async () => {
  const torchFile = (name: string, pickle: Uint8Array) => write(name, storedZip([['archive/data.pkl', concat([Uint8Array.of(0x80, 2), pickle, Uint8Array.of(0x51, 0x2e)])], ['archive/version', Uint8Array.of(0x33)]]));
  // BININT1 1 wrapped in 100,000 TUPLE1s, then BINPERSID.
  const deep = torchFile('pid-deep.pt', concat([Uint8Array.of(0x4b, 1), new Uint8Array(100_000).fill(0x85)]));
  await refuses(() => mx.io.loadTorch(deep), deep, /a persistent id is \(\(\(\(\.\.\.\)\)\)\); expected \('storage'/);
  // MARK, 20,000 Nones, TUPLE.
  const wide = torchFile('pid-wide.pt', concat([Uint8Array.of(0x28), new Uint8Array(20_000).fill(0x4e), Uint8Array.of(0x74)]));
  await refuses(() => mx.io.loadTorch(wide), wide, /a persistent id is \(None, None, None, None, None, None, \.\.\. 20000 items\); expected/);
  // BINUNICODE of 20,000 characters.
  const long = torchFile('pid-long.pt', concat([Uint8Array.of(0x58, 0x20, 0x4e, 0, 0), Buffer.from('x'.repeat(20_000))]));
  await refuses(() => mx.io.loadTorch(long), long, /a persistent id is "x{59}\.\.\. \(20002 characters\); expected/);
  for (const file of [deep, wide, long]) await assert.rejects(async () => mx.io.loadTorch(file), shortBesides(file, 200));
});

test('checkpoint: a file of 20,000 unexpected tensors gets a short message; e.mismatch lists them all (was: every name, cut at 2,000 characters)', async () => {
  const tensors: Record<string, { dtype: 'float32'; shape: number[]; data: Float32Array }> = { 'fc.weight': { dtype: 'float32', shape: [2], data: new Float32Array(2) } };
  for (let i = 0; i < 20_000; i++) tensors[`z${i}`] = { dtype: 'float32', shape: [0], data: new Float32Array(0) };
  tensors[`${'w'.repeat(5_000)}`] = { dtype: 'float32', shape: [0], data: new Float32Array(0) };
  const file = write('many-tensors.safetensors', mx.io.encodeSafetensors(tensors));
  const expect = new Map([['fc.weight', { shape: [3], dtype: 'float32' as const }], ['fc.bias', { shape: [2], dtype: 'float32' as const }]]);
  await refuses(() => mx.io.loadCheckpoint(file, { expect }), file, /does not match the model: missing fc\.bias; unexpected ([^,;]+, ){4}[^,;]+ and 19996 more; fc\.weight: shape \[3\] in the model, \[2\] in the file$/);
  await assert.rejects(async () => mx.io.loadCheckpoint(file, { expect }), (e: mx.io.CheckpointMismatchError) => e.mismatch.unexpected.length === 20_001 && shortBesides(file, 400)(e));
});

test('MNIST: images and labels that disagree name the folder (was: no file named)', async () => {
  const root = join(tmp, 'mnist-disagree');
  const idx = (dims: number[]) => {
    const b = Buffer.alloc(4 + 4 * dims.length + dims.reduce((a, d) => a * d, 1));
    b.writeUInt32BE(0x800 | dims.length, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  write('mnist-disagree/train-images-idx3-ubyte', idx([4, 2, 2]));
  write('mnist-disagree/train-labels-idx1-ubyte', idx([3]));
  await refuses(() => mx.data.MNIST.load(root), root, /train images and labels disagree: 4 images but 3 labels \(in .*mnist-disagree\)/);
});

test('MNIST: a gzipped IDX file is inflated only to the size its header announces', async () => {
  const root = join(tmp, 'mnist-bomb');
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x803, 0);
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(2, 8);
  header.writeUInt32BE(2, 12);
  // 8 announced pixel bytes followed by 64 MiB of zeros: stopped at the announced size.
  write('mnist-bomb/train-images-idx3-ubyte.gz', gzipSync(Buffer.concat([header, Buffer.alloc(64 << 20)])));
  write('mnist-bomb/train-labels-idx1-ubyte', Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]));
  const file = join(root, 'train-images-idx3-ubyte.gz');
  const before = process.memoryUsage().arrayBuffers;
  await refuses(() => mx.data.MNIST.load(root), file, /decompresses to more than \d+ bytes, expected 24/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, 'the 64 MiB were never held');
});

/** The PNG with its IHDR width (and CRC) replaced. */
function withWidth(png: Uint8Array, width: number): Uint8Array {
  const out = png.slice();
  const ihdr = pngChunks(out)[0]!;
  new DataView(out.buffer).setUint32(ihdr.at + 8, width);
  return concat([out.subarray(0, ihdr.at), pngChunk('IHDR', out.slice(ihdr.at + 8, ihdr.at + 21)), out.subarray(ihdr.at + 25)]);
}

test('PNG: a width of 3,261,048,655 is refused before pngjs (was: a native assertion in zlib that aborted the process)', async () => {
  const png = encodePng({ width: 6, height: 5, color: 3, depth: 2, interlace: 0 });
  const file = write('wide/cls/image.png', withWidth(png, 3_261_048_655));
  await refuses(async () => new mx.data.ImageFolder(join(tmp, 'wide')).getItem(0), file, /header says 3261048655 x 5 pixels; expected 1 to 2\^31 - 1/);
  // Within 2^31 but more rows than the image data can inflate to.
  const wide = write('wide2/cls/image.png', withWidth(png, 100_000_000));
  await refuses(async () => new mx.data.ImageFolder(join(tmp, 'wide2')).getItem(0), wide, /can hold at most 1032x that; truncated or corrupt/);
});

test('PNG: interlaced image data that inflates past its rows is refused before pngjs inflates it all', async () => {
  const png = encodePng({ width: 9, height: 9, color: 0, depth: 1, interlace: 1 });
  const chunks = pngChunks(png);
  const bomb = concat([
    png.subarray(0, chunks[0]!.at + 25),
    pngChunk('IDAT', deflateSync(new Uint8Array(16 << 20))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
  const file = write('bomb/cls/image.png', bomb);
  await refuses(async () => new mx.data.ImageFolder(join(tmp, 'bomb')).getItem(0), file, /inflates to more than the \d+ bytes of rows its 9 x 9 header describes/);
});

test('JPEG: a frame header asking for more blocks than the file can code is refused before jpeg-js allocates (was: 201 MB for 23 bytes)', async () => {
  // SOI, a baseline SOF0 of W x H pixels and 3 components, EOI: 23 bytes.
  const jpegOf = (w: number, h: number) =>
    Uint8Array.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, h >> 8, h & 255, w >> 8, w & 255, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1, 0xff, 0xd9]);
  const file = write('jpeg/cls/image.jpg', jpegOf(4096, 4096));
  const before = process.memoryUsage().arrayBuffers;
  await refuses(async () => new mx.data.ImageFolder(join(tmp, 'jpeg')).getItem(0), file, /says 4096 x 4096 pixels \(262144 blocks of 8 x 8\) but a 23-byte file codes at most 184/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'nothing was allocated for the pixels');
  writeFileSync(file, jpegOf(65535, 65535));
  await refuses(async () => new mx.data.ImageFolder(join(tmp, 'jpeg')).getItem(0), file, /says 65535 x 65535 pixels \(67108864 blocks of 8 x 8\)/);
});

test('text: invalid UTF-8 is refused with the offset of the first bad byte (was: silently replaced by U+FFFD)', async () => {
  const file = write('bad.txt', Buffer.concat([Buffer.from('héllo\n', 'utf8'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(' world')]));
  await refuses(() => mx.data.CharCorpus.fromFile(file), file, /not UTF-8 text \(byte 7 is 0xed/);
  const cut = write('cut.txt', Buffer.from('naïve 中', 'utf8').subarray(0, 9));
  await refuses(() => mx.data.CharCorpus.fromFile(cut), cut, /not UTF-8 text \(byte 7 is 0xe4/);
  assert.equal((await mx.data.CharCorpus.fromFile(write('ok.txt', 'naïve 中文 😀\n'))).vocab.size, 10);
});

test('the budget: a safetensors tensor is read into an allocation of exactly its bytes, never more than the file', async () => {
  const file = write('budget.safetensors', mx.io.encodeSafetensors({ w: { dtype: 'float32', shape: [1000], data: new Float32Array(1000) } }));
  resetReaderAllocations();
  const { tensors } = await mx.io.loadSafetensors(file);
  tensors.get('w')!.dispose();
  const { largest, requests } = readerAllocations();
  assert.equal(largest, 4000);
  assert.equal(requests, 2, 'the header and the one tensor');
});

test('mixprec train --resume: a checkpoint whose training state does not fit names the file (was: a TypeError-like line without it, or an epoch of "x" ending the run at once)', { skip: mx.defaultBackendName() === 'wasm' ? false : 'runs the CLI: in the wasm suite' }, async () => {
  const data = join(tmp, 'resume-mnist');
  writeMnist(data, 64, 20);
  const ck = join(tmp, 'resume.safetensors');
  const train = ['train', '--dataset', 'mnist', '--data', data, '--batch-size', '32', '--quiet', '--epochs', '2'];
  assert.equal(runCli([...train.slice(0, -1), '1', '--checkpoint', ck]).code, 0);
  const layout = splitSafetensors(readFileSync(ck))!;
  const edited = (edit: (meta: any) => void): string => {
    const state = JSON.parse(layout.header['__metadata__'].mixprec);
    edit(state.meta);
    const header = { ...layout.header, __metadata__: { mixprec: JSON.stringify(state) } };
    return write('resume-bad.safetensors', joinSafetensors(JSON.stringify(header), layout.data));
  };
  for (const [edit, message] of [
    [(m: any) => (m.epoch = 'x'), /epoch is "x" in its training state; expected a non-negative integer/],
    [(m: any) => (m.rng = [1, 2]), /its training state does not fit this run \(Generator\.setState: expected 5 numbers, got 2\)/],
    [(m: any) => (m.optimizer.paramGroups = []), /its training state does not fit this run \(loadStateDict: state has 0 parameter groups, optimizer has 1\)/],
    [(m: any) => delete m.data, /its training state does not fit this run \(DataLoader\.loadState: expected \{ seed, epoch, batch \}\)/],
  ] as const) {
    const file = edited(edit);
    const r = runCli([...train, '--resume', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^mixprec: --resume ${file.replace(/[.\\/]/g, '\\$&')}: ${message.source}`));
  }
});
