#!/usr/bin/env bash
# The ONE device call (tools/gpu/prepare.sh, run here first, filled .gpu/):
#
#   run(command: "bash tools/gpu/run.sh", carry: [".gpu"], timeout_s: 480)
#
# On the bare GPU machine (python3 + PyTorch, no Node, no network, maybe no Vulkan loader) it sets up
# Vulkan and Node from .gpu/, then runs, each step under `timeout` and inside one time budget
# (BUDGET_S, default 420 s; QUICK=1: 240 s) so the whole script ends well inside the call's limit:
#   1. the webgpu backend's adapter (tools/gpu/adapter.mjs)               -> $OUT/adapter.json
#   2. mixprec bench train --backend webgpu, lenet and widecnn, fp32/fp16/bf16, batch 64, then the
#      PyTorch peer (bench/torch_lenet.py --device cuda: fp32, fp16 AMP, bf16) on the same batches
#                                                                         -> $OUT/train.jsonl, torch.jsonl
#   3. the same at batch 256 and 1024
#   4. mixprec bench gemm --backend webgpu, 1024 and 4096, float32/float16  -> $OUT/gemm.jsonl
#   5. the webgpu op test pass: MIXPREC_BACKEND=webgpu node --test <package.json's test:suite:webgpu
#      files>                                                             -> $OUT/tests.log
#   6. the summary: img/s per model/precision/batch, fp16/fp32 on webgpu, mixprec fp16 / PyTorch AMP
#      fp16 (tools/gpu/summary.py)                                        -> $OUT/summary.txt
# Everything is logged to $OUT/gpu.log (7 files in all: the device returns at most 8). The
# benchmarks come before the test pass so that a short budget still yields the figures; a failing or
# timed-out step is logged (and recorded as {"failed": true, ...} in its .jsonl) and the script goes on.
#
# Switches (environment):
#   QUICK=1      fewer steps and reps (and a 240 s budget)
#   LOCAL=1      a simulation on a machine without a GPU: no dpkg/ldconfig, the system's Vulkan
#                (lavapipe: VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json when present), PyTorch
#                on --device cpu when it sees no CUDA
#   OUT=DIR      where results go (the device sets it; default /tmp/mixprec-gpu-out)
#   BUDGET_S, MODELS ("lenet widecnn"), BATCHES ("64 256"), PRECISIONS ("fp32 fp16 bf16"), WIDTH
#   (widecnn width; default the CLI's 64), GEMM_SIZES ("1024 4096"), GEMM_DTYPES ("float32 float16"),
#   TEST_FILES (default: package.json's test:suite:webgpu files), PYTHON (python3), FORCE=1
#   (unpack node_modules/dist/build over ones run.sh did not unpack)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
OUT=${OUT:-${TMPDIR:-/tmp}/mixprec-gpu-out}
mkdir -p "$OUT"
QUICK=${QUICK:-0}
LOCAL=${LOCAL:-0}
BUDGET_S=${BUDGET_S:-$([ "$QUICK" = 1 ] && echo 240 || echo 420)}
MODELS=${MODELS-lenet widecnn}
# 1024: LeNet's step at 64 is mostly host time (dispatch recording); larger batches show the kernels.
BATCHES=${BATCHES-64 256 1024}
# The H200 has ~139 GiB: keep up to 16 GiB of freed buffers pooled (the default 1 GiB churns WideCNN's).
export MIXPREC_WEBGPU_POOL_MB=${MIXPREC_WEBGPU_POOL_MB:-16384}
PRECISIONS=${PRECISIONS-fp32 fp16 bf16}
WIDTH=${WIDTH:-}
GEMM_SIZES=${GEMM_SIZES-1024 4096}
GEMM_DTYPES=${GEMM_DTYPES-float32 float16}
PYTHON=${PYTHON:-python3}
if [ "$QUICK" = 1 ]; then
  LENET_STEPS=${LENET_STEPS:-10} LENET_WARMUP=${LENET_WARMUP:-3} WIDE_STEPS=${WIDE_STEPS:-5} WIDE_WARMUP=${WIDE_WARMUP:-2}
  TORCH_STEPS=${TORCH_STEPS:-20} TORCH_WARMUP=${TORCH_WARMUP:-5} GEMM_MIN_TIME=${GEMM_MIN_TIME:-0.2}
else
  LENET_STEPS=${LENET_STEPS:-50} LENET_WARMUP=${LENET_WARMUP:-10} WIDE_STEPS=${WIDE_STEPS:-20} WIDE_WARMUP=${WIDE_WARMUP:-5}
  TORCH_STEPS=${TORCH_STEPS:-50} TORCH_WARMUP=${TORCH_WARMUP:-10} GEMM_MIN_TIME=${GEMM_MIN_TIME:-1}
fi
GPU_TMP=${GPU_TMP:-${TMPDIR:-/tmp}/mixprec-gpu}
START=$(date +%s)

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET_S - $(elapsed))); }
say() { echo "[$(elapsed)s] $*" >&3; } # fd 3: the log, whatever a step's own output is redirected to

# step NAME LIMIT_S CMD...: run CMD under timeout min(LIMIT_S, budget left - 5 s); its stdout is the
# caller's, its messages go to stderr (the log). Returns CMD's status (124: timed out; 125: skipped).
step() {
  local name=$1 limit=$2
  shift 2
  local t
  t=$(left)
  t=$((t - 5 < limit ? t - 5 : limit))
  if [ "$t" -lt 5 ]; then
    say "SKIP $name: the ${BUDGET_S}s budget is spent"
    return 125
  fi
  say "RUN  $name (limit ${t}s): $*"
  local t0 rc
  t0=$(date +%s)
  timeout -k 5 "$t" "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then say "OK   $name ($(($(date +%s) - t0))s)"; else say "FAIL $name: exit $rc after $(($(date +%s) - t0))s$([ "$rc" -eq 124 ] && echo ' (timed out)')"; fi
  return "$rc"
}

# jstep FILE NAME LIMIT_S META CMD...: step, then append CMD's last JSON line to FILE, or
# {"failed": true, "rc": N, META} when it failed. META: JSON members naming the run. A run during
# which the webgpu backend reported device errors (a failed submit leaves its results unwritten, so
# its figures mean nothing) is kept with "invalid": "N uncaptured device errors" added.
jstep() {
  local file=$1 name=$2 limit=$3 meta=$4
  shift 4
  local tmp rc line errors
  tmp=$(mktemp)
  step "$name" "$limit" "$@" >"$tmp" 2>"$tmp.err"
  rc=$?
  grep -v '^Warning: max.*artificially reduced' "$tmp.err" >&2
  cat "$tmp" >&2
  line=$(grep '^{' "$tmp" | tail -1)
  errors=$(grep -c 'uncaptured device error' "$tmp.err")
  rm -f "$tmp" "$tmp.err"
  if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
    if [ "$errors" -gt 0 ]; then
      say "INVALID $name: $errors uncaptured device errors"
      line="{\"invalid\": \"$errors uncaptured device errors\", ${line#\{}"
    fi
    echo "$line" >>"$file"
  else
    echo "{\"failed\": true, \"rc\": $rc, $meta}" >>"$file"
  fi
  return "$rc"
}

setup_vulkan() {
  if [ "$LOCAL" = 1 ]; then
    [ -f /usr/share/vulkan/icd.d/lvp_icd.json ] && export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json
  else
    # The device README's recipe (dpkg -x into /, then ldconfig), for each library the image lacks.
    local f pkg lib unpacked=0
    for f in .gpu/gl/*.deb; do
      [ -f "$f" ] || continue
      pkg=$(basename "$f")
      pkg=${pkg%%_*}
      case $pkg in
        libvulkan1) lib=libvulkan.so.1 ;; libglvnd0) lib=libGLdispatch.so.0 ;; libegl1) lib=libEGL.so.1 ;;
        libgl1) lib=libGL.so.1 ;; libglx0) lib=libGLX.so.0 ;; libopengl0) lib=libOpenGL.so.0 ;; libgles2) lib=libGLESv2.so.2 ;;
        *) lib=$pkg ;;
      esac
      if ldconfig -p | grep -q "^[[:space:]]*$lib "; then
        say "$lib is installed: $pkg not unpacked"
      else
        dpkg -x "$f" / && unpacked=$((unpacked + 1)) || say "dpkg -x $f failed"
      fi
    done
    if [ "$unpacked" -gt 0 ]; then
      ldconfig
      say "unpacked $unpacked .debs into /; libvulkan: $(ldconfig -p | grep 'libvulkan\.so\.1' | head -1)"
    fi
    local icd
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then
        export VK_DRIVER_FILES=$icd
        break
      fi
    done
    [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] && export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  say "VK_DRIVER_FILES=${VK_DRIVER_FILES:-(unset)}"
  if [ -n "${VK_DRIVER_FILES:-}" ]; then cat "$VK_DRIVER_FILES" >&2; echo >&2; fi
}

# unxz FILE: FILE decompressed to stdout, by xz where it is installed, else by Python's lzma module.
unxz() {
  if command -v xz >/dev/null && [ "${UNXZ:-}" != python ]; then
    xz -dc "$1"
  else
    $PYTHON -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer, 1 << 20)' "$1"
  fi
}

setup_node() {
  [ -f .gpu/node.xz ] && [ -f .gpu/payload.tar.xz ] || { say ".gpu/node.xz or .gpu/payload.tar.xz is missing: run tools/gpu/prepare.sh here and carry .gpu"; return 1; }
  mkdir -p "$GPU_TMP/bin" || return 1
  unxz .gpu/node.xz >"$GPU_TMP/bin/node" && chmod +x "$GPU_TMP/bin/node" || return 1
  export PATH=$GPU_TMP/bin:$PATH
  local want have
  want=$(sha256sum .gpu/payload.tar.xz | cut -d' ' -f1)
  have=$(cat node_modules/.mixprec-gpu-stamp 2>/dev/null)
  if [ "$want" != "$have" ]; then
    if [ -e node_modules ] && [ -z "$have" ] && [ "${FORCE:-0}" != 1 ]; then
      say "node_modules exists and was not unpacked by run.sh (a development checkout?): run in a copy, or FORCE=1"
      return 1
    fi
    rm -rf node_modules dist build
    unxz .gpu/payload.tar.xz | tar -xf - --no-same-owner || return 1
    echo "$want" >node_modules/.mixprec-gpu-stamp
    say "unpacked .gpu/payload.tar.xz: $(ls node_modules | wc -l) packages, dist/, build/"
  else
    say "node_modules/dist/build already unpacked from this payload"
  fi
  say "node $(node --version) ($(command -v node))"
  node -e "import('webgpu').then(() => console.error('webgpu package loads'))" || return 1
}

main() {
  exec 3>&2
  say "mixprec GPU run: QUICK=$QUICK LOCAL=$LOCAL budget ${BUDGET_S}s, OUT=$OUT"
  sed -n '1,4p' .gpu/MANIFEST 2>/dev/null >&2
  uname -a >&2
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv >&2; else say "no nvidia-smi"; fi
  nproc >&2

  setup_vulkan
  local node_ok=1
  setup_node || { node_ok=0; say "Node setup failed: mixprec steps are skipped, the PyTorch peer still runs"; }

  # PyTorch: cuda when it sees one (else cpu: fp32 and bf16 only, for LOCAL runs).
  local tdev=cpu tprec=fp32,bf16
  if $PYTHON -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), file=sys.stderr); sys.exit(0 if torch.cuda.is_available() else 1)'; then
    tdev=cuda tprec=fp32,fp16,bf16
  fi
  say "PyTorch peer on $tdev ($tprec)"

  # 1. The adapter.
  if [ "$node_ok" = 1 ]; then
    step adapter 90 node tools/gpu/adapter.mjs >"$OUT/adapter.json"
    cat "$OUT/adapter.json" >&2
  fi

  local width_args=() width_meta=''
  if [ -n "$WIDTH" ]; then width_args=(--width "$WIDTH"); width_meta=", \"width\": $WIDTH"; fi
  declare -A timed_out=()
  local b m p rc steps warmup limit
  for b in $BATCHES; do
    # 2./3. mixprec on webgpu, then PyTorch, at this batch size.
    if [ "$node_ok" = 1 ]; then
      for m in $MODELS; do
        for p in $PRECISIONS; do
          if [ -n "${timed_out[$m/$p]:-}" ]; then
            say "SKIP train $m $p batch $b: timed out at a smaller batch"
            echo "{\"failed\": true, \"rc\": 125, \"model\": \"$m\", \"precision\": \"$p\", \"batch_size\": $b, \"backend\": \"webgpu\"}" >>"$OUT/train.jsonl"
            continue
          fi
          if [ "$m" = lenet ]; then steps=$LENET_STEPS warmup=$LENET_WARMUP limit=60; else steps=$WIDE_STEPS warmup=$WIDE_WARMUP limit=90; fi
          local wa=()
          [ "$m" = widecnn ] && wa=("${width_args[@]}")
          jstep "$OUT/train.jsonl" "train $m $p batch $b" "$limit" "\"model\": \"$m\", \"precision\": \"$p\", \"batch_size\": $b, \"backend\": \"webgpu\"" \
            node dist/cli/main.js bench train --backend webgpu --model "$m" "${wa[@]}" --precision "$p" --batch-size "$b" --steps "$steps" --warmup "$warmup" --json
          rc=$?
          [ "$rc" -eq 124 ] && timed_out[$m/$p]=1
        done
      done
    fi
    for m in $MODELS; do
      local tw=()
      [ "$m" = widecnn ] && [ -n "$WIDTH" ] && tw=(--width "$WIDTH")
      jstep "$OUT/torch.jsonl" "torch $m batch $b ($tdev)" 120 "\"model\": \"$m\", \"batch_size\": $b, \"device\": \"$tdev\"$([ "$m" = widecnn ] && echo "$width_meta")" \
        env PYTHONUNBUFFERED=1 $PYTHON bench/torch_lenet.py --device "$tdev" --model "$m" "${tw[@]}" --batch-size "$b" --precisions "$tprec" --steps "$TORCH_STEPS" --warmup "$TORCH_WARMUP"
    done
  done

  # 4. GEMM.
  if [ "$node_ok" = 1 ]; then
    local n d
    for n in $GEMM_SIZES; do
      for d in $GEMM_DTYPES; do
        jstep "$OUT/gemm.jsonl" "gemm $n $d" 60 "\"size\": $n, \"dtype\": \"$d\", \"backend\": \"webgpu\"" \
          node dist/cli/main.js bench gemm --backend webgpu --size "$n" --dtype "$d" --reps 3 --min-time "$GEMM_MIN_TIME" --json
      done
    done
  fi

  # 5. The webgpu op test pass (the files package.json's test:suite:webgpu names).
  if [ "$node_ok" = 1 ]; then
    local files
    files=${TEST_FILES:-$($PYTHON -c 'import json; s = json.load(open("package.json"))["scripts"]["test:suite:webgpu"]; print(" ".join(w for w in s.split() if w.endswith(".js")))')}
    # shellcheck disable=SC2086
    step "webgpu test pass" "$([ "$QUICK" = 1 ] && echo 120 || echo 200)" env MIXPREC_BACKEND=webgpu node --test $files >"$OUT/tests.log" 2>&1
    grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$OUT/tests.log" >&2
    grep -E '^not ok ' "$OUT/tests.log" | head -20 >&2
  fi

  # 6. Summary.
  $PYTHON tools/gpu/summary.py "$OUT" >"$OUT/summary.txt" || say "summary failed"
  say "done in $(elapsed)s"
  echo
  cat "$OUT/summary.txt"
}

main 2>&1 | tee "$OUT/gpu.log"
