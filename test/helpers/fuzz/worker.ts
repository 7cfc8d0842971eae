/**
 * Runs one reader's fuzz cases in a worker thread, so that the test's main thread can stop a case
 * that hangs (run.ts terminates the worker when a case takes longer than its bound) and see a crash
 * (an uncaught error ends the worker, not the test process). Before each case it posts the case's
 * description; at the end its figures, or fast-check's report of the shrunk failing case.
 *
 * The property, for every case: the reader either returns, or throws a FileError whose message is
 * one line naming the mutated file (or the dataset folder) and, paths aside, at most MAX_MESSAGE_TEXT
 * characters long (names and values read from the file are quoted and cut); the largest allocation
 * it asked the file budget for is within what the case's bytes warrant (target.expansion per byte);
 * and the growth of process.memoryUsage().arrayBuffers across the read stays within the same bound
 * plus the fixed buffers of Node's streams and zlib.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { FileError } from '../../../src/util/file_error.js';
import { readerAllocations, resetReaderAllocations } from '../../../src/util/file_budget.js';
import { boundaryCases, caseArb, caseBytes, describeCase, type FuzzCase } from './mutations.js';
import { TARGETS, disposeResult } from './targets.js';

export interface FuzzStats {
  target: string;
  seeds: number;
  /** Cases run (boundary truncations first, then random cases, then any shrinking). */
  cases: number;
  boundaryCases: number;
  accepted: number;
  rejected: number;
  /** Slowest case, ms, and what it was. */
  maxMs: number;
  slowest: string;
  /** Largest allocation a reader asked its file budget for, bytes, and that case's input size. */
  maxAllocation: number;
  maxAllocationInput: number;
  /** Largest growth of arrayBuffers across one read, bytes. */
  maxArrayBufferGrowth: number;
  /** Largest resident set seen, bytes. */
  maxRss: number;
  /** One message of each kind seen (digits and the folder removed), for the report. */
  messages: string[];
}

export interface WorkerInput {
  target: string;
  runs: number;
  seed: number;
  /**
   * Survey mode: run every case and collect each distinct failure (up to 3 examples of each) instead
   * of stopping and shrinking at the first (how the failures in docs/reliability.md were listed).
   */
  survey?: boolean;
}

/** Node's stream and zlib buffers (1 MiB read chunks, inflate windows) on top of what a read allocates. */
const ARRAY_BUFFER_SLACK = 16 << 20;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const { target: name, runs, seed, survey } = workerData as WorkerInput;
const target = TARGETS.find((t) => t.name === name);
if (!target) throw new Error(`no fuzz target '${name}'`);
const seeds = await target.seeds();
const work = mkdtempSync(join(tmpdir(), `mixprec-fuzz-${name}-`));
const seedDirs = seeds.map((s, i) => {
  const dir = join(work, `seed${i}`);
  for (const [rel, bytes] of Object.entries(s.others ?? {})) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), bytes);
  }
  mkdirSync(dirname(join(dir, s.path)), { recursive: true });
  return dir;
});
const otherBytes = seeds.map((s) => Object.values(s.others ?? {}).reduce((a, b) => a + b.length, 0));

const stats: FuzzStats = {
  target: name, seeds: seeds.length, cases: 0, boundaryCases: 0, accepted: 0, rejected: 0, maxMs: 0, slowest: '',
  maxAllocation: 0, maxAllocationInput: 0, maxArrayBufferGrowth: 0, maxRss: 0, messages: [],
};
const kinds = new Set<string>();

/** A message's own text (paths aside): what it says plus a few names and values, each cut to 60-80 characters. */
const MAX_MESSAGE_TEXT = 1000;

function problemWith(e: unknown, file: string, root: string): string | null {
  if (!(e instanceof FileError)) return `threw ${(e as Error)?.name ?? typeof e} (not a FileError): ${String((e as Error)?.stack ?? e).slice(0, 600)}`;
  if (/[\r\n]/.test(e.message)) return `the message has more than one line: ${JSON.stringify(e.message.slice(0, 300))}`;
  if (!e.file || !(e.file === file || e.file.startsWith(root))) return `the error names ${JSON.stringify(e.file)}, not the file read (${file}): ${e.message}`;
  if (!e.message.includes(e.file)) return `the message does not name ${e.file}: ${e.message}`;
  const text = e.message.split(root).join('').length;
  if (text > MAX_MESSAGE_TEXT) return `the message runs to ${text} characters besides the file's path (names or values from the file not cut): ${e.message.slice(0, 400)}`;
  return null;
}

async function runCase(c: FuzzCase): Promise<void> {
  const { seed, bytes } = caseBytes(seeds, c);
  const index = c.seed % seeds.length;
  const root = seedDirs[index]!;
  const file = join(root, seed.path);
  writeFileSync(file, bytes);
  const input = bytes.length + otherBytes[index]!;
  const description = describeCase(seeds, c);
  parentPort!.postMessage({ type: 'case', n: stats.cases, description });
  stats.cases++;
  // Growth is measured from just before the read, so garbage of earlier cases never counts; a full
  // collection now and then keeps the heap small (one per case would double the run time).
  if (stats.cases % 16 === 0) gc();
  const before = process.memoryUsage().arrayBuffers;
  resetReaderAllocations();
  const t0 = performance.now();
  let error: unknown = null;
  let result: unknown;
  try {
    result = await target!.read(root, file);
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t0;
  const usage = process.memoryUsage();
  const growth = usage.arrayBuffers - before;
  const { largest } = readerAllocations();
  disposeResult(result);
  if (ms > stats.maxMs) {
    stats.maxMs = ms;
    stats.slowest = `${description} (${bytes.length} bytes)`;
  }
  stats.maxRss = Math.max(stats.maxRss, usage.rss);
  stats.maxArrayBufferGrowth = Math.max(stats.maxArrayBufferGrowth, growth);
  if (largest > stats.maxAllocation) {
    stats.maxAllocation = largest;
    stats.maxAllocationInput = input;
  }
  if (error === null) stats.accepted++;
  else {
    stats.rejected++;
    const problem = problemWith(error, file, root);
    if (problem) throw new Error(problem);
    const kind = (error as Error).message.split(root).join('<dir>').replace(/\d+/g, 'N').slice(0, 70);
    if (!kinds.has(kind) && stats.messages.length < 60) {
      kinds.add(kind);
      stats.messages.push((error as Error).message.split(root).join('<dir>'));
    }
  }
  const bound = target!.expansion * input;
  if (largest > bound) throw new Error(`the reader asked for ${largest} bytes for a ${input}-byte case (the format warrants ${bound})`);
  if (growth > bound + ARRAY_BUFFER_SLACK) throw new Error(`arrayBuffers grew by ${growth} bytes reading a ${input}-byte case (bound ${bound} + ${ARRAY_BUFFER_SLACK})`);
}

const examples = boundaryCases(seeds);
stats.boundaryCases = examples.length;
try {
  if (survey) {
    const found = new Map<string, string[]>();
    for (const c of [...examples, ...fc.sample(caseArb, { numRuns: runs, seed })]) {
      try {
        await runCase(c);
      } catch (e) {
        const message = (e as Error).message;
        const kind = message.replace(/\d+/g, 'N').slice(0, 90);
        const list = found.get(kind) ?? [];
        if (list.length < 3) list.push(`${describeCase(seeds, c)} -> ${message.slice(0, 400)}`);
        found.set(kind, list);
      }
    }
    const report = [...found.values()].map((l) => l.join('\n    ')).join('\n  ');
    parentPort!.postMessage(found.size ? { type: 'failed', report: `${found.size} kinds of failure:\n  ${report}`, stats } : { type: 'done', stats });
  } else await fc.assert(fc.asyncProperty(caseArb, runCase), {
    numRuns: runs + examples.length, // fast-check counts the examples among the runs
    seed,
    examples: examples.map((c) => [c] as [FuzzCase]),
    verbose: 1,
  });
  if (!survey) parentPort!.postMessage({ type: 'done', stats });
} catch (e) {
  parentPort!.postMessage({ type: 'failed', report: (e as Error).message, stats });
} finally {
  rmSync(work, { recursive: true, force: true });
}
