// GEMM throughput of the AssemblyScript kernels (standalone harness).
//   node bench/standalone/bench-gemm.mjs [--threads 1,2] [--sizes 256,512,1024]
//        [--dtypes f32,f16,bf16] [--variant simd|relaxed] [--min-time 1]
// Prints one JSON line per (variant, dtype, size, threads). dtype X means A, B
// and C all stored as X (16-bit: widened in packing, f32 accumulation, C
// rounded once).
import { build, Pool, relaxedSimdSupported, opt } from "./harness.mjs";
import { DT, makeTensor, setSeed } from "./ref.mjs";

const threadList = opt("threads", "1,2").split(",").map(Number);
const sizes = opt("sizes", "256,512,1024").split(",").map(Number);
const dtypes = opt("dtypes", "f32,f16,bf16").split(",");
let variant = opt("variant", "simd");
const minTime = Number(opt("min-time", "1"));
if (variant === "relaxed" && !relaxedSimdSupported()) {
  console.error("relaxed SIMD not supported by this engine (Node 20: --experimental-wasm-relaxed-simd)");
  process.exit(2);
}
const wasm = build(variant);
for (const threads of threadList) {
  const pool = await Pool.create(wasm, threads);
  const scratch = pool.alloc(pool.exports.gemm_scratch_bytes() * threads);
  const base = pool.heap;
  for (const dn of dtypes) {
    const dt = DT[dn];
    for (const n of sizes) {
      pool.reset(base);
      setSeed(n);
      const A = makeTensor(pool, dt, n * n), B = makeTensor(pool, dt, n * n), C = makeTensor(pool, dt, n * n, () => 0);
      const dtypesArg = dt | (dt << 4) | (dt << 8);
      const run = () => pool.call("gemm", 0, dtypesArg, 1, n, n, n, A.p, n, 0, B.p, n, 0, C.p, n, 0, 0, scratch, pool.sync());
      run();
      let reps = 0, best = Infinity;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      while (performance.now() - t0 < minTime * 1000 || reps < 3) {
        const t = performance.now();
        run();
        best = Math.min(best, performance.now() - t);
        reps++;
      }
      const mean = (performance.now() - t0) / reps;
      const cpu = process.cpuUsage(cpu0);
      const cpuMsPerThread = (cpu.user + cpu.system) / 1000 / reps / threads;
      const flop = 2 * n ** 3;
      console.log(JSON.stringify({ impl: "mixprec-as", variant, threads, dtype: dn, M: n, N: n, K: n, reps,
        best_ms: +best.toFixed(3), mean_ms: +mean.toFixed(3),
        gflops_best: +(flop / best / 1e6).toFixed(2), gflops_mean: +(flop / mean / 1e6).toFixed(2),
        // flop / (process CPU time / threads): what the threads achieve while on a core (load-insensitive-ish)
        gflops_cpu: +(flop / cpuMsPerThread / 1e6).toFixed(2) }));
    }
  }
  await pool.close();
}
process.exit(0);
