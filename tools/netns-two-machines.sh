#!/usr/bin/env bash
# Two "machines" on this one: two network namespaces joined by a veth pair (10.77.X.1 and
# 10.77.X.2, nothing else reachable; X differs per run, so runs may overlap), with one launcher in
# each: `mixprec run --nnodes 2 --node-rank 0|1 --master-addr 10.77.X.1` (env:// rendezvous at
# node 0's address). Waits for both nodes, prints each node's output, and removes the namespaces
# (and with them the veth pair) however it ends. Needs root (ip netns) and `npm run build`.
#
#   sudo tools/netns-two-machines.sh [--nproc-per-node N] -- mixprec train --dataset cifar10 --epochs 2 ...
#
# Exit status: 0 when both launchers exit 0, else the first non-zero one.
set -euo pipefail
cd "$(dirname "$0")/.."

nproc=1
if [ "${1:-}" = "--nproc-per-node" ]; then
  nproc=$2
  shift 2
fi
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [--nproc-per-node N] -- COMMAND ..." >&2; exit 2; }
command -v ip >/dev/null || { echo "$0: needs iproute2 (ip)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }

id=$(( $$ % 250 + 1 ))
a="mixprec-a$id"
b="mixprec-b$id"
net="10.77.$id"
port=$(( 29400 + id ))
logs=$(mktemp -d)

cleanup() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$a"
ip netns add "$b"
ip link add "mxa$id" type veth peer name "mxb$id"
ip link set "mxa$id" netns "$a"
ip link set "mxb$id" netns "$b"
ip -n "$a" addr add "$net.1/24" dev "mxa$id"
ip -n "$b" addr add "$net.2/24" dev "mxb$id"
for ns in "$a" "$b"; do
  ip -n "$ns" link set lo up
done
ip -n "$a" link set "mxa$id" up
ip -n "$b" link set "mxb$id" up

node_cmd() {
  local ns=$1 rank=$2
  shift 2
  ip netns exec "$ns" node dist/cli/main.js run --nproc-per-node "$nproc" --nnodes 2 --node-rank "$rank" \
    --master-addr "$net.1" --master-port "$port" -- "$@"
}

echo "netns: node 0 = $a ($net.1), node 1 = $b ($net.2), master $net.1:$port" >&2
node_cmd "$a" 0 "$@" >"$logs/node0.out" 2>"$logs/node0.err" &
pid0=$!
node_cmd "$b" 1 "$@" >"$logs/node1.out" 2>"$logs/node1.err" &
pid1=$!
status0=0
status1=0
wait "$pid0" || status0=$?
wait "$pid1" || status1=$?

for n in 0 1; do
  echo "== node $n (exit $([ $n = 0 ] && echo $status0 || echo $status1))"
  cat "$logs/node$n.out"
  sed 's/^/stderr: /' "$logs/node$n.err"
done
[ "$status0" = 0 ] || exit "$status0"
exit "$status1"
