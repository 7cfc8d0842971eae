#!/usr/bin/env node
// What handing a part to a pool worker costs after a host gap (run `npm run build` first):
//
//   node bench/pool-dispatch.mjs [--spin-us N]
//
// A 2-thread wasm pool runs `fill32` as two parts (16 words each: nearly no work, and 65,536: ~10 us
// per part) after the calling thread has been busy in JavaScript for a gap of 0 .. 1000 us, as a
// training step's host code is between two kernels; median and 90th percentile of 300 calls, with
// both parts run one after the other on the calling thread beside it. Without --spin-us the pool
// spins as it would by default (which depends on the load average: pool.ts).
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadavg } from "node:os";
import { root, scriptArgs } from "./peer_common.mjs";

const { opt } = scriptArgs(import.meta.url);
const spin = opt("spin-us", null);
const dist = (p) => pathToFileURL(join(root, "dist", p)).href;
await import(dist("index.js"));
const { WasmBackend } = await import(dist("backend/wasm/index.js"));
const backend = await WasmBackend.create({ threads: 2, ...(spin !== null ? { spinMicros: Number(spin) } : {}) });
const pool = backend.pool;
const addr = backend.heap.alloc(1 << 20);
const busy = (us) => {
  const t = performance.now();
  while (performance.now() - t < us / 1000);
};
const quantiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return [s[s.length >> 1] * 1000, s[Math.floor(s.length * 0.9)] * 1000];
};
console.log(`load ${loadavg()[0].toFixed(2)}, spin ${spin ?? "default"}`);
for (const gap of [0, 5, 20, 50, 100, 300, 1000]) {
  for (const n of [16, 65536]) {
    const two = [], serial = [];
    for (let r = 0; r < 300; r++) {
      busy(gap);
      let t = performance.now();
      pool.run("fill32", [[addr, n, 1], [addr + 4 * n, n, 2]]);
      two.push(performance.now() - t);
      busy(gap);
      t = performance.now();
      pool.run("fill32", [[addr, n, 1]]);
      pool.run("fill32", [[addr + 4 * n, n, 2]]);
      serial.push(performance.now() - t);
    }
    const [m2, p2] = quantiles(two), [m1] = quantiles(serial);
    console.log(`gap ${String(gap).padStart(4)} us, ${String(n).padStart(5)} words per part: 2 parts median ${m2.toFixed(1)} us (p90 ${p2.toFixed(1)}), serial median ${m1.toFixed(1)} us`);
  }
}
await backend.close();
