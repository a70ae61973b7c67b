#!/usr/bin/env bash
# Load test: GetBook (shelves/1/books/1) through protogate (REST/JSON) versus directly over
# gRPC to the same example backend, side by side, with the gateway's overhead.
#
#   bench/load.sh                                   # 10 s per run, 32 connections
#   LOAD_DURATION=30 LOAD_CONCURRENCY=64 bench/load.sh
#
# Environment (all optional):
#   LOAD_DURATION      seconds per measured run                        (10)
#   LOAD_WARMUP        seconds of unmeasured warm-up before each run    (2; 0 = none)
#   LOAD_CONCURRENCY   connections (one request in flight on each)      (32)
#   LOAD_SCENARIOS     which runs, space separated, in this order:
#                        grpc      direct gRPC to the backend over h2c
#                        rest-h1   REST GET through the gateway over HTTP/1.1
#                        rest-h2   REST GET through the gateway over cleartext HTTP/2
#                        grpc-gw   native gRPC through the gateway (pass-through, h2c)
#                        grpc-web  gRPC-Web (binary) through the gateway over HTTP/1.1
#                        connect   Connect unary JSON POST through the gateway over HTTP/1.1
#                      ("grpc rest-h1 rest-h2 grpc-gw grpc-web connect")
#   LOAD_GENERATOR     oha | h2load                                     (oha)
#   LOAD_ROUTES        a routes.yaml for the gateway (its default upstream's URL is replaced
#                      by the backend's), e.g. to try `upstreams.X.connections`  (none)
#   LOAD_AUTH          hs256 | rs256: the gateway requires a JWT on every method (an auth:
#                      section with one provider is added to the routes) and every request,
#                      direct gRPC included, sends one token; rs256 needs openssl   (none)
#   LOAD_AUTH_ENFORCE  0 = send LOAD_AUTH's token but leave auth out of the gateway (the same
#                      bytes on the wire as with auth on: isolates what verifying costs)  (1)
#   LOAD_GATEWAY_ARGS  extra gateway flags, e.g. "--metrics false --access-log false"  (none)
#   LOAD_TLS           1 = the gateway's listener speaks TLS (a self-signed P-256 certificate
#                      made with openssl; HTTP/2 by ALPN) and every gateway scenario goes over
#                      https; direct gRPC stays h2c, as a backend inside the cluster would  (0)
#   LOAD_BACKENDS      N > 1: N example backends on 127.0.0.1 … 127.0.0.N (one port), and the
#                      gateway's upstream balances over them (an `upstreams:` section with
#                      `endpoints:` is added to the routes; not with a LOAD_ROUTES that has one);
#                      direct gRPC goes to the first backend                      (1)
#   LOAD_SKIP_BUILD    1 = use the existing target/release binaries as they are
#   OHA                path to an oha binary (default: target/tools/bin/oha, then PATH; if
#                      neither exists: cargo install --locked --root target/tools oha)
#   OHA_VERSION        version cargo install pins                       (1.16.0)
#   CARGO_TARGET_DIR   honoured like cargo does                         (target)
#
# Everything runs on loopback, on ports the servers pick themselves (port 0); the backend and
# the gateway are killed on exit (also on Ctrl-C or failure). The release build is done once by cargo
# (`cargo build --release --bin protogate --example library_server`); later runs reuse it.
#
# Generators: oha (crates.io) reports percentiles itself and speaks HTTP/1.1 and h2c. If it
# is unavailable or cannot be installed, h2load (Debian nghttp2-client) is used instead and
# the percentiles come from its per-request log (--log-file). Neither sees gRPC trailers, so
# a direct gRPC run also checks that every response carried the full GetBook body.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${LOAD_DURATION:-10}
warmup=${LOAD_WARMUP:-2}
conc=${LOAD_CONCURRENCY:-32}
scenarios=${LOAD_SCENARIOS:-grpc rest-h1 rest-h2 grpc-gw grpc-web connect}
generator=${LOAD_GENERATOR:-oha}
oha_version=${OHA_VERSION:-1.16.0}
book_path=/v1/shelves/1/books/1
grpc_method=/library.v1.LibraryService/GetBook
title="The Left Hand of Darkness"

log() { printf '%s\n' "$*" >&2; }
die() {
  log "load.sh: $*"
  exit 1
}
for v in duration warmup conc; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((duration > 0 && conc > 0)) || die "LOAD_DURATION and LOAD_CONCURRENCY must be positive"
for s in $scenarios; do
  [[ $s =~ ^(grpc|rest-h1|rest-h2|grpc-gw|grpc-web|connect)$ ]] ||
    die "unknown scenario '$s' (use grpc, rest-h1, rest-h2, grpc-gw, grpc-web, connect)"
done
[[ $generator == oha || $generator == h2load ]] || die "LOAD_GENERATOR must be oha or h2load"
command -v python3 >/dev/null || die "python3 is needed (gRPC request body, result table)"
command -v curl >/dev/null || die "curl is needed (sanity checks before loading)"

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-load.XXXXXX")
pids=()
gen=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $gen ]]; then kill "$gen" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((rc != 0 && rc != 130 && rc != 143)) && [[ -d $work ]]; then
    for f in "$work"/*.log; do
      [[ -s $f ]] && { log "--- $(basename "$f") (last lines)"; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- load generator ---------------------------------------------------------------------
gen_desc=
if [[ $generator == oha ]]; then
  oha=${OHA:-}
  if [[ -z $oha ]]; then
    if [[ -x target/tools/bin/oha ]]; then
      oha=$root/target/tools/bin/oha
    elif command -v oha >/dev/null; then
      oha=$(command -v oha)
    else
      log "installing oha $oha_version into target/tools (cargo install; once)..."
      if cargo install --quiet --locked --root target/tools --version "$oha_version" oha \
        >"$work/oha-install.log" 2>&1; then
        oha=$root/target/tools/bin/oha
      else
        log "oha could not be installed ($(tail -n 1 "$work/oha-install.log")); falling back to h2load"
        generator=h2load
      fi
    fi
  fi
  [[ $generator == oha ]] && gen_desc=$("$oha" --version)
fi
if [[ $generator == h2load ]]; then
  if ! command -v h2load >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      log "installing h2load (Debian nghttp2-client)..."
      { apt-get update -qq && apt-get install -y -qq nghttp2-client; } >"$work/apt.log" 2>&1 ||
        die "apt-get install nghttp2-client failed"
    else
      die "no load generator: install oha (cargo install oha) or h2load (apt-get install nghttp2-client)"
    fi
  fi
  gen_desc="h2load $(h2load --version | awk '{print $NF; exit}') (percentiles from its --log-file)"
fi

# ---- build (once; cargo reuses target/release afterwards) -------------------------------
build_note="skipped (LOAD_SKIP_BUILD=1)"
if [[ ${LOAD_SKIP_BUILD:-} != 1 ]]; then
  log "cargo build --release --bin protogate --example library_server ..."
  t0=$(date +%s.%N)
  cargo build --release --bin protogate --example library_server >"$work/build.log" 2>&1 ||
    die "release build failed"
  t1=$(date +%s.%N)
  build_note="$(python3 -c "print(f'{$t1 - $t0:.1f} s')") (cargo build --release --bin protogate --example library_server)"
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
gateway_bin=$target_dir/release/protogate
backend_bin=$target_dir/release/examples/library_server
[[ -x $gateway_bin && -x $backend_bin ]] || die "release binaries missing: run without LOAD_SKIP_BUILD=1"

# ---- start the backend and the gateway -------------------------------------------------
# Both listen on port 0 (no race with other processes over a "free" port) and report the
# address they got: the example prints "library_server listening on ADDR", the gateway logs
# "protogate listening on http://ADDR" (https:// with LOAD_TLS).
start() { # NAME LOG COMMAND...: starts COMMAND in the background; sets $addr from LOG
  local name=$1 out=$2 i
  shift 2
  : >"$out"
  "$@" >"$out" 2>&1 &
  pids+=($!)
  for ((i = 0; i < 300; i++)); do
    addr=$(grep -oE 'listening on (https?://)?[0-9.]+:[0-9]+' "$out" | grep -oE '[0-9.]+:[0-9]+$' | head -n 1) || true
    [[ -n $addr ]] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || die "$name exited during startup"
    sleep 0.1
  done
  die "$name did not report a listening address within 30 s"
}
# jwt_setup ALG ROUTES: appends an auth: section requiring a token of ALG to ROUTES and prints
# a token it accepts (valid for a day). hs256: a random secret in LOAD_JWT_SECRET; rs256: an
# RSA-2048 key made with openssl, its public half in a PEM file.
jwt_setup() {
  local alg=$1 routes=$2 key=
  if [[ $alg == rs256 ]]; then
    command -v openssl >/dev/null || die "LOAD_AUTH=rs256 needs openssl"
    openssl genrsa -out "$work/jwt.key" 2048 2>/dev/null &&
      openssl rsa -in "$work/jwt.key" -pubout -out "$work/jwt.pub" 2>/dev/null || return 1
    printf 'auth:\n  providers:\n    load:\n      issuer: load\n      algorithms: [RS256]\n      pem_file: %s\n' \
      "$work/jwt.pub" >>"$routes"
    key=$work/jwt.key
  else
    LOAD_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export LOAD_JWT_SECRET
    printf 'auth:\n  providers:\n    load:\n      issuer: load\n      algorithms: [HS256]\n      hmac_secret_env: LOAD_JWT_SECRET\n' >>"$routes"
  fi
  python3 - "$alg" "$key" <<'EOF'
import base64, hashlib, hmac, json, os, subprocess, sys, time
alg, key = sys.argv[1], sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": alg.upper(), "typ": "JWT"}).encode())
body = b64(json.dumps({"iss": "load", "sub": "load-test", "exp": int(time.time()) + 86400}).encode())
signing = f"{head}.{body}".encode()
if alg == "hs256":
    sig = hmac.new(os.environ["LOAD_JWT_SECRET"].encode(), signing, hashlib.sha256).digest()
else:
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                         capture_output=True, check=True).stdout
print(f"{head}.{body}.{b64(sig)}")
EOF
}
start backend "$work/backend.log" "$backend_bin" --listen 127.0.0.1:0
backend=$addr
backends=${LOAD_BACKENDS:-1}
[[ $backends =~ ^[1-9][0-9]?$ && $backends -le 254 ]] || die "LOAD_BACKENDS must be 1 to 254"
endpoints="'$backend'"
for ((k = 2; k <= backends; k++)); do
  start "backend $k" "$work/backend-$k.log" "$backend_bin" --listen "127.0.0.$k:${backend##*:}"
  endpoints+=", '$addr'"
done
# The routes: LOAD_ROUTES, plus an auth: section when LOAD_AUTH is set.
routes=$work/routes.yaml
if [[ -n ${LOAD_ROUTES:-} ]]; then cp "$LOAD_ROUTES" "$routes"; else : >"$routes"; fi
auth=()
if [[ -n ${LOAD_AUTH:-} ]]; then
  [[ $LOAD_AUTH =~ ^(hs256|rs256)$ ]] || die "LOAD_AUTH must be hs256 or rs256"
  jwt_setup "$LOAD_AUTH" "$routes" >"$work/token" || die "could not make a $LOAD_AUTH token"
  if [[ ${LOAD_AUTH_ENFORCE:-1} == 0 ]]; then
    if [[ -n ${LOAD_ROUTES:-} ]]; then cp "$LOAD_ROUTES" "$routes"; else : >"$routes"; fi
  fi
  auth=(-H "authorization: Bearer $(cat "$work/token")")
fi
if ((backends > 1)); then
  grep -q '^upstreams:' "$routes" && die "LOAD_BACKENDS: the routes already have an upstreams: section"
  printf 'upstreams:\n  library:\n    url: http://%s\n    endpoints: [%s]\n' "$backend" "$endpoints" >>"$routes"
fi
# Default logging (info): no per-request lines, so logging does not skew the numbers.
read -r -a gateway_args <<<"${LOAD_GATEWAY_ARGS:-}"
# LOAD_TLS: clients skip verifying the self-signed certificate (-k, --insecure).
scheme=http tls=()
if [[ ${LOAD_TLS:-0} == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null ||
    die "LOAD_TLS needs openssl to make a certificate"
  gateway_args+=(--tls-cert "$work/tls.crt" --tls-key "$work/tls.key")
  scheme=https tls=(-k)
fi
start gateway "$work/gateway.log" "$gateway_bin" serve --routes "$routes" --upstream "http://$backend" \
  --listen 127.0.0.1:0 "${gateway_args[@]}"
gateway=$addr gateway_pid=${pids[-1]}

# ---- requests and sanity checks -------------------------------------------------------
# The gRPC request: 5-byte frame prefix (not compressed, big-endian length) + GetBookRequest
# {name: "shelves/1/books/1"} (field 1, wire type 2: 0x0a, length, bytes).
grpc_body=$work/getbook.grpc
python3 - "$grpc_body" <<'EOF'
import struct, sys
name = b"shelves/1/books/1"
msg = b"\x0a" + bytes([len(name)]) + name
with open(sys.argv[1], "wb") as f:
    f.write(b"\x00" + struct.pack(">I", len(msg)) + msg)
EOF

rest_url=$scheme://$gateway$book_path
grpc_url=http://$backend$grpc_method
gw_grpc_url=$scheme://$gateway$grpc_method
connect_body='{"name":"shelves/1/books/1"}'

curl -fsS "${tls[@]}" "${auth[@]}" "$rest_url" -o "$work/rest.json" || die "GET $rest_url failed"
grep -q "\"title\":\"$title\"" "$work/rest.json" || die "unexpected gateway answer: $(head -c 300 "$work/rest.json")"
curl -sS "${auth[@]}" --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
  --data-binary "@$grpc_body" -D "$work/grpc.headers" -o "$work/grpc.body" "$grpc_url" ||
  die "direct gRPC call failed"
grep -qi '^grpc-status: *0' "$work/grpc.headers" ||
  die "direct gRPC call did not succeed: $(tr -d '\r' <"$work/grpc.headers" | grep -i '^grpc-' | tr '\n' ' ')"
grep -q "$title" "$work/grpc.body" || die "direct gRPC answer does not hold the book"
grpc_size=$(wc -c <"$work/grpc.body")
rest_size=$(wc -c <"$work/rest.json")
# The browser protocols through the gateway: each must answer the book before it is loaded.
curl -sS "${tls[@]}" "${auth[@]}" --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
  --data-binary "@$grpc_body" -D "$work/gw-grpc.headers" -o "$work/gw-grpc.body" "$gw_grpc_url" ||
  die "gRPC through the gateway failed"
grep -qi '^grpc-status: *0' "$work/gw-grpc.headers" || die "gRPC through the gateway did not succeed"
curl -fsS "${tls[@]}" "${auth[@]}" --http1.1 -X POST -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' \
  --data-binary "@$grpc_body" -o "$work/grpc-web.body" "$gw_grpc_url" || die "gRPC-Web call failed"
grep -qa 'grpc-status:0' "$work/grpc-web.body" || die "gRPC-Web answer has no OK trailer frame"
curl -fsS "${tls[@]}" "${auth[@]}" --http1.1 -H 'content-type: application/json' -H 'connect-protocol-version: 1' \
  -d "$connect_body" -o "$work/connect.json" "$gw_grpc_url" || die "Connect call failed"
grep -q "\"title\":\"$title\"" "$work/connect.json" || die "unexpected Connect answer"
declare -A body_size=(
  [grpc]=$grpc_size [rest-h1]=$rest_size [rest-h2]=$rest_size
  [grpc-gw]=$(wc -c <"$work/gw-grpc.body") [grpc-web]=$(wc -c <"$work/grpc-web.body")
  [connect]=$(wc -c <"$work/connect.json")
)

# ---- load -------------------------------------------------------------------------------
# run NAME SECONDS OUT: one load run of scenario NAME.
run() {
  local name=$1 secs=$2 out=$3 args=()
  case $generator:$name in
    oha:grpc) args=("${auth[@]}" --http2 -m POST -H 'content-type: application/grpc' -H 'te: trailers' -D "$grpc_body" "$grpc_url") ;;
    oha:rest-h1) args=("${auth[@]}" --http-version 1.1 "$rest_url") ;;
    oha:rest-h2) args=("${auth[@]}" --http2 "$rest_url") ;;
    oha:grpc-gw) args=("${auth[@]}" --http2 -m POST -H 'content-type: application/grpc' -H 'te: trailers' -D "$grpc_body" "$gw_grpc_url") ;;
    oha:grpc-web) args=("${auth[@]}" --http-version 1.1 -m POST -H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1' -D "$grpc_body" "$gw_grpc_url") ;;
    oha:connect) args=("${auth[@]}" --http-version 1.1 -m POST -H 'content-type: application/json' -H 'connect-protocol-version: 1' -d "$connect_body" "$gw_grpc_url") ;;
    h2load:grpc) args=("${auth[@]}" -H 'content-type: application/grpc' -H 'te: trailers' -d "$grpc_body" "$grpc_url") ;;
    h2load:rest-h1) args=("${auth[@]}" --h1 "$rest_url") ;;
    h2load:rest-h2) args=("${auth[@]}" "$rest_url") ;;
    h2load:grpc-gw) args=("${auth[@]}" -H 'content-type: application/grpc' -H 'te: trailers' -d "$grpc_body" "$gw_grpc_url") ;;
    h2load:grpc-web) args=("${auth[@]}" --h1 -H 'content-type: application/grpc-web+proto' -d "$grpc_body" "$gw_grpc_url") ;;
    h2load:connect) args=("${auth[@]}" --h1 -H 'content-type: application/json' -H 'connect-protocol-version: 1' -d "$work/connect.req" "$gw_grpc_url") ;;
    *) die "unknown scenario '$name'" ;;
  esac
  # In the background plus `wait`, so that Ctrl-C runs the trap at once (bash defers traps
  # while a foreground command runs, and skips them when that command handles SIGINT itself).
  if [[ $generator == oha ]]; then
    # -w: requests in flight at the deadline finish (and count) instead of being aborted.
    local insecure=()
    [[ $name != grpc && ${#tls[@]} -gt 0 ]] && insecure=(--insecure)
    "$oha" --no-tui -w -z "${secs}s" -c "$conc" --output-format json "${insecure[@]}" "${args[@]}" >"$out" 2>"$out.err" &
  else
    h2load -D "$secs" -c "$conc" -m 1 -t "$(nproc)" --log-file "$out.requests" "${args[@]}" \
      >"$out" 2>"$out.err" &
  fi
  gen=$!
  local rc=0
  wait "$gen" || rc=$?
  gen=
  return "$rc"
}

declare -A label=(
  [grpc]="gRPC direct (h2c POST)"
  [rest-h1]="REST via gateway (HTTP/1.1)"
  [rest-h2]="REST via gateway (h2c)"
  [grpc-gw]="gRPC via gateway (h2c)"
  [grpc-web]="gRPC-Web via gateway (HTTP/1.1)"
  [connect]="Connect JSON via gateway (HTTP/1.1)"
)
if [[ $scheme == https ]]; then
  for k in rest-h1 rest-h2 grpc-gw grpc-web connect; do
    label[$k]="${label[$k]/h2c/HTTP\/2} over TLS"
  done
fi
printf '%s' "$connect_body" >"$work/connect.req"
results=()
loadavg=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
for s in $scenarios; do
  if ((warmup > 0)); then
    run "$s" "$warmup" "$work/warmup-$s" || die "warm-up of $s failed: $(cat "$work/warmup-$s.err")"
  fi
  log "loading: ${label[$s]} for ${duration}s at ${conc} connections ..."
  run "$s" "$duration" "$work/$s" || die "$s run failed: $(cat "$work/$s.err")"
  size=${body_size[$s]}
  results+=("$s|${label[$s]}|$work/$s|$size")
  for p in "${pids[@]}"; do
    [[ $p == "$gateway_pid" ]] && continue
    kill -0 "$p" 2>/dev/null || die "a backend died during the $s run"
  done
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway died during the $s run"
done

# ---- report -----------------------------------------------------------------------------
python3 - "$generator" "$gen_desc" "$build_note" "$duration" "$conc" "$(nproc)" "$loadavg" \
  "${results[@]}" <<'EOF'
import json, re, sys

generator, gen_desc, build_note, duration, conc, cores, loadavg = sys.argv[1:8]
rows = []
for spec in sys.argv[8:]:
    key, label, path, size = spec.split("|")
    size = int(size)
    if generator == "oha":
        d = json.load(open(path))
        s = d["summary"]
        codes = d.get("statusCodeDistribution", {})
        ok = int(codes.get("200", 0))
        total = sum(int(v) for v in codes.values()) + sum(int(v) for v in d.get("errorDistribution", {}).values())
        rps = s["requestsPerSec"]
        p = d["latencyPercentiles"]
        p50, p99 = p["p50"] * 1e3, p["p99"] * 1e3
        data = s.get("totalData", 0)
        full = data == ok * size  # every 200 carried the whole expected body
    else:
        lat, ok, start, end = [], 0, None, None
        for line in open(path + ".requests"):
            t, status, us = line.split()[:3]
            t, us = int(t), int(us)
            lat.append(us / 1e3)
            ok += status == "200"
            start = t if start is None else min(start, t)
            end = t + us if end is None else max(end, t + us)
        lat.sort()
        total = len(lat)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
        p50, p99 = pct(0.50), pct(0.99)
        rps = total / ((end - start) / 1e6) if total else 0.0
        # h2load's "traffic: ... 5.04MB (5283232) data" counts body bytes, including those of
        # the (at most one per connection) requests still in flight at the deadline.
        m = re.search(r"^traffic:.*\((\d+)\) data", open(path).read(), re.M)
        full = bool(m) and ok * size <= int(m.group(1)) <= (ok + int(conc)) * size
    rows.append(dict(key=key, label=label, rps=rps, p50=p50, p99=p99, ok=ok, total=total, size=size, full=full))

print("protogate load test: GetBook (shelves/1/books/1) through the gateway in each protocol vs direct gRPC")
print(f"  generator:     {gen_desc}")
print(f"  release build: {build_note}")
print(f"  per run:       {duration} s, {conc} connections (1 request in flight each), loopback")
print(f"  machine:       {cores} CPU cores, 1-min load average {loadavg} before the first run")
print()
hdr = f"{'scenario':<36} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ok/total':>17} {'body B':>7}"
print(hdr)
print("-" * len(hdr))
for r in rows:
    flag = "" if r["full"] and r["ok"] == r["total"] else "  !"
    print(f"{r['label']:<36} {r['rps']:>10.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {str(r['ok']) + '/' + str(r['total']):>17} {r['size']:>7}{flag}")
base = next((r for r in rows if r["key"] == "grpc"), None)
gw = [r for r in rows if r["key"] != "grpc"]
if base and gw:
    print()
    print("through the gateway vs direct gRPC (one more hop, plus transcoding where the protocol needs it):")
    for r in gw:
        drop = (1 - r["rps"] / base["rps"]) * 100 if base["rps"] else float("nan")
        ratio = r["rps"] / base["rps"] if base["rps"] else float("nan")
        print(f"  {r['label']:<35} {ratio:.2f}x the direct rate ({-drop:+.1f}%)   p50 {r['p50'] - base['p50']:+.3f} ms"
              f" (x{r['p50'] / base['p50']:.2f})   p99 {r['p99'] - base['p99']:+.3f} ms (x{r['p99'] / base['p99']:.2f})")
if any(not (r["full"] and r["ok"] == r["total"]) for r in rows):
    print()
    print("! = some requests failed or responses were short (oha/h2load count HTTP 200 only)")
print()
print(f"note: generator, gateway and backend share the same {cores} cores; the gateway runs add a")
print("      third busy process, so on small machines the overhead includes CPU contention.")
EOF
