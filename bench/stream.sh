#!/usr/bin/env bash
# Server streams: message rate of one long stream read directly over gRPC and
# through the gateway as NDJSON and as SSE (same backend, same run: the ratio
# is the figure), and the gateway's memory with many idle SSE streams open.
#
#   bench/stream.sh                       # 1,000,000 messages, 10,000 idle streams
#   STREAM_MESSAGES=200000 STREAM_IDLE=2000 STREAM_ROUNDS=1 bench/stream.sh
#
# Environment (all optional):
#   STREAM_MESSAGES   messages per stream                      (1000000)
#   STREAM_ROUNDS     alternated rounds of grpc/ndjson/sse      (2)
#   STREAM_IDLE       idle SSE streams to hold                 (10000)
#   LOAD_SKIP_BUILD   1 = use the existing release binaries
#
# Loopback only; everything it starts is killed on exit. A benchmark, not a
# test: nothing here asserts; read the table.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
messages=${STREAM_MESSAGES:-1000000}
rounds=${STREAM_ROUNDS:-2}
idle=${STREAM_IDLE:-10000}
target=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-stream.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ ${LOAD_SKIP_BUILD:-0} != 1 ]]; then
  echo "cargo build --release --bin protogate --example library_server --example stream_bench ..." >&2
  cargo build --release --quiet --bin protogate --example library_server --example stream_bench
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < idle + 1000 )); then
  echo "note: the open-file limit ($(ulimit -n)) is below STREAM_IDLE + 1000; fewer streams may open" >&2
fi

# Waits until $1 holds a line matching $2 and prints the first group of $3.
wait_for() {
  for _ in $(seq 1 200); do
    if line=$(grep -m1 -E "$2" "$1" 2>/dev/null); then
      sed -E "s#.*$3.*#\1#" <<<"$line"
      return
    fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1" >&2
  cat "$1" >&2
  exit 1
}

"$target/release/examples/library_server" --listen 127.0.0.1:0 >"$work/backend.log" 2>&1 &
pids+=($!)
backend=$(wait_for "$work/backend.log" 'listening on' 'listening on ([0-9.:]+)')
cat >"$work/routes.yaml" <<EOF
limits: {max_connections: 50000}
streaming: {idle_timeout: 0s}
EOF
RUST_LOG=warn,protogate=info "$target/release/protogate" serve --listen 127.0.0.1:0 --watch false \
  --routes "$work/routes.yaml" --upstream "http://$backend" --descriptors "$root/descriptors" \
  >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
gateway=$(wait_for "$work/gateway.log" 'listening on http' 'listening on http://([0-9.:]+).*')

client="$target/release/examples/stream_bench"
declare -A total
for r in $(seq 1 "$rounds"); do
  for how in grpc ndjson sse; do
    url="http://$gateway"
    [[ $how == grpc ]] && url="http://$backend"
    out=$("$client" rate "$how" "$url" "$messages")
    rate=$(sed -E 's/.*rate=([0-9]+).*/\1/' <<<"$out")
    echo "round $r $how: $out" >&2
    total[$how]=$(( ${total[$how]:-0} + rate ))
  done
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
before=$(rss_kib "$gateway_pid")
"$client" idle "$gateway" "$idle" 5 >"$work/idle.log" 2>&1 &
idle_pid=$!
pids+=($idle_pid)
ready=$(wait_for "$work/idle.log" 'ready streams=' 'ready streams=([0-9]+)')
sleep 1
during=$(rss_kib "$gateway_pid")
wait "$idle_pid" || true

python3 - "$messages" "$rounds" "${total[grpc]}" "${total[ndjson]}" "${total[sse]}" "$idle" "$ready" "$before" "$during" <<'PY'
import sys
messages, rounds, grpc, ndjson, sse, idle, ready, before, during = map(int, sys.argv[1:])
g, n, s = grpc / rounds, ndjson / rounds, sse / rounds
print(f"server stream of {messages:,} Book messages, {rounds} alternated round(s), loopback, 2 shared cores")
print(f"{'path':<28}{'msgs/s':>12}{'vs direct':>12}")
print(f"{'gRPC direct':<28}{g:>12,.0f}{1.0:>11.2f}x")
print(f"{'REST NDJSON via gateway':<28}{n:>12,.0f}{n / g:>11.2f}x")
print(f"{'REST SSE via gateway':<28}{s:>12,.0f}{s / g:>11.2f}x")
print(f"idle SSE streams: {ready:,} of {idle:,} open; gateway RSS {before / 1024:.0f} MiB before, "
      f"{during / 1024:.0f} MiB with them open ({(during - before) / max(ready, 1):.1f} KiB per stream)")
PY
