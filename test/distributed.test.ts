/**
 * mx.distributed and nn.parallel.DistributedDataParallel over Gloo, with real processes on
 * loopback (test/helpers/distributed_worker.ts is one rank): every collective and dtype, 16-bit
 * reductions bit for bit, env:// / file:// / redis:// rendezvous, DDP against one process on the
 * global batch with bitwise identical parameters on every rank after every step (fp32, fp16 with
 * GradScaler and fp16 compression, bf16 compression, gradient accumulation, O2 master weights,
 * overlapped buckets, buffers), and a rank that dies or stalls. Without the Gloo addon these skip
 * and say why; the DistributedSampler tests need no addon.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend
import * as mx from '../src/index.js';
import { defaultGroup } from '../src/distributed/process_group.js';
import { F16_TO_F32, roundToBfloat16, roundToFloat16 } from '../src/dtype/convert.js';
import { freePort, runWorker, WORKER, type RankOutcome } from './helpers/ranks.js';
import { CLI, ROOT, runCli } from './helpers/cli.js';
import { writeMnist } from './helpers/data.js';

const D = mx.distributed;
const unavailable = D.unavailableReason();
const skip = unavailable ?? false;

/** Every rank exited 0; returns the results of part `part` of each rank. */
function ok(outcomes: RankOutcome[], part = 0): Record<string, unknown>[][] {
  for (const o of outcomes) assert.equal(o.code, 0, `rank ${o.rank} exited with ${o.code ?? o.signal}: ${o.stderr.trim()}`);
  return outcomes.map((o) => o.results.filter((r) => r['part'] === part));
}

function checksPass(outcomes: RankOutcome[], part = 0): void {
  const perRank = ok(outcomes, part);
  for (const [rank, results] of perRank.entries()) {
    assert.ok(results.length > 0, `rank ${rank} reported nothing`);
    for (const r of results) assert.deepEqual(r['got'], r['expected'], `rank ${rank}: ${String(r['check'])} ${String(r['detail'] ?? '')}`);
  }
}

describe('DistributedSampler', () => {
  it('shards the permutation of a shuffling DataLoader with the same seed: W ranks of batch b cover one process of batch W x b', async () => {
    const n = 103;
    const dataset = new mx.data.TensorDataset(mx.arange(0, n));
    const single = new mx.data.DataLoader(dataset, { batchSize: 8, shuffle: true, seed: 5 });
    const samplers = [0, 1].map((rank) => new mx.data.DistributedSampler(dataset, { numReplicas: 2, rank, seed: 5 }));
    const loaders = samplers.map((sampler) => new mx.data.DataLoader(dataset, { batchSize: 4, sampler }));
    assert.equal(samplers[0]!.length, 52);
    assert.equal(loaders[0]!.length, 13);
    for (let epoch = 0; epoch < 2; epoch++) {
      const whole: number[][] = [];
      for await (const [x] of single as unknown as AsyncIterable<[mx.Tensor]>) whole.push(Array.from(await x.data()));
      const shards: number[][][] = [[], []];
      for (const r of [0, 1]) for await (const [x] of loaders[r] as unknown as AsyncIterable<[mx.Tensor]>) shards[r]!.push(Array.from(await x.data()));
      const last = whole.length - 1;
      // 103 samples: the padded 104th is the epoch's first sample again (rank 1's last)
      assert.equal(shards[1]![last]!.pop(), whole[0]![0]);
      for (let b = 0; b <= last; b++) {
        const merged = [...shards[0]![b]!, ...shards[1]![b]!].sort((p, q) => p - q);
        assert.deepEqual(merged, [...whole[b]!].sort((p, q) => p - q), `epoch ${epoch} batch ${b}`);
      }
    }
  });

  it('pads to equal shards, or drops the tail with dropLast; setEpoch reshuffles; bad options are one-line errors', () => {
    const data = { length: 10 };
    const padded = [0, 1, 2].map((rank) => Array.from(new mx.data.DistributedSampler(data, { numReplicas: 3, rank, shuffle: false })));
    assert.deepEqual(padded, [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]);
    const dropped = [0, 1, 2].map((rank) => Array.from(new mx.data.DistributedSampler(data, { numReplicas: 3, rank, shuffle: false, dropLast: true })));
    assert.deepEqual(dropped, [[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
    const s = new mx.data.DistributedSampler(data, { numReplicas: 2, rank: 0, seed: 1 });
    const e0 = Array.from(s);
    s.setEpoch(1);
    assert.notDeepEqual(Array.from(s), e0);
    assert.deepEqual(Array.from(s.indices(0)), e0);
    assert.throws(() => new mx.data.DistributedSampler(data, { numReplicas: 2, rank: 2 }), /rank 2 is not in \[0, 2\)/);
    if (!D.isInitialized()) assert.throws(() => new mx.data.DistributedSampler(data), /pass numReplicas, or initialise mx.distributed first/);
    assert.throws(() => new mx.data.DataLoader(new mx.data.TensorDataset(mx.zeros([10])), { sampler: s, shuffle: true }), /mutually exclusive/);
  });
});

describe('mx.distributed without a process group', () => {
  it('says what is missing in one line', async () => {
    assert.equal(D.isInitialized(), false);
    assert.throws(() => D.getRank(), /not initialised \(call await mx.distributed.initProcessGroup\(\) first\)/);
    await assert.rejects(D.allReduce(mx.ones([2])), /allReduce: the default process group is not initialised/);
    assert.throws(() => new mx.nn.parallel.DistributedDataParallel(new mx.nn.Linear(2, 2)), /DistributedDataParallel: the default process group is not initialised/);
    if (unavailable) {
      await assert.rejects(D.initProcessGroup(), (e: Error) => e.message.startsWith('mx.distributed is not available:') && e.message.includes('apt-get install libgloo-dev'));
    } else {
      const env = { ...process.env };
      delete process.env['MASTER_ADDR'];
      process.env['RANK'] = '0';
      process.env['WORLD_SIZE'] = '1';
      try {
        await assert.rejects(D.initProcessGroup(), /env:\/\/ needs MASTER_ADDR and MASTER_PORT \(missing: MASTER_ADDR/);
        await assert.rejects(D.initProcessGroup({ initMethod: 'ftp://x' }), /unknown initMethod 'ftp:\/\/x'/);
        await assert.rejects(D.initProcessGroup({ initMethod: 'tcp://127.0.0.1:1', rank: 3, worldSize: 2 }), /rank 3 is not in \[0, worldSize 2\)/);
      } finally {
        process.env = env;
      }
    }
  });
});

describe('mx.distributed on Gloo', { skip }, () => {
  it('all-reduces (sum, avg, max, min), broadcasts, all-gathers, reduce-scatters and waits at barriers, in every dtype, on 2 and 3 ranks', async () => {
    checksPass(await runWorker(2, { parts: [['collectives', {}]] }));
    checksPass(await runWorker(3, { parts: [['collectives', {}]] }));
  });

  it('reduces float16 and bfloat16 bit for bit as float32 arithmetic rounded once (50,000 random patterns, Inf and NaN included)', async () => {
    checksPass(await runWorker(2, { parts: [['half', {}]] }));
  });

  it('rendezvous through a FileStore directory (file://)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixprec-filestore-'));
    try {
      checksPass(await runWorker(2, { init: { initMethod: `file://${dir}` }, parts: [['collectives', {}]] }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const redisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 ? 'redis-server' : null;
  describe('redis://', { skip: redisServer ? false : 'redis-server is not installed (apt-get install redis-server)' }, () => {
    let port = 0;
    let server: ReturnType<typeof spawn> | null = null;
    before(async () => {
      port = await freePort();
      server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
    });
    after(() => {
      server?.kill();
    });
    it("rendezvous through Gloo's RedisStore; a reused groupName is refused with a clear line", async () => {
      const init = { initMethod: `redis://127.0.0.1:${port}`, groupName: 'run-1' };
      checksPass(await runWorker(2, { init, parts: [['collectives', {}]] }));
      const again = await runWorker(2, { init, parts: [['collectives', {}]] });
      for (const o of again) {
        assert.notEqual(o.code, 0);
        assert.match(o.stderr, /already holds key 'mixprec\/run-1\/0\/\S+' from an earlier run: pass a new groupName/);
      }
    });
  });

  it('packs DDP buckets into float16 / bfloat16 exactly as the library rounds (every float16 value and every tie)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixprec-world1-'));
    await D.initProcessGroup({ initMethod: `file://${dir}`, rank: 0, worldSize: 1 });
    try {
      assert.equal(D.getWorldSize(), 1);
      const native = defaultGroup('test').native;
      // every float16 value, the midpoints between neighbours (ties) and just off them
      const values: number[] = [];
      for (let h = 0; h < 0x7c00; h++) {
        const a = F16_TO_F32[h]!;
        const b = F16_TO_F32[h + 1]!;
        const mid = (a + b) / 2;
        values.push(a, -a, mid, -mid, Math.fround(mid * (1 + 2 ** -20)), Math.fround(mid * (1 - 2 ** -20)));
      }
      values.push(Infinity, -Infinity, NaN, 65520, 65519.99, 1e-10, 3.4e38);
      for (const [mode, round] of [['fp16', roundToFloat16], ['bf16', roundToBfloat16]] as const) {
        const data = Float32Array.from(values);
        native.wait(native.averageBucket(data, mode, true));
        let bad = 0;
        let first = '';
        data.forEach((got, i) => {
          const want = round(Math.fround(values[i]!));
          if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) {
            bad++;
            first ||= `${values[i]} -> ${got}, expected ${want}`;
          }
        });
        assert.equal(bad, 0, `${mode}: ${bad} of ${values.length} differ, first ${first}`);
      }
    } finally {
      D.destroyProcessGroup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('DistributedDataParallel recovers from a backward pass that threw half way (its buckets are reset, the next pass averages)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mixprec-world1-'));
    await D.initProcessGroup({ initMethod: `file://${dir}`, rank: 0, worldSize: 1 });
    try {
      const model = new mx.nn.parallel.DistributedDataParallel(new mx.nn.Sequential(new mx.nn.Linear(4, 3), new mx.nn.ReLU(), new mx.nn.Linear(3, 2)), { bucketCapMB: 1e-5 });
      const x = mx.randn([5, 4]);
      let fail = true;
      const out = model.call(x) as mx.Tensor;
      // the hook sits between the layers: the last layer's bucket has started when it throws
      const hidden = (model.module as mx.nn.Sequential).at(0).call(x) as mx.Tensor;
      hidden.registerHook(() => {
        if (fail) throw new Error('boom');
      });
      const loss = (model.module as mx.nn.Sequential).at(2).call(mx.relu(hidden)) as mx.Tensor;
      assert.throws(() => loss.sum().backward(), /boom/);
      fail = false;
      model.module.zeroGrad();
      (model.call(x) as mx.Tensor).sum().backward();
      assert.deepEqual(model.reducerStats().bucketSizes, [2, 1, 1]);
      out.dispose();
    } finally {
      D.destroyProcessGroup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('DistributedDataParallel (LeNet, 2 ranks x 4 images against 1 process x 8)', () => {
    let outcomes: RankOutcome[];
    const parts: [string, Record<string, unknown>][] = [
      ['ddp', { steps: 3 }],
      ['ddp', { steps: 3, precision: 'fp16', compression: 'fp16', overflowAt: 1 }],
      ['ddp', { steps: 2, precision: 'bf16', compression: 'bf16' }],
      ['ddp', { steps: 2, noSync: true }],
      ['ddp', { steps: 2, precision: 'fp16', masterWeights: true }],
      ['ddp', { steps: 1, bucketCapMB: 0.01 }],
      ['buffers', {}],
      ['buffers', { broadcastBuffers: false }],
    ];
    before(async () => {
      outcomes = await runWorker(2, { parts }, { timeoutMs: 300_000 });
      ok(outcomes);
    });
    /** The step results of part `part`: per rank, per step. */
    const steps = (part: number) => ok(outcomes, part).map((results) => results.filter((r) => r['check'] === 'step'));
    function identicalAndClose(part: number, tolerance: number): void {
      const perRank = steps(part);
      const built = ok(outcomes, part).map((rs) => rs.find((r) => r['check'] === 'construction broadcast'));
      for (const b of built) assert.equal(b?.['identical'], true, "construction did not copy rank 0's weights");
      for (const [rank, results] of perRank.entries()) {
        assert.equal(results.length, parts[part]![1]['steps']);
        for (const r of results) {
          assert.equal(r['identical'], true, `rank ${rank} step ${String(r['step'])}: parameters differ between ranks`);
          assert.ok((r['relDiff'] as number) <= tolerance, `rank ${rank} step ${String(r['step'])}: ${String(r['relDiff'])} from one process on the global batch`);
        }
      }
    }
    it('float32: parameters bitwise identical on every rank after every step, as one process on the global batch', () => identicalAndClose(0, 1e-6));
    it('float16 autocast + GradScaler + fp16 compression: identical; an overflow on one rank makes every rank skip and back off', () => {
      identicalAndClose(1, 1e-3);
      for (const results of steps(1)) {
        assert.deepEqual(results.map((r) => r['stepped']), [true, false, true]);
        assert.deepEqual(results.map((r) => r['scale']), results.map((r) => r['refScale']));
        assert.equal(results[1]!['scale'], 512);
      }
    });
    it('bfloat16 autocast + bf16 compression: identical, close to one process', () => identicalAndClose(2, 2e-2));
    it('noSync: gradient accumulation over two micro-batches, synchronised once', () => identicalAndClose(3, 1e-6));
    it('float32 master weights (O2) under DDP: identical, close to one process', () => identicalAndClose(4, 1e-3));
    it('overlap: buckets of about bucketCapMB start their all-reduce while backward still runs', () => {
      identicalAndClose(5, 1e-6);
      for (const [r] of steps(5)) {
        const stats = r!['stats'] as { bucketSizes: number[]; launchedDuringBackward: number };
        assert.deepEqual(stats.bucketSizes, [4, 4, 2]);
        assert.equal(stats.launchedDuringBackward, 2, 'the first two buckets started before the last gradients were computed');
      }
    });
    it("broadcastBuffers: rank 0's buffers before every training forward (off: each rank keeps its own)", () => {
      const on = ok(outcomes, 6).map((rs) => rs[0]!['got']);
      assert.deepEqual(on, [[1, 1, 1, 1], [1, 1, 1, 1]]);
      const off = ok(outcomes, 7).map((rs) => rs[0]!['got']);
      assert.deepEqual(off, [[1, 1, 1, 1], [2, 2, 2, 2]]);
    });
  });

  it('a rank that dies makes the others fail at once with one line naming it (2 and 3 ranks)', async () => {
    for (const world of [2, 3]) {
      const outcomes = await runWorker(world, { parts: [['die', {}]] }, { timeoutMs: 60_000 });
      const dead = outcomes[world - 1]!;
      assert.equal(dead.signal, 'SIGKILL');
      for (const o of outcomes.slice(0, -1)) {
        assert.equal(o.code, 1, `rank ${o.rank}: ${o.stderr}`);
        const [r] = o.results;
        assert.match(String(r?.['message']), new RegExp(`^mx.distributed: allReduce on rank ${o.rank} failed: rank ${world - 1} is gone \\(`));
        assert.ok((r?.['ms'] as number) < 30_000, `rank ${o.rank} took ${String(r?.['ms'])} ms`);
      }
    }
  });

  it('a rank that stalls makes the others time out after timeoutMs with one line', async () => {
    const outcomes = await runWorker(2, { init: { timeoutMs: 1500 }, parts: [['stall', { stallMs: 5000 }]] }, { timeoutMs: 60_000 });
    const [r] = ok(outcomes)[0]!;
    assert.match(String(r?.['message']), /^mx.distributed: allReduce on rank 0 failed: timed out after 1500 ms waiting for another rank/);
    assert.ok((r?.['ms'] as number) < 4500);
  });

  const netnsSkip =
    process.getuid?.() !== 0 ? 'needs root for network namespaces' : spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0 ? 'needs iproute2 with network namespaces (ip netns)' : false;
  it('two machines: two network namespaces joined by a veth pair, one rank each, env:// rendezvous (tools/netns-two-machines.sh)', { skip: netnsSkip }, () => {
    const job = JSON.stringify({ parts: [['collectives', {}], ['ddp', { steps: 2, precision: 'fp16', compression: 'fp16' }]] });
    const r = spawnSync('bash', [join(ROOT, 'tools', 'netns-two-machines.sh'), '--', WORKER, job], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /netns: node 0 = \S+ \(10\.77\.\d+\.1\), node 1 = \S+ \(10\.77\.\d+\.2\)/);
    const results = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('RESULT '))
      .map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
    const checks = results.filter((x) => x['part'] === 0);
    assert.equal(checks.length, 2 * 25);
    for (const c of checks) assert.deepEqual(c['got'], c['expected'], String(c['check']));
    const steps = results.filter((x) => x['part'] === 1 && x['check'] === 'step');
    assert.equal(steps.length, 2 * 2);
    for (const st of steps) assert.equal(st['identical'], true);
    assert.equal(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes('mixprec-a'), false, 'namespaces removed');
  });

  // The CLI runs on the default backend, as users run it: checked in the wasm pass only (CI time).
  const cliSkip = mx.getBackend().name !== 'wasm' ? `the CLI's data-parallel runs are checked in the wasm pass (this is ${mx.getBackend().name})` : false;
  describe('mixprec run -- mixprec train / train-lm (2 ranks)', { skip: cliSkip }, () => {
    let work: string;
    let mnist: string;
    before(() => {
      work = mkdtempSync(join(tmpdir(), 'mixprec-dp-'));
      mnist = join(work, 'mnist');
      writeMnist(mnist, 640, 200);
    });
    after(() => rmSync(work, { recursive: true, force: true }));
    const train = (batch: number, extra: string[]) => ['train', '--dataset', 'mnist', '--data', mnist, '--batch-size', String(batch), '--lr', '0.02', '--seed', '3', ...extra];
    const launch = (args: string[]) => runCli(['run', '--nproc-per-node', '2', '--', 'mixprec', ...args], { timeout: 300_000 });
    const accuracy = (stdout: string) => Number(/^test accuracy: ([\d.]+)%$/m.exec(stdout)?.[1]);

    it('trains data-parallel: rank 0 alone prints, the global batch is 2 x 16, as one process with batch 32; --resume continues bitwise', async () => {
      const full = join(work, 'full.safetensors');
      const two = launch(train(16, ['--epochs', '2', '--precision', 'fp16', '--checkpoint', full, '--log-json', join(work, 'log.jsonl')]));
      assert.equal(two.code, 0, two.stderr);
      assert.match(two.stdout, /batch 16 x 2 ranks/);
      assert.equal(two.stdout.match(/^test accuracy:/gm)?.length, 1, 'one rank prints');
      const one = runCli(train(32, ['--epochs', '2', '--precision', 'fp16']), { timeout: 300_000 });
      assert.equal(one.code, 0, one.stderr);
      // the same samples in every global step: only rounding differs
      assert.ok(Math.abs(accuracy(two.stdout) - accuracy(one.stdout)) <= 1, `2 ranks ${accuracy(two.stdout)}% vs 1 process ${accuracy(one.stdout)}%`);
      const lastLoss = (stdout: string) => Number([...stdout.matchAll(/train loss ([\d.]+)/g)].at(-1)?.[1]);
      assert.ok(Math.abs(lastLoss(two.stdout) / lastLoss(one.stdout) - 1) < 0.02, `train loss ${lastLoss(two.stdout)} vs ${lastLoss(one.stdout)}`);
      const steps = readFileSync(join(work, 'log.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"event":"step"'));
      assert.equal(steps.length, 2 * 20, '640 images / (2 x 16) per step, 2 epochs');

      const half = join(work, 'half.safetensors');
      assert.equal(launch(train(16, ['--epochs', '1', '--precision', 'fp16', '--checkpoint', half])).code, 0);
      const resumed = launch(train(16, ['--epochs', '2', '--precision', 'fp16', '--resume', half, '--checkpoint', half]));
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, /resumed from .*: epoch 1/);
      const a = await mx.io.loadCheckpoint(full);
      const b = await mx.io.loadCheckpoint(half);
      assert.ok(a.tensors.size > 0);
      for (const [name, t] of a.tensors) {
        assert.deepEqual(Array.from(await t.storageData()), Array.from(await b.tensors.get(name)!.storageData()), `${name} after resuming`);
      }
      const single = runCli(train(16, ['--epochs', '2', '--resume', half]));
      assert.equal(single.code, 1);
      assert.match(single.stderr, /written by a run of 2 rank\(s\), this one has 1/);
    });

    it('train-lm: every rank trains on its share of the global batch; rank 0 evaluates and samples', () => {
      const text = join(work, 'text.txt');
      writeFileSync(text, 'the quick brown fox jumps over the lazy dog. '.repeat(200));
      const r = launch(['train-lm', '--data', text, '--steps', '6', '--eval-every', '3', '--batch-size', '4', '--seq-len', '16', '--hidden', '16', '--embed', '8', '--sample-len', '10', '--prompt', 'the']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /batch 4 x 2 ranks x 16 characters/);
      assert.equal(r.stdout.match(/^validation loss:/gm)?.length, 1);
    });

    it('a rank killed mid-epoch: the other exits non-zero with one line naming it, and so does the launcher', async () => {
      const log = join(work, 'kill.jsonl');
      const launcher = spawn(process.execPath, [CLI, 'run', '--nproc-per-node', '2', '--', 'mixprec', ...train(8, ['--epochs', '20', '--log-json', log])]);
      let stderr = '';
      launcher.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => launcher.on('exit', resolve));
      const deadline = Date.now() + 120_000;
      while (!(existsSync(log) && readFileSync(log, 'utf8').split('"event":"step"').length > 5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      // rank 1: the launcher's child whose environment says RANK=1
      const children = readdirSync(`/proc/${launcher.pid}/task`).flatMap((t) => readFileSync(`/proc/${launcher.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
      const rank1 = children.find((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1'));
      assert.ok(rank1, 'rank 1 found');
      const killed = Date.now();
      process.kill(Number(rank1), 'SIGKILL');
      const code = await exited;
      assert.ok(Date.now() - killed < 60_000);
      assert.notEqual(code, 0);
      assert.match(stderr, /^mixprec: mx\.distributed: .+ on rank 0 failed: rank 1 is gone \(/m);
      assert.match(stderr, /^mixprec run: rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL$/m);
      assert.match(stderr, /^mixprec run: rank 0 \(local rank 0, pid \d+\) exited with code 1$/m);
    });
  });
});
