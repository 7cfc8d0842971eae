/** Starting several ranks of a process for the mx.distributed tests (torchrun's environment, a free port). */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const WORKER = fileURLToPath(new URL('./distributed_worker.js', import.meta.url));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface RankOutcome {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The RESULT lines, parsed. */
  results: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  /** ms from start to exit */
  ms: number;
}

/**
 * Run `world` ranks of `node args...` (each with MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE, and
 * LOCAL_WORLD_SIZE so that the wasm backend gives each one core's share); kills them after `timeoutMs`.
 */
export async function runRanks(world: number, args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RankOutcome[]> {
  const port = await freePort();
  const started = Date.now();
  return Promise.all(
    Array.from({ length: world }, (_, rank) => {
      const child = spawn(process.execPath, args, {
        env: {
          ...process.env,
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          RANK: String(rank),
          WORLD_SIZE: String(world),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(world),
          ...options.env,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
      return new Promise<RankOutcome>((resolve) => {
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          const results = stdout
            .split('\n')
            .filter((l) => l.startsWith('RESULT '))
            .map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
          resolve({ rank, code, signal, results, stdout, stderr, ms: Date.now() - started });
        });
      });
    }),
  );
}

/** Run the test worker (distributed_worker.ts) on `world` ranks. */
export function runWorker(world: number, job: { init?: Record<string, unknown>; parts: [string, Record<string, unknown>][] }, options: { timeoutMs?: number } = {}): Promise<RankOutcome[]> {
  return runRanks(world, [WORKER, JSON.stringify(job)], options);
}
