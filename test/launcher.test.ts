/**
 * `mixprec run`, the launcher (no Gloo needed: the ranks here are small scripts): torchrun's
 * environment, the exit code and one line for a failing rank, stopping the others after the grace
 * period, signals forwarded once, usage errors.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli } from './helpers/cli.js';

let dir: string;
let envScript: string;
let failScript: string;
let trapScript: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mixprec-run-'));
  envScript = join(dir, 'env.mjs');
  writeFileSync(
    envScript,
    `const keys = ['MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK'];
console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))));
`,
  );
  // rank 1 fails; rank 0 would run for a minute
  failScript = join(dir, 'fail.mjs');
  writeFileSync(failScript, `if (process.env.RANK === '1') process.exit(3); else setTimeout(() => {}, 60_000);\n`);
  // each rank reports the SIGTERM it gets, then exits 0
  trapScript = join(dir, 'trap.mjs');
  writeFileSync(
    trapScript,
    `let n = 0;
process.on('SIGTERM', () => { n++; setTimeout(() => { console.log('rank ' + process.env.RANK + ' SIGTERM x' + n); process.exit(0); }, 300); });
console.log('rank ' + process.env.RANK + ' ready');
setTimeout(() => {}, 60_000);
`,
  );
});

const envOf = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, string>)
    .sort((a, b) => Number(a['RANK']) - Number(b['RANK']));

describe('mixprec run', () => {
  it("starts the ranks with torchrun's environment and exits 0 when they all do", () => {
    const r = runCli(['run', '--nproc-per-node', '3', '--', envScript]);
    assert.equal(r.code, 0, r.stderr);
    const envs = envOf(r.stdout);
    assert.equal(envs.length, 3);
    const port = envs[0]!['MASTER_PORT'];
    assert.match(port!, /^\d+$/);
    envs.forEach((e, i) => {
      assert.deepEqual(e, { MASTER_ADDR: '127.0.0.1', MASTER_PORT: port, RANK: String(i), WORLD_SIZE: '3', LOCAL_RANK: String(i), LOCAL_WORLD_SIZE: '3', GROUP_RANK: '0' });
    });
  });

  it('numbers the ranks of node R of M nodes after the nodes before it', () => {
    const r = runCli(['run', '--nproc-per-node', '2', '--nnodes', '3', '--node-rank', '1', '--master-addr', '10.0.0.1', '--', envScript]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      envOf(r.stdout).map((e) => [e['RANK'], e['LOCAL_RANK'], e['WORLD_SIZE'], e['MASTER_ADDR'], e['MASTER_PORT'], e['GROUP_RANK']]),
      [['2', '0', '6', '10.0.0.1', '29500', '1'], ['3', '1', '6', '10.0.0.1', '29500', '1']],
    );
  });

  it('names a failing rank in one line, stops the others after the grace period and exits with its code', () => {
    const started = Date.now();
    const r = runCli(['run', '--nproc-per-node', '2', '--grace-seconds', '1', '--', failScript], { timeout: 60_000 });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^mixprec run: rank 1 \(local rank 1, pid \d+\) exited with code 3$/m);
    assert.match(r.stderr, /mixprec run: stopping 1 remaining rank\(s\) with SIGTERM/);
    assert.match(r.stderr, /^mixprec run: rank 0 \(local rank 0, pid \d+\) was killed by SIGTERM$/m, 'the ranks stopped after it are named too');
    assert.ok(Date.now() - started < 30_000);
  });

  it('forwards a signal once to every rank and exits 128 + its number', async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--nproc-per-node', '2', '--', trapScript]);
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const deadline = Date.now() + 30_000;
    while ((stdout.match(/ready/g) ?? []).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 143);
    assert.deepEqual(stdout.match(/rank \d SIGTERM x\d/g)?.sort(), ['rank 0 SIGTERM x1', 'rank 1 SIGTERM x1']);
  });

  it('refuses bad usage in one line', () => {
    const noCommand = runCli(['run', '--nproc-per-node', '2']);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /^mixprec run: give the command to run after --/);
    const badNode = runCli(['run', '--nnodes', '2', '--node-rank', '2', '--', envScript]);
    assert.equal(badNode.code, 2);
    assert.match(badNode.stderr, /--node-rank 2 is not in \[0, --nnodes 2\)/);
    const missing = runCli(['run', '--', join(dir, 'nope', 'missing-program')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /mixprec run: rank 0: cannot start .*missing-program: spawn .*ENOENT/);
  });
});
