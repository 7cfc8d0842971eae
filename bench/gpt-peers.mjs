#!/usr/bin/env node
// The GPT training step (nanoGPT's CPU recipe for Tiny Shakespeare by default) in PyTorch and in
// mixprec, side by side in one run (run `npm run build` first):
//
//   node bench/gpt-peers.mjs [--rounds 2] [--steps 10] [--warmup 3] [--threads N]
//                            [--n-layer 4] [--n-head 4] [--n-embd 128] [--block-size 64] [--batch-size 12]
//                            [--json-out FILE]
//
// Each round runs, one after the other: PyTorch (bench/torch_gpt.py: fp32, fp16, bf16; /usr/bin/python3
// with torch, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset) and `mixprec bench train --model gpt --json`
// (fp32, fp16, bf16, wasm backend), each at --threads (default: every core) and, when that is more
// than 1, at 1 thread too (on a loaded machine extra threads can lose). Rounds interleave the two
// sides, so a change in the machine's load hits both. Prints a table (ms per iteration, tokens/s,
// mixprec's peak and activation bytes, the load average) and the best of each implementation and
// precision; the kernels that fell back to the reference backend in mixprec's step (none expected).
// --json-out FILE also writes every number as one JSON object.
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, requireBuiltCli, root, runJson as runSide, scriptArgs, torchEnv as peerEnv } from "./peer_common.mjs";

const { opt } = scriptArgs(import.meta.url);
const num = (name, dflt) => {
  const v = Number(opt(name, String(dflt)));
  if (!Number.isInteger(v) || v < 1) {
    console.error(`gpt-peers.mjs: --${name} must be a positive integer`);
    process.exit(2);
  }
  return v;
};
const rounds = num("rounds", 2);
const steps = num("steps", 10);
const warmup = num("warmup", 3);
const threads = num("threads", availableParallelism());
const shape = { "n-layer": num("n-layer", 4), "n-head": num("n-head", 4), "n-embd": num("n-embd", 128), "block-size": num("block-size", 64), "batch-size": num("batch-size", 12) };
const shapeArgs = Object.entries(shape).flatMap(([k, v]) => [`--${k}`, String(v)]);
const precisions = ["fp32", "fp16", "bf16"];
requireBuiltCli("gpt-peers.mjs");

const runJson = (cmd, args, env, label) => runSide(cmd, args, env, label, 30);

const torchEnv = peerEnv();
const mixEnv = { ...process.env };
delete mixEnv.MIXPREC_THREADS;
const hasTorch = existsSync(PYTHON) && spawnSync(PYTHON, ["-c", "import torch"]).status === 0;
const threadCounts = threads > 1 ? [threads, 1] : [1];
const rows = [];
const errors = [];
const fallbacks = {};

for (let round = 1; round <= rounds; round++) {
  for (const t of threadCounts) {
    if (hasTorch) {
      try {
        const args = [join(root, "bench", "torch_gpt.py"), "--steps", String(steps), "--warmup", String(warmup), "--threads", String(t), ...shapeArgs];
        const r = runJson(PYTHON, args, torchEnv, `${PYTHON} bench/torch_gpt.py ${args.slice(1).join(" ")}`);
        for (const x of r.results) rows.push({ round, impl: `PyTorch ${r.torch}`, threads: t, precision: x.precision, step_ms: x.step_ms, tokens_per_s: x.tokens_per_s, error: x.error, load: r.load_avg_1m });
      } catch (e) {
        errors.push(e.message);
      }
    } else if (round === 1 && t === threadCounts[0]) errors.push(`${PYTHON} has no torch: the PyTorch side is missing`);
    for (const precision of precisions) {
      try {
        const args = ["bench", "train", "--model", "gpt", ...shapeArgs, "--precision", precision, "--backend", "wasm", "--threads", String(t), "--steps", String(steps), "--warmup", String(warmup), "--json"];
        const r = runJson(process.execPath, [CLI, ...args], mixEnv, `mixprec ${args.join(" ")}`);
        rows.push({ round, impl: "mixprec wasm", threads: r.threads, precision, step_ms: r.step_ms, tokens_per_s: r.tokens_per_s, peak_bytes: r.peak_bytes, activation_bytes: r.activation_bytes, load: r.load_avg_1m });
        for (const [k, n] of Object.entries(r.fallback_kernels ?? {})) fallbacks[k] = (fallbacks[k] ?? 0) + n;
      } catch (e) {
        errors.push(e.message);
      }
    }
  }
}

const mib = (b) => (b === undefined ? "-" : (b / 2 ** 20).toFixed(1));
const pad = (s, n) => String(s).padEnd(n);
const out = [];
out.push(`GPT step: ${shape["n-layer"]} layers, ${shape["n-head"]} heads, width ${shape["n-embd"]}, block ${shape["block-size"]}, batch ${shape["batch-size"]}; ${steps} timed steps after ${warmup}; ${cpus()[0]?.model ?? "cpu"} x ${availableParallelism()}`);
out.push("");
out.push(`| round | ${pad("implementation", 22)} | threads | precision | ms/iter | tokens/s | peak MiB | activation MiB | load 1m |`);
out.push("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const time = r.error ? "unsupported" : r.step_ms;
  out.push(`| ${r.round} | ${pad(r.impl, 22)} | ${r.threads} | ${pad(r.precision, 9)} | ${pad(time, 7)} | ${pad(r.error ? "-" : r.tokens_per_s, 8)} | ${pad(mib(r.peak_bytes), 8)} | ${pad(mib(r.activation_bytes), 14)} | ${r.load} |`);
}
out.push("");
out.push("Best ms/iter of each implementation and precision (over rounds and thread counts):");
const best = {};
for (const r of rows) {
  if (r.error) continue;
  const key = `${r.impl} ${r.precision}`;
  if (!best[key] || r.step_ms < best[key].step_ms) best[key] = r;
}
for (const [k, r] of Object.entries(best)) out.push(`  ${pad(k, 30)} ${r.step_ms} ms (${r.threads} thread${r.threads === 1 ? "" : "s"})`);
const unsupported = [...new Set(rows.filter((r) => r.error).map((r) => `${r.impl} ${r.precision}: ${r.error}`))];
for (const u of unsupported) out.push(`  ${u}`);
out.push("");
out.push(Object.keys(fallbacks).length === 0 ? "mixprec step: no kernel fell back to the reference backend" : `mixprec step: kernels that fell back to the reference backend (calls): ${JSON.stringify(fallbacks)}`);
for (const e of errors) out.push(`error: ${e}`);
console.log(out.join("\n"));
const jsonOut = opt("json-out", null);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ shape, steps, warmup, threads: threadCounts, rows, best, fallbacks, errors }, null, 2));
process.exit(errors.length > 0 ? 1 : 0);
