#!/usr/bin/env bash
# Validates docker-compose.yml without a container engine or the compose plugin:
#
#   1. Docker Compose v1 (`docker-compose config`, the PyPI package docker-compose 1.29.2):
#      YAML syntax, the compose-spec JSON schema it ships (unknown keys, wrong types), and its
#      own checks (depends_on naming unknown services, build contexts that do not exist, ...).
#   2. Every `build.target` names a stage (`FROM ... AS <name>`) of that service's Dockerfile,
#      and the Dockerfile exists.
#
#   ci/validate-compose.sh [FILE]        # default: docker-compose.yml at the repository root
#
# Silent with exit 0 when the file is valid; otherwise the validator's message on stderr and
# exit 1 (exit 2 when the validator cannot be installed). Warnings from docker-compose (e.g. an
# unset ${VARIABLE}) count as failures.
#
# Install: docker-compose 1.29.2 pins PyYAML<6, which has no wheel for Python >= 3.10 and whose
# sdist no longer builds under Cython 3. So PyYAML 5.4.1 is first built into a local wheel with
# Cython<3 (pure-Python fallback when there is no C compiler), then docker-compose is installed
# with `pip install --target` (no venv needed, and allowed on PEP 668 "externally managed"
# Debian Pythons) into target/tools/compose-v1. Later runs reuse it (idempotent). Needs
# python3 with pip and access to PyPI on the first run only.
#   PYTHON=python3.11                     interpreter to use (default python3)
#   PROTOGATE_COMPOSE_TOOLS=DIR           where to install (default target/tools/compose-v1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
file=${1:-$root/docker-compose.yml}
py=${PYTHON:-python3}
tools=${PROTOGATE_COMPOSE_TOOLS:-$root/target/tools/compose-v1}

[[ -f $file ]] || {
  echo "validate-compose: $file: no such file" >&2
  exit 1
}
file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
command -v "$py" >/dev/null || {
  echo "validate-compose: $py not found (python3 with pip is needed)" >&2
  exit 2
}

# Deprecation noise from the old dependencies must not break "quiet on success".
export PYTHONWARNINGS=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

pins=(docker-compose==1.29.2 "docker>=5,<7" pyyaml==5.4.1)
want="${pins[*]} / $("$py" -c 'import sys; print(sys.implementation.name, *sys.version_info[:2])')"
if [[ "$(cat "$tools/.installed" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$tools"
  mkdir -p "$tools"
  log=$tools/install.log
  if ! {
    "$py" -m pip install --target "$tools/build" "cython<3" "setuptools<70" wheel &&
      PYTHONPATH=$tools/build "$py" -m pip wheel --no-build-isolation --no-deps \
        --wheel-dir "$tools/wheels" pyyaml==5.4.1 &&
      "$py" -m pip install --target "$tools/lib" --find-links "$tools/wheels" \
        --only-binary pyyaml "${pins[@]}"
  } >"$log" 2>&1; then
    echo "validate-compose: could not install docker-compose 1.29.2 with $py (log: $log):" >&2
    tail -n 20 "$log" >&2
    exit 2
  fi
  rm -rf "$tools/build"
  echo "$want" >"$tools/.installed"
fi

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# 1. docker-compose config: parse, schema, interpolation, semantic checks; prints the resolved
#    file (absolute build contexts) for step 2.
rc=0
(cd "$(dirname "$file")" && PYTHONPATH=$tools/lib "$py" -c '
import sys
from compose.cli.main import main
sys.argv[0] = "docker-compose"
sys.exit(main())
' --file "$file" config) >"$out" 2>"$err" || rc=$?
if ((rc != 0)) || [[ -s $err ]]; then
  echo "validate-compose: $file:" >&2
  cat "$err" >&2
  exit 1
fi

# 2. build targets and Dockerfiles.
PYTHONPATH=$tools/lib "$py" - "$out" "$file" <<'EOF' || exit 1
import os, re, sys, yaml

with open(sys.argv[1]) as f:
    cfg = yaml.safe_load(f)
stage = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+([^\s#]+)", re.I | re.M)
errors = []
for name, svc in sorted((cfg.get("services") or {}).items()):
    build = svc.get("build")
    if build is None:
        continue
    if isinstance(build, str):
        build = {"context": build}
    ctx = build.get("context", ".")
    if re.match(r"^([a-z][a-z0-9+.-]*://|git@|github\.com/)", ctx):
        continue  # remote context: nothing local to check
    dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
    if not os.path.isfile(dockerfile):
        errors.append(f"services.{name}.build: Dockerfile {dockerfile} does not exist")
        continue
    with open(dockerfile, encoding="utf-8") as f:
        stages = stage.findall(f.read())
    target = build.get("target")
    if target is not None and target.lower() not in {s.lower() for s in stages}:
        have = ", ".join(stages) or "none"
        errors.append(
            f"services.{name}.build.target: {target!r} is not a stage of {dockerfile} (stages: {have})"
        )
if errors:
    print(f"validate-compose: {sys.argv[2]}:", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
EOF
