/** Running the built `mixprec` command (dist/cli/main.js) from tests. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fixturesDir } from './fixtures.js';

/** The repository root and the built command. */
export const ROOT = dirname(dirname(fixturesDir()));
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `mixprec ...args` to completion (`env` added to this process's, `unset` names removed). */
export function runCli(args: string[], options: { cwd?: string; env?: Record<string, string>; unset?: string[]; timeout?: number } = {}): CliResult {
  const env = { ...process.env, ...options.env };
  for (const name of options.unset ?? []) delete env[name];
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    encoding: 'utf8',
    env,
    timeout: options.timeout ?? 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Start `mixprec ...args` (which must write `--log-json logPath`), press Ctrl-C once its first
 * step event is logged, and wait for it to exit.
 */
export async function interruptAtFirstStep(args: string[], logPath: string): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const deadline = Date.now() + 60_000;
  while (!(existsSync(logPath) && readFileSync(logPath, 'utf8').includes('"event":"step"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, stdout };
}
