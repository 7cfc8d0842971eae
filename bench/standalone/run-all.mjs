// One run of everything: correctness tests, then GEMM benchmarks of the
// AssemblyScript kernels interleaved with the jax-js peer (same sizes, same
// threads, alternating so both see the same machine load), then the LeNet conv
// and pool layers. Prints JSON lines and a markdown summary.
//   node bench/standalone/run-all.mjs [--quick] [--no-tests] [--relaxed]
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const relaxed = args.includes("--relaxed");
const node = process.execPath;
const rows = [];
function run(script, argv, flags = []) {
  const r = spawnSync(node, [...flags, path.join(here, script), ...argv], { encoding: "utf8", maxBuffer: 1 << 26 });
  const out = (r.stdout ?? "") + (r.stderr ?? "");
  for (const line of out.split("\n")) {
    if (line.startsWith("{")) { try { rows.push(JSON.parse(line)); } catch { /* not JSON */ } }
    if (line.trim()) console.log(line);
  }
  return r.status;
}
console.log(`# ${new Date().toISOString()} node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0].model}), load avg ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
let failed = 0;
if (!args.includes("--no-tests")) {
  for (const t of ["test-gemm.mjs", "test-conv.mjs", "test-pool.mjs"]) for (const th of ["1", "2"]) failed += run(t, ["--threads", th]) ? 1 : 0;
  if (relaxed) {
    for (const t of ["test-gemm.mjs", "test-conv.mjs"]) for (const th of ["1", "2"]) failed += run(t, ["--threads", th, "--variant", "relaxed"], ["--experimental-wasm-relaxed-simd"]) ? 1 : 0;
  }
}
const sizes = quick ? ["256", "1024"] : ["256", "512", "1024"];
const minTime = quick ? "0.5" : "1.5";
for (const n of sizes) {
  for (const th of ["1", "2"]) {
    run("bench-gemm.mjs", ["--threads", th, "--sizes", n, "--dtypes", "f32", "--min-time", minTime]);
    run("../gemm-peer.mjs", ["--threads", th, "--sizes", n, "--min-time", minTime]);
    if (relaxed) run("bench-gemm.mjs", ["--threads", th, "--sizes", n, "--dtypes", "f32", "--variant", "relaxed", "--min-time", minTime], ["--experimental-wasm-relaxed-simd"]);
  }
}
run("bench-gemm.mjs", ["--threads", "1,2", "--sizes", sizes.join(","), "--dtypes", "f16,bf16", "--min-time", quick ? "0.3" : "1"]);
run("bench-conv.mjs", ["--threads", "1,2"]);
if (relaxed) run("bench-conv.mjs", ["--threads", "1,2", "--variant", "relaxed"], ["--experimental-wasm-relaxed-simd"]);
run("bench-pool.mjs", ["--threads", "1,2"]);

// summary
const g = (impl, th, n, dt = "f32", variant = "simd") => rows.find((r) => (r.impl ?? r.peer) === impl && r.threads === th && r.M === n && (r.dtype === dt || r.dtype === "float32") && (r.variant ?? "simd") === variant);
console.log(`\n## GEMM GFLOP/s: best of reps (mean) [per-thread CPU-time normalised: flop / (process CPU time / threads)], load avg now ${os.loadavg()[0].toFixed(2)}\n`);
console.log(`| size | threads | mixprec f32 | mixprec f16 | mixprec bf16 |${relaxed ? " mixprec f32 relaxed |" : ""} jax-js f32 | ratio f32/jax |`);
console.log(`|---|---|---|---|---|${relaxed ? "---|" : ""}---|---|`);
for (const n of sizes.map(Number)) for (const th of [1, 2]) {
  const a = g("mixprec-as", th, n), b = g("mixprec-as", th, n, "f16"), c = g("mixprec-as", th, n, "bf16"), rl = g("mixprec-as", th, n, "f32", "relaxed"), p = g("@jax-js/jax", th, n);
  const f = (r) => (r ? `${r.gflops_best} (${r.gflops_mean}) [${r.gflops_cpu}]` : "-");
  const ratio = a && p ? `${(a.gflops_best / p.gflops_best).toFixed(2)} [${(a.gflops_cpu / p.gflops_cpu).toFixed(2)}]` : "-";
  console.log(`| ${n} | ${th} | ${f(a)} | ${f(b)} | ${f(c)} |${relaxed ? ` ${f(rl)} |` : ""} ${f(p)} | ${ratio} |`);
}
console.log(`\n## LeNet conv layers, batch 64, ms per batch (best)\n`);
console.log("| layer | dtype | variant | threads | forward | grad-input | grad-weight | grad-bias | total |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows.filter((r) => r.layer && r.forward_ms !== undefined)) console.log(`| ${r.layer} ${r.shape} | ${r.dtype} | ${r.variant ?? "simd"} | ${r.threads} | ${r.forward_ms} | ${r.grad_input_ms} | ${r.grad_weight_ms} | ${r.grad_bias_ms} | ${r.total_ms} |`);
console.log(`\n## LeNet max-pool 2x2 / ReLU, batch 64, ms per batch (best)\n`);
console.log("| layer | dtype | threads | relu fwd | pool fwd | pool bwd | relu bwd |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows.filter((r) => r.maxpool_forward_ms !== undefined)) console.log(`| ${r.layer} | ${r.dtype} | ${r.threads} | ${r.relu_forward_ms} | ${r.maxpool_forward_ms} | ${r.maxpool_backward_ms} | ${r.relu_backward_ms} |`);
console.log(failed ? `\n${failed} test run(s) FAILED` : "\nall test runs passed");
process.exit(failed ? 1 : 0);
