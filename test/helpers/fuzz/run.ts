/**
 * The main-thread side of a reader fuzz run: starts worker.ts for one target, and fails with the
 * case's description when a case runs longer than `caseTimeoutMs` (the worker is terminated: a
 * reader stuck in a loop cannot stop itself) or when the worker dies (an uncaught error: a crash).
 */
import { Worker } from 'node:worker_threads';
import type { FuzzStats, WorkerInput } from './worker.js';

export interface FuzzRun {
  stats: FuzzStats;
  /** fast-check's report when the property failed (the shrunk case and its error). */
  failure: string | null;
}

export function fuzzInWorker(input: WorkerInput, caseTimeoutMs: number): Promise<FuzzRun> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: input, execArgv: [] });
    let current = '(loading the seeds)';
    let since = Date.now();
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      fn();
    };
    const watchdog = setInterval(() => {
      if (Date.now() - since <= caseTimeoutMs) return;
      const stuck = current;
      void worker.terminate();
      finish(() => reject(new Error(`${input.target}: a case ran for more than ${caseTimeoutMs} ms (a hang): ${stuck}`)));
    }, 250);
    worker.on('message', (m: { type: string; description?: string; stats?: FuzzStats; report?: string }) => {
      if (m.type === 'case') {
        current = m.description!;
        since = Date.now();
      } else if (m.type === 'done') finish(() => resolve({ stats: m.stats!, failure: null }));
      else if (m.type === 'failed') finish(() => resolve({ stats: m.stats!, failure: m.report! }));
    });
    worker.on('error', (e) => finish(() => reject(new Error(`${input.target}: the worker crashed during ${current}: ${e.stack ?? e}`))));
    worker.on('exit', (code) => finish(() => reject(new Error(`${input.target}: the worker exited (code ${code}) during ${current}`))));
  });
}
