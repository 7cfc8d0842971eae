#!/usr/bin/env bash
# PyTorch fp32 against mixprec fp16 and bf16 on the LeNet step, interleaved round by round so that
# both see the same machine (a shared VM drifts by tens of percent between minutes). PyTorch at its
# best (bench/peer_common.py): allocator warmed, the faster of 1 and every core (--threads best);
# mixprec on THREADS.
#   bench/lenet-interleaved.sh [ROUNDS=5] [THREADS=2]      (run `npm run build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
threads=${2:-2}
common=(--batch-size 64 --warmup 300 --steps 100)
img() { python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['results'][0]['img_per_s'] if 'results' in d else d['img_per_s']))"; }
for r in $(seq 1 "$rounds"); do
  t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_lenet.py "${common[@]}" --threads best --precisions fp32 2>/dev/null | img)
  f=$(node dist/cli/main.js bench train --model lenet "${common[@]}" --precision fp16 --backend wasm --threads "$threads" --json | img)
  b=$(node dist/cli/main.js bench train --model lenet "${common[@]}" --precision bf16 --backend wasm --threads "$threads" --json | img)
  echo "round $r  torch fp32 $t  mixprec fp16 $f  bf16 $b  fp16/torch $(python3 -c "print(round($f/$t, 3))")  load $(cut -d' ' -f1 /proc/loadavg)"
done
