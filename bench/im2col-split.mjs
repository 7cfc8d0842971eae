#!/usr/bin/env node
// Whether a convolution's im2col gains from the second thread (run `npm run build` first):
//
//   node bench/im2col-split.mjs [--shape C,H,K,S,PAD] [--reps 60] [--cold]
//
// Replays `conv_im2col` of one ResNet-18 shape (batch 64, float16, an HxH map with C channels, a
// KxK kernel at stride S; default layer1's 64,8,3,1,1) on a 2-thread pool whose workers spin (no
// wake-up in the figures): 1 part, 2 parts, each half alone on the calling thread, the second half
// alone on the worker; then a fill and a copy of the same bytes (the column matrix) at 1 and 2
// parts, for the machine's own bandwidth. --cold copies 64 MB between calls, so the column matrix
// is out of the caches when it is written, as it is inside a training step. Min and median of the
// repetitions, in microseconds.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadavg } from "node:os";
import { root, scriptArgs } from "./peer_common.mjs";

const { opt, flag } = scriptArgs(import.meta.url);
const [C, H, KS, S, PD] = opt("shape", "64,8,3,1,1").split(",").map(Number);
const reps = Number(opt("reps", "60"));
const dist = (p) => pathToFileURL(join(root, "dist", p)).href;
await import(dist("index.js"));
const { WasmBackend } = await import(dist("backend/wasm/index.js"));
const backend = await WasmBackend.create({ threads: 2, spinMicros: 300 });
const { pool, heap } = backend;
const N = 64, es = 2;
const OH = Math.floor((H + 2 * PD - KS) / S) + 1;
const K = C * KS * KS, L = N * OH * OH;
const bytes = K * L * es;
const x = heap.alloc(N * C * H * H * es), col = heap.alloc(bytes + 64), col2 = heap.alloc(bytes + 64), desc = heap.alloc(64);
heap.views().i32.set([N, C, H, H, 64, KS, KS, S, S, PD, PD, 1, 1, 1], desc >> 2);
heap.views().u16.fill(0x3c00, x >> 1, (x >> 1) + N * C * H * H);
const EVICT = 64 << 20;
const evict = flag("cold") ? heap.alloc(2 * EVICT) : 0;
const all = [desc, 1, x, col, 0, N];
const none = [desc, 1, x, col, 0, 0]; // no images: the part does nothing
const cases = {
  "1 part": () => pool.run("conv_im2col", [[...all, 0, 1]]),
  "2 parts": () => pool.run("conv_im2col", [[...all, 0, 2], [...all, 1, 2]]),
  "half 0 alone (main)": () => pool.run("conv_im2col", [[...all, 0, 2]]),
  "half 1 alone (main)": () => pool.run("conv_im2col", [[...all, 1, 2]]),
  "half 1 alone (worker)": () => pool.run("conv_im2col", [[...none, 0, 2], [...all, 1, 2]]),
  "fill, 1 part": () => pool.run("fill32", [[col, bytes / 4, 0]]),
  "fill, 2 parts": () => pool.run("fill32", [[col, bytes / 8, 0], [col + bytes / 2, bytes / 8, 0]]),
  "copy, 1 part": () => pool.run("copy_rows", [[col2, bytes, col, bytes, bytes, 0, 1]]),
  "copy, 2 parts": () => pool.run("copy_rows", [[col2, bytes / 2, col, bytes / 2, bytes / 2, 0, 1], [col2, bytes / 2, col, bytes / 2, bytes / 2, 1, 2]]),
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < reps; r++) {
  for (const [k, run] of Object.entries(cases)) {
    // on both threads: the worker has just finished a part, so it is spinning, not asleep
    if (evict) pool.run("copy_rows", [[evict + EVICT, EVICT / 2, evict, EVICT / 2, EVICT / 2, 0, 1], [evict + EVICT, EVICT / 2, evict, EVICT / 2, EVICT / 2, 1, 2]]);
    const t = performance.now();
    run();
    times[k].push((performance.now() - t) * 1000);
  }
}
console.log(`im2col C ${C}, ${H}x${H}, ${KS}x${KS} stride ${S} pad ${PD}, batch ${N}, float16: K ${K} x L ${L} (${(bytes / 1e6).toFixed(2)} MB)${evict ? ", cold" : ""}; load ${loadavg()[0].toFixed(2)}`);
for (const [k, t] of Object.entries(times)) {
  t.sort((a, b) => a - b);
  console.log(`${k.padEnd(22)} min ${t[0].toFixed(0).padStart(5)} us, median ${t[reps >> 1].toFixed(0).padStart(5)} us`);
}
await backend.close();
