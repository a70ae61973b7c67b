#!/usr/bin/env bash
# Native gRPC through protogate with Python grpcio (see test_grpcio.py).
#
# Creates (or reuses) a venv in the repo's target/interop-venv, installs the
# pinned requirements into it, starts the example backend and the gateway
# from the debug binaries cargo built (honours CARGO_TARGET_DIR) on ephemeral
# loopback ports, runs the checks, and stops both processes on exit.
#
#   cargo build --bin protogate --example library_server   # or cargo test
#   bash tests/interop/grpcio/run.sh [-k NAME-FILTER]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$root/target/interop-venv
python=${PYTHON:-python3}
startup_limit=30 # seconds each process gets to print its address

backend_bin=$target/debug/examples/library_server
gateway_bin=$target/debug/protogate
for bin in "$backend_bin" "$gateway_bin"; do
  if [ ! -x "$bin" ]; then
    echo "grpcio interop: $bin is missing; run: cargo build --bin protogate --example library_server" >&2
    exit 1
  fi
done

# --- the venv: everything stays inside the clone (no pip cache elsewhere).
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  echo "grpcio interop: reusing $venv"
else
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv"; then
    # Debian's python3 ships venv's ensurepip separately.
    echo "grpcio interop: '$python -m venv' failed; installing python3-venv" >&2
    rm -rf "$venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
fi
PIP_NO_CACHE_DIR=1 timeout 600 "$venv/bin/python" -m pip install \
  --disable-pip-version-check --no-input -q -r "$here/requirements.txt"

# --- the backend and the gateway, on ephemeral loopback ports.
work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-grpcio.XXXXXX")
pids=()
status=1
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "--- $(basename "$log") (last 40 lines)"; tail -n 40 "$log"; }
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for PATTERN (an extended regex, whose match ends with HOST:PORT) in
# LOG, written by PID; prints HOST:PORT.
wait_addr() {
  local name=$1 pid=$2 log=$3 pattern=$4 line
  for _ in $(seq 1 $((startup_limit * 10))); do
    if line=$(grep -oE "$pattern" "$log" 2>/dev/null | head -n 1) && [ -n "$line" ]; then
      grep -oE '[0-9.]+:[0-9]+$' <<<"$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "grpcio interop: $name exited before listening" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "grpcio interop: $name did not listen within ${startup_limit}s" >&2
  return 1
}

# Flags below are explicit; no PROTOGATE_* setting of the caller's applies.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^PROTOGATE_' || true)

"$backend_bin" --listen 127.0.0.1:0 >"$work/backend.log" 2>&1 &
pids+=($!)
backend=$(wait_addr backend "${pids[-1]}" "$work/backend.log" 'listening on [0-9.]+:[0-9]+')

RUST_LOG=info "$gateway_bin" serve --log-format json --listen 127.0.0.1:0 --watch false \
  --routes "$root/routes.yaml" --descriptors "$root/descriptors" \
  --upstream "http://$backend" >"$work/gateway.log" 2>&1 &
pids+=($!)
gateway=$(wait_addr gateway "${pids[-1]}" "$work/gateway.log" 'listening on http://[0-9.]+:[0-9]+')

set +e
timeout 300 "$venv/bin/python" "$here/test_grpcio.py" --backend "$backend" --gateway "$gateway" "$@"
status=$?
set -e
exit "$status"
