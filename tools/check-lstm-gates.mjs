#!/usr/bin/env node
/**
 * Exhaustive check of the LSTM cell's sigmoid / tanh (assembly/kernels/lstm_gates.ts): over all
 * 2^32 float32 inputs, the short float64 functions' values that pass their rounding test, and the
 * functions lstm.ts runs, must round to the same float32 bits as transcendental.ts's full-length
 * sigmoidV / tanhV (the reference's Math.exp / Math.tanh rounding). A negative control first runs
 * a slice without the rounding test and must find differences.
 *
 *   node tools/check-lstm-gates.mjs [--workers N] [--patterns N]   (default: every core, all 2^32)
 * Prints one line per function; exits 1 on any difference (or a control that finds none).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function compile() {
  const asc = await import('assemblyscript/asc');
  const { readFile } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  const out = new Map();
  const stderr = [];
  const { error } = await asc.main(['tools/lstm-gates-check.as.ts', '--outFile', 'check.wasm', '--runtime', 'stub', '--enable', 'simd', '-O3', '--noAssert'], {
    readFile: async (name, baseDir) => readFile(resolve(root, baseDir, name), 'utf8').catch(() => null),
    writeFile: async (name, contents) => void out.set(name, contents),
    listFiles: async () => [],
    stdout: { write: () => {} },
    stderr: { write: (s) => stderr.push(String(s)) },
  });
  if (error) throw new Error(`check-lstm-gates: asc failed: ${error.message}\n${stderr.join('')}`);
  return out.get('check.wasm');
}

if (!isMainThread) {
  const { wasm, fn, tolScale, start, count } = workerData;
  const { instance } = await WebAssembly.instantiate(wasm);
  const e = instance.exports;
  const chunk = 1 << 24;
  for (let s = start; s < start + count; s += chunk) {
    e.check(fn, tolScale, s >>> 0, Math.min(chunk, start + count - s));
  }
  parentPort.postMessage({ accepted: e.accepted.value, wrongAccepted: e.wrongAccepted.value, wrongFinal: e.wrongFinal.value, firstWrong: e.firstWrong.value });
} else {
  const { values: a } = parseArgs({ options: { workers: { type: 'string' }, patterns: { type: 'string' } } });
  const workers = Number(a.workers ?? availableParallelism());
  const total = Number(a.patterns ?? 2 ** 32);
  const wasm = await compile();
  const run = async (fn, tolScale, start, count) => {
    const per = Math.ceil(count / workers / 4) * 4;
    const parts = await Promise.all(Array.from({ length: workers }, (_, w) => {
      const s = start + w * per, c = Math.max(0, Math.min(per, start + count - s));
      return new Promise((res, rej) => {
        const wk = new Worker(fileURLToPath(import.meta.url), { workerData: { wasm, fn, tolScale, start: s, count: c } });
        wk.on('message', res);
        wk.on('error', rej);
      });
    }));
    const sum = (k) => parts.reduce((x, p) => x + p[k], 0n);
    const first = parts.find((p) => p.wrongAccepted + p.wrongFinal > 0n)?.firstWrong;
    return { accepted: sum('accepted'), wrongAccepted: sum('wrongAccepted'), wrongFinal: sum('wrongFinal'), first };
  };
  const hex = (p) => `0x${(p >>> 0).toString(16).padStart(8, '0')}`;
  let failed = false;
  for (const [fn, name] of [[0, 'sigmoid'], [1, 'tanh']]) {
    // negative control: positive inputs 0.25 .. 4 (0x3e800000 ..), no rounding test
    const control = await run(fn, 0, 0x3e800000, 1 << 24);
    const caught = control.wrongAccepted > 0n;
    console.log(`${name} control (no rounding test, ${1 << 24} patterns from 0x3e800000): ${control.wrongAccepted} lanes round differently${caught ? '' : ' -- the check caught nothing: FAILED'}`);
    failed ||= !caught;
    const t0 = performance.now();
    const r = await run(fn, 1, 0, total);
    const bad = r.wrongAccepted + r.wrongFinal > 0n;
    console.log(`${name}: ${total} patterns, ${r.accepted} accepted by the rounding test (${(Number(total - Number(r.accepted)) / total * 100).toFixed(4)}% to the full-length path), accepted but different ${r.wrongAccepted}, final different ${r.wrongFinal}${bad ? ` (first ${hex(r.first)}) FAILED` : ''} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    failed ||= bad;
  }
  process.exit(failed ? 1 : 0);
}
