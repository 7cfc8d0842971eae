#!/usr/bin/env bash
# The README's LSTM and DCGAN recipes: one training step, PyTorch 1.13 (fp32, bf16 autocast) and
# mixprec (fp32, fp16 + GradScaler, bf16) on the same machine, one after the other per round.
# Each side at its best: PyTorch through bench/peer_common.py (allocator warmed, --threads best: the
# faster of 1 and every core per precision); mixprec on every core and on 1 thread (MIXPREC_THREADS),
# both printed.
#   bench/rnn-gan-peers.sh [ROUNDS=2] [STEPS=20]      (run `npm run build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
steps=${2:-20}
cores=$(nproc)
echo "# $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?') load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for model in lstm dcgan; do
    echo "round $r $(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_rnn_gan.py --model $model --steps "$steps" --warmup 10 --threads best)"
    for t in $(printf '%s\n' "$cores" 1 | sort -ru); do
      echo "round $r $(MIXPREC_THREADS=$t node bench/rnn-gan-step.mjs --model $model --steps "$steps" --warmup 10)"
    done
  done
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
