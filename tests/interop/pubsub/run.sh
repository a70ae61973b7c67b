#!/usr/bin/env bash
# Google's own Pub/Sub Python client (google-cloud-pubsub, REST transport)
# against protogate in mock mode (see test_pubsub_rest.py), then the routes
# expected vs served for the real API protos the PyPI packages ship (see
# routes_check.py), then the share of the mock's generated resource names
# that follow Pub/Sub's patterns (tests/mock_resources.rs, ignored there).
#
# Uses the venv tests/interop/grpcio uses (target/interop-venv; the pins they
# share agree), installs the pinned requirements into it, lays out the
# pubsub.proto and schema.proto the google-cloud-pubsub wheel ships as
# google/pubsub/v1/*.proto, starts the debug gateway cargo built (honours
# CARGO_TARGET_DIR) on an ephemeral loopback port, runs the checks, and
# stops the gateway on exit.
#
#   cargo build --bin protogate   # or cargo test
#   bash tests/interop/pubsub/run.sh [-k NAME-FILTER]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$root/target/interop-venv
python=${PYTHON:-python3}
startup_limit=30 # seconds the gateway gets to print its address
say() { echo "pubsub interop: $*" >&2; }

gateway_bin=$target/debug/protogate
if [ ! -x "$gateway_bin" ]; then
  say "$gateway_bin is missing; run: cargo build --bin protogate"
  exit 1
fi

# --- the venv: everything stays inside the clone (no pip cache elsewhere).
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  say "reusing $venv"
else
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv"; then
    # Debian's python3 ships venv's ensurepip separately.
    say "'$python -m venv' failed; installing python3-venv"
    rm -rf "$venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
fi
PIP_NO_CACHE_DIR=1 timeout 600 "$venv/bin/python" -m pip install \
  --disable-pip-version-check --no-input -q -r "$here/requirements.txt"

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-pubsub.XXXXXX")
gateway_pid=
status=1
cleanup() {
  if [ -n "$gateway_pid" ]; then
    kill "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$work/gateway.log" ]; then
    echo "--- gateway.log (last 40 lines)"
    tail -n 40 "$work/gateway.log"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the protos, from the installed packages (no copies in the repository).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
protos=$work/protos
mkdir -p "$protos/google/pubsub/v1"
# The wheel keeps them under google/cloud/pubsub_v1/proto/; they import each
# other as google/pubsub/v1/..., their names in googleapis.
cp "$site/google/cloud/pubsub_v1/proto/pubsub.proto" \
  "$site/google/cloud/pubsub_v1/proto/schema.proto" "$protos/google/pubsub/v1/"

# Waits for the gateway's "listening on http://HOST:PORT" line; prints HOST:PORT.
wait_addr() {
  local pid=$1 log=$2 line
  for _ in $(seq 1 $((startup_limit * 10))); do
    if line=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$log" 2>/dev/null | head -n 1) \
      && [ -n "$line" ]; then
      grep -oE '[0-9.]+:[0-9]+$' <<<"$line"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the gateway exited before listening"
      return 1
    fi
    sleep 0.1
  done
  say "the gateway did not listen within ${startup_limit}s"
  return 1
}

# Flags below are explicit; no PROTOGATE_* setting of the caller's applies.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^PROTOGATE_' || true)

# Pub/Sub, plus the IAM and long-running-operations services the client's
# mixins and api_core's operations client call (built-in files' services are
# served only when named; the wheels' copies of them are given as files).
RUST_LOG=info "$gateway_bin" serve --mock --log-format json --listen 127.0.0.1:0 --watch false \
  --routes "$here/routes.yaml" \
  --descriptors "$protos/google/pubsub/v1/pubsub.proto" \
  --descriptors "$site/google/iam/v1/iam_policy.proto" \
  --descriptors "$site/google/longrunning/operations_proto.proto" \
  -I "$protos" -I "$site" \
  --services 'google.pubsub.v1.*' --services google.iam.v1.IAMPolicy \
  --services google.longrunning.Operations >"$work/gateway.log" 2>&1 &
gateway_pid=$!
gateway=$(wait_addr "$gateway_pid" "$work/gateway.log")

set +e
timeout 300 "$venv/bin/python" "$here/test_pubsub_rest.py" --gateway "$gateway" "$@"
status=$?
if [ "$status" = 0 ]; then
  timeout 300 "$venv/bin/python" "$here/routes_check.py" --protogate "$gateway_bin" \
    --pubsub-root "$protos" --site-packages "$site"
  status=$?
fi
if [ "$status" = 0 ]; then
  # The mock's generated names against Pub/Sub's resource patterns
  # (tests/mock_resources.rs; cargo test built it, so nothing is rebuilt).
  (cd "$root" && PROTOGATE_PUBSUB_PROTOS="$protos" PROTOGATE_PUBSUB_SITE="$site" \
    timeout 600 cargo test --quiet --test mock_resources pubsub -- --ignored --nocapture)
  status=$?
fi
set -e
exit "$status"
