#!/usr/bin/env bash
# Data-parallel LeNet training throughput, global batch 64, interleaved round by round so that every
# configuration sees the same machine: mixprec fp16 as 1 process x 2 threads, 2 processes x 1 thread
# (DistributedDataParallel over Gloo, float32 and fp16-compressed gradients), the control "2 x 1
# without communication" (two independent single-thread processes of batch 32 at once: what the
# machine gives two processes; their img/s summed), and PyTorch 1.13 fp32 (its fastest here) as
# 1 x 2 and 2 x 1 (DDP on its gloo backend).
#   bench/dp-interleaved.sh [ROUNDS=3] [STEPS=60]      (run `npm run build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-60}
common=(--steps "$steps" --warmup 10 --batch 64 --json)
img() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['img_per_s'])"; }
for r in $(seq 1 "$rounds"); do
  a=$(MIXPREC_THREADS=2 node bench/dp-train.mjs "${common[@]}" | img)
  b=$(node dist/cli/main.js run --nproc-per-node 2 -- bench/dp-train.mjs "${common[@]}" | img)
  c=$(node dist/cli/main.js run --nproc-per-node 2 -- bench/dp-train.mjs "${common[@]}" --compression fp16 | img)
  solo=(--steps "$steps" --warmup 10 --batch 32 --json)
  MIXPREC_THREADS=1 node bench/dp-train.mjs "${solo[@]}" >"${TMPDIR:-/tmp}/dp-solo.$$" &
  n2=$(MIXPREC_THREADS=1 node bench/dp-train.mjs "${solo[@]}" | img)
  wait
  n=$(( $(img <"${TMPDIR:-/tmp}/dp-solo.$$") + n2 ))
  rm -f "${TMPDIR:-/tmp}/dp-solo.$$"
  d=$(/usr/bin/python3 bench/torch_dp.py train --world 1 --threads 2 --steps "$steps" --warmup 10 --batch 64 2>/dev/null | img)
  e=$(/usr/bin/python3 bench/torch_dp.py train --world 2 --threads 1 --steps "$steps" --warmup 10 --batch 64 2>/dev/null | img)
  echo "round $r  mixprec fp16 1x2 $a  2x1 $b  2x1+fp16-compression $c  2x1-without-communication $n  |  torch fp32 1x2 $d  2x1 $e  |  load $(cut -d' ' -f1 /proc/loadavg)"
done
