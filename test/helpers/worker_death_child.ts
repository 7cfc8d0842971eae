/**
 * Child process of the crash-safety test: matrix products on the wasm backend with two threads while
 * MIXPREC_TEST_FAULTS makes worker 0 die at its third kernel call. Prints one JSON line: the error
 * the call failed with, how long after the loop started, whether later products are still right
 * (the pool then runs on the calling thread) and why the pool says it is degraded. The process must
 * then end by itself.
 */
import * as mx from '../../src/index.js';

const a = mx.randn([256, 256]);
const b = mx.randn([256, 256]);
const expected = await mx.matmul(a, b).data();
let error: string | null = null;
let ms = 0;
const t0 = performance.now();
try {
  for (let i = 0; i < 20; i++) await mx.matmul(a, b).data();
} catch (e) {
  error = (e as Error).message;
  ms = performance.now() - t0;
}
const after = await mx.matmul(a, b).data();
const backend = mx.getBackend() as { pool?: { degraded: string | null } };
console.log(JSON.stringify({ error, ms, correctAfter: after.every((v, i) => v === expected[i]), degraded: backend.pool?.degraded ?? null }));
