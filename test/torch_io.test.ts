/**
 * mx.io.loadTorch / saveTorch against files PyTorch 1.13 wrote (tools/gen_torch_fixtures.py) and
 * the bytes PyTorch read back from saveTorch (tools/check_torch_roundtrip.py): every dtype, 0-d
 * tensors, shared storages, nested checkpoints, refusal of code (os.system, builtins.eval), the
 * legacy format and TorchScript, and one line for each kind of damaged file.
 */
import './helpers/backend.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/index.js';
import { fixturePath, readJson } from './helpers/fixtures.js';

const fx = (name: string): string => fixturePath('torch', name);
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mixprec-torch-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Expected {
  dtype: string;
  shape: number[];
  values: number[] | string[] | { bits: number[] };
}

/** mixprec's dtype for PyTorch's (integers read as int32). */
const MIXPREC: Record<string, string> = {
  float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', float64: 'float64', bool: 'bool',
  int64: 'int32', int32: 'int32', int16: 'int32', int8: 'int32', uint8: 'int32',
};

async function assertMatches(t: mx.Tensor, e: Expected, name: string): Promise<void> {
  assert.ok(t instanceof mx.Tensor, `${name} is a Tensor`);
  assert.equal(t.dtype, MIXPREC[e.dtype], `${name} dtype`);
  assert.deepEqual(t.shape, e.shape, `${name} shape`);
  if (!Array.isArray(e.values)) {
    assert.deepEqual([...(await t.storageData())], e.values.bits, `${name} bits`);
  } else if (e.dtype === 'float64') {
    assert.deepEqual([...(await t.data())], (e.values as string[]).map(Number), `${name} values`);
  } else {
    assert.deepEqual([...(await t.data())], e.values, `${name} values`);
  }
}

/** The single line of a rejection, checked to name the file. */
async function rejection(path: string | Uint8Array, name?: string): Promise<string> {
  let message = '';
  await assert.rejects(mx.io.loadTorch(path, name ? { name } : {}), (e: Error) => {
    message = e.message;
    return true;
  });
  assert.ok(!message.includes('\n'), `one line: ${message}`);
  assert.ok(message.startsWith(`${typeof path === 'string' ? path : name}: `), `names the file: ${message}`);
  return message;
}

describe('loadTorch: what torch.save wrote', () => {
  it('reads every dtype, 0-d tensors, views sharing a storage and empty tensors (dtypes.pt)', async () => {
    const expected = readJson<Record<string, Expected>>('torch', 'dtypes.json');
    const d = await mx.io.loadTorch(fx('dtypes.pt'));
    assert.deepEqual(Object.keys(d), Object.keys(expected), 'keys in the file order');
    for (const [k, e] of Object.entries(expected)) await assertMatches(d[k], e, k);
    assert.equal(d.shared_t.storage, d.shared.storage, 'a transposed view shares its storage, as in PyTorch');
    assert.equal(d.shared_slice.storage, d.shared.storage, 'so does an offset slice');
    assert.deepEqual([...(await d.shared_slice.data())], [5, 6, 9, 10]);
    assert.deepEqual(d.scalar_float.shape, []);
    assert.equal(await d.scalar_long.item(), 7);
  });

  it('reads a nested checkpoint: dicts in order, lists and tuples as arrays, numbers, strings, None, bytes', async () => {
    const e = readJson<Record<string, any>>('torch', 'checkpoint.json');
    const ck = await mx.io.loadTorch(fx('checkpoint.pt'));
    assert.deepEqual(Object.keys(ck), ['model', 'optimizer', 'iter_num', 'best_val_loss', 'model_args', 'config', 'list', 'tuple', 'none', 'big', 'huge', 'neg', 'unicode', 'int_keys', 'size', 'raw']);
    for (const k of ['iter_num', 'best_val_loss', 'model_args', 'config', 'list', 'tuple', 'none', 'big', 'neg', 'unicode', 'int_keys', 'size']) assert.deepEqual(ck[k], e[k], k);
    assert.equal(ck.model_args.n_layer, 4);
    assert.equal(ck.huge, BigInt(e['huge']), 'an int beyond 2^53 is a bigint');
    assert.deepEqual(ck.raw, Uint8Array.from(e['raw']));
    assert.deepEqual(Object.keys(ck.model), e['model_keys']);
    for (const [k, v] of Object.entries(e['model_values'] as Record<string, number[]>)) {
      assert.deepEqual([...(await (ck.model[k] as mx.Tensor).data())], v, k);
    }
    assert.equal(ck.model['bn.num_batches_tracked'].dtype, 'int32', 'int64 counters read as int32');
    assert.deepEqual(ck.optimizer.param_groups, e['optimizer_param_groups']);
    assert.deepEqual(Object.fromEntries(Object.entries(ck.optimizer.state).map(([k, v]) => [k, Object.keys(v as object)])), e['optimizer_state_keys']);
    assert.deepEqual([...(await ck.optimizer.state['0'].exp_avg.data())], e['optimizer_exp_avg_0']);
  });

  it('loads PyTorch state dicts into modules as they are: running_mean, int64 num_batches_tracked, dtype conversion', async () => {
    const ck = await mx.io.loadTorch(fx('checkpoint.pt'));
    const net = new mx.nn.Sequential({ fc: new mx.nn.Linear(4, 3), bn: new mx.nn.BatchNorm1d(3) });
    assert.deepEqual(net.loadStateDict(ck.model), { missingKeys: [], unexpectedKeys: [] });
    const bn = net.at(1) as mx.nn.BatchNorm1d;
    assert.deepEqual([...(await bn.runningMean!.data())], readJson<any>('torch', 'checkpoint.json').model_values['bn.running_mean']);
    assert.deepEqual([...(await bn.numBatchesTracked!.data())], [1]);
    // A float16 model takes the float32 file converted, as PyTorch's load_state_dict does.
    const half = new mx.nn.Sequential({ fc: new mx.nn.Linear(4, 3), bn: new mx.nn.BatchNorm1d(3) }).half();
    half.loadStateDict(ck.model);
    const w = await ck.model['fc.weight'].to('float16').storageData();
    assert.deepEqual([...(await (half.at(0) as mx.nn.Linear).weight.storageData())], [...w]);
    // Missing and unexpected keys: returned with strict false, listed by the strict error.
    const partial = { ...ck.model, 'extra.weight': ck.model['fc.weight'] } as Record<string, unknown>;
    delete partial['bn.running_var'];
    const res = net.loadStateDict(partial, { strict: false });
    assert.deepEqual(res, { missingKeys: ['bn.runningVar'], unexpectedKeys: ['extra.weight'] });
    assert.throws(() => net.loadStateDict(partial), /2 problems.*\n {2}missing key: 'bn\.runningVar'\n {2}unexpected key: 'extra\.weight'/);
  });

  it('reads bytes as well as paths', async () => {
    const d = await mx.io.loadTorch(new Uint8Array(readFileSync(fx('dtypes.pt'))));
    assert.equal(d.int16.dtype, 'int32');
    await rejection(new Uint8Array(readFileSync(fx('legacy.pt'))), 'upload.pt');
  });
});

describe('loadTorch: refused without running anything', () => {
  const MARKER = '/tmp/mixprec-malicious-pickle-ran';
  it('a pickle that calls os.system (posix.system) is refused, naming the global; nothing runs', async () => {
    rmSync(MARKER, { force: true });
    const message = await rejection(fx('malicious_os_system.pt'));
    assert.match(message, /refused: its pickle names the global posix\.system, which is not on the allow-list .*nothing was run/);
    assert.equal(existsSync(MARKER), false, 'the command did not run');
  });

  it('builtins.eval is refused the same way', async () => {
    const message = await rejection(fx('malicious_builtins_eval.pt'));
    assert.match(message, /the global builtins\.eval/);
    assert.equal(existsSync(MARKER), false);
  });

  it('the legacy format says how to re-save; TorchScript says what to save instead', async () => {
    assert.match(await rejection(fx('legacy.pt')), /legacy format .*re-save it with PyTorch 1\.6 or newer.*torch\.save\(torch\.load\('OLD\.pt'\), 'NEW\.pt'\)/);
    assert.match(await rejection(fx('torchscript.pt')), /TorchScript archive.*torch\.save\(model\.state_dict\(\), PATH\)/);
  });
});

describe('loadTorch: damaged files get one line naming the file and the problem', () => {
  const cases: [string, RegExp][] = [
    ['corrupt_truncated.pt', /no end-of-archive record: the file is truncated/],
    ['corrupt_storage_short.pt', /'w' \(float32, size \[10\], stride \[1\], offset 0\) needs 10 elements of storage '0', which holds 4: the storage is shorter than its tensor needs/],
    ['corrupt_entry_short.pt', /storage '0' should hold 8 float32 values \(32 bytes\) but its entry has 16 bytes: truncated or corrupt/],
    ['corrupt_size_overflow.pt', /'w' has size \[1099511627776,1099511627776\], whose element count overflows/],
    ['corrupt_huge_storage.pt', /storage '0' should hold 1125899906842624 float32 values .* but its entry has 16 bytes/],
    ['corrupt_pickle_truncated.pt', /the pickle ends inside .* truncated or corrupt/],
    ['corrupt_int64_range.pt', /'counter' is an int64 tensor holding 1099511627776, outside int32/],
  ];
  for (const [name, pattern] of cases) {
    it(name, async () => {
      const before = mx.memory().liveBuffers;
      assert.match(await rejection(fx(name)), pattern);
      assert.equal(mx.memory().liveBuffers, before, 'no tensor was allocated');
    });
  }

  it('a missing file, an empty file, a file of another format, a zip that is not torch.save\'s', async () => {
    assert.match(await rejection(join(dir, 'nope.pt')), /no such file/);
    writeFileSync(join(dir, 'empty.pt'), '');
    assert.match(await rejection(join(dir, 'empty.pt')), /the file is empty/);
    assert.match(await rejection(fixturePath('io', 'numpy_written.safetensors')), /is not a PyTorch file: expected a zip archive written by torch\.save/);
    const zipOnly = readFileSync(fx('dtypes.pt'));
    // Cut inside the central directory: the end record is gone.
    assert.match(await rejection(zipOnly.subarray(0, zipOnly.length - 30), 'cut.pt'), /truncated/);
  });

  it('hostile pickles: a list that contains itself, a memo read before it is written, a bad opcode', async () => {
    // Built by patching a real file's data.pkl would need zip writing; saveTorch's writer makes the archive.
    const { writeZipFile } = await zipHelper();
    const cases: [Uint8Array, RegExp][] = [
      // PROTO 2, EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: [self]
      [Uint8Array.from([0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e]), /contains itself/],
      [Uint8Array.from([0x80, 2, 0x68, 5, 0x2e]), /memo slot 5, which was never written/],
      [Uint8Array.from([0x80, 2, 0xff, 0x2e]), /unknown opcode 0xff/],
      [Uint8Array.from([0x80, 2, 0x4e, 0x4e, 0x2e]), /stops with 2 values/],
      [Uint8Array.from([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e]), /ends inside BINUNICODE .*2147483647 bytes needed/],
    ];
    for (const [pkl, pattern] of cases) {
      const path = join(dir, 'hostile.pt');
      await writeZipFile(path, [{ name: 'archive/data.pkl', data: pkl }]);
      assert.match(await rejection(path), pattern);
    }
  });
});

async function zipHelper() {
  const { writeZip } = await import('../src/io/torch/zip.js');
  return {
    writeZipFile: async (path: string, entries: { name: string; data: Uint8Array }[]) => {
      const chunks: Uint8Array[] = [];
      for await (const c of writeZip(entries)) chunks.push(c);
      writeFileSync(path, Buffer.concat(chunks));
    },
  };
}

describe('saveTorch', () => {
  it('writes the bytes PyTorch read back (tools/check_torch_roundtrip.py), and they round-trip through loadTorch', async () => {
    const original = await mx.io.loadTorch(fx('dtypes.pt'));
    const path = join(dir, 'dtypes.pt');
    await mx.io.saveTorch(path, original);
    assert.ok(readFileSync(path).equals(readFileSync(fx('saved_by_mixprec.pt'))), 'byte for byte the file torch.load(weights_only=True) read');
    const again = await mx.io.loadTorch(path);
    assert.deepEqual(Object.keys(again), Object.keys(original));
    for (const k of Object.keys(original)) {
      assert.equal(again[k].dtype, original[k].dtype, k);
      assert.deepEqual(again[k].shape, original[k].shape, k);
      assert.deepEqual([...(await again[k].storageData())], [...(await original[k].storageData())], `${k} bit for bit`);
    }
  });

  it("aligns every entry's data to 64 bytes and writes PyTorch's names and int64 counters", async () => {
    const bn = new mx.nn.BatchNorm2d(3);
    const path = join(dir, 'bn.pth');
    await mx.io.saveTorch(path, bn.stateDict());
    const bytes = readFileSync(path);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    const names: string[] = [];
    while (view.getUint32(pos, true) === 0x04034b50) {
      const nameLen = view.getUint16(pos + 26, true);
      const extraLen = view.getUint16(pos + 28, true);
      names.push(bytes.subarray(pos + 30, pos + 30 + nameLen).toString());
      const dataStart = pos + 30 + nameLen + extraLen;
      assert.equal(dataStart % 64, 0, `${names.at(-1)} data aligned`);
      // Sizes are in the data descriptor (flag bit 3) after the data: find it through the directory instead.
      const size = sizeOf(bytes, names.at(-1)!);
      pos = dataStart + size + 16;
    }
    assert.deepEqual(names, ['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/data/2', 'archive/data/3', 'archive/data/4', 'archive/version']);
    const back = await mx.io.loadTorch(path);
    assert.deepEqual(Object.keys(back), ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    assert.equal(sizeOf(bytes, 'archive/data/4'), 8, 'num_batches_tracked as int64 (8 bytes)');
    const kept = join(dir, 'kept.pth');
    await mx.io.saveTorch(kept, bn.stateDict(), { torchNames: false, intDtype: 'int32' });
    assert.deepEqual(Object.keys(await mx.io.loadTorch(kept)), ['weight', 'bias', 'runningMean', 'runningVar', 'numBatchesTracked']);
    assert.equal(sizeOf(readFileSync(kept), 'archive/data/4'), 4);
  });

  it('round-trips a nested checkpoint and shares a tensor given twice; refuses what pickle cannot hold', async () => {
    const w = mx.randn([2, 3]);
    const path = join(dir, 'ckpt.pt');
    const value = { model: { w, tied: w }, iter_num: 3, lr: 0.5, args: { name: 'x', flags: [true, null, -7, 2 ** 40] }, map: new Map([[0, 'a']]) };
    await mx.io.saveTorch(path, value);
    const back = await mx.io.loadTorch(path);
    assert.equal(back.model.w.storage, back.model.tied.storage, 'one storage for a tensor given twice');
    assert.deepEqual([...(await back.model.w.data())], [...(await w.data())]);
    assert.deepEqual({ ...back, model: null }, { model: null, iter_num: 3, lr: 0.5, args: { name: 'x', flags: [true, null, -7, 2 ** 40] }, map: { 0: 'a' } });
    await assert.rejects(mx.io.saveTorch(join(dir, 'bad.pt'), { f: () => 1 }), /saveTorch\(.*bad\.pt\): f is a function/);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    await assert.rejects(mx.io.saveTorch(join(dir, 'bad.pt'), cyclic), /self refers back to itself/);
    assert.equal(existsSync(join(dir, 'bad.pt')), false, 'nothing written');
  });
});

/** The uncompressed size of an entry, from the zip's central directory. */
function sizeOf(bytes: Buffer, name: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = bytes.length - 22; p > 0; p--) {
    if (view.getUint32(p, true) !== 0x06054b50) continue;
    let c = view.getUint32(p + 16, true);
    for (let i = view.getUint16(p + 10, true); i > 0; i--) {
      const n = view.getUint16(c + 28, true);
      const entry = bytes.subarray(c + 46, c + 46 + n).toString();
      if (entry === name) return view.getUint32(c + 24, true);
      c += 46 + n + view.getUint16(c + 30, true) + view.getUint16(c + 32, true);
    }
  }
  throw new Error(`no entry ${name}`);
}
