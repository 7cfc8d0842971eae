/** Starting `mixprec train` as a child process that a test kills, interrupts or watches. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import * as mx from '../../src/api.js';
import { CLI, ROOT } from './cli.js';

export interface RunningCli {
  child: ChildProcess;
  /** stderr so far. */
  stderr(): string;
  stdout(): string;
  /**
   * Resolves once `count` stderr lines (from the start) match `pattern` (default 1), with the last of
   * them; rejects if the process exits first.
   */
  waitForStderr(pattern: RegExp, count?: number, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal's name) and when it exited (performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  const waiters: { pattern: RegExp; count: number; resolve: (line: string) => void }[] = [];
  const check = (): void => {
    const lines = stderr.split('\n').slice(0, -1); // complete lines only
    for (let i = waiters.length - 1; i >= 0; i--) {
      const { pattern, count, resolve } = waiters[i]!;
      const matching = lines.filter((l) => pattern.test(l));
      if (matching.length >= count) {
        waiters.splice(i, 1);
        resolve(matching[count - 1]!);
      }
    }
  };
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    check();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return {
    child,
    stderr: () => stderr,
    stdout: () => stdout,
    exited,
    waitForStderr: (pattern, count = 1, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${count} stderr lines matching ${pattern} in ${timeoutMs} ms: ${stderr}`)), timeoutMs);
        waiters.push({ pattern, count, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        check();
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`the process exited before printing ${count} lines matching ${pattern}: ${stderr}`));
        });
      }),
  };
}

/** Temporary files left next to `path` by an interrupted save. */
export function partialFiles(path: string): string[] {
  return readdirSync(dirname(path)).filter((n) => n.startsWith(`${basename(path)}.tmp-`));
}

/**
 * Why two checkpoints differ (null when their tensors, model and optimizer state, are bit-identical
 * and the rest of their training state is equal; the command-line paths are not compared).
 */
export async function checkpointDifference(a: string, b: string): Promise<string | null> {
  const x = await mx.io.loadCheckpoint(a);
  const y = await mx.io.loadCheckpoint(b);
  const bits = new Map<mx.Tensor, string>();
  const collect = async (v: unknown): Promise<void> => {
    if (v instanceof mx.Tensor) bits.set(v, Buffer.from((await v.storageData()).buffer).toString('base64'));
    else if (v && typeof v === 'object') for (const c of v instanceof Map ? v.values() : Object.values(v)) await collect(c);
  };
  await collect([x.tensors, y.tensors, x.meta, y.meta]);
  const text = (v: unknown) => JSON.stringify(v, (_, u) => (u instanceof mx.Tensor ? bits.get(u) : u instanceof Map ? Object.fromEntries(u) : u));
  if (x.meta.step !== y.meta.step) return `step ${x.meta.step} != ${y.meta.step}`;
  for (const [name, t] of x.tensors) if (bits.get(t) !== bits.get(y.tensors.get(name)!)) return `tensor ${name} differs`;
  if (text(x.meta.optimizer) !== text(y.meta.optimizer)) return 'the optimizer state differs';
  if (text({ ...x.meta, args: null }) !== text({ ...y.meta, args: null })) return 'the training state differs';
  return null;
}
