/**
 * Property-based fuzzing of every file reader (fast-check): valid seed files mutated by truncation at
 * every region boundary, bit flips, huge and negative-as-unsigned sizes and offsets, overlapping and
 * out-of-range offsets, unknown dtypes, deep and huge JSON headers, wrong magic numbers, empty files,
 * and format-aware edits (test/helpers/fuzz/). The property: the reader returns, or throws a
 * FileError with one line naming the file; no other error, no crash, no case over 10 s, no
 * allocation beyond what the file's size warrants. 500 random cases per reader (plus the boundary
 * truncations) by default, 20,000 with MIXPREC_LONG=1; MIXPREC_FUZZ_SEED changes the seed and
 * MIXPREC_FUZZ_REPORT=file.json writes the figures (docs/reliability.md).
 *
 * The readers do not depend on the backend, so this runs in one suite only (the wasm one, which
 * `npm run test:long` also selects): `npm test` runs every file on two or three backends.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { defaultBackendName } from '../src/api.js';
import { TARGETS } from './helpers/fuzz/targets.js';
import { fuzzInWorker } from './helpers/fuzz/run.js';

const LONG = process.env['MIXPREC_LONG'] === '1';
const RUNS = LONG ? 20_000 : 500;
const SEED = Number(process.env['MIXPREC_FUZZ_SEED'] ?? 18);
const CASE_TIMEOUT_MS = 10_000;
const skip = defaultBackendName() === 'wasm' ? false : 'backend-independent: runs in the wasm suite only';

for (const target of TARGETS) {
  it(`fuzz ${target.name}: ${RUNS} cases, every failure a one-line FileError within the file's budget`, { skip, timeout: LONG ? 3_600_000 : 600_000 }, async (t) => {
    const { stats, failure } = await fuzzInWorker({ target: target.name, runs: RUNS, seed: SEED }, CASE_TIMEOUT_MS);
    t.diagnostic(
      `${stats.cases} cases (${stats.boundaryCases} boundary truncations), ${stats.accepted} read, ${stats.rejected} refused; slowest ${stats.maxMs.toFixed(1)} ms; ` +
        `largest budgeted allocation ${stats.maxAllocation} B (case of ${stats.maxAllocationInput} B); arrayBuffers growth <= ${stats.maxArrayBufferGrowth} B; rss <= ${(stats.maxRss / 2 ** 20).toFixed(0)} MiB`,
    );
    const report = process.env['MIXPREC_FUZZ_REPORT'];
    if (report) appendFileSync(report, `${JSON.stringify({ ...stats, runs: RUNS, seed: SEED, failure })}\n`);
    assert.equal(failure, null, `${target.name}: ${failure}`);
    assert.ok(stats.cases >= RUNS + stats.boundaryCases, `${stats.cases} cases run`);
    assert.ok(stats.rejected > stats.cases / 4, `most mutations are refused (${stats.rejected} of ${stats.cases})`);
  });
}
