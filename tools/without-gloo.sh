#!/usr/bin/env bash
# Check that mixprec builds, tests and trains on a machine without Gloo: a fresh copy of the
# committed tree (git archive HEAD) in a private mount namespace where Gloo's headers are an empty
# directory and its shared library is /dev/null (so neither the addon's build nor an old addon's
# load can find it), then `npm ci && npm test` and `npm start` there. Needs root (unshare -m).
#
#   sudo tools/without-gloo.sh [OUT_DIR] [-- npm start flags ...]
#
# The logs go to OUT_DIR (default /tmp/mixprec-without-gloo): build-native's line, the test
# summary with the distributed tests' skip reasons, and the training run's last lines.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/mixprec-without-gloo}
shift || true
[ "${1:-}" = "--" ] && shift
start_flags=("$@")
[ "$(id -u)" = 0 ] || { echo "$0: needs root (a private mount namespace)" >&2; exit 2; }

rm -rf "$out"
mkdir -p "$out/repo"
git archive HEAD | tar -x -C "$out/repo"

unshare -m --propagation private bash -s "$out" "${start_flags[@]+"${start_flags[@]}"}" <<'EOF'
set -euo pipefail
out=$1
shift
# hide Gloo: headers and library
[ -d /usr/include/gloo ] && mount -t tmpfs none /usr/include/gloo
for lib in $( (ls /usr/lib/libgloo.so* /usr/lib/*/libgloo.so* 2>/dev/null || true) | xargs -r readlink -f | sort -u); do mount --bind /dev/null "$lib"; done
echo "hidden: /usr/include/gloo is $(ls /usr/include/gloo | wc -l) files; libgloo: $(head -c 4 /usr/lib/libgloo.so.0 2>/dev/null | wc -c) bytes" | tee "$out/hidden.txt"
cd "$out/repo"
status=0
(npm ci && npm test) >"$out/test.log" 2>&1 || status=$?
echo "npm ci && npm test: exit $status" | tee -a "$out/hidden.txt"
start=0
npm start -- "$@" >"$out/start.log" 2>&1 || start=$?
echo "npm start: exit $start" | tee -a "$out/hidden.txt"
EOF
echo "== build-native"
grep -h "build-native" "$out/test.log" "$out/start.log" | sort -u
echo "== tests"
grep -E "^# (tests|pass|fail|skipped)" "$out/test.log" || true
grep -E "# SKIP mx.distributed is not available" "$out/test.log" | sort -u | head -5 || true
echo "== npm start"
tail -3 "$out/start.log"
cat "$out/hidden.txt"
