/**
 * Pretrained weights end to end against a local HTTP server (node:http; never the network):
 * MIXPREC_WEIGHTS_URL points the published file names at it, MIXPREC_HOME at a temporary cache.
 * Download with progress into the cache, the sha256-prefix check (a tampered file is refused and
 * nothing is kept), cache reuse (no request the second time), the offline message naming the URL and
 * the path to place the file at, and `weights: PATH` for .pth and .safetensors files. The named
 * weights load into the full-width torchvision ResNet-18, whose every key and shape is checked
 * against torchvision's (resnet_shapes.json).
 */
import './helpers/backend.js';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as mx from '../src/index.js';
import { fixturePath, readJson } from './helpers/fixtures.js';

let dir: string;
let server: Server;
let base: string;
const files = new Map<string, Buffer>();
const requests: string[] = [];
const saved: Record<string, string | undefined> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mixprec-weights-'));
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    // In pieces, so the progress callback sees the download advance.
    const step = Math.ceil(body.length / 8);
    let at = 0;
    const next = () => {
      if (at >= body.length) return void res.end();
      res.write(body.subarray(at, (at += step)), next);
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/`;
  for (const k of ['MIXPREC_HOME', 'MIXPREC_WEIGHTS_URL']) saved[k] = process.env[k];
  process.env['MIXPREC_HOME'] = join(dir, 'home');
  process.env['MIXPREC_WEIGHTS_URL'] = base;
});
after(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const cacheDir = () => join(dir, 'home', 'checkpoints');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The message of a rejection, checked to be one line. */
async function oneLine(p: Promise<unknown>): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: Error) => {
    message = e.message;
    return true;
  });
  assert.ok(!message.includes('\n'), `one line: ${message}`);
  return message;
}

describe('pretrained weights from a local server', () => {
  it('downloads with progress into MIXPREC_HOME, checks the hash prefix in the name, and reuses the cache', async () => {
    const bytes = readFileSync(fixturePath('torch', 'resnet18_w8.pth'));
    const name = `resnet18w8-${sha256(bytes).slice(0, 8)}.pth`;
    files.set(`/models/${name}`, bytes);
    const seen: [number, number | null][] = [];
    const sd = await mx.models.loadStateDictFromUrl(base + name, { progress: (received, total) => seen.push([received, total]) });
    assert.ok(seen.length >= 3, `progress reported ${seen.length} times`);
    assert.deepEqual(seen.at(-1), [bytes.length, bytes.length]);
    assert.ok(seen.every(([r], i) => i === 0 || r >= seen[i - 1]![0]), 'progress only grows');
    assert.ok(readFileSync(join(cacheDir(), name)).equals(bytes), 'kept in $MIXPREC_HOME/checkpoints under its name');
    const model = mx.models.createResNet('resnet18', { width: 8 });
    assert.deepEqual(model.loadStateDict(sd), { missingKeys: [], unexpectedKeys: [] });

    const before = requests.length;
    await mx.models.loadStateDictFromUrl(base + name, { progress: false });
    assert.equal(requests.length, before, 'the second time comes from the cache, with no request');
  });

  it('refuses a tampered file (its sha256 does not begin with the hash in its name) and keeps nothing', async () => {
    const bytes = Buffer.from(readFileSync(fixturePath('torch', 'resnet18_w8.pth')));
    bytes[bytes.length >> 1] ^= 0xff;
    files.set('/models/resnet18-f37072fd.pth', bytes);
    const message = await oneLine(mx.models.resnet18({ weights: 'IMAGENET1K_V1', progress: false }));
    assert.match(message, new RegExp(`${base.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}resnet18-f37072fd\\.pth: invalid hash value: its sha256 starts with ${sha256(bytes).slice(0, 8)}, expected f37072fd \\(the file was not saved\\)`));
    assert.ok(!existsSync(join(cacheDir(), 'resnet18-f37072fd.pth')), 'nothing in the cache');
    assert.deepEqual(readdirSync(cacheDir()).filter((n) => n.includes('.part')), [], 'no partial download left');
    files.delete('/models/resnet18-f37072fd.pth');
  });

  it("offline: one line naming the URL and where to place the file by hand", async () => {
    const missing = await oneLine(mx.models.resnet34({ weights: 'IMAGENET1K_V1', progress: false }));
    assert.match(missing, /^could not download http:\/\/127\.0\.0\.1:\d+\/models\/resnet34-b627a593\.pth \(HTTP 404 Not Found\); offline, place the file by hand at .*home\/checkpoints\/resnet34-b627a593\.pth$/);
    const deadPort = createServer();
    await new Promise<void>((resolve) => deadPort.listen(0, '127.0.0.1', resolve));
    const port = (deadPort.address() as AddressInfo).port;
    await new Promise<void>((resolve) => deadPort.close(() => resolve()));
    process.env['MIXPREC_WEIGHTS_URL'] = `http://127.0.0.1:${port}/models`;
    try {
      const offline = await oneLine(mx.models.resnet50({ weights: 'DEFAULT', progress: false }));
      assert.match(offline, new RegExp(`^could not download http://127\\.0\\.0\\.1:${port}/models/resnet50-11ad3fa6\\.pth \\(.*\\); offline, place the file by hand at .*checkpoints/resnet50-11ad3fa6\\.pth$`));
    } finally {
      process.env['MIXPREC_WEIGHTS_URL'] = base;
    }
  });

  it("a file placed in the cache by hand is used as it is: torchvision's full ResNet-18, strictly", async () => {
    // A state dict of torchvision's shapes and names (zeros but for a recognisable value per tensor).
    const shapes = readJson<Record<string, [string, number[], string][]>>('torch', 'resnet_shapes.json')['resnet18']!;
    const dict: Record<string, mx.Tensor> = {};
    shapes.forEach(([key, shape, dtype], i) => {
      dict[key] = mx.full(shape, dtype === 'int64' ? i : i / 1000, { dtype: dtype === 'int64' ? 'int32' : 'float32' });
    });
    mkdirSync(cacheDir(), { recursive: true });
    await mx.io.saveTorch(join(cacheDir(), 'resnet18-f37072fd.pth'), dict);
    for (const t of Object.values(dict)) t.dispose();
    const before = requests.length;
    const model = await mx.models.resnet18({ weights: 'IMAGENET1K_V1' });
    assert.equal(requests.length, before, 'no request');
    const sd = model.stateDict();
    assert.equal(Object.keys(sd).length, shapes.length);
    for (const [[key, shape], i] of shapes.map((s, i) => [s, i] as const)) {
      const own = key.replace('running_mean', 'runningMean').replace('running_var', 'runningVar').replace('num_batches_tracked', 'numBatchesTracked');
      assert.deepEqual(sd[own]!.shape, shape, key);
      if (key.endsWith('bias') || key.endsWith('num_batches_tracked')) {
        const v = (await sd[own]!.data())[0]!;
        assert.ok(Math.abs(v - (key.endsWith('tracked') ? i : i / 1000)) < 1e-6, `${key} holds the file's value`);
      }
    }
    assert.equal(model.numClasses, 1000);
    await assert.rejects(mx.models.resnet18({ weights: 'IMAGENET1K_V1', width: 8 }), /the IMAGENET1K_V1 weights are for torchvision's resnet18 \(width 64/);
  });

  it('weights: PATH loads a .pth or a .safetensors file, with a new head for another class count; an unknown name says what there is', async () => {
    const fromPth = await mx.models.resnet50({ weights: fixturePath('torch', 'resnet50_w8.pth'), width: 8 });
    const path = join(dir, 'r50.safetensors');
    await mx.io.saveSafetensors(path, fromPth.stateDict());
    const fromSafetensors = await mx.models.resnet50({ weights: path, width: 8 });
    assert.deepEqual([...(await fromSafetensors.fc.bias!.data())], [...(await fromPth.fc.bias!.data())]);
    // numClasses other than the file's: the backbone from the file, a fresh head (fine-tuning).
    const tuned = await mx.models.resnet50({ weights: path, width: 8, numClasses: 10 });
    assert.deepEqual(tuned.fc.weight.shape, [10, 256]);
    assert.deepEqual([...(await tuned.layer4.at(2).getParameter('bn3.bias').data())], [...(await fromPth.layer4.at(2).getParameter('bn3.bias').data())]);
    // A file whose backbone keys are renamed, with a new head: one line, the first few keys of each kind and how many more.
    const renamed = new Map<string, mx.Tensor>();
    let n = 0;
    for (const [k, v] of Object.entries(fromPth.stateDict())) renamed.set(k.startsWith('layer') && n++ < 10 ? `old.${k}` : k, v);
    const renamedPath = join(dir, 'renamed.safetensors');
    await mx.io.saveSafetensors(renamedPath, renamed);
    await assert.rejects(mx.models.resnet50({ weights: renamedPath, width: 8, numClasses: 10 }), (e: Error) => {
      assert.match(e.message, /^resnet50: .*renamed\.safetensors does not match resnet50's backbone: missing layer1\.0\.conv1\.weight, [^;]+ and 4 more; unexpected old\.layer1[^;]+ and 4 more$/);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
    await assert.rejects(mx.models.resnet50({ weights: 'IMAGENET1K_V3' }), /weights 'IMAGENET1K_V3' is neither a weights name of resnet50 \(IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT\) nor an existing file/);
  });
});
