#!/usr/bin/env bash
# The README's LSTM and DCGAN recipes: one training step, PyTorch 1.13 (fp32, bf16 autocast) and
# mixprec (fp32, fp16 + GradScaler, bf16) on the same machine, one after the other per round.
# PyTorch at its best (bench/peer_common.py): allocator warmed, the faster of 1 and 2 threads per
# precision (--threads best); mixprec on its default threads (every core).
#   bench/rnn-gan-peers.sh [ROUNDS=2] [STEPS=20]      (run `npm run build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
steps=${2:-20}
for r in $(seq 1 "$rounds"); do
  for model in lstm dcgan; do
    echo "round $r $(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_rnn_gan.py --model $model --steps "$steps" --warmup 10 --threads best)"
    echo "round $r $(node bench/rnn-gan-step.mjs --model $model --steps "$steps" --warmup 10)"
  done
done
