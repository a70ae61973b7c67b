#!/usr/bin/env bash
# Validates deploy/kubernetes offline, with no cluster:
#
#   1. deploy/kubernetes/base/config/ holds copies of routes.yaml and descriptors/library.binpb
#      (kustomize reads no file outside a kustomization's directory): they must equal the
#      repository's.
#   2. Renders every kustomization (deploy/kubernetes, base/, overlays/*) with kustomize: the
#      standalone `kustomize` if on PATH, else `kubectl kustomize` (the machine images ship
#      kubectl, with kustomize built in; neither is in the package registries reachable here).
#   3. ci/kubernetes/validate.py on each rendering: every object against the Kubernetes JSON
#      schemas of the PyPI package kubernetes-validate, strict (unknown fields are errors), for
#      Kubernetes $K8S_VERSIONS; the ServiceMonitor (a CRD, in no core schema) against
#      ci/kubernetes/servicemonitor.schema.json; then what no schema sees (selectors, port
#      names, ConfigMap keys and mount, hardening, the Dockerfile's USER, grace period vs
#      drain); and `protogate check` on the ConfigMap's files when a built binary is there
#      (target/debug/protogate, as after `cargo test`; else skipped, and said so).
#   4. Self-test: broken copies of the base (an unknown field, a subPath mount of the
#      ConfigMap, a Service selecting no pod, a grace period shorter than the drain) must each
#      be refused.
#
#   bash ci/validate-kubernetes.sh
#   bash ci/validate-kubernetes.sh --sync   # first refresh the copies of step 1, then validate
#
# Exit 0 when everything is valid; 1 with the problems on stderr; 2 when a tool is missing.
#
# Install: a venv at target/tools/kubernetes-validate with kubernetes-validate (pinned below)
# from PyPI, on the first run (like tests/interop/pubsub/run.sh; python3-venv from apt when
# the interpreter lacks it). Later runs reuse it and need no network.
#   PYTHON=python3.11        interpreter for the venv (default python3)
#   KUBECTL=/path/kubectl    kubectl to render with (default: kubectl on PATH)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k8s=$root/deploy/kubernetes
python=${PYTHON:-python3}
venv=$root/target/tools/kubernetes-validate
pin=kubernetes-validate==1.37.0
K8S_VERSIONS=(1.29 1.37) # the oldest and newest minors checked (1.37: the newest in the pin)
say() { echo "validate-kubernetes: $*" >&2; }
copies=("routes.yaml:base/config/routes.yaml" "descriptors/library.binpb:base/config/library.binpb")
case ${1:-} in
  --sync)
    for pair in "${copies[@]}"; do cp "$root/${pair%%:*}" "$k8s/${pair#*:}"; done ;;
  "") ;;
  *) say "usage: $0 [--sync]"; exit 2 ;;
esac

# --- the renderer
if command -v kustomize >/dev/null 2>&1; then
  render() { kustomize build "$1"; }
  renderer="kustomize $(kustomize version 2>/dev/null | head -n 1)"
elif command -v "${KUBECTL:-kubectl}" >/dev/null 2>&1; then
  kubectl=${KUBECTL:-kubectl}
  render() { "$kubectl" kustomize "$1"; }
  renderer="kubectl kustomize ($("$kubectl" version --client 2>/dev/null | grep -i kustomize | head -n 1))"
else
  say "neither kustomize nor kubectl is on PATH; kubectl comes with the machine image (apt package kubectl)"
  exit 2
fi

# --- the validator
if [[ "$(cat "$venv/.installed" 2>/dev/null)" != "$pin" ]] || ! "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
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
py=$venv/bin/python

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0

# 1. the copies
for pair in "${copies[@]}"; do
  src=${pair%%:*} copy=${pair#*:}
  if ! cmp -s "$root/$src" "$k8s/$copy"; then
    say "deploy/kubernetes/$copy differs from $src; refresh the copies: bash ci/validate-kubernetes.sh --sync"
    status=1
  fi
done

# 2. render
dirs=(. base)
for d in "$k8s"/overlays/*/; do dirs+=("overlays/$(basename "$d")"); done
renders=()
for d in "${dirs[@]}"; do
  name=${d#./}
  [[ $d == . ]] && name=deploy/kubernetes
  out=$work/$(echo "$name" | tr / _).yaml
  if ! render "$k8s/$d" >"$out" 2>"$work/err"; then
    say "$name: kustomize failed:"
    cat "$work/err" >&2
    status=1
    continue
  fi
  renders+=("$name=$out")
done

# 3. validate
protogate=${CARGO_TARGET_DIR:-$root/target}/debug/protogate
check=(--dockerfile "$root/Dockerfile")
for v in "${K8S_VERSIONS[@]}"; do check+=(--k8s "$v"); done
if [[ -x $protogate ]]; then
  check+=(--protogate "$protogate")
  gw="protogate check with $protogate"
else
  gw="protogate check SKIPPED: no $protogate (cargo build --bin protogate)"
fi
echo "renderer: $renderer; validator: $pin; $gw"
(cd "$root" && "$py" ci/kubernetes/validate.py "${check[@]}" "${renders[@]}") || status=1

# 4. self-test: each broken copy must be refused (proves the checks above can fail).
mutate() { # FILE OLD NEW: replaces OLD (which must be there) with NEW
  "$py" - "$@" <<'EOF'
import sys
path, old, new = (a.replace("\\n", "\n") for a in sys.argv[1:])
text = open(path).read()
if old not in text:
    sys.exit(f"self-test: {old!r} is no longer in {path}; update ci/validate-kubernetes.sh")
open(path, "w").write(text.replace(old, new, 1))
EOF
}
broken=0
while IFS='|' read -r file old new why; do
  copy=$work/broken-$broken
  cp -r "$k8s/base" "$copy"
  mutate "$copy/$file" "$old" "$new" || { status=1; continue; }
  broken=$((broken + 1))
  if render "$copy" >"$copy.yaml" 2>/dev/null \
    && (cd "$root" && "$py" ci/kubernetes/validate.py "${check[@]}" "broken=$copy.yaml" >/dev/null 2>&1); then
    say "self-test: a base with $why passed validation"
    status=1
  fi
done <<'EOF'
deployment.yaml|readinessProbe:|readinesProbe:|a misspelt field (readinesProbe)
deployment.yaml|readOnly: true|readOnly: true\n              subPath: routes.yaml|the ConfigMap mounted with subPath
service.yaml|    app.kubernetes.io/component: gateway\n  ports:|    app.kubernetes.io/component: gateway-typo\n  ports:|a Service selecting no pod
deployment.yaml|terminationGracePeriodSeconds: 45|terminationGracePeriodSeconds: 40|a grace period shorter than the drain (10s + 30s + 1s)
EOF
if [[ $status == 0 ]]; then
  echo "self-test: $broken broken copies of the base refused"
fi
exit "$status"
