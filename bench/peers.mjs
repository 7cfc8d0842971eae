#!/usr/bin/env node
// mixprec against its peers, in one run (run `npm run build` first):
//
//   1. GEMM 1024×1024 float32: `mixprec bench gemm --backend wasm` vs jax-js's wasm backend
//      (bench/gemm-peer.mjs), the same thread count for both;
//   2. LeNet training step, batch 64: PyTorch (bench/torch_lenet.py: fp32 and bf16 autocast on the
//      CPU) when /usr/bin/python3 has torch, run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset;
//   3. `mixprec bench train` fp32 / fp16 / bf16 on the wasm and reference backends;
//
// then a table and the issue's ratios: GEMM vs jax-js (>= 2), LeNet fp16/bf16 img/s over PyTorch fp32
// img/s (>= 0.5), activation_bytes fp16/fp32 (<= 0.6).
//
//   node bench/peers.mjs [--threads N] [--size 1024] [--steps 100] [--warmup 300] [--min-time 2]
//                        [--backends wasm,reference] [--no-torch] [--no-jax] [--json] [--json-out FILE]
//
// --threads: kernel threads for mixprec's wasm backend, jax-js and PyTorch (default: every core).
// With N > 1 every multi-threaded run is repeated with 1 thread (on a loaded machine extra threads
// can lose: PyTorch's OpenMP threads spin-wait). GEMM ratios compare equal thread counts; the LeNet
// ratios take each implementation at its faster thread count (mixprec fp16/bf16 best over PyTorch
// fp32 best); the per-thread-count LeNet ratios are in the JSON.
// --warmup W: untimed LeNet steps before the timed ones, the same for PyTorch and mixprec wasm
// (default 300, about 2 s: the JS and wasm code reach steady speed after a few hundred steps, as in
// a training epoch of 782 steps); the reference backend gets 3 (it is only a baseline, and slow).
// GEMM is also compared as each library runs by default: mixprec on every core, jax-js in Node on
// one thread (it has no Worker there); the equal-thread ratios are the strict comparison.
// --json: one JSON object with every number instead of the table (progress goes to stderr);
// --json-out FILE: the table on stdout and that JSON object written to FILE.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { CLI, PYTHON, load, requireBuiltCli, root, runJson as runSide, scriptArgs, torchEnv } from "./peer_common.mjs";

const { opt, flag } = scriptArgs(import.meta.url);
const threads = Number(opt("threads", String(availableParallelism())));
const size = Number(opt("size", "1024"));
const steps = Number(opt("steps", "100"));
const warmup = Number(opt("warmup", "300"));
const minTime = Number(opt("min-time", "2"));
const backends = opt("backends", "wasm,reference").split(",").filter(Boolean);
const precisions = ["fp32", "fp16", "bf16"];
const asJson = flag("json");
for (const [k, v] of Object.entries({ threads, size, steps, minTime })) {
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`peers.mjs: --${k === "minTime" ? "min-time" : k} must be a positive number`);
    process.exit(2);
  }
}
requireBuiltCli("peers.mjs");

/** One side's last JSON line (peer_common.mjs), label defaulting to the command line. */
const runJson = (cmd, args, { env = process.env, label } = {}) => runSide(cmd, args, env, label ?? [cmd, ...args].join(" "), 20);

const mixEnv = { ...process.env };
delete mixEnv.MIXPREC_THREADS;
const mixprec = (args) => runJson(process.execPath, [CLI, ...args], { env: mixEnv, label: `mixprec ${args.join(" ")}` });

const threadCounts = threads > 1 ? [threads, 1] : [1];
const report = {
  machine: { cpus: availableParallelism(), cpu_model: cpus()[0]?.model ?? null, node: process.version, load_avg_start: loadavg().map((x) => Number(x.toFixed(2))) },
  threads: threadCounts,
  gemm: { size, dtype: "float32", mixprec: [], jax: [] },
  train: { model: "lenet", batch_size: 64, steps, results: [] },
  torch: null,
  ratios: {},
  acceptance: {},
  errors: [],
};

// 1. GEMM: mixprec wasm, then jax-js wasm, at each thread count.
for (const t of threadCounts) {
  try {
    report.gemm.mixprec.push(mixprec(["bench", "gemm", "--size", String(size), "--dtype", "float32", "--backend", "wasm", "--threads", String(t), "--min-time", String(minTime), "--json"]));
  } catch (e) {
    report.errors.push(`mixprec gemm (threads ${t}): ${e.message}`);
  }
  if (!flag("no-jax")) {
    try {
      const peer = runJson(process.execPath, [join(root, "bench", "gemm-peer.mjs"), "--threads", String(t), "--sizes", String(size), "--min-time", String(minTime)], {
        label: `node bench/gemm-peer.mjs --threads ${t} --sizes ${size} --min-time ${minTime}`,
      });
      report.gemm.jax.push({ ...peer, load_avg_1m: load() });
    } catch (e) {
      report.errors.push(`jax-js gemm (threads ${t}): ${e.message}`);
    }
  }
}

// 2. PyTorch LeNet, when /usr/bin/python3 has torch.
if (!flag("no-torch")) {
  const probe = existsSync(PYTHON) ? spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" }) : { status: 1 };
  if (probe.status === 0) {
    // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine and slow OpenBLAS down: unset for this command only.
    const env = torchEnv();
    const unset = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"].filter((k) => k in process.env);
    const torchRuns = [];
    for (const t of threadCounts) {
      try {
        const r = runJson(PYTHON, [join(root, "bench", "torch_lenet.py"), "--batch-size", "64", "--steps", String(steps), "--warmup", String(warmup), "--threads", String(t)], {
          env,
          label: `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${PYTHON} bench/torch_lenet.py --batch-size 64 --steps ${steps} --warmup ${warmup} --threads ${t}`,
        });
        torchRuns.push(r);
      } catch (e) {
        report.errors.push(`torch (threads ${t}): ${e.message}`);
      }
    }
    if (torchRuns.length) {
      const first = torchRuns[0];
      report.torch = {
        torch_version: first.torch_version,
        blas_info: first.blas_info,
        openblas_core: first.openblas?.corename ?? null,
        openblas: first.openblas,
        mkldnn: first.mkldnn,
        cpu_capability: first.cpu_capability,
        unset_env: unset,
        env_seen: first.env,
        runs: torchRuns.map((r) => ({ threads: r.threads, load_avg_1m: r.load_avg_1m, results: r.results })),
      };
    }
  } else report.torch = { skipped: `${PYTHON} has no torch (install python3-torch)` };
}

// 3. mixprec bench train (wasm at each thread count; other backends are single-threaded).
for (const backend of backends) {
  for (const t of backend === "wasm" ? threadCounts : [null]) {
    for (const precision of precisions) {
      const args = ["bench", "train", "--model", "lenet", "--batch-size", "64", "--precision", precision, "--backend", backend,
        "--steps", String(backend === "reference" ? Math.min(steps, 30) : steps), "--warmup", String(backend === "reference" ? 3 : warmup)];
      if (t !== null) args.push("--threads", String(t));
      args.push("--json");
      try {
        report.train.results.push(mixprec(args));
      } catch (e) {
        report.errors.push(`mixprec train ${backend} ${precision}${t !== null ? ` (threads ${t})` : ""}: ${e.message}`);
      }
    }
  }
}

// Ratios.
const r3 = (x) => (Number.isFinite(x) ? Number(x.toFixed(3)) : null);
const best = (xs) => (xs.length ? Math.max(...xs) : NaN);
for (const t of threadCounts) {
  const mg = report.gemm.mixprec.find((g) => g.threads === t);
  const jg = report.gemm.jax.find((g) => g.threads === t);
  if (mg && jg) {
    report.ratios[`gemm_vs_jax_${t}thr`] = r3(mg.gflops / jg.gflops_mean);
    report.ratios[`gemm_vs_jax_${t}thr_best_rep`] = r3(mg.gflops_best / jg.gflops_best);
    report.acceptance[`gemm_vs_jax_${t}thr`] = { ratio: report.ratios[`gemm_vs_jax_${t}thr`], bar: ">= 2", pass: report.ratios[`gemm_vs_jax_${t}thr`] >= 2 };
  }
}
{
  // As each runs by default: mixprec's wasm backend on every core, jax-js in Node on one thread.
  const mg = report.gemm.mixprec.find((g) => g.threads === threads);
  const jg = report.gemm.jax.find((g) => g.threads === 1);
  if (mg && jg) {
    report.ratios.gemm_vs_jax_defaults = r3(mg.gflops / jg.gflops_mean);
    report.acceptance.gemm_vs_jax_defaults = { ratio: report.ratios.gemm_vs_jax_defaults, bar: ">= 2", pass: report.ratios.gemm_vs_jax_defaults >= 2 };
  }
}
const torchFp32 = (t) =>
  best((report.torch?.runs ?? []).filter((run) => t === undefined || run.threads === t).flatMap((run) => run.results.filter((x) => x.precision === "fp32").map((x) => x.img_per_s)));
const mixImg = (backend, precision, t) =>
  best(report.train.results.filter((x) => x.backend === backend && x.precision === precision && (t === undefined || x.threads === t)).map((x) => x.img_per_s));
if (Number.isFinite(torchFp32())) report.ratios.torch_fp32_img_per_s_best = torchFp32();
for (const backend of backends) {
  for (const p of ["fp16", "bf16"]) {
    const key = `lenet_${backend}_${p}_over_torch_fp32`;
    const v = r3(mixImg(backend, p) / torchFp32());
    if (v === null) continue;
    report.ratios[key] = v;
    report.acceptance[key] = { ratio: v, bar: ">= 0.5", pass: v >= 0.5 };
    if (backend === "wasm") for (const t of threadCounts) report.ratios[`${key}_${t}thr`] = r3(mixImg(backend, p, t) / torchFp32(t));
  }
  const fp32 = report.train.results.find((x) => x.backend === backend && x.precision === "fp32");
  const fp16 = report.train.results.find((x) => x.backend === backend && x.precision === "fp16");
  if (fp32 && fp16) {
    const key = `activation_bytes_${backend}_fp16_over_fp32`;
    const v = r3(fp16.activation_bytes / fp32.activation_bytes);
    report.ratios[key] = v;
    report.acceptance[key] = { ratio: v, bar: "<= 0.6", pass: v <= 0.6 };
  }
}
report.machine.load_avg_end = loadavg().map((x) => Number(x.toFixed(2)));

const jsonOut = opt("json-out", null);
if (jsonOut) {
  mkdirSync(dirname(jsonOut), { recursive: true });
  writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
}
if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x, d = 1) => (typeof x === "number" ? x.toFixed(d) : "-");
  const mib = (b) => (typeof b === "number" ? (b / 2 ** 20).toFixed(2) : "-");
  const out = [];
  out.push(`machine: ${report.machine.cpus} cpus (${report.machine.cpu_model}), node ${report.machine.node}, load average ${report.machine.load_avg_start.join(" ")} at start, ${report.machine.load_avg_end.join(" ")} at end`);
  out.push("");
  out.push(`GEMM ${size}x${size}x${size} float32`);
  out.push(`| ${pad("implementation", 30)} | GFLOP/s mean | GFLOP/s best | load 1m |`);
  out.push(`|${"-".repeat(32)}|--------------|--------------|---------|`);
  for (const t of threadCounts) {
    const mg = report.gemm.mixprec.find((g) => g.threads === t);
    const jg = report.gemm.jax.find((g) => g.threads === t);
    if (mg) out.push(`| ${pad(`mixprec wasm, ${mg.threads} thr`, 30)} | ${pad(num(mg.gflops, 2), 12)} | ${pad(num(mg.gflops_best, 2), 12)} | ${pad(mg.load_avg_1m, 7)} |`);
    if (jg) out.push(`| ${pad(`jax-js ${"wasm"}, ${jg.threads} thr`, 30)} | ${pad(num(jg.gflops_mean, 2), 12)} | ${pad(num(jg.gflops_best, 2), 12)} | ${pad(jg.load_avg_1m, 7)} |`);
  }
  out.push("");
  out.push(`LeNet training step, batch 64, ${steps} timed steps`);
  out.push(`| ${pad("implementation", 30)} | precision | img/s   | peak MiB | activation MiB | load 1m |`);
  out.push(`|${"-".repeat(32)}|-----------|---------|----------|----------------|---------|`);
  for (const run of report.torch?.runs ?? []) {
    for (const x of run.results) out.push(`| ${pad(`PyTorch ${report.torch.torch_version}, ${run.threads} thr`, 30)} | ${pad(x.precision, 9)} | ${pad(num(x.img_per_s), 7)} | ${pad("-", 8)} | ${pad("-", 14)} | ${pad(run.load_avg_1m, 7)} |`);
  }
  for (const x of report.train.results) {
    out.push(`| ${pad(`mixprec ${x.backend}, ${x.threads} thr`, 30)} | ${pad(x.precision, 9)} | ${pad(num(x.img_per_s), 7)} | ${pad(mib(x.peak_bytes), 8)} | ${pad(mib(x.activation_bytes), 14)} | ${pad(x.load_avg_1m, 7)} |`);
  }
  if (report.torch?.skipped) out.push(`(PyTorch skipped: ${report.torch.skipped})`);
  if (report.torch?.runs) {
    out.push(
      `PyTorch: BLAS_INFO=${report.torch.blas_info}, OpenBLAS core ${report.torch.openblas_core ?? "n/a"} (${report.torch.openblas?.config ?? "no OpenBLAS mapped"}), ` +
        `mkldnn ${report.torch.mkldnn}, CPU capability ${report.torch.cpu_capability}; unset for it: ${report.torch.unset_env.join(", ") || "nothing (neither OPENBLAS_CORETYPE nor OPENBLAS_L2_SIZE was set)"}`,
    );
  }
  out.push("");
  out.push("ratios:");
  for (const [k, v] of Object.entries(report.ratios)) {
    const acc = report.acceptance[k];
    out.push(`  ${pad(k, 44)} ${pad(v, 9)}${acc ? `${acc.pass ? "PASS" : "FAIL"} (${acc.bar})` : ""}`);
  }
  for (const e of report.errors) out.push(`error: ${e}`);
  console.log(out.join("\n"));
}
process.exit(report.errors.length ? 1 : 0);
