#!/usr/bin/env node
// ResNet training step, mixprec against PyTorch, side by side in one command (run `npm run build` first):
//
//   node bench/resnet-peers.mjs [--model resnet18] [--batch-size 64] [--image-size 32] [--rounds 2]
//                               [--steps 5] [--warmup 2] [--threads N] [--json-out FILE]
//
// Each round runs, one after the other on the same machine (a shared VM drifts between minutes, so
// rounds interleave the two instead of running one side's whole series first):
//   PyTorch 1.13 (bench/torch_lenet.py --model M: torchvision's resnetN(num_classes=10), fp32 and
//   bf16 autocast; its CPU autocast has no float16), OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset,
//   at its best (bench/peer_common.py: --threads best, the faster of 1 and every core per precision,
//   and its allocator warmed: one 30 MB malloc block freed at start);
//   `mixprec bench train --model M --backend wasm --threads N` in fp32, fp16 (+ GradScaler), bf16.
// Both sides: the same network, batch, random data, SGD lr 0.01 momentum 0.9, --warmup untimed
// steps, then --steps timed ones, each reading its loss. The table gives the median img/s over the
// rounds (and each round's), mixprec's peak and activation bytes, and the kernels that fell back to
// the reference backend (`fallback_kernels`: none means the step runs on native wasm kernels).
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { CLI, PYTHON, requireBuiltCli, root, runJson as runSide, scriptArgs, torchEnv as peerEnv } from "./peer_common.mjs";

const { opt } = scriptArgs(import.meta.url);
const model = opt("model", "resnet18");
const batch = Number(opt("batch-size", "64"));
const imageSize = Number(opt("image-size", "32"));
const rounds = Number(opt("rounds", "2"));
const steps = Number(opt("steps", "5"));
const warmup = Number(opt("warmup", "2"));
const threads = Number(opt("threads", String(availableParallelism())));
const jsonOut = opt("json-out", null);
requireBuiltCli("resnet-peers.mjs");

const runJson = (cmd, args, env, label) => runSide(cmd, args, env, label, 60);

const torchEnv = peerEnv();
const mixEnv = { ...process.env };
delete mixEnv.MIXPREC_THREADS;
const common = ["--batch-size", String(batch), "--image-size", String(imageSize), "--steps", String(steps), "--warmup", String(warmup)];

const report = {
  machine: { cpus: availableParallelism(), cpu_model: cpus()[0]?.model ?? null, node: process.version, load_avg_start: loadavg().map((x) => Number(x.toFixed(2))) },
  model, batch_size: batch, image_size: imageSize, steps, warmup, threads, rounds: [],
};
for (let r = 1; r <= rounds; r++) {
  const round = { round: r, torch: null, mixprec: [] };
  const torchArgs = [join(root, "bench", "torch_lenet.py"), "--model", model, ...common, "--threads", "best", "--precisions", "fp32,bf16"];
  round.torch = runJson(PYTHON, torchArgs, torchEnv, `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${PYTHON} bench/torch_lenet.py ${torchArgs.slice(1).join(" ")}`);
  for (const precision of ["fp32", "fp16", "bf16"]) {
    const args = ["bench", "train", "--model", model, ...common, "--precision", precision, "--backend", "wasm", "--threads", String(threads), "--json"];
    round.mixprec.push(runJson(process.execPath, [CLI, ...args], mixEnv, `mixprec ${args.join(" ")}`));
  }
  report.rounds.push(round);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const mib = (b) => (b / 2 ** 20).toFixed(0);
const torchImg = (p) => report.rounds.map((r) => r.torch.results.find((x) => x.precision === p)?.img_per_s).filter((x) => x !== undefined);
const mixRuns = (p) => report.rounds.map((r) => r.mixprec.find((x) => x.precision === p));
const rows = ["fp32", "fp16", "bf16"].map((p) => {
  const t = torchImg(p);
  const m = mixRuns(p);
  const mi = m.map((x) => x.img_per_s);
  const fallbacks = Object.keys(Object.assign({}, ...m.map((x) => x.fallback_kernels ?? {})));
  const row = {
    precision: p,
    torch_img_per_s: t.length ? median(t) : null,
    mixprec_img_per_s: median(mi),
    mixprec_over_torch: t.length ? Number((median(mi) / median(t)).toFixed(3)) : null,
    mixprec_peak_mib: Number(mib(median(m.map((x) => x.peak_bytes)))),
    mixprec_activation_mib: Number(mib(median(m.map((x) => x.activation_bytes)))),
    fallback_kernels: fallbacks,
    rounds: { torch: t, mixprec: mi },
  };
  return row;
});
report.table = rows;
report.load_avg_end = loadavg().map((x) => Number(x.toFixed(2)));

console.log(`${model}, batch ${batch}, ${imageSize}x${imageSize}, ${threads} threads, ${rounds} rounds of ${warmup} + ${steps} steps; ${report.machine.cpu_model}, load ${report.machine.load_avg_start[0]} -> ${report.load_avg_end[0]}`);
console.log(`PyTorch ${report.rounds[0].torch.torch_version} (OpenBLAS ${report.rounds[0].torch.openblas?.corename ?? "?"}, mkldnn ${report.rounds[0].torch.mkldnn}) vs mixprec wasm (${report.rounds[0].mixprec[0].threads} threads)`);
console.log("");
console.log("| precision | PyTorch img/s | mixprec img/s | mixprec / PyTorch | mixprec peak MiB | activations MiB | fallback kernels | rounds (PyTorch; mixprec) |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.precision} | ${r.torch_img_per_s === null ? "n/a (no CPU float16 autocast)" : fmt(r.torch_img_per_s)} | ${fmt(r.mixprec_img_per_s)} | ${r.mixprec_over_torch ?? "n/a"} | ${r.mixprec_peak_mib} | ${r.mixprec_activation_mib} | ${r.fallback_kernels.length ? r.fallback_kernels.join(", ") : "none"} | ${r.rounds.torch.map(fmt).join(", ") || "-"}; ${r.rounds.mixprec.map(fmt).join(", ")} |`);
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(report, null, 2) + "\n");
