/**
 * Crash safety, end to end on the `mixprec` command (small synthetic MNIST, LeNet, fp16):
 * - SIGKILL at random moments, half of the trials timed to land inside a checkpoint write (slowed by
 *   MIXPREC_TEST_FAULTS=checkpoint-write-delay): the checkpoint on disk always loads, and resuming
 *   from it ends bit for bit where an uninterrupted run ends (4 trials by default, 50 with MIXPREC_LONG=1);
 * - a full disk while writing a checkpoint (ENOSPC injected; and a real tmpfs just larger than one
 *   checkpoint where user namespaces allow mounting one): one line naming the file, the previous
 *   checkpoint intact;
 * - a wasm worker thread that dies in the middle of a kernel (with and without its exit handler
 *   running): the call fails within seconds saying so, later calls still compute the right result,
 *   and the process exits by itself;
 * - Ctrl-C twice: the second exits at once, leaving the last complete checkpoint; also under
 *   `mixprec run` with 2 data-parallel ranks (the launcher forwards each Ctrl-C; no rank is left),
 *   and the checkpoint left resumes there.
 * They run the CLI on the default (wasm) backend, so only in the wasm suite. MIXPREC_CRASH_REPORT=file
 * appends the figures as JSON lines (docs/reliability.md).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mx from '../src/api.js';
import { CLI, ROOT, runCli } from './helpers/cli.js';
import { writeMnist } from './helpers/data.js';
import { rng } from './helpers/rng.js';
import { checkpointDifference, partialFiles, startCli, type RunningCli } from './helpers/crash.js';

const LONG = process.env['MIXPREC_LONG'] === '1';
const TRIALS = LONG ? 50 : 4;
const EPOCHS = LONG ? 5 : 3;
/** Per chunk of a slowed checkpoint write, ms (a LeNet checkpoint is 21 chunks: header, 10 weights, 10 momentum buffers). */
const CHUNK_DELAY = 60;
const CHUNKS = 21;
const skip = mx.defaultBackendName() === 'wasm' ? false : 'runs the CLI on the default (wasm) backend: once, in the wasm suite';
const report = (entry: Record<string, unknown>) => {
  const file = process.env['MIXPREC_CRASH_REPORT'];
  if (file) appendFileSync(file, `${JSON.stringify(entry)}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
let mnist: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'mixprec-crash-'));
  mnist = join(work, 'mnist');
  writeMnist(mnist, 320, 100);
});
after(() => rmSync(work, { recursive: true, force: true }));

const train = (ck: string, epochs = EPOCHS) =>
  ['train', '--dataset', 'mnist', '--data', mnist, '--batch-size', '32', '--lr', '0.05', '--precision', 'fp16', '--quiet', '--epochs', String(epochs), '--checkpoint', ck];
const fresh = (name: string) => {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  return join(dir, 'ck.safetensors');
};

describe('SIGKILL during mixprec train --checkpoint', { skip }, () => {
  it(`${TRIALS} trials: the checkpoint on disk always loads and resuming from it ends bitwise where an uninterrupted run ends`, { timeout: LONG ? 3_600_000 : 600_000 }, async (t) => {
    const reference = fresh('reference');
    const t0 = performance.now();
    const whole = runCli(train(reference));
    const runMs = performance.now() - t0;
    assert.equal(whole.code, 0, whole.stderr);
    const random = rng(Number(process.env['MIXPREC_CRASH_SEED'] ?? 18));
    const trials: Record<string, unknown>[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const ck = fresh(`trial${i}`);
      // Odd trials: inside a write; even ones: anywhere in the run, or (every other) once a checkpoint exists.
      const insideWrite = i % 2 === 1;
      const afterFirstSave = i % 4 === 2;
      const run = startCli(train(ck), insideWrite ? { MIXPREC_TEST_FAULTS: `checkpoint-write-delay=${CHUNK_DELAY}` } : {});
      const started = performance.now();
      let target: string;
      if (insideWrite) {
        // The save of a random epoch, after a random chunk (not the last: the write is still going on).
        const save = 1 + Math.floor(random() * EPOCHS);
        const chunk = Math.floor(random() * (CHUNKS - 1));
        await run.waitForStderr(new RegExp(`^fault: writing chunk ${chunk} of `), save);
        await sleep(random() * CHUNK_DELAY);
        target = `inside save ${save}, chunk ${chunk}`;
      } else if (afterFirstSave) {
        let exitedEarly = false;
        void run.exited.then(() => (exitedEarly = true));
        while (!existsSync(ck)) {
          // a run that ends before its first checkpoint fails the trial instead of waiting forever
          if (exitedEarly) assert.fail(`trial ${i}: the run exited before writing its first checkpoint: ${run.stderr()}`);
          await sleep(5);
        }
        await sleep(random() * Math.max(0, runMs - (performance.now() - started)));
        target = 'at a random moment after the first checkpoint';
      } else {
        await sleep(random() * runMs);
        target = 'at a random moment';
      }
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      const killedAt = Math.round(performance.now() - started);
      const partial = partialFiles(ck).length > 0;
      if (insideWrite) assert.ok(partial, `trial ${i} (${target}): the kill landed inside the write, leaving its temporary file`);
      let onDisk: number | null = null;
      if (existsSync(ck)) onDisk = (await mx.io.loadCheckpoint(ck)).meta.epoch as number; // throws if it does not load
      const resumed = runCli(onDisk === null ? train(ck) : [...train(ck), '--resume', ck]);
      assert.equal(resumed.code, 0, `trial ${i}: ${resumed.stderr}`);
      assert.equal(await checkpointDifference(ck, reference), null, `trial ${i} (${target}, checkpoint of epoch ${onDisk})`);
      assert.deepEqual(partialFiles(ck), [], 'the next save removed the partial file');
      trials.push({ trial: i, target, killedAtMs: killedAt, signal, partialFile: partial, checkpointEpoch: onDisk });
    }
    const inside = trials.filter((x) => x['partialFile']).length;
    const epochs = trials.map((x) => x['checkpointEpoch']);
    t.diagnostic(`${TRIALS} kills (${inside} inside a checkpoint write); epoch on disk at each kill: ${epochs.join(', ')}; uninterrupted run ${Math.round(runMs)} ms`);
    report({ test: 'sigkill', trials: TRIALS, insideWrite: inside, runMs: Math.round(runMs), details: trials });
  });
});

describe('disk full while writing a checkpoint', { skip }, () => {
  let epochOne: string;
  before(() => {
    epochOne = fresh('epoch-one');
    assert.equal(runCli(train(epochOne, 1)).code, 0);
  });

  it('ENOSPC (injected at the second save): one line naming the file, the previous checkpoint intact', async () => {
    const ck = fresh('enospc');
    const r = runCli(train(ck), { env: { MIXPREC_TEST_FAULTS: 'checkpoint-enospc=2' } });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^mixprec: could not write ${ck.replace(/[.\\/]/g, '\\$&')} \\(failed at write of the temporary file .*ENOSPC: no space left on device.*\\); the previous ck\\.safetensors, if any, is unchanged$`));
    assert.equal(await checkpointDifference(ck, epochOne), null, 'the epoch-1 checkpoint is intact');
    assert.deepEqual(partialFiles(ck), [], 'the failed write removed its temporary file');
    report({ test: 'enospc-injected', message: lines[0]!.split(work).join('<dir>') });
  });

  const mnt = () => join(work, 'tmpfs');
  const canMount = (): boolean => {
    mkdirSync(mnt(), { recursive: true });
    return spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${mnt()}`], { stdio: 'ignore' }).status === 0;
  };

  it('a real full disk: a tmpfs with room for one checkpoint but not two (the atomic write needs both)', async (t) => {
    if (!canMount()) {
      t.skip('mounting a tmpfs needs unshare -rm (user and mount namespaces), which this machine does not allow');
      return;
    }
    const size = statSync(epochOne).size;
    const kb = Math.ceil((size * 1.5) / 4096) * 4;
    const ck = join(mnt(), 'ck.safetensors');
    const verify = join(work, 'verify.mjs');
    writeFileSync(
      verify,
      `import { loadCheckpoint } from ${JSON.stringify(join(ROOT, 'dist', 'io', 'index.js'))};
       import { readdirSync } from 'node:fs';
       const { meta } = await loadCheckpoint(${JSON.stringify(ck)});
       console.log(JSON.stringify({ epoch: meta.epoch, files: readdirSync(${JSON.stringify(mnt())}) }));`,
    );
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const script = [
      `mount -t tmpfs -o size=${kb}k tmpfs ${q(mnt())} || exit 99`,
      `${q(process.execPath)} ${q(CLI)} ${train(ck).map(q).join(' ')} 2> ${q(join(work, 'full.err'))}; echo "train=$?"`,
      `${q(process.execPath)} ${q(verify)}`,
    ].join('\n');
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { encoding: 'utf8', timeout: 300_000 });
    const stderr = readFileSync(join(work, 'full.err'), 'utf8').trim();
    assert.match(r.stdout, /^train=1$/m, `${r.stdout}${r.stderr}${stderr}`);
    assert.equal(stderr.split('\n').length, 1, stderr);
    assert.match(stderr, /^mixprec: could not write .*ck\.safetensors \(failed at write of the temporary file .*ENOSPC: no space left on device, write\); the previous ck\.safetensors, if any, is unchanged$/);
    const after = JSON.parse(r.stdout.trim().split('\n').pop()!) as { epoch: number; files: string[] };
    assert.equal(after.epoch, 1, 'the checkpoint of epoch 1 still loads');
    assert.deepEqual(after.files, ['ck.safetensors'], 'no temporary file left on the full disk');
    report({ test: 'enospc-tmpfs', tmpfsKiB: kb, checkpointBytes: size, message: stderr.split(work).join('<dir>') });
  });
});

describe('a wasm worker thread that dies in the middle of a kernel', { skip }, () => {
  const child = join(ROOT, 'build', 'test', 'helpers', 'worker_death_child.js');
  for (const [fault, how, within] of [
    ['wasm-worker-exit=3', /worker 0 exited \(code 3\) while running \w+ \(part 2 of 2\)/, 2_000],
    ['wasm-worker-vanish=3', /worker 0 stopped \(its thread is gone\) while running \w+ \(part 2 of 2\)/, 6_000],
  ] as const) {
    it(`${fault}: the call fails within seconds saying so, later calls are right, the process exits`, () => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [child], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, MIXPREC_BACKEND: 'wasm', MIXPREC_THREADS: '2', MIXPREC_TEST_FAULTS: fault },
      });
      const wall = performance.now() - t0;
      assert.equal(r.status, 0, `the process ended by itself: ${r.stderr}${r.error ?? ''}`);
      const out = JSON.parse(r.stdout.trim()) as { error: string | null; ms: number; correctAfter: boolean; degraded: string | null };
      assert.match(out.error ?? '', how);
      assert.match(out.error ?? '', /the pool now runs every kernel on the calling thread/);
      assert.ok(out.ms < within, `failed after ${out.ms.toFixed(0)} ms (bound ${within})`);
      assert.ok(out.correctAfter, 'later products are still right');
      assert.match(out.degraded ?? '', /a worker died/);
      report({ test: 'worker-death', fault, failedAfterMs: Math.round(out.ms), processMs: Math.round(wall), error: out.error });
    });
  }
});

/**
 * Starts `args` (mixprec train, or the launcher around it) with checkpoint chunks slow enough that
 * the rest of a write (17 chunks after chunk 3) takes 5 s: exiting within 2 s is exiting at once,
 * not after the save. Once epoch 1 has saved (its 21 chunks) and epoch 2 has a step: the first
 * Ctrl-C, then the second during chunk 3 of the save it started. Checks exit code 130, the line,
 * the bound and the epoch-1 checkpoint untouched; returns ms from the second Ctrl-C to the exit.
 */
async function ctrlCTwice(args: string[], ck: string, log: string, beforeFirst: (run: RunningCli) => void = () => {}): Promise<number> {
  const slow = 300;
  const run = startCli(args, { MIXPREC_TEST_FAULTS: `checkpoint-write-delay=${slow}` });
  await run.waitForStderr(/^fault: writing chunk 20 of /);
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes('"epoch":2'))) await sleep(20);
  const previous = readFileSync(ck);
  beforeFirst(run);
  run.child.kill('SIGINT');
  await run.waitForStderr(/^fault: writing chunk 3 of /, 2);
  const second = performance.now();
  run.child.kill('SIGINT');
  const { code, at } = await run.exited;
  const exitMs = at - second;
  assert.equal(code, 130);
  assert.match(run.stderr(), /interrupted again: exiting now; .*ck\.safetensors holds the last complete checkpoint/);
  assert.ok(exitMs < 2000, `exited ${exitMs.toFixed(0)} ms after the second Ctrl-C (the save had ${17 * slow} ms to go)`);
  assert.ok(readFileSync(ck).equals(previous), 'the epoch-1 checkpoint is untouched');
  assert.equal((await mx.io.loadCheckpoint(ck)).meta.epoch, 1);
  return exitMs;
}

/** The pids of a process's children. */
const childrenOf = (pid: number): number[] =>
  readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)).map(Number);

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Ctrl-C twice', { skip }, () => {
  it('the second Ctrl-C, during the first one\'s checkpoint write, exits at once with the previous checkpoint intact', async () => {
    const ck = fresh('ctrl-c');
    const log = join(work, 'ctrl-c.jsonl');
    const exitMs = await ctrlCTwice([...train(ck, 50), '--log-json', log], ck, log);
    report({ test: 'ctrl-c-twice', exitMs: Math.round(exitMs) });
  });
});

const dpSkip = skip || (mx.distributed.unavailableReason() ?? false);

describe('Ctrl-C twice under mixprec run (2 data-parallel ranks)', { skip: dpSkip }, () => {
  it('the launcher forwards both: every rank is gone at once, the previous checkpoint intact and resumable by the same launch', async (t) => {
    const ck = fresh('ctrl-c-dp');
    const log = join(work, 'ctrl-c-dp.jsonl');
    const launch = (extra: string[]) => ['run', '--nproc-per-node', '2', '--', 'mixprec', ...extra];
    let ranks: number[] = [];
    const exitMs = await ctrlCTwice(launch([...train(ck, 50), '--log-json', log]), ck, log, (run) => {
      ranks = childrenOf(run.child.pid!);
    });
    assert.equal(ranks.length, 2, 'two ranks');
    assert.deepEqual(ranks.filter(isAlive), [], 'no rank outlives the launcher');
    const resumed = runCli(launch([...train(ck, 2), '--resume', ck]), { timeout: 300_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    const after = await mx.io.loadCheckpoint(ck);
    assert.equal(after.meta.epoch, 2);
    assert.equal(after.meta.worldSize, 2);
    t.diagnostic(`the launcher and both ranks gone ${exitMs.toFixed(0)} ms after the second Ctrl-C`);
    report({ test: 'ctrl-c-twice-data-parallel', exitMs: Math.round(exitMs) });
  });
});
