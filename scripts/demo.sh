#!/usr/bin/env bash
# Runs the bundled example with nothing else needed: the example gRPC backend
# (examples/library_server) on 127.0.0.1:50051 and protogate in front of it on
# 127.0.0.1:8080. Ctrl-C stops both.
#
#   PROTOGATE_DEMO_GRPC=127.0.0.1:50051  PROTOGATE_LISTEN=127.0.0.1:8080  scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

grpc_addr=${PROTOGATE_DEMO_GRPC:-127.0.0.1:50051}
listen=${PROTOGATE_LISTEN:-127.0.0.1:8080}

cargo build --quiet --bin protogate --example library_server

pids=()
# `wait` (unlike a foreground command) lets the trap run as soon as a signal arrives.
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM

./target/debug/examples/library_server --listen "$grpc_addr" &
pids+=($!)
./target/debug/protogate serve --upstream "http://$grpc_addr" --listen "$listen" &
pids+=($!)

echo "example backend (gRPC) on $grpc_addr; gateway on http://$listen" >&2
echo "try: curl http://$listen/v1/shelves/1/books/1" >&2
wait -n
