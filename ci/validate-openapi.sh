#!/usr/bin/env bash
# Validates the OpenAPI 3.1 documents protogate generates with a third-party validator
# (openapi-spec-validator, PyPI): `protogate openapi` (the real binary) for
#
#   1. the bundled example (descriptors/ and routes.yaml), as JSON and as YAML;
#   2. the larger fixture API, tests/fixtures/openapi (two services, every well-known type,
#      oneofs, maps, recursive messages, additional bindings, a custom HTTP method,
#      field_behavior, deprecated elements, comments, auth with a scope and anonymous reads).
#
# Prints each document's operation and schema counts.
#
#   bash ci/validate-openapi.sh
#
# Needs target/debug/protogate (built when missing). Exit 0 when both are valid; 1 with the
# validator's report; 2 when the validator cannot be installed.
#
# Install: a venv at target/tools/openapi-spec-validator with the pinned package, on the first
# run (like ci/validate-kubernetes.sh; python3-venv from apt when the interpreter lacks it).
#   PYTHON=python3.11   interpreter for the venv (default python3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=$root/target/tools/openapi-spec-validator
pin=openapi-spec-validator==0.9.0
say() { echo "validate-openapi: $*" >&2; }

if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$pin" ]] || ! "$venv/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    say "'$python -m venv' failed; installing python3-venv"
    rm -rf "$venv"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
  if ! PIP_NO_CACHE_DIR=1 timeout 600 "$venv/bin/python" -m pip install \
    --disable-pip-version-check --no-input -q "$pin" >"$venv/install.log" 2>&1; then
    say "could not install $pin (log: $venv/install.log):"
    tail -n 20 "$venv/install.log" >&2
    exit 2
  fi
  echo "$pin" >"$venv/.installed"
fi

bin=$root/target/debug/protogate
[ -x "$bin" ] || cargo build --quiet --bin protogate

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-openapi.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Keep the caller's PROTOGATE_* settings out of the documents.
run() { env $(env | grep -o '^PROTOGATE_[A-Z_]*' | sed 's/^/-u /') "$bin" openapi "$@"; }
run --descriptors descriptors --routes routes.yaml >"$work/library.json"
run --descriptors descriptors --routes routes.yaml --format yaml >"$work/library.yaml"
run --descriptors tests/fixtures/openapi --routes tests/fixtures/openapi/routes.yaml >"$work/shop.json"

status=0
for doc in library.json library.yaml shop.json; do
  if ! "$venv/bin/openapi-spec-validator" "$work/$doc"; then
    status=1
    continue
  fi
  "$venv/bin/python" - "$work/$doc" <<'PY'
import json, sys
path = sys.argv[1]
if path.endswith(".yaml"):
    import yaml  # installed with openapi-spec-validator
    doc = yaml.safe_load(open(path))
else:
    doc = json.load(open(path))
ops = 0
for item in doc["paths"].values():
    for method, op in item.items():
        ops += len(op) if method == "x-additional-operations" else 1
print(f"  {path.rsplit('/', 1)[-1]}: openapi {doc['openapi']}, {len(doc['paths'])} paths, "
      f"{ops} operations, {len(doc['components']['schemas'])} schemas")
PY
done
exit $status
