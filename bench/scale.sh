#!/usr/bin/env bash
# Load time and peak RSS at API size (issue 12, item 5): generates a synthetic API
# (examples/gen_big_api: AIP-shaped google.api.http routes, nested message types) into a
# temporary directory and runs `protogate check` on it, as a FileDescriptorSet and as a
# `.proto` tree, reporting `/usr/bin/time`'s wall time and peak RSS. With protoc on PATH,
# protoc compiling the same tree is measured beside it. Route matching and load time are
# also criterion benches: `cargo bench --bench scale`.
#
#   bench/scale.sh                          # 5,000 routes, 20,000 message types, 3 runs each
#   SCALE_ROUTES=10000 SCALE_TYPES=40000 SCALE_RUNS=5 bench/scale.sh
#
# Environment (all optional):
#   SCALE_ROUTES      routes (five per resource)          (5000)
#   SCALE_TYPES       message types                       (20000)
#   SCALE_RUNS        runs of each measurement            (3)
#   SCALE_SKIP_BUILD  1 = use target/release as it is
set -euo pipefail
cd "$(dirname "$0")/.."

routes=${SCALE_ROUTES:-5000}
types=${SCALE_TYPES:-20000}
runs=${SCALE_RUNS:-3}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }

if [ "${SCALE_SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet --bin protogate --example gen_big_api
fi
root=$PWD
bin=$root/target/release/protogate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

target/release/examples/gen_big_api "$work" "$routes" "$types"
if command -v protoc >/dev/null 2>&1; then
  (cd "$work/protos" && find . -name '*.proto' | sed 's|^\./||' | sort >"$work/files")
fi

# Runs "$@" SCALE_RUNS times; prints each run's wall time and peak RSS.
measure() {
  local label=$1; shift
  for i in $(seq 1 "$runs"); do
    /usr/bin/time -o "$work/time" -f "%e %M" "$@" >/dev/null 2>"$work/err" || {
      echo "$label failed:"; cat "$work/err"; exit 1; }
    read -r secs kb <"$work/time"
    printf '%-48s run %d: %6.2f s  %7.1f MiB peak RSS\n' "$label" "$i" "$secs" "$(echo "$kb / 1024" | bc -l)"
  done
}

# Elsewhere than the checkout, so no ./routes.yaml is picked up.
cd "$work"
echo
echo "API: $routes routes, $types message types ($(ls -1 "$work"/protos/scale | wc -l) files)"
if [ -f "$work/files" ]; then
  # protoc needs the Google protos protogate bundles (annotations, http).
  protoc_o() {
    (cd "$work/protos" && protoc -I . -I "$root/src/descriptors/builtin" --include_imports "$@" $(cat "$work/files"))
  }
  protoc_o --include_source_info -o "$work/full.binpb"
  protoc_o -o "$work/plain.binpb"
  echo "protoc's descriptor sets: $(du -k "$work/full.binpb" | cut -f1) KiB with source info," \
    "$(du -k "$work/plain.binpb" | cut -f1) KiB without"
  measure "protogate check (set with source info)" "$bin" check --descriptors "$work/full.binpb"
  measure "protogate check (set without source info)" "$bin" check --descriptors "$work/plain.binpb"
  measure "protogate check (.proto tree, protox)" "$bin" check --descriptors "$work/protos"
  export -f protoc_o; export work root
  measure "protoc (.proto tree, with source info)" bash -c 'protoc_o --include_source_info -o "$work/x.binpb"'
  measure "protoc (.proto tree, without source info)" bash -c 'protoc_o -o "$work/x.binpb"'
else
  echo "(protoc not on PATH: no protoc comparison; the set is protogate's own compile)"
  measure "protogate check (descriptor set)" "$bin" check --descriptors "$work/api.binpb"
  measure "protogate check (.proto tree, protox)" "$bin" check --descriptors "$work/protos"
fi
