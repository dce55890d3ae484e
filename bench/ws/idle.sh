#!/usr/bin/env bash
# Gateway memory per idle connection: 10,000 idle WebSocket connections (request-channel route /ws/chat and
# rsocket route /rsocket) and 10,000 idle keep-alive HTTP connections, with and without ReduceMemoryUsage.
# Goals: <= 16 KiB per WebSocket, <= 8 KiB per keep-alive HTTP connection.
#
#   bench/ws/idle.sh [n]        (default n = 10000; prints Markdown tables)
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:-10000}"
# Both processes hold n descriptors plus a few: raise the limit as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 200)) ]; then
  echo "ulimit -n is $(ulimit -n), need more than $n (raise the hard limit)" >&2
  exit 1
fi
bin="$(mktemp -d)/idle"
go build -o "$bin" ./bench/ws/idle
echo "### without ReduceMemoryUsage (limits.reduce_memory: false)"
"$bin" -n "$n"
echo
echo "### ReduceMemoryUsage (the gateway's default: limits.reduce_memory: true)"
"$bin" -n "$n" -reduce
