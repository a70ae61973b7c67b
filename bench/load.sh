#!/usr/bin/env bash
# Load test: GetBook (shelves/1/books/1) through protogate in every protocol (REST/JSON, native
# gRPC pass-through, gRPC-Web, Connect) versus directly over gRPC to the same example backend,
# plus a server stream (StreamBooks as REST NDJSON versus direct gRPC), alternated over rounds:
# req/s, p50 and p99 with their ratios to direct gRPC, CPU per request of the gateway, the
# backend and the load generator, and the peak RSS of the gateway and the backend.
#
#   bench/load.sh                                   # 3 rounds, 10 s per run, 32 connections
#   LOAD_DURATION=30 LOAD_CONCURRENCY=64 bench/load.sh
#   LOAD_SCENARIOS="grpc rest-h1" LOAD_ROUNDS=5 bench/load.sh
#   LOAD_SMOKE=1 bench/load.sh                      # CI: debug binaries, 1 round of 1 s runs
#
# Environment (all optional):
#   LOAD_DURATION      seconds per measured run                        (10; smoke: 1)
#   LOAD_WARMUP        seconds of unmeasured warm-up before each scenario's first run
#                      (first round only; 0 = none)                     (2; smoke: 0)
#   LOAD_ROUNDS        rounds; each runs every scenario once, in order, so that scenarios
#                      alternate and slow drift (thermal, neighbours) hits all of them alike.
#                      Ratios are taken per round against that round's direct run; the table
#                      shows medians over rounds and the range of the per-round ratios
#                                                                       (3; smoke: 1)
#   LOAD_CONCURRENCY   connections (one request in flight on each)      (32)
#   LOAD_SCENARIOS     which runs, space separated, in this order within each round:
#                        grpc         direct gRPC to the backend over h2c
#                        rest-h1      REST GET through the gateway over HTTP/1.1
#                        rest-h2      REST GET through the gateway over cleartext HTTP/2
#                        grpc-gw      native gRPC through the gateway (pass-through, h2c)
#                        grpc-web     gRPC-Web (binary) through the gateway over HTTP/1.1
#                        connect      Connect unary JSON POST through the gateway over HTTP/1.1
#                        stream-grpc  StreamBooks (server stream) direct gRPC over h2c
#                        stream-rest  StreamBooks as REST NDJSON through the gateway (HTTP/1.1)
#                        stream-sse   StreamBooks as REST SSE through the gateway (HTTP/1.1)
#                      One request is one whole stream. Unary scenarios are compared with
#                      grpc, stream scenarios with stream-grpc (when those are in the list)
#                      ("grpc rest-h1 rest-h2 grpc-gw grpc-web connect stream-grpc stream-rest")
#   LOAD_STREAM_REPEAT StreamBooks' `repeat`: each stream sends shelf 1's 3 books this many
#                      times over (3 x N Book messages per stream)      (10)
#   LOAD_GENERATOR     oha | h2load                                     (oha; smoke: oha if
#                      already installed, else h2load -- smoke never runs cargo install)
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
#                      direct gRPC goes to the first backend; backend CPU and RSS cover all (1)
#   LOAD_SMOKE         1 = smoke test (CI): the debug binaries (target/debug/protogate and
#                      target/debug/examples/library_server, which `cargo test` builds; the
#                      script runs `cargo build --bin protogate --example library_server`,
#                      a no-op after it), defaults of 1 round of 1 s runs without warm-up, and
#                      the exit status fails when any scenario's answers were wrong (sanity
#                      checks before loading, then every request of every run must be a 200
#                      with the whole expected body). Timing is printed, never asserted  (0)
#   LOAD_SKIP_BUILD    1 = use the existing binaries as they are (no cargo build)
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
#
# CPU per request: utime + stime (all threads) from /proc/PID/stat of the gateway and the
# backend(s) just before and just after each measured run, and of the generator (a child of
# this shell: the difference of this shell's cutime + cstime across the run), in clock ticks
# (getconf CLK_TCK, usually 10 ms), divided by the requests the run completed. Everything
# shares the machine's cores, so on a small machine all three are CPU-bound together: the
# per-request figures, not req/s, say what the gateway costs next to the backend. Peak RSS is
# VmHWM from /proc/PID/status after the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

smoke=${LOAD_SMOKE:-0}
[[ $smoke == 0 || $smoke == 1 ]] || { echo "load.sh: LOAD_SMOKE must be 0 or 1" >&2; exit 1; }
if [[ $smoke == 1 ]]; then
  duration=${LOAD_DURATION:-1} warmup=${LOAD_WARMUP:-0} rounds=${LOAD_ROUNDS:-1}
else
  duration=${LOAD_DURATION:-10} warmup=${LOAD_WARMUP:-2} rounds=${LOAD_ROUNDS:-3}
fi
conc=${LOAD_CONCURRENCY:-32}
scenarios=${LOAD_SCENARIOS:-grpc rest-h1 rest-h2 grpc-gw grpc-web connect stream-grpc stream-rest}
stream_repeat=${LOAD_STREAM_REPEAT:-10}
generator=${LOAD_GENERATOR:-oha}
# Smoke mode takes oha only when it is already there: compiling it takes minutes.
may_install_oha=1
[[ $smoke == 1 && -z ${LOAD_GENERATOR:-} ]] && may_install_oha=0
oha_version=${OHA_VERSION:-1.16.0}
book_path=/v1/shelves/1/books/1
grpc_method=/library.v1.LibraryService/GetBook
stream_path=/v1/shelves/1/books:stream
stream_method=/library.v1.LibraryService/StreamBooks
title="The Left Hand of Darkness"

log() { printf '%s\n' "$*" >&2; }
die() {
  log "load.sh: $*"
  exit 1
}
for v in duration warmup conc rounds stream_repeat; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((duration > 0 && conc > 0 && rounds > 0)) || die "LOAD_DURATION, LOAD_CONCURRENCY and LOAD_ROUNDS must be positive"
((stream_repeat >= 1 && stream_repeat <= 100000)) || die "LOAD_STREAM_REPEAT must be 1 to 100000"
stream_msgs=$((3 * stream_repeat))
all_scenarios="grpc rest-h1 rest-h2 grpc-gw grpc-web connect stream-grpc stream-rest stream-sse"
[[ -n ${scenarios// /} ]] || die "LOAD_SCENARIOS is empty"
for s in $scenarios; do
  [[ " $all_scenarios " == *" $s "* ]] || die "unknown scenario '$s' (use ${all_scenarios// /, })"
done
clk_tck=$(getconf CLK_TCK 2>/dev/null) || clk_tck=100
cores=$(nproc)
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
    elif ((!may_install_oha)); then
      log "oha is not installed; smoke mode uses h2load instead of compiling it"
      generator=h2load
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
# Smoke mode uses the debug binaries `cargo test` has already built.
profile=release build_flags=(--release)
if [[ $smoke == 1 ]]; then profile=debug build_flags=(); fi
build_cmd="cargo build ${build_flags[*]}${build_flags[*]:+ }--bin protogate --example library_server"
build_note="skipped (LOAD_SKIP_BUILD=1)"
if [[ ${LOAD_SKIP_BUILD:-} != 1 ]]; then
  log "$build_cmd ..."
  t0=$(date +%s.%N)
  cargo build "${build_flags[@]}" --bin protogate --example library_server >"$work/build.log" 2>&1 ||
    die "$profile build failed"
  t1=$(date +%s.%N)
  build_note="$(python3 -c "print(f'{$t1 - $t0:.1f} s')") ($build_cmd)"
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
gateway_bin=$target_dir/$profile/protogate
backend_bin=$target_dir/$profile/examples/library_server
[[ -x $gateway_bin && -x $backend_bin ]] || die "$profile binaries missing: run without LOAD_SKIP_BUILD=1"

# ---- start the backend and the gateway -------------------------------------------------
# Both listen on port 0 (no race with other processes over a "free" port) and report the
# address they got: the example prints "library_server listening on ADDR", the gateway logs
# "protogate listening on http://ADDR" (https:// with LOAD_TLS).
start() { # NAME LOG COMMAND...: starts COMMAND in the background; sets $addr from LOG
  local name=$1 out=$2 i
  shift 2
  : >"$out"
  # Appending, so that truncating the log between runs (below) frees its space at once.
  "$@" >>"$out" 2>&1 &
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
backend=$addr backend_pids=("${pids[-1]}")
backends=${LOAD_BACKENDS:-1}
[[ $backends =~ ^[1-9][0-9]?$ && $backends -le 254 ]] || die "LOAD_BACKENDS must be 1 to 254"
endpoints="'$backend'"
for ((k = 2; k <= backends; k++)); do
  start "backend $k" "$work/backend-$k.log" "$backend_bin" --listen "127.0.0.$k:${backend##*:}"
  endpoints+=", '$addr'" backend_pids+=("${pids[-1]}")
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
# {name: "shelves/1/books/1"} (field 1, wire type 2: 0x0a, length, bytes); the stream's:
# StreamBooksRequest {parent: "shelves/1", repeat: N} (field 3, varint: 0x18, varint).
grpc_body=$work/getbook.grpc
stream_body=$work/streambooks.grpc
python3 - "$grpc_body" "$stream_body" "$stream_repeat" <<'EOF'
import struct, sys
def frame(path, msg):
    with open(path, "wb") as f:
        f.write(b"\x00" + struct.pack(">I", len(msg)) + msg)
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
name, parent = b"shelves/1/books/1", b"shelves/1"
frame(sys.argv[1], b"\x0a" + bytes([len(name)]) + name)
frame(sys.argv[2], b"\x0a" + bytes([len(parent)]) + parent + b"\x18" + varint(int(sys.argv[3])))
EOF

rest_url=$scheme://$gateway$book_path
grpc_url=http://$backend$grpc_method
gw_grpc_url=$scheme://$gateway$grpc_method
connect_body='{"name":"shelves/1/books/1"}'
stream_rest_url="$scheme://$gateway$stream_path?repeat=$stream_repeat"
stream_grpc_url=http://$backend$stream_method

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
# The server stream, directly and as REST (NDJSON, SSE): all 3 x LOAD_STREAM_REPEAT books.
curl -sS "${auth[@]}" --http2-prior-knowledge -X POST -H 'content-type: application/grpc' -H 'te: trailers' \
  --data-binary "@$stream_body" -D "$work/stream-grpc.headers" -o "$work/stream-grpc.body" "$stream_grpc_url" ||
  die "direct gRPC StreamBooks failed"
grep -qi '^grpc-status: *0' "$work/stream-grpc.headers" || die "direct gRPC StreamBooks did not succeed"
curl -fsS "${tls[@]}" "${auth[@]}" --http1.1 -o "$work/stream-rest.body" "$stream_rest_url" ||
  die "GET $stream_rest_url failed"
curl -fsS "${tls[@]}" "${auth[@]}" --http1.1 -H 'accept: text/event-stream' -o "$work/stream-sse.body" \
  "$stream_rest_url" || die "GET $stream_rest_url (SSE) failed"
python3 - "$work" "$stream_msgs" "$title" <<'EOF' || die "a StreamBooks answer was not the whole stream"
import json, struct, sys
work, want, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def check(what, got, ok):
    if got != want or not ok:
        sys.exit(f"load.sh: {what}: {got} messages (expected {want}), complete: {ok}")
data, n, i = open(f"{work}/stream-grpc.body", "rb").read(), 0, 0
while i + 5 <= len(data):
    n, i = n + (data[i] == 0), i + 5 + struct.unpack(">I", data[i + 1 : i + 5])[0]
check("direct gRPC", n, i == len(data) and title.encode() in data)
lines = open(f"{work}/stream-rest.body").read().splitlines()
check("NDJSON", len(lines), all(json.loads(l).get("name", "").startswith("shelves/1/books/") for l in lines))
sse = open(f"{work}/stream-sse.body").read()
events = [e for e in sse.split("\n\n") if e.strip()]
books = [e for e in events if e.startswith("id: ")]
check("SSE", len(books), events[-1].startswith("event: end") and title in sse)
EOF
declare -A body_size=(
  [grpc]=$grpc_size [rest-h1]=$rest_size [rest-h2]=$rest_size
  [grpc-gw]=$(wc -c <"$work/gw-grpc.body") [grpc-web]=$(wc -c <"$work/grpc-web.body")
  [connect]=$(wc -c <"$work/connect.json")
  [stream-grpc]=$(wc -c <"$work/stream-grpc.body") [stream-rest]=$(wc -c <"$work/stream-rest.body")
  [stream-sse]=$(wc -c <"$work/stream-sse.body")
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
    oha:stream-grpc) args=("${auth[@]}" --http2 -m POST -H 'content-type: application/grpc' -H 'te: trailers' -D "$stream_body" "$stream_grpc_url") ;;
    oha:stream-rest) args=("${auth[@]}" --http-version 1.1 "$stream_rest_url") ;;
    oha:stream-sse) args=("${auth[@]}" --http-version 1.1 -H 'accept: text/event-stream' "$stream_rest_url") ;;
    h2load:grpc) args=("${auth[@]}" -H 'content-type: application/grpc' -H 'te: trailers' -d "$grpc_body" "$grpc_url") ;;
    h2load:rest-h1) args=("${auth[@]}" --h1 "$rest_url") ;;
    h2load:rest-h2) args=("${auth[@]}" "$rest_url") ;;
    h2load:grpc-gw) args=("${auth[@]}" -H 'content-type: application/grpc' -H 'te: trailers' -d "$grpc_body" "$gw_grpc_url") ;;
    h2load:grpc-web) args=("${auth[@]}" --h1 -H 'content-type: application/grpc-web+proto' -d "$grpc_body" "$gw_grpc_url") ;;
    h2load:connect) args=("${auth[@]}" --h1 -H 'content-type: application/json' -H 'connect-protocol-version: 1' -d "$work/connect.req" "$gw_grpc_url") ;;
    h2load:stream-grpc) args=("${auth[@]}" -H 'content-type: application/grpc' -H 'te: trailers' -d "$stream_body" "$stream_grpc_url") ;;
    h2load:stream-rest) args=("${auth[@]}" --h1 "$stream_rest_url") ;;
    h2load:stream-sse) args=("${auth[@]}" --h1 -H 'accept: text/event-stream' "$stream_rest_url") ;;
    *) die "unknown scenario '$name'" ;;
  esac
  # In the background plus `wait`, so that Ctrl-C runs the trap at once (bash defers traps
  # while a foreground command runs, and skips them when that command handles SIGINT itself).
  if [[ $generator == oha ]]; then
    # -w: requests in flight at the deadline finish (and count) instead of being aborted.
    local insecure=()
    [[ $name != grpc && $name != stream-grpc && ${#tls[@]} -gt 0 ]] && insecure=(--insecure)
    "$oha" --no-tui -w -z "${secs}s" -c "$conc" --output-format json "${insecure[@]}" "${args[@]}" >"$out" 2>"$out.err" &
  else
    h2load -D "$secs" -c "$conc" -m 1 -t "$((cores < conc ? cores : conc))" --log-file "$out.requests" "${args[@]}" \
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
  [stream-grpc]="stream: gRPC direct (h2c)"
  [stream-rest]="stream: NDJSON via gateway (HTTP/1.1)"
  [stream-sse]="stream: SSE via gateway (HTTP/1.1)"
)
if [[ $scheme == https ]]; then
  for k in rest-h1 rest-h2 grpc-gw grpc-web connect stream-rest stream-sse; do
    label[$k]="${label[$k]/h2c/HTTP\/2} over TLS"
  done
fi

# CPU and memory from /proc. These set variables instead of printing, so that no command
# substitution forks a child this shell would reap (and count in its cutime) during a run.
ticks() { # PID: $ticks = its utime + stime, all threads, in clock ticks (0 once it is gone)
  local stat f
  ticks=0
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
  read -r -a f <<<"${stat##*) }"
  ticks=$((f[11] + f[12]))
}
sample() { # $gw_t, $be_t (all backends), $gen_t (this shell's reaped children: the generator)
  local p stat f
  ticks "$gateway_pid"
  gw_t=$ticks be_t=0
  for p in "${backend_pids[@]}"; do
    ticks "$p"
    be_t=$((be_t + ticks))
  done
  read -r stat <"/proc/$$/stat"
  read -r -a f <<<"${stat##*) }"
  gen_t=$((f[13] + f[14]))
}
kib() { # FIELD PIDS...: $kib = the sum of FIELD (VmRSS, VmHWM) over PIDS, in KiB
  local field=$1 p k v rest
  shift
  kib=0
  for p in "$@"; do
    while read -r k v rest; do
      [[ $k == "$field:" ]] && kib=$((kib + v))
    done 2>/dev/null <"/proc/$p/status" || true
  done
}

printf '%s' "$connect_body" >"$work/connect.req"
results=()
loadavg=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')
kib VmRSS "$gateway_pid"
gw_rss0=$kib
kib VmRSS "${backend_pids[@]}"
be_rss0=$kib
for ((round = 1; round <= rounds; round++)); do
  for s in $scenarios; do
    if ((round == 1 && warmup > 0)); then
      run "$s" "$warmup" "$work/warmup-$s" || die "warm-up of $s failed: $(cat "$work/warmup-$s.err")"
    fi
    log "round $round/$rounds: ${label[$s]} for ${duration}s at ${conc} connections ..."
    sample
    g0=$gw_t b0=$be_t c0=$gen_t
    run "$s" "$duration" "$work/$s-$round" || die "$s run failed: $(cat "$work/$s-$round.err")"
    sample
    results+=("$round|$s|${label[$s]}|$work/$s-$round|${body_size[$s]}|$((gw_t - g0))|$((be_t - b0))|$((gen_t - c0))")
    for p in "${backend_pids[@]}"; do
      kill -0 "$p" 2>/dev/null || die "a backend died during the $s run"
    done
    kill -0 "$gateway_pid" 2>/dev/null || die "the gateway died during the $s run"
    # The access log (on, as by default) writes ~250 bytes a request: a full run would
    # leave gigabytes. Only the last run's lines are kept (shown if the script fails).
    : >"$work/gateway.log"
  done
done
kib VmHWM "$gateway_pid"
gw_hwm=$kib
kib VmHWM "${backend_pids[@]}"
be_hwm=$kib

# ---- report -----------------------------------------------------------------------------
report_rc=0
PYTHONIOENCODING=utf-8 python3 - "$generator" "$gen_desc" "$profile" "$build_note" "$duration" "$conc" \
  "$cores" "$loadavg" "$rounds" "$warmup" "$clk_tck" "$stream_repeat" "$smoke" \
  "$gw_rss0" "$gw_hwm" "$be_rss0" "$be_hwm" "$backends" "${results[@]}" <<'EOF' || report_rc=$?
import json, re, statistics, sys

(generator, gen_desc, profile, build_note, duration, conc, cores, loadavg, rounds, warmup, clk,
 repeat, smoke, gw_rss0, gw_hwm, be_rss0, be_hwm, backends) = sys.argv[1:19]
conc, rounds, clk, repeat, backends = int(conc), int(rounds), int(clk), int(repeat), int(backends)
msgs = 3 * repeat
nan = float("nan")
runs = []
for spec in sys.argv[19:]:
    rnd, key, label, path, size, gw, be, gen = spec.split("|")
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
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else nan
        p50, p99 = pct(0.50), pct(0.99)
        rps = total / ((end - start) / 1e6) if total else 0.0
        # h2load's "traffic: ... 5.04MB (5283232) data" counts body bytes, including those of
        # the (at most one per connection) requests still in flight at the deadline.
        m = re.search(r"^traffic:.*\((\d+)\) data", open(path).read(), re.M)
        full = bool(m) and ok * size <= int(m.group(1)) <= (ok + conc) * size
    # CPU µs per completed request (per whole stream for the stream scenarios).
    cpu = {k: int(v) * 1e6 / clk / total if total else nan for k, v in (("gw", gw), ("be", be), ("gen", gen))}
    runs.append(dict(round=int(rnd), key=key, label=label, rps=rps, p50=p50, p99=p99, ok=ok,
                     total=total, size=size, full=full, cpu=cpu))

med = statistics.median
keys = list(dict.fromkeys(r["key"] for r in runs))
rows = []
for k in keys:
    rs = [r for r in runs if r["key"] == k]
    rows.append(dict(key=k, label=rs[0]["label"], size=rs[0]["size"], runs=rs,
                     rps=med(r["rps"] for r in rs), p50=med(r["p50"] for r in rs), p99=med(r["p99"] for r in rs),
                     ok=sum(r["ok"] for r in rs), total=sum(r["total"] for r in rs),
                     good=all(r["full"] and r["ok"] == r["total"] and r["total"] > 0 for r in rs),
                     cpu={c: med(r["cpu"][c] for r in rs) for c in ("gw", "be", "gen")}))
by_key = {r["key"]: r for r in rows}
w = max([38] + [len(r["label"]) for r in rows])  # the label column

print("protogate load test: GetBook (shelves/1/books/1) through the gateway in each protocol vs direct gRPC,")
print(f"  and StreamBooks (shelves/1, repeat {repeat}: {msgs} Book messages per stream) as NDJSON vs direct gRPC")
print(f"  generator:     {gen_desc}")
print(f"  {profile + ' build:':<15}{build_note}")
print(f"  per run:       {duration} s, {conc} connections (1 request in flight each), loopback;"
      f" {rounds} round(s), scenarios alternated; warm-up {warmup} s before each scenario's first run")
print(f"  machine:       {cores} CPU cores, 1-min load average {loadavg} before the first run")
print()
med_note = f"median of {rounds} rounds" if rounds > 1 else "1 round"
hdr = (f"{'scenario (' + med_note + ')':<{w}} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ok/total':>15} {'body B':>7}"
       f"  {'gateway':>8} {'backend':>8} {'loadgen':>8}")
print(f"{'':<{w}} {'':>9} {'':>8} {'':>8} {'':>15} {'':>7}  {'CPU µs per request (user+sys)':>26}")
print(hdr)
print("-" * len(hdr))
for r in rows:
    flag = "" if r["good"] else "  !"
    c = r["cpu"]
    print(f"{r['label']:<{w}} {r['rps']:>9.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {str(r['ok']) + '/' + str(r['total']):>15}"
          f" {r['size']:>7}  {c['gw']:>8.1f} {c['be']:>8.1f} {c['gen']:>8.1f}{flag}")

def base_of(key):
    return "stream-grpc" if key.startswith("stream-") else "grpc"

def cell(vals):
    vals = [v for v in vals if v == v]
    if not vals:
        return "-"
    m = med(vals)
    return f"x{m:.2f}" if len(vals) == 1 else f"x{m:.2f} ({min(vals):.2f}-{max(vals):.2f})"

cmp = [r for r in rows if r["key"] != base_of(r["key"]) and base_of(r["key"]) in by_key]
if cmp:
    print()
    rng = "median (min-max) of the per-round ratios" if rounds > 1 else "one round"
    print(f"vs direct gRPC in the same round ({rng}; streams vs the direct stream):")
    hdr = f"  {'':<{w}} {'req/s':>20} {'p50':>20} {'p99':>20} {'gateway CPU':>18}"
    print(hdr)
    for r in cmp:
        base = {b["round"]: b for b in by_key[base_of(r["key"])]["runs"]}
        ratios = {m: [x[m] / base[x["round"]][m] if base[x["round"]][m] else nan
                      for x in r["runs"] if x["round"] in base] for m in ("rps", "p50", "p99")}
        # what the gateway burns per request, as a multiple of what the backend burns
        gw_be = r["cpu"]["gw"] / r["cpu"]["be"] if r["cpu"]["be"] else nan
        print(f"  {r['label']:<{w}} {cell(ratios['rps']):>20} {cell(ratios['p50']):>20} {cell(ratios['p99']):>20}"
              f" {gw_be:>7.2f}x backend's")

streams = [r for r in rows if r["key"].startswith("stream-")]
if streams:
    print()
    print(f"server stream: one request = one whole StreamBooks stream of {msgs} Book messages "
          f"(shelf 1's 3 books x repeat {repeat}):")
    for r in streams:
        c = r["cpu"]
        print(f"  {r['label']:<{w}} {r['rps'] * msgs:>10,.0f} msgs/s   CPU µs per message: gateway {c['gw'] / msgs:.2f},"
              f" backend {c['be'] / msgs:.2f}, loadgen {c['gen'] / msgs:.2f}")
    if "stream-grpc" in by_key and len(streams) > 1:
        print(f"  (direct, the backend serves the generator's {conc} connections; through the gateway, the gateway's")
        print("  upstream connection(s): its CPU per stream and the direct stream's latency differ for that too)")

mib = lambda k: int(k) / 1024
print()
bes = "backend" if backends == 1 else f"{backends} backends (sum)"
print(f"peak RSS (VmHWM after the last run): gateway {mib(gw_hwm):.1f} MiB ({mib(gw_rss0):.1f} MiB after start-up),"
      f" {bes} {mib(be_hwm):.1f} MiB ({mib(be_rss0):.1f} MiB)")
bad = [r["label"] for r in rows if not r["good"]]
if bad:
    print()
    print("! = some requests failed or responses were short (oha/h2load count HTTP 200 only)")
print()
print(f"note: generator, gateway and backend share the same {cores} cores and are all CPU-bound; req/s")
print("      ratios include that contention, the CPU columns show each process's own cost.")
if smoke == "1":
    print()
    if bad:
        print(f"smoke: FAILED: {', '.join(bad)}")
        sys.exit(3)
    print("smoke: every scenario answered correctly (timings are not asserted)")
EOF
((report_rc != 3)) || die "smoke test failed: a scenario's requests failed or came back short (the ! rows)"
((report_rc == 0)) || die "report failed (exit status $report_rc)"
