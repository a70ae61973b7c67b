#!/usr/bin/env bash
# The /docs reference page renders the bundled API's operations in a real browser (Debian's
# chromium, headless), with every host but the gateway unreachable: its assets are the ones
# embedded in the binary (assets/swagger-ui), no CDN.
#
#   bash ci/check-docs-page.sh
#
# Starts target/debug/protogate (built when missing) with `serve --mock` on the bundled example,
# loads http://127.0.0.1:$PORT/docs, and compares the operations the page shows with the
# operations of /openapi.json that Swagger UI can show (those of standard HTTP methods).
# Exit 0 when they match; 1 otherwise; 2 when chromium is missing and cannot be installed.
#   PORT=18093   the gateway's port
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${PORT:-18093}
say() { echo "check-docs-page: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
    { say "chromium is missing and could not be installed"; exit 2; }
fi
bin=$root/target/debug/protogate
[ -x "$bin" ] || cargo build --quiet --bin protogate

work=$(mktemp -d "${TMPDIR:-/tmp}/protogate-docs.XXXXXX")
"$bin" serve --mock --watch false --listen "127.0.0.1:$port" >"$work/gateway.log" 2>&1 &
gateway=$!
trap 'kill $gateway 2>/dev/null || true; wait $gateway 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/openapi.json" -o "$work/openapi.json" 2>/dev/null && break
  sleep 0.2
done
[ -s "$work/openapi.json" ] || { say "the gateway did not answer"; cat "$work/gateway.log" >&2; exit 1; }

# Every host but the gateway's fails to resolve: a page that needed a CDN would not render.
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
  --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
  --virtual-time-budget=30000 --dump-dom "http://127.0.0.1:$port/docs" \
  >"$work/dom.html" 2>"$work/chromium.log" || { say "chromium failed"; tail -n 20 "$work/chromium.log" >&2; exit 1; }

python3 - "$work/openapi.json" "$work/dom.html" <<'PY'
import html, json, re, sys
doc = json.load(open(sys.argv[1]))
dom = open(sys.argv[2]).read()
standard = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
want = sorted((m.upper(), p) for p, item in doc["paths"].items() for m in item if m in standard)
# Each operation's summary row: the method badge, then the path (with zero-width spaces
# Swagger UI inserts after each `/`).
rows = re.findall(r'opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"', dom, re.S)
got = sorted((m, html.unescape(p)) for m, p in rows)
tags = [t["name"] for t in doc.get("tags", [])]
missing_tags = [t for t in tags if f'data-tag="{t}"' not in dom]
print(f"check-docs-page: the page shows {len(got)} operations; the document has {len(want)} "
      f"(of standard methods), tags {tags}")
if got != want or missing_tags:
    print("missing:", sorted(set(want) - set(got)), "unexpected:", sorted(set(got) - set(want)),
          "missing tags:", missing_tags)
    sys.exit(1)
PY
