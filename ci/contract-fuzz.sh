#!/usr/bin/env bash
# Contract fuzzing with schemathesis (PyPI): requests generated from the gateway's own served
# /openapi.json, against
#
#   1. protogate in mock mode on the bundled example;
#   2. the example backend (examples/library_server) through the gateway;
#
# each bounded in time ($FUZZ_SECONDS per target, default 60). Checked: no 5xx, status codes,
# content types, response headers and bodies conform to the document, every line of a server
# stream's NDJSON too (ci/schemathesis/ndjson_hooks.py: schemathesis has no NDJSON reader).
# Prints the number of
# generated requests per target. Exit 0 when there are no findings; 1 otherwise; 2 when
# schemathesis cannot be installed.
#
#   bash ci/contract-fuzz.sh
#
# Install: a venv at target/tools/schemathesis with the pinned package on the first run (like
# ci/validate-openapi.sh). Needs target/debug/protogate and target/debug/examples/library_server
# (built when missing).
#   PYTHON=python3.11  FUZZ_SECONDS=60  FUZZ_PORT=18095 (and the next two ports)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=$root/target/tools/schemathesis
pin=schemathesis==4.32.5
seconds=${FUZZ_SECONDS:-60}
port=${FUZZ_PORT:-18095}
say() { echo "contract-fuzz: $*" >&2; }

if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$pin" ]] || ! "$venv/bin/python" -c 'import schemathesis' 2>/dev/null; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    say "'$python -m venv' failed; installing python3-venv"
    rm -rf "$venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
  if ! PIP_NO_CACHE_DIR=1 timeout 900 "$venv/bin/python" -m pip install \
    --disable-pip-version-check --no-input -q "$pin" >"$venv/install.log" 2>&1; then
    say "could not install $pin (log: $venv/install.log):"
    tail -n 20 "$venv/install.log" >&2
    exit 2
  fi
  echo "$pin" >"$venv/.installed"
fi

bin=$root/target/debug/protogate
backend=$root/target/debug/examples/library_server
[ -x "$bin" ] && [ -x "$backend" ] || cargo build --quiet --bin protogate --example library_server

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-fuzz.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for the gateway on $1 to serve its document.
ready() {
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$1/openapi.json" -o /dev/null 2>/dev/null && return 0
    sleep 0.2
  done
  say "the gateway on port $1 did not answer"
  return 1
}

# Runs schemathesis against the gateway on port $1, named $2.
fuzz() {
  local out=$work/$2.out status=0
  (cd "$work" && PYTHONPATH="$root/ci/schemathesis" SCHEMATHESIS_HOOKS=ndjson_hooks \
    FUZZ_DOCUMENT="http://127.0.0.1:$1/openapi.json" \
    "$venv/bin/schemathesis" run "http://127.0.0.1:$1/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ndjson_lines_conform \
    --phases examples,coverage,fuzzing --max-time "$seconds" --workers 2 --seed 16 \
    --no-color) >"$out" 2>&1 || status=$?
  local cases
  cases=$(grep -A1 '^Test cases:' "$out" | tail -n 1 | sed 's/^ *//')
  echo "contract-fuzz: $2: ${cases:-no summary}"
  sed -n '/^Warnings:/,/^$/p' "$out"
  if [ "$status" != 0 ]; then
    sed -n '/FAILURES\|ERRORS/,$p' "$out" | head -n 120
    return 1
  fi
}

env_clean=(env $(env | grep -o '^PROTOGATE_[A-Z_]*' | sed 's/^/-u /' || true))
"${env_clean[@]}" "$bin" serve --mock --watch false --listen "127.0.0.1:$port" --drain-delay 0s \
  >"$work/mock.log" 2>&1 &
pids+=($!)
"$backend" --listen "127.0.0.1:$((port + 2))" >"$work/backend.log" 2>&1 &
pids+=($!)
"${env_clean[@]}" "$bin" serve --upstream "http://127.0.0.1:$((port + 2))" --watch false \
  --listen "127.0.0.1:$((port + 1))" --drain-delay 0s >"$work/gateway.log" 2>&1 &
pids+=($!)
ready "$port"
ready "$((port + 1))"

status=0
fuzz "$port" "mock" || status=1
fuzz "$((port + 1))" "example-backend" || status=1
exit $status
