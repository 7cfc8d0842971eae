/**
 * One rank of the multi-process tests in test/distributed.test.ts, started with torchrun's
 * environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) and
 * `node distributed_worker.js JSON`, JSON = { init?: { initMethod, timeoutMs, groupName }, parts:
 * [[scenario, options], ...] }: one process group, the scenarios in order. It prints
 * `RESULT {...}` lines (tagged with the part's index) for the test to check and exits non-zero on
 * an error, with the error's one line on stderr.
 */
import * as mx from '../../src/index.js';
import { roundToFloat16, roundToBfloat16, F16_TO_F32 } from '../../src/dtype/convert.js';
import { LeNet } from '../../src/models/lenet.js';
import { Tensor } from '../../src/tensor/tensor.js';

const job = JSON.parse(process.argv[2] ?? '{}') as { init?: Record<string, unknown>; parts: [string, Record<string, unknown>][] };
let options: Record<string, unknown> = {};
let part = 0;
const D = mx.distributed;

function result(value: Record<string, unknown>): void {
  process.stdout.write(`RESULT ${JSON.stringify({ part, ...value })}\n`);
}

/** A reproducible stream of doubles in [0, 1). */
function stream(seed: number): () => number {
  const g = new mx.Generator(seed);
  return () => g.nextDouble();
}

/** FNV-1a over the storage bytes of every parameter and buffer. */
function fingerprint(tensors: Tensor[]): number {
  let h = 0x811c9dc5;
  for (const t of tensors) {
    const values = t.storageDataSync();
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  }
  return h | 0;
}

/** Whether every rank holds the same fingerprint (all-gathered). */
async function identicalOnAllRanks(tensors: Tensor[]): Promise<boolean> {
  const world = D.getWorldSize();
  const mine = mx.tensor([fingerprint(tensors)], { dtype: 'int32' });
  const all = Array.from({ length: world }, () => mx.zeros([1], { dtype: 'int32' }));
  await D.allGather(all, mine);
  const values = await Promise.all(all.map((t) => t.item()));
  return values.every((v) => v === values[0]);
}

async function collectives(): Promise<void> {
  const rank = D.getRank();
  const world = D.getWorldSize();
  // Small integers: exact in every dtype and every summation order.
  const ints = (r: number) => Array.from({ length: 37 }, (_, i) => ((i * 7 + r * 3) % 11) - 5);
  for (const dtype of ['float32', 'float16', 'bfloat16', 'float64', 'int32'] as const) {
    for (const op of ['sum', 'avg', 'max', 'min'] as const) {
      if (op === 'avg' && dtype === 'int32') continue;
      const t = mx.tensor(ints(rank), { dtype });
      await D.allReduce(t, { op });
      const expected = ints(0).map((_, i) => {
        const column = Array.from({ length: world }, (_, r) => ints(r)[i]!);
        const total = column.reduce((a, b) => a + b, 0);
        const v = op === 'sum' ? total : op === 'avg' ? total / world : op === 'max' ? Math.max(...column) : Math.min(...column);
        return dtype === 'float16' ? roundToFloat16(v) : dtype === 'bfloat16' ? roundToBfloat16(v) : dtype === 'float32' ? Math.fround(v) : v;
      });
      result({ check: `allReduce ${op} ${dtype}`, got: Array.from(await t.data()), expected });
    }
  }
  // A view: the reduction lands in the viewed elements only.
  const base = mx.tensor([[1, 2], [3, 4]]);
  const column = base.narrow(1, 1, 1);
  await D.allReduce(column);
  result({ check: 'allReduce of a view', got: Array.from(await base.data()), expected: [1, 2 * world, 3, 4 * world] });

  const b = mx.tensor([rank, rank * 10], { dtype: 'int32' });
  await D.broadcast(b, world - 1);
  result({ check: 'broadcast', got: Array.from(await b.data()), expected: [world - 1, (world - 1) * 10] });

  const outputs = Array.from({ length: world }, () => mx.zeros([2, 2], { dtype: 'bfloat16' }));
  await D.allGather(outputs, mx.full([2, 2], rank + 0.5, { dtype: 'bfloat16' }));
  result({ check: 'allGather', got: await Promise.all(outputs.map(async (o) => Array.from(await o.data()))), expected: Array.from({ length: world }, (_, r) => [r + 0.5, r + 0.5, r + 0.5, r + 0.5]) });

  const blocks = Array.from({ length: world }, (_, r) => mx.full([3], (r + 1) * (rank + 1)));
  const mineOut = mx.zeros([3]);
  await D.reduceScatter(mineOut, blocks);
  const sumRanks = (world * (world + 1)) / 2;
  result({ check: 'reduceScatter list', got: Array.from(await mineOut.data()), expected: [1, 1, 1].map(() => (rank + 1) * sumRanks) });
  const flat = mx.arange(0, 4 * world).to('float32').add(rank);
  const out4 = mx.zeros([4]);
  await D.reduceScatter(out4, flat, { op: 'max' });
  result({ check: 'reduceScatter tensor max', got: Array.from(await out4.data()), expected: [0, 1, 2, 3].map((i) => rank * 4 + i + world - 1) });

  await D.barrier();
  result({ check: 'barrier', got: true, expected: true });
}

/** 16-bit reductions of random values against the same arithmetic in JavaScript (two ranks). */
async function halfExact(): Promise<void> {
  const rank = D.getRank();
  const n = 50_000;
  for (const dtype of ['float16', 'bfloat16'] as const) {
    const widen = (bits: number) => (dtype === 'float16' ? F16_TO_F32[bits]! : new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!);
    const round = dtype === 'float16' ? roundToFloat16 : roundToBfloat16;
    const patterns = (r: number) => {
      const next = stream(1000 + r);
      return Uint16Array.from({ length: n }, (_, i) => (i < 64 ? [0x7c00, 0xfc00, 0x7bff, 0xfbff, 0x0001, 0x8001, 0x0400, 0x3c00][i % 8]! : Math.floor(next() * 65536)));
    };
    for (const op of ['sum', 'max', 'min'] as const) {
      const t = Tensor.fromStorage(patterns(rank), [n], mx.dtypes.dtypeOf(dtype));
      await D.allReduce(t, { op });
      const got = await t.data();
      const a = patterns(0);
      const b = patterns(1);
      let mismatches = 0;
      let firstBad = '';
      for (let i = 0; i < n; i++) {
        const x = widen(a[i]!);
        const y = widen(b[i]!);
        // as the addon: float32 arithmetic (max and min propagate NaN), then one rounding
        const v = op === 'sum' ? round(Math.fround(x + y)) : Number.isNaN(x) || Number.isNaN(y) ? NaN : round(op === 'max' ? Math.max(x, y) : Math.min(x, y));
        const ok = Number.isNaN(v) ? Number.isNaN(got[i]) : Object.is(v, got[i]);
        if (!ok) {
          mismatches++;
          firstBad ||= `${x} ${op} ${y}: ${got[i]} (expected ${v})`;
        }
      }
      result({ check: `${dtype} ${op} exact`, got: mismatches, expected: 0, detail: firstBad });
    }
  }
}

function makeModel(kind: string): mx.nn.Module {
  if (kind === 'bn') {
    return new mx.nn.Sequential(new mx.nn.Conv2d(1, 4, 3), new mx.nn.BatchNorm2d(4, { momentum: 0 }), new mx.nn.ReLU(), new mx.nn.Flatten(), new mx.nn.Linear(4 * 14 * 14, 10));
  }
  return new LeNet({ inChannels: 1, imageSize: 16 });
}

/** A global batch of 2 x perRank images 1x16x16 and labels, the same on every rank (seed s). */
function globalBatch(step: number, perRank: number, world: number): { x: Float32Array; y: Int32Array } {
  const next = stream(7 + step);
  const n = perRank * world;
  const x = Float32Array.from({ length: n * 256 }, () => next() * 2 - 1);
  const y = Int32Array.from({ length: n }, () => Math.floor(next() * 10));
  return { x, y };
}

/**
 * DistributedDataParallel against one process on the global batch: after every step the
 * parameters must be bitwise identical on all ranks, and close to the single-process model's.
 */
async function ddp(): Promise<void> {
  const rank = D.getRank();
  const world = D.getWorldSize();
  const precision = (options['precision'] as 'fp32' | 'fp16' | 'bf16') ?? 'fp32';
  const compression = (options['compression'] as 'fp16' | 'bf16' | null) ?? null;
  const steps = (options['steps'] as number) ?? 4;
  const perRank = (options['perRank'] as number) ?? 4;
  const accumulate = Boolean(options['noSync']);
  const overflowAt = (options['overflowAt'] as number | undefined) ?? -1;
  const master = Boolean(options['masterWeights']);
  // Same seed, and rank 1 perturbed: DDP's construction must copy rank 0's weights.
  mx.manualSeed(3);
  const reference = makeModel(options['model'] as string);
  mx.manualSeed(3);
  const local = makeModel(options['model'] as string);
  if (rank !== 0) mx.noGrad(() => local.parameters()[0]!.copy_(local.parameters()[0]!.add(1)));
  const lr = 0.05;
  const refOpt = new mx.optim.SGD(reference.parameters(), { lr, momentum: 0.9 });
  const opt = new mx.optim.SGD(local.parameters(), { lr, momentum: 0.9 });
  if (master) {
    mx.amp.masterWeights(reference, refOpt, { dtype: 'float16' });
    mx.amp.masterWeights(local, opt, { dtype: 'float16' });
  }
  const model = new mx.nn.parallel.DistributedDataParallel(local, { gradientCompression: compression, bucketCapMB: (options['bucketCapMB'] as number) ?? 25 });
  const scalerOptions = { enabled: precision === 'fp16', initScale: 1024 };
  const refScaler = new mx.amp.GradScaler(scalerOptions);
  const scaler = new mx.amp.GradScaler(scalerOptions);
  const autocast = <T>(fn: () => T): T => (precision === 'fp32' || master ? fn() : mx.amp.autocast({ dtype: precision === 'fp16' ? 'float16' : 'bfloat16' }, fn));
  const input = (x: Tensor) => (master ? x.to('float16') : x);
  const lossOf = (m: mx.nn.Module, x: Tensor, y: Tensor) => mx.nn.functional.crossEntropy((m.call(input(x)) as Tensor).to('float32'), y);
  result({ check: 'construction broadcast', identical: await identicalOnAllRanks(local.parameters()) });

  const micro = accumulate ? 2 : 1;
  for (let step = 0; step < steps; step++) {
    const batches = Array.from({ length: micro }, (_, m) => globalBatch(step * micro + m, perRank, world));
    // one process, the whole global batch (micro-batches accumulated with the same loss scaling)
    mx.scope(() => {
      refOpt.zeroGrad();
      for (const { x, y } of batches) {
        const X = mx.tensor(x).reshape([perRank * world, 1, 16, 16]);
        if (step === overflowAt) mx.noGrad(() => X.narrow(0, perRank, perRank).copy_(X.narrow(0, perRank, perRank).mul(1e30)));
        const loss = autocast(() => lossOf(reference, X, mx.tensor(y, { dtype: 'int32' })));
        refScaler.scale(loss.div(micro)).backward();
      }
      refScaler.step(refOpt);
      refScaler.update();
    });
    // this rank's share
    let stepped = true;
    mx.scope(() => {
      opt.zeroGrad();
      batches.forEach(({ x, y }, m) => {
        const X = mx.tensor(x.subarray(rank * perRank * 256, (rank + 1) * perRank * 256)).reshape([perRank, 1, 16, 16]);
        if (step === overflowAt && rank === 1) mx.noGrad(() => X.copy_(X.mul(1e30)));
        const Y = mx.tensor(y.subarray(rank * perRank, (rank + 1) * perRank), { dtype: 'int32' });
        const backward = () => scaler.scale(autocast(() => lossOf(model, X, Y)).div(micro)).backward();
        if (m < micro - 1) model.noSync(backward);
        else backward();
      });
      stepped = scaler.step(opt) !== false;
      scaler.update();
    });
    const params = local.parameters();
    const refParams = reference.parameters();
    let maxDiff = 0;
    let maxAbs = 0;
    params.forEach((p, i) => {
      const a = p.dataSync();
      const b = refParams[i]!.dataSync();
      for (let j = 0; j < a.length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[j]! - b[j]!));
        maxAbs = Math.max(maxAbs, Math.abs(b[j]!));
      }
    });
    result({
      check: 'step',
      step,
      identical: await identicalOnAllRanks([...params, ...local.buffers()]),
      relDiff: maxDiff / Math.max(maxAbs, 1e-12),
      stepped,
      scale: scaler.getScale(),
      refScale: refScaler.getScale(),
      stats: model.reducerStats(),
    });
  }
}

/** broadcastBuffers: with momentum 0 a forward leaves the running statistics as they were: rank 0's. */
async function buffers(): Promise<void> {
  const rank = D.getRank();
  mx.manualSeed(5);
  const local = makeModel('bn');
  const model = new mx.nn.parallel.DistributedDataParallel(local, { broadcastBuffers: options['broadcastBuffers'] !== false });
  const bn = local.modules().find((m) => m instanceof mx.nn.BatchNorm2d) as mx.nn.BatchNorm2d;
  mx.noGrad(() => bn.runningVar!.fill_(rank + 1));
  mx.scope(() => model.call(mx.randn([2, 1, 16, 16])));
  result({ check: 'running var after forward', got: Array.from(await bn.runningVar!.data()), rank });
}

/** Rank world-1 kills itself in the middle of a loop of all-reduces; the others must fail naming it. */
async function die(): Promise<void> {
  const rank = D.getRank();
  const world = D.getWorldSize();
  const t = mx.ones([50_000]);
  const started = Date.now();
  for (let i = 0; ; i++) {
    if (rank === world - 1 && i === 20) process.kill(process.pid, 'SIGKILL');
    try {
      await D.allReduce(t, { op: 'avg' });
    } catch (e) {
      result({ check: 'failed', message: (e as Error).message, ms: Date.now() - started });
      process.exit(1);
    }
  }
}

/** Rank 1 stops taking part (its event loop blocked); rank 0 must time out with a clear line. */
async function stall(): Promise<void> {
  const rank = D.getRank();
  const t = mx.ones([10]);
  await D.allReduce(t);
  if (rank === 1) {
    const until = Date.now() + (options['stallMs'] as number);
    while (Date.now() < until) {
      // busy: no collective is queued
    }
    return;
  }
  const started = Date.now();
  try {
    await D.allReduce(t);
    result({ check: 'stall', message: 'no error', ms: Date.now() - started });
  } catch (e) {
    result({ check: 'stall', message: (e as Error).message, ms: Date.now() - started });
  }
}

const SCENARIOS: Record<string, () => Promise<void>> = { collectives, half: halfExact, ddp, buffers, die, stall };

async function main(): Promise<void> {
  const init = job.init ?? {};
  await D.initProcessGroup({
    backend: 'gloo',
    initMethod: (init['initMethod'] as string | undefined) ?? 'env://',
    timeoutMs: (init['timeoutMs'] as number | undefined) ?? 60_000,
    groupName: init['groupName'] as string | undefined,
  });
  for (const [i, [scenario, scenarioOptions]] of job.parts.entries()) {
    const run = SCENARIOS[scenario];
    if (!run) throw new Error(`unknown scenario '${scenario}'`);
    part = i;
    options = scenarioOptions;
    await run();
  }
  D.destroyProcessGroup();
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
