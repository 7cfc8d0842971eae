// node bench/standalone/micro.mjs [simd|relaxed]: GFLOP/s of candidate micro-kernels alone (L1-resident).
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";
const here = path.dirname(fileURLToPath(import.meta.url));
const variant = process.argv[2] ?? "simd";
const out = path.join(os.tmpdir(), `mixprec-micro-${variant}.wasm`);
execFileSync(process.execPath, [path.join(here, "../../node_modules/assemblyscript/bin/asc.js"), path.join(here, "micro.ts"), "--runtime", "stub", "--importMemory", "--sharedMemory",
  "--maximumMemory", "32768", "--enable", variant === "relaxed" ? "simd,threads,relaxed-simd" : "simd,threads", "-O3", "--noAssert", "--outFile", out], { stdio: "ignore" });
const memory = new WebAssembly.Memory({ initial: 64, maximum: 32768, shared: true });
const { instance } = await WebAssembly.instantiate(fs.readFileSync(out), { env: { memory } });
const E = instance.exports;
const kc = 256, reps = 20000;
for (const [name, mr] of [["loop", 4], ["loop6n", 6], ["loop4", 4], ["loop4s", 4], ["loop4u2", 4], ["loop4p", 4]]) {
  let best = 0;
  for (let t = 0; t < 4; t++) {
    const c0 = process.cpuUsage();
    E[name](65536, 65536 + 8 * kc * 4 + 64, kc, 1024, reps);
    const cpu = process.cpuUsage(c0).user / 1000;
    best = Math.max(best, 2 * mr * 8 * kc * reps / cpu / 1e6);
  }
  console.log(JSON.stringify({ variant, kernel: name, gflops_cpu_best: +best.toFixed(1) }));
}
