import './helpers/backend.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import { fixturePath } from './helpers/fixtures.js';

const io = mx.io;
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mixprec-io-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string): string => join(dir, name);

/** The storage bytes of a tensor (16-bit floats as their bits), for bit-exact comparisons. */
async function bytesOf(t: mx.Tensor): Promise<Buffer> {
  const d = await t.storageData();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

const f32FromBits = (bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);
const f64FromBits = (bits: bigint[]): Float64Array => new Float64Array(BigUint64Array.from(bits).buffer);

/** Tensors of every dtype, with the special values of each (NaN payloads, +-0, +-Inf, subnormals, extremes). */
function specimens(): Record<string, mx.Tensor> {
  const f16 = [0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x3555];
  const bf16 = [0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffc1, 0x0001, 0x007f, 0x0080, 0x7f7f, 0x3eab];
  return {
    'w.f32': mx.tensor(f32FromBits([0, 0x80000000, 0x3f800000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00123, 0x00000001, 0x007fffff, 0x7f7fffff]), { shape: [2, 5] }),
    'w.f16': mx.tensor(Uint16Array.from(f16), { dtype: 'float16', shape: [2, 7] }),
    'w.bf16': mx.tensor(Uint16Array.from(bf16), { dtype: 'bfloat16', shape: [7, 2] }),
    'w.f64': mx.tensor(f64FromBits([0n, 0x8000000000000000n, 0x7ff0000000000000n, 0x7ff8000000000001n, 0x0000000000000001n, 0x7fefffffffffffffn])),
    'idx.i32': mx.tensor(Int32Array.from([-2147483648, 2147483647, 0, -1, 7]), { shape: [5] }),
    'mask.bool': mx.tensor([[true, false], [false, true], [true, true]]),
    scalar: mx.tensor(3.5),
    empty: mx.zeros([0, 4], { dtype: 'bfloat16' }),
  };
}

async function assertSameTensors(got: ReadonlyMap<string, mx.Tensor>, want: Record<string, mx.Tensor>): Promise<void> {
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  for (const [name, t] of Object.entries(want)) {
    const g = got.get(name)!;
    assert.equal(g.dtype, t.dtype, name);
    assert.deepEqual([...g.shape], [...t.shape], name);
    assert.ok((await bytesOf(g)).equals(await bytesOf(t)), `${name}: bits differ`);
  }
}

async function rawOf(tensors: Record<string, mx.Tensor>): Promise<Record<string, mx.io.RawTensor>> {
  const out: Record<string, mx.io.RawTensor> = {};
  for (const [k, t] of Object.entries(tensors)) out[k] = { dtype: t.dtype, shape: t.shape, data: await t.storageData() };
  return out;
}

/** A file from a header object (or raw header text) and data bytes, for the corrupt-file tests. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0)): Buffer {
  let json = Buffer.isBuffer(header) ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

describe('safetensors round trip', () => {
  it('keeps float32/float16/bfloat16/float64/int32/bool bits identical, in memory and through a file', async () => {
    const tensors = specimens();
    const decoded = io.decodeSafetensors(io.encodeSafetensors(await rawOf(tensors)), 'mem');
    assert.equal(decoded.tensors.size, Object.keys(tensors).length);
    for (const [k, r] of decoded.tensors) {
      const want = await tensors[k]!.storageData();
      assert.equal(r.dtype, tensors[k]!.dtype);
      assert.deepEqual([...r.shape], [...tensors[k]!.shape]);
      assert.ok(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), k);
    }

    const path = file('roundtrip.safetensors');
    await io.saveSafetensors(path, tensors, { purpose: 'round trip' });
    const loaded = await io.loadSafetensors(path);
    await assertSameTensors(loaded.tensors, tensors);
    assert.deepEqual(loaded.metadata, { purpose: 'round trip' });
  });

  it('writes a strided view as its row-major values', async () => {
    const x = mx.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float16' });
    const path = file('view.safetensors');
    await io.saveSafetensors(path, { xt: mx.t(x) });
    const { tensors } = await io.loadSafetensors(path);
    assert.deepEqual(tensors.get('xt')!.shape, [3, 2]);
    assert.deepEqual(await tensors.get('xt')!.toArray(), [[1, 4], [2, 5], [3, 6]]);
  });

  it('round-trips metadata strings (unicode, quotes, newlines, empty)', () => {
    const metadata = { a: 'plain', 'ünï': '√2 ≈ 1.414 🙂', quote: 'say "hi"\\n\n\ttab', empty: '', '': 'empty key' };
    const out = io.decodeSafetensors(io.encodeSafetensors({}, metadata));
    assert.deepEqual(out.metadata, metadata);
    assert.equal(io.decodeSafetensors(io.encodeSafetensors({})).metadata, null);
  });

  it('pads the header with spaces to a multiple of 8 and aligns every tensor to its item size', () => {
    for (let len = 1; len <= 17; len++) {
      const name = 'n'.repeat(len);
      const bytes = io.encodeSafetensors({
        [name]: { dtype: 'float16', shape: [3], data: new Uint16Array(3) },
        [`${name}b`]: { dtype: 'bool', shape: [1], data: new Uint8Array(1) },
        [`${name}c`]: { dtype: 'float64', shape: [1], data: new Float64Array(1) },
        [`${name}d`]: { dtype: 'float32', shape: [1], data: new Float32Array(1) },
      });
      const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
      assert.equal(n % 8, 0);
      const text = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
      assert.match(text, /^\{.*\} *$/);
      const { header } = io.decodeSafetensors(bytes);
      // data order: F64, F32, F16, BOOL (descending alignment), so each starts aligned
      assert.deepEqual(header.entries.map((e) => e.fileDtype), ['F64', 'F32', 'F16', 'BOOL']);
      for (const e of header.entries) assert.equal((header.dataStart + e.begin) % (e.fileDtype === 'F64' ? 8 : e.fileDtype === 'F32' ? 4 : e.fileDtype === 'F16' ? 2 : 1), 0);
    }
  });

  it('writes the reference implementation\'s bytes (its serialization test vectors)', () => {
    const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
    const le = Buffer.from(data.buffer);
    const expect = (json: string, n: number, tail: Buffer): Buffer => {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(n));
      return Buffer.concat([len, Buffer.from(json.padEnd(n, ' ')), tail]);
    };
    const a = io.encodeSafetensors({ 'attn.0': { dtype: 'float32', shape: [1, 2, 3], data } });
    assert.ok(Buffer.from(a).equals(expect('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', 64, le)));
    const b = io.encodeSafetensors({ attn0: { dtype: 'float32', shape: [1, 1, 2, 3], data } });
    assert.ok(Buffer.from(b).equals(expect('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}', 72, le)));
    assert.deepEqual([...io.encodeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    assert.ok(Buffer.from(io.encodeSafetensors({}, { framework: 'pt' })).equals(expect('{"__metadata__":{"framework":"pt"}}', 40, Buffer.alloc(0))));
  });

  it('refuses bad input to the writer', () => {
    assert.throws(() => io.encodeSafetensors({ __metadata__: { dtype: 'float32', shape: [1], data: new Float32Array(1) } }), /reserved/);
    assert.throws(() => io.encodeSafetensors({ a: { dtype: 'float32', shape: [2], data: new Float32Array(3) } }), /needs 2 values, got 3/);
    assert.throws(() => io.encodeSafetensors({ a: { dtype: 'float16', shape: [2], data: new Float32Array(2) } }), /must hold a Uint16Array/);
    assert.throws(() => io.encodeSafetensors({}, { n: 1 as unknown as string }), /must be a string/);
  });
});

describe('a file written by numpy (tools/check_safetensors.py)', () => {
  const path = fixturePath('io', 'numpy_written.safetensors');
  type Expected = {
    file_sha256: string;
    header_size: number;
    metadata: Record<string, string>;
    order: string[];
    tensors: Record<string, { dtype: string; mixprecDtype: mx.DTypeName; shape: number[]; bits: (number | string)[] }>;
  };
  const expected = (): Expected => JSON.parse(readFileSync(fixturePath('io', 'numpy_written.expected.json'), 'utf8'));

  function bitsOf(data: ArrayBufferView & { length: number }, dtype: string): (number | string)[] {
    const buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    if (dtype === 'F64') return [...new BigUint64Array(buf)].map((b) => b.toString(16).padStart(16, '0'));
    if (dtype === 'F32') return [...new Uint32Array(buf)];
    if (dtype === 'I32') return [...new Int32Array(buf)].map((x) => x >>> 0);
    return [...(data as Uint16Array | Uint8Array)];
  }

  it('is read exactly: names, order, dtypes, shapes, bits and metadata', async () => {
    const exp = expected();
    const bytes = readFileSync(path);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), exp.file_sha256);
    const dec = io.decodeSafetensors(bytes, path);
    assert.deepEqual(dec.metadata, exp.metadata);
    assert.equal(dec.header.headerSize, exp.header_size);
    assert.deepEqual([...dec.tensors.keys()], exp.order);
    for (const [name, e] of Object.entries(exp.tensors)) {
      const r = dec.tensors.get(name)!;
      assert.ok(r, name);
      assert.equal(r.dtype, e.mixprecDtype, name);
      assert.deepEqual([...r.shape], e.shape, name);
      const i32 = e.dtype === 'I32' ? (e.bits as number[]).map((b) => b >>> 0) : e.bits;
      assert.deepEqual(bitsOf(r.data, e.dtype), i32, name);
    }
    // through the file reader and Tensors too
    const { tensors, metadata } = await io.loadSafetensors(path);
    assert.deepEqual(metadata, exp.metadata);
    for (const [name, e] of Object.entries(exp.tensors)) {
      assert.deepEqual(bitsOf(await tensors.get(name)!.storageData(), e.dtype), e.dtype === 'I32' ? (e.bits as number[]).map((b) => b >>> 0) : e.bits, name);
    }
    assert.deepEqual(await tensors.get('bool.mask')!.toArray(), [[1, 0, 1], [0, 0, 1]]);
    assert.equal(await tensors.get('scalar')!.item(), 2.5);
    assert.deepEqual(tensors.get('empty')!.shape, [0, 3]);
  });

  it('is written back byte for byte by the TypeScript writer (same layout as the reference)', () => {
    const bytes = readFileSync(path);
    const dec = io.decodeSafetensors(bytes, path);
    const again = io.encodeSafetensors(dec.tensors, dec.metadata ?? undefined);
    assert.ok(Buffer.from(again).equals(bytes));
  });
});

describe('corrupt and foreign files', () => {
  const valid = (): Buffer => Buffer.from(io.encodeSafetensors({ a: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) }, b: { dtype: 'float16', shape: [2], data: new Uint16Array(2) } }));

  async function rejects(name: string, bytes: Uint8Array, pattern: RegExp): Promise<void> {
    const path = file(name);
    writeFileSync(path, bytes);
    for (const load of [() => io.loadSafetensors(path), () => io.loadCheckpoint(path)]) {
      await assert.rejects(load(), (e: Error) => {
        assert.ok(e instanceof io.SafetensorsError, `${name}: ${e}`);
        assert.ok(e.message.startsWith(`${path} is not a valid safetensors file: `), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    }
    assert.throws(() => io.decodeSafetensors(bytes, name), (e: Error) => e.message.startsWith(`${name} is not a valid safetensors file`) && pattern.test(e.message));
  }

  it('an empty file and a truncated header length', async () => {
    await rejects('empty.safetensors', new Uint8Array(0), /the file is empty; expected an 8-byte header length/);
    await rejects('short.safetensors', valid().subarray(0, 5), /has 5 bytes, fewer than the 8-byte header length/);
  });

  it('a header length larger than the file (truncated inside the header)', async () => {
    await rejects('trunc_header.safetensors', valid().subarray(0, 30), /header length field says \d+ bytes but only 22 bytes follow it; expected the whole header in the file \(truncated file\?\)/);
  });

  it('truncated data and trailing bytes', async () => {
    const v = valid();
    await rejects('trunc_data.safetensors', v.subarray(0, v.length - 1), /tensor 'b' has data_offsets \[8, 12\] but the data section holds 11 bytes; expected every tensor within the file \(truncated file\?\)/);
    await rejects('trailing.safetensors', Buffer.concat([v, Buffer.from([0])]), /the tensors cover 12 bytes of data but 13 bytes follow the header/);
  });

  it('not a safetensors file at all: PNG, ZIP (torch.save), JSON', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1]);
    await rejects('image.png', png, /header length field says \d+ bytes; expected at most 100000000 \(it starts like a PNG image\)/);
    const zip = Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x00\x00\x08\x00', 'latin1'), Buffer.alloc(64)]);
    await rejects('model.pt', zip, /\(it starts like a ZIP archive, e\.g\. a PyTorch torch\.save\(\) file\)/);
    await rejects('config.json', Buffer.from('{"lr": 0.1, "epochs": 3}\n'), /expected at most 100000000 \(it starts like a JSON text\)/);
  });

  it('a header that is not UTF-8, not an object, or not JSON', async () => {
    await rejects('utf8.safetensors', craft(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8/);
    await rejects('array.safetensors', craft('[1, 2]'), /the header starts with "\[1, 2\]  "; expected a JSON object starting with '\{'/);
    await rejects('badjson.safetensors', craft('{"a": {"dtype": "F32",'), /header is not valid JSON \(.*\); expected a JSON object/);
  });

  it('bad entries: unknown or unsupported dtype, shape, offsets, metadata', async () => {
    const f32 = new Uint8Array(8);
    await rejects('dtype.safetensors', craft({ w: { dtype: 'F17', shape: [2], data_offsets: [0, 8] } }, f32), /tensor 'w' has an unknown dtype "F17"; expected one of F32, F16, BF16, F64, I32, BOOL/);
    await rejects('u8.safetensors', craft({ w: { dtype: 'U8', shape: [8], data_offsets: [0, 8] } }, f32), /tensor 'w' has the safetensors dtype U8, which mixprec does not support; expected one of/);
    await rejects('shape.safetensors', craft({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32), /tensor 'w' has shape \[-2\]; expected a list of non-negative integers/);
    await rejects('offs.safetensors', craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, f32), /tensor 'w' has data_offsets \[0\]; expected \[begin, end\]/);
    await rejects('meta.safetensors', craft({ __metadata__: { epoch: 3 } }), /__metadata__\.epoch is 3; expected a string/);
    await rejects('entry.safetensors', craft({ w: [1, 2] }), /tensor 'w' is \[1,2\]; expected \{"dtype", "shape", "data_offsets"\}/);
  });

  it('offsets that overlap, leave a gap, or disagree with numel x itemsize', async () => {
    const data = new Uint8Array(16);
    await rejects('overlap.safetensors', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data.subarray(0, 12)),
      /tensor 'b' has data_offsets \[4, 12\], overlapping the data before byte 8; expected it to begin at 8 \(tensors lie back to back/);
    await rejects('gap.safetensors', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, data),
      /tensor 'b' has data_offsets \[12, 16\], leaving a gap after byte 8; expected it to begin at 8/);
    await rejects('size.safetensors', craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data.subarray(0, 8)),
      /tensor 'a' \(F32, shape \[3\]\) has data_offsets \[0, 8\], 8 bytes; expected 3 x 4 = 12 bytes/);
    await rejects('far.safetensors', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data.subarray(0, 4)), /data section holds 4 bytes/);
  });

  it('bool bytes other than 0/1, and I64 (read as int32 when it fits)', async () => {
    await rejects('bool.safetensors', craft({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, Uint8Array.from([1, 0, 2])), /bool tensor 'm' holds byte 2 at flat index 2; expected 0 or 1/);
    const fits = Buffer.from(BigInt64Array.from([5n, -3n, 2147483647n]).buffer);
    const { tensors } = await io.loadSafetensors((writeFileSync(file('i64.safetensors'), craft({ n: { dtype: 'I64', shape: [3], data_offsets: [0, 24] } }, fits)), file('i64.safetensors')));
    assert.equal(tensors.get('n')!.dtype, 'int32');
    assert.deepEqual(await tensors.get('n')!.toArray(), [5, -3, 2147483647]);
    const big = Buffer.from(BigInt64Array.from([1n, 2n ** 40n]).buffer);
    await rejects('i64big.safetensors', craft({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, big), /tensor 'n' \(I64\) holds 1099511627776 at flat index 1; mixprec reads I64 as int32/);
  });

  it('a missing checkpoint names the file (and a partial file left by a crash)', async () => {
    const path = file('nothing-here.safetensors');
    await assert.rejects(io.loadCheckpoint(path), new RegExp(`^FileError: checkpoint ${path.replace(/[.\\]/g, '\\$&')} does not exist; expected a safetensors file$`));
    writeFileSync(`${path}.tmp-999999-0`, 'partial');
    await assert.rejects(io.loadCheckpoint(path), /nothing-here\.safetensors\.tmp-999999-0 is a partial file from an interrupted save/);
    await assert.rejects(io.loadSafetensors(dir), /is a folder; expected a safetensors file/);
  });
});

describe('atomic checkpoint writes', () => {
  const v1 = () => ({ tensors: { w: mx.tensor([1, 2, 3], { dtype: 'float16' }) }, meta: { step: 1 } });
  const v2 = () => ({ tensors: { w: mx.tensor([4, 5, 6], { dtype: 'float16' }), extra: mx.ones([1000]) }, meta: { step: 2 } });
  const leftovers = (name: string) => readdirSync(dir).filter((n) => n.startsWith(`${name}.tmp-`));

  for (const [stage, chunk] of [['open', undefined], ['write', 0], ['write', 2], ['fsync', undefined], ['rename', undefined]] as const) {
    it(`a failure at ${stage}${chunk !== undefined ? ` (chunk ${chunk})` : ''} leaves the previous checkpoint intact and no partial file`, async () => {
      const name = `atomic-${stage}-${chunk ?? 'x'}.safetensors`;
      const path = file(name);
      await io.saveCheckpoint(path, v1());
      const before = readFileSync(path);
      await assert.rejects(
        io.saveCheckpoint(path, v2(), {
          faultInjection: (s, info) => {
            if (s === stage && (chunk === undefined || info.chunk === chunk)) throw new Error('injected fault');
          },
        }),
        (e: Error) => {
          assert.match(e.message, new RegExp(`could not write ${path.replace(/[.\\]/g, '\\$&')} \\(failed at ${stage} of the temporary file .*\\.tmp-${process.pid}-\\d+: injected fault\\); the previous ${name.replace(/\./g, '\\.')}, if any, is unchanged`));
          return true;
        },
      );
      assert.ok(readFileSync(path).equals(before));
      assert.deepEqual(leftovers(name), []);
      const { tensors, meta } = await io.loadCheckpoint(path);
      assert.deepEqual(meta, { step: 1 });
      assert.deepEqual(await tensors.get('w')!.toArray(), [1, 2, 3]);
    });
  }

  it('a process killed in the middle of a save leaves the previous checkpoint loadable; the next save clears the partial file', async () => {
    const name = 'crash.safetensors';
    const path = file(name);
    await io.saveCheckpoint(path, v1());
    const before = readFileSync(path);
    const mxUrl = new URL('../src/index.js', import.meta.url).href;
    const script = `
      const mx = await import(${JSON.stringify(mxUrl)});
      await mx.io.saveCheckpoint(${JSON.stringify(path)}, { tensors: { w: mx.ones([4096]), v: mx.ones([4096]) }, meta: { step: 2 } }, {
        faultInjection: (stage, info) => { if (stage === 'write' && info.chunk === 2) process.kill(process.pid, 'SIGKILL'); },
      });
      console.log('not reached');`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.doesNotMatch(child.stdout, /not reached/);
    assert.ok(readFileSync(path).equals(before), 'the previous checkpoint changed');
    const partial = leftovers(name);
    assert.equal(partial.length, 1, 'the crashed save left its temporary file');
    assert.ok(readFileSync(join(dir, partial[0]!)).length > 0);
    assert.deepEqual((await io.loadCheckpoint(path)).meta, { step: 1 });
    await io.saveCheckpoint(path, v2());
    assert.deepEqual(leftovers(name), [], 'a later save removes temporary files of dead processes');
    assert.deepEqual((await io.loadCheckpoint(path)).meta, { step: 2 });
  });

  it('a crash during the very first save leaves no file under the name', () => {
    const path = file('first.safetensors');
    const mxUrl = new URL('../src/index.js', import.meta.url).href;
    const script = `
      const mx = await import(${JSON.stringify(mxUrl)});
      await mx.io.saveCheckpoint(${JSON.stringify(path)}, { tensors: { w: mx.ones([8]) } }, {
        faultInjection: (stage) => { if (stage === 'rename') process.kill(process.pid, 'SIGKILL'); },
      });`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    assert.equal(existsSync(path), false);
    assert.equal(leftovers('first.safetensors').length, 1);
  });
});

describe('checkTensorsMatch', () => {
  const spec = (shape: number[], dtype: mx.DTypeName = 'float32') => ({ shape, dtype });

  it('lists every missing, unexpected, shape- and dtype-mismatched name in one message', () => {
    const model = { 'conv1.weight': spec([6, 1, 5, 5]), 'fc1.weight': spec([120, 400]), 'fc2.bias': spec([84]), 'fc3.bias': spec([10]) };
    const file = new Map([['fc1.weight', spec([84, 400])], ['fc2.bias', spec([84], 'float16')], ['fc3.bias', spec([10])], ['fc4.bias', spec([10])]]);
    assert.throws(
      () => io.checkTensorsMatch(model, file, { file: 'model.safetensors' }),
      (e: Error) => {
        assert.ok(e instanceof io.CheckpointMismatchError);
        assert.equal(
          e.message,
          'checkpoint model.safetensors does not match the model: missing conv1.weight; unexpected fc4.bias; ' +
            'fc1.weight: shape [120,400] in the model, [84,400] in the file; fc2.bias: dtype float32 in the model, float16 in the file',
        );
        assert.deepEqual(e.mismatch.missing, ['conv1.weight']);
        assert.deepEqual(e.mismatch.unexpected, ['fc4.bias']);
        return true;
      },
    );
    assert.doesNotThrow(() => io.checkTensorsMatch(model, model));
    assert.throws(() => io.checkTensorsMatch(model, file, { file: 'm.safetensors', strict: false }), /^CheckpointMismatchError: checkpoint m\.safetensors does not match the model: fc1\.weight: shape \[120,400\] in the model, \[84,400\] in the file; fc2\.bias: dtype/);
    assert.throws(() => io.checkTensorsMatch({ a: spec([2]) }, { a: spec([3], 'int32') }, { target: 'the optimizer' }), /^CheckpointMismatchError: tensors do not match the optimizer: a: shape \[2\] in the optimizer, \[3\] in the tensors; a: dtype float32 in the optimizer, int32 in the tensors$/);
  });

  it('loadCheckpoint checks against a stateDict of Tensors before reading data', async () => {
    const path = file('expect.safetensors');
    await io.saveCheckpoint(path, { tensors: { 'fc.weight': mx.zeros([2, 3]), 'fc.bias': mx.zeros([2], { dtype: 'float16' }) }, meta: { optimizer: { state: { 0: { m: mx.zeros([2]) } } } } });
    const model = { 'fc.weight': mx.zeros([2, 3]), 'fc.bias': mx.zeros([2]), 'head.weight': mx.zeros([1]) };
    await assert.rejects(io.loadCheckpoint(path, { expect: model }), {
      name: 'CheckpointMismatchError',
      message: `checkpoint ${path} does not match the model: missing head.weight; fc.bias: dtype float32 in the model, float16 in the file`,
    });
    // meta's tensors (optimizer.state.0.m) are not model tensors: neither unexpected nor returned in `tensors`
    const ok = await io.loadCheckpoint(path, { expect: new Map(Object.entries(model).filter(([k]) => k !== 'head.weight').map(([k, v]) => [k, k === 'fc.bias' ? mx.zeros([2], { dtype: 'float16' }) : v])) });
    assert.deepEqual([...ok.tensors.keys()].sort(), ['fc.bias', 'fc.weight']);
    assert.ok(ok.meta.optimizer.state[0].m instanceof mx.Tensor);
    const header = await io.readSafetensorsHeader(path);
    assert.deepEqual(header.entries.map((e) => e.name).sort(), ['fc.bias', 'fc.weight', 'optimizer.state.0.m']);
  });
});

describe('training state checkpoints', () => {
  it('restores optimizer, GradScaler, RNG, data order, epoch and step exactly', async () => {
    const p32 = mx.tensor([1, 2, 3], { requiresGrad: true });
    const p16 = mx.tensor([[0.5, -1], [2, 4]], { dtype: 'float16', requiresGrad: true });
    const opt = new mx.optim.SGD([p32, p16], { lr: 0.1, momentum: 0.9 });
    for (let i = 0; i < 2; i++) {
      p32.grad = mx.tensor([0.1, -0.2, 0.3 * i]);
      p16.grad = mx.tensor([[1, 2], [3, 4 * i]], { dtype: 'float16' });
      opt.step();
    }
    const scaler = new mx.amp.GradScaler({ initScale: 1024, growthInterval: 3 });
    const gen = new mx.Generator(1234);
    gen.nextNormal(); // leaves a spare normal in the state
    const genNoSpare = new mx.Generator(99);
    const meta = {
      epoch: 3, step: 1500, optimizer: opt.stateDict(), scaler: scaler.stateDict(),
      scheduler: { lastEpoch: 2, baseLrs: [0.1] }, rng: gen.getState(), rngNoSpare: genNoSpare.getState(),
      dataOrder: { seed: 7, permutation: [3, 0, 2, 1], position: 2 },
      odd: { $tensor: 'not a marker' }, specials: [NaN, Infinity, -Infinity, -0, 1e-310],
    };
    const path = file('train.safetensors');
    const res = await io.saveCheckpoint(path, { tensors: { 'p.32': p32, 'p.16': p16 }, meta }, { sidecar: true });
    assert.ok(res.tensorNames.includes('optimizer.state.0.momentumBuffer'));
    assert.ok(res.tensorNames.includes('optimizer.state.1.momentumBuffer'));

    const loaded = await io.loadCheckpoint(path, { expect: { 'p.32': p32, 'p.16': p16 } });
    await assertSameTensors(loaded.tensors, { 'p.32': p32, 'p.16': p16 });
    const m = loaded.meta;
    assert.equal(m.epoch, 3);
    assert.equal(m.step, 1500);
    assert.deepEqual(m.scaler, scaler.stateDict());
    assert.deepEqual(m.scheduler, meta.scheduler);
    assert.deepEqual(m.dataOrder, meta.dataOrder);
    assert.deepEqual(m.odd, { $tensor: 'not a marker' });
    assert.deepEqual(m.specials, [NaN, Infinity, -Infinity, -0, 1e-310]);
    assert.ok(Object.is(m.specials[3], -0));

    // the optimizer resumes with bit-identical state
    const q32 = mx.tensor([9, 9, 9], { requiresGrad: true });
    const q16 = mx.tensor([[9, 9], [9, 9]], { dtype: 'float16', requiresGrad: true });
    const opt2 = new mx.optim.SGD([q32, q16], { lr: 1 });
    opt2.loadStateDict(m.optimizer);
    assert.equal(opt2.paramGroups[0]!.lr, 0.1);
    for (const [a, b] of [[p32, q32], [p16, q16]] as const) {
      const want = opt.state.get(a)!['momentumBuffer'] as mx.Tensor;
      const got = opt2.state.get(b)!['momentumBuffer'] as mx.Tensor;
      assert.equal(got.dtype, want.dtype);
      assert.ok((await bytesOf(got)).equals(await bytesOf(want)));
    }
    const scaler2 = new mx.amp.GradScaler();
    scaler2.loadStateDict(m.scaler);
    assert.deepEqual(scaler2.stateDict(), scaler.stateDict());

    // the generators continue the same sequences (including the cached spare normal)
    const gen2 = new mx.Generator(0).setState(m.rng);
    const gen3 = new mx.Generator(0).setState(m.rngNoSpare);
    for (let i = 0; i < 5; i++) {
      assert.equal(gen2.nextNormal(), gen.nextNormal());
      assert.equal(gen3.nextNormal(), genNoSpare.nextNormal());
    }

    // the sidecar is a readable copy; the file's __metadata__ is the primary one
    const sidecar = JSON.parse(readFileSync(`${path}.json`, 'utf8'));
    assert.equal(sidecar.format, io.CHECKPOINT_FORMAT);
    assert.deepEqual(sidecar.meta.optimizer.state['0'].momentumBuffer, { $tensor: 'optimizer.state.0.momentumBuffer' });
    assert.deepEqual(sidecar.tensors['p.16'], { dtype: 'float16', shape: [2, 2] });
    writeFileSync(`${path}.json`, 'garbage');
    assert.equal((await io.loadCheckpoint(path)).meta.step, 1500);
  });

  it('a plain safetensors file loads with meta null; a broken state names the file', async () => {
    const plain = file('plain.safetensors');
    await io.saveSafetensors(plain, { a: mx.ones([2]) });
    const loaded = await io.loadCheckpoint(plain);
    assert.equal(loaded.meta, null);
    assert.deepEqual([...loaded.tensors.keys()], ['a']);
    const broken = file('broken-state.safetensors');
    await io.saveSafetensors(broken, { a: mx.ones([2]) }, { mixprec: '{"format": "mixprec.checkpoint", "version": 1, "meta": {"w": {"$tensor": "gone"}}}' });
    await assert.rejects(io.loadCheckpoint(broken), new RegExp(`checkpoint .*broken-state\\.safetensors: the state at meta\\.w refers to tensor 'gone', which the file does not hold`));
    await io.saveSafetensors(broken, {}, { mixprec: '{oops' });
    await assert.rejects(io.loadCheckpoint(broken), /broken-state\.safetensors: __metadata__\.mixprec is not valid JSON .*; expected the state written by saveCheckpoint/);
    await io.saveSafetensors(broken, {}, { mixprec: '{"format": "mixprec.checkpoint", "version": 9, "meta": null}' });
    await assert.rejects(io.loadCheckpoint(broken), /has format version 9, written by a newer mixprec/);
  });

  it('refuses state it cannot store, naming where it is', async () => {
    const path = file('bad.safetensors');
    await assert.rejects(io.saveCheckpoint(path, { meta: { data: { order: new Int32Array(3) } } }), /checkpoint state data\.order is a Int32Array \(convert it with Array\.from\(\) or mx\.tensor\(\)\)/);
    await assert.rejects(io.saveCheckpoint(path, { meta: { m: new Map() } }), /checkpoint state m is a Map; expected JSON values, tensors/);
    await assert.rejects(io.saveCheckpoint(path, { meta: { f: () => 1 } }), /checkpoint state f is function/);
    const cyc: Record<string, unknown> = {};
    cyc['self'] = cyc;
    await assert.rejects(io.saveCheckpoint(path, { meta: cyc }), /checkpoint state self refers back to itself/);
    await assert.rejects(io.saveCheckpoint(path, { tensors: { 'o.w': mx.ones([1]) }, meta: { o: { w: mx.ones([1]) } } }), /the tensor 'o\.w' of meta has the same name as one of tensors/);
    assert.equal(existsSync(path), false);
  });

  it('packState/unpackState split an optimizer stateDict into named tensors and JSON', () => {
    const t = mx.ones([2]);
    const packed = io.packState({ state: { 0: { momentumBuffer: t, step: 3 } }, paramGroups: [{ lr: 0.1, params: [0] }] }, 'optimizer');
    assert.deepEqual([...packed.tensors.keys()], ['optimizer.state.0.momentumBuffer']);
    assert.deepEqual(packed.json, { state: { 0: { momentumBuffer: { $tensor: 'optimizer.state.0.momentumBuffer' }, step: 3 } }, paramGroups: [{ lr: 0.1, params: [0] }] });
    const back = io.unpackState(JSON.parse(JSON.stringify(packed.json)), packed.tensors) as { state: Record<string, { momentumBuffer: mx.Tensor }> };
    assert.equal(back.state['0']!.momentumBuffer, t);
  });
});
