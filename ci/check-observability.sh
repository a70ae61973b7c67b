#!/usr/bin/env bash
# Checks the observability assets in deploy/ and, when a debug build exists, the gateway's own
# /metrics output:
#
#   1. promtool check rules   deploy/prometheus/alerts.yml
#   2. promtool test rules    unit tests of the SLO and operational alerts (written to a temp
#                             file below: synthetic series, which alerts must fire and which not)
#   3. promtool check config  deploy/prometheus/prometheus.yml (loads alerts.yml beside it)
#   4. the Grafana dashboard  deploy/grafana/protogate-dashboard.json: valid JSON, schemaVersion
#                             >= 36, a DS_PROMETHEUS datasource variable used by every panel, the
#                             job/protocol/method variables, every query parses (promtool) and uses
#                             only protogate's metric names, and every metric has a panel
#   5. the live gateway       (only when target/debug/protogate exists): starts
#                             `protogate serve --mock` with an admin listener, sends REST calls
#                             (a unary GET, a 404, a server stream), a reload, scrapes
#                             http://ADMIN/metrics, runs `promtool check metrics` on it and checks
#                             the metric names and labels the rules rely on.
#
#   ci/check-observability.sh             # from anywhere; exit 1 if any step failed
#
# Each step prints "ok" or "FAILED: <step>" with the reason; a summary lists the failed steps.
# promtool: used from PATH (or $PROMTOOL); when missing, installed from the Debian package
# `prometheus` with apt-get (needs root; ~20 s on Debian 12). Needs python3 and curl.
#   PROTOGATE_BIN=PATH      gateway binary for step 5 (default target/debug/protogate)
#   OBS_SKIP_LIVE=1         skip step 5
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rules=deploy/prometheus/alerts.yml
config=deploy/prometheus/prometheus.yml
dashboard=deploy/grafana/protogate-dashboard.json
bin=${PROTOGATE_BIN:-$root/target/debug/protogate}

# The metric families protogate exports (src/observe/metrics.rs); histograms get the
# _bucket/_sum/_count suffixes.
metrics_counters="protogate_requests_total protogate_stream_messages_total protogate_upstream_errors_total protogate_deadline_exceeded_total protogate_cancelled_total protogate_config_reloads_total"
metrics_gauges="protogate_requests_in_flight protogate_streams_active protogate_build_info"
metrics_histograms="protogate_request_duration_seconds protogate_stream_duration_seconds protogate_upstream_request_duration_seconds"
export metrics_counters metrics_gauges metrics_histograms

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=()
step() { printf '\n==> %s\n' "$*"; }
ok() { echo "ok"; }
fail() { # STEP MESSAGE...
  local s=$1
  shift
  echo "FAILED: $s${*:+: $*}" >&2
  failed+=("$s")
}
# run STEP CMD...: runs CMD, shows its output, records STEP as failed on a non-zero exit.
run() {
  local s=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    sed 's/^/    /' "$work/out"
    ok
  else
    sed 's/^/    /' "$work/out" >&2
    fail "$s"
    return 1
  fi
}

# ---- promtool ----------------------------------------------------------------------------
step "promtool"
promtool=${PROMTOOL:-promtool}
if ! "$promtool" --version >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "promtool not found: installing the Debian package prometheus"
    t0=$(date +%s)
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } \
      >"$work/apt.log" 2>&1; then
      echo "installed in $(($(date +%s) - t0)) s"
    else
      tail -n 20 "$work/apt.log" >&2
    fi
    promtool=promtool
  fi
fi
if "$promtool" --version >/dev/null 2>&1; then
  "$promtool" --version 2>&1 | head -n 1
  ok
else
  fail "promtool" "not found and not installable (install the Debian/Ubuntu package prometheus, or set PROMTOOL)"
  echo "observability checks: promtool is required; stopping" >&2
  exit 1
fi

# ---- 1. rules -------------------------------------------------------------------------------
step "1. promtool check rules $rules"
run "promtool check rules" "$promtool" check rules "$rules"

# Metric names used by the rules: protogate's, `up`, and the file's own recording rules.
if python3 -c 'import yaml' 2>/dev/null; then
  step "1b. metric names in $rules"
  run "rule metric names" python3 - "$rules" <<'EOF'
import os, re, sys, yaml
allowed = set(os.environ["metrics_counters"].split() + os.environ["metrics_gauges"].split())
for h in os.environ["metrics_histograms"].split():
    allowed |= {h + "_bucket", h + "_sum", h + "_count"}
doc = yaml.safe_load(open(sys.argv[1]))
rules = [r for g in doc["groups"] for r in g["rules"]]
allowed |= {"up"} | {r["record"] for r in rules if "record" in r}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan"}
def names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    return {m.group(0) for m in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*(?!\w*\s*\()", e)
            if m.group(0).lower() not in KEYWORDS}
bad, missing = [], []
for r in rules:
    name = r.get("record") or r.get("alert")
    for n in sorted(names(str(r["expr"])) - allowed):
        bad.append(f"{name}: {n}")
    if "alert" in r:
        for k in ("summary", "description"):
            if not r.get("annotations", {}).get(k):
                missing.append(f"{name}: no {k} annotation")
        if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            missing.append(f"{name}: severity label must be critical, warning or info")
if bad or missing:
    for b in bad:
        print("unknown metric name in", b)
    for m in missing:
        print(m)
    sys.exit(1)
print(f"{len(rules)} rules, {sum('alert' in r for r in rules)} alerts: metric names, annotations and severities ok")
EOF
fi

# ---- 2. alert unit tests ----------------------------------------------------------------------
step "2. promtool test rules (alert unit tests)"
# Two hours of synthetic series at 1/min; at 70 min:
#   GetBook     10% UNAVAILABLE                -> availability burn alerts (fast and slow)
#   ListBooks   1/3 NOT_FOUND, 25% over 250 ms -> no availability alert (client errors), latency alerts
#   DeleteShelf every call INTERNAL, 3 calls/h -> no alert (below the low-traffic floor)
#   gw2 down since 61 min, a reload failure at 65 min, an upstream refusing connections.
cat >"$work/alerts_test.yml" <<EOF
rule_files:
  - $root/$rules
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="protogate",instance="gw1:9091"}'
        values: '1x120'
      - series: 'up{job="protogate",instance="gw2:9091"}'
        values: '1x60 0x60'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/GetBook",route="GET /v1/{name=shelves/*/books/*}",code="OK",status="200"}'
        values: '0+540x120'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="grpc",method="library.v1.LibraryService/GetBook",route="none",code="UNAVAILABLE",status="200"}'
        values: '0+60x120'
      - series: 'protogate_request_duration_seconds_bucket{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/GetBook",route="GET /v1/{name=shelves/*/books/*}",code="OK",le="0.25"}'
        values: '0+600x120'
      - series: 'protogate_request_duration_seconds_count{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/GetBook",route="GET /v1/{name=shelves/*/books/*}",code="OK"}'
        values: '0+600x120'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/ListBooks",route="GET /v1/{parent=shelves/*}/books",code="OK",status="200"}'
        values: '0+400x120'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/ListBooks",route="GET /v1/{parent=shelves/*}/books",code="NOT_FOUND",status="404"}'
        values: '0+200x120'
      - series: 'protogate_request_duration_seconds_bucket{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/ListBooks",route="GET /v1/{parent=shelves/*}/books",code="OK",le="0.25"}'
        values: '0+450x120'
      - series: 'protogate_request_duration_seconds_count{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/ListBooks",route="GET /v1/{parent=shelves/*}/books",code="OK"}'
        values: '0+600x120'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="rest",method="library.v1.LibraryService/DeleteShelf",route="DELETE /v1/{name=shelves/*}",code="INTERNAL",status="500"}'
        values: '0+0.05x120'
      - series: 'protogate_requests_total{job="protogate",instance="gw1:9091",protocol="rest",method="unknown",route="none",code="NOT_FOUND",status="404"}'
        values: '0+600x120'
      - series: 'protogate_config_reloads_total{job="protogate",instance="gw1:9091",result="success"}'
        values: '1x120'
      - series: 'protogate_config_reloads_total{job="protogate",instance="gw1:9091",result="failure"}'
        values: '_x64 1x55'
      - series: 'protogate_upstream_errors_total{job="protogate",instance="gw1:9091",upstream="library",kind="unavailable"}'
        values: '0+30x120'
    promql_expr_test:
      - expr: protogate:request_errors:ratio_rate5m
        eval_time: 70m
        exp_samples:
          - labels: 'protogate:request_errors:ratio_rate5m{job="protogate",method="library.v1.LibraryService/GetBook"}'
            value: 0.1
          - labels: 'protogate:request_errors:ratio_rate5m{job="protogate",method="library.v1.LibraryService/ListBooks"}'
            value: 0
          - labels: 'protogate:request_errors:ratio_rate5m{job="protogate",method="library.v1.LibraryService/DeleteShelf"}'
            value: 1
      - expr: protogate:unary_requests_slow:ratio_rate1h
        eval_time: 70m
        exp_samples:
          - labels: 'protogate:unary_requests_slow:ratio_rate1h{job="protogate",method="library.v1.LibraryService/GetBook"}'
            value: 0
          - labels: 'protogate:unary_requests_slow:ratio_rate1h{job="protogate",method="library.v1.LibraryService/ListBooks"}'
            value: 0.25
      - expr: count by (alertname) (ALERTS{alertstate="firing"})
        eval_time: 70m
        exp_samples:
          - {labels: '{alertname="ProtogateErrorBudgetBurnFast"}', value: 1}
          - {labels: '{alertname="ProtogateErrorBudgetBurnSlow"}', value: 1}
          - {labels: '{alertname="ProtogateLatencyBudgetBurnFast"}', value: 1}
          - {labels: '{alertname="ProtogateLatencyBudgetBurnSlow"}', value: 1}
          - {labels: '{alertname="ProtogateDown"}', value: 1}
          - {labels: '{alertname="ProtogateConfigReloadFailed"}', value: 1}
          - {labels: '{alertname="ProtogateUpstreamErrors"}', value: 1}
      - expr: ALERTS{alertstate="firing", alertname=~"Protogate(Error|Latency)BudgetBurnFast"}
        eval_time: 70m
        exp_samples:
          - labels: 'ALERTS{alertname="ProtogateErrorBudgetBurnFast",alertstate="firing",job="protogate",method="library.v1.LibraryService/GetBook",severity="critical",slo="availability"}'
            value: 1
          - labels: 'ALERTS{alertname="ProtogateLatencyBudgetBurnFast",alertstate="firing",job="protogate",method="library.v1.LibraryService/ListBooks",severity="critical",slo="latency"}'
            value: 1
      # Before anything went wrong (the first 2 minutes have too little data for rate()).
      - expr: ALERTS{alertstate="firing", alertname!~"Protogate(Error|Latency)BudgetBurn.*|ProtogateUpstreamErrors"}
        eval_time: 30m
        exp_samples: []
    alert_rule_test:
      - alertname: ProtogateDown
        eval_time: 70m
        exp_alerts:
          - exp_labels: {severity: critical, job: protogate, instance: "gw2:9091"}
            exp_annotations:
              summary: "protogate gw2:9091 is down"
              description: "Prometheus has not been able to scrape the admin listener of gw2:9091 (job protogate) for 2 minutes: the gateway is not running, or its --admin-listen address is unreachable."
EOF
run "promtool test rules" "$promtool" test rules "$work/alerts_test.yml"

# ---- 3. config -----------------------------------------------------------------------------
step "3. promtool check config $config"
# rule_files are relative to the config file: alerts.yml beside it (as in the container).
run "promtool check config" "$promtool" check config "$config"

# ---- 4. dashboard ----------------------------------------------------------------------------
step "4. Grafana dashboard $dashboard"
if python3 - "$dashboard" "$work/dashboard_rules.json" >"$work/out" 2>&1 <<'EOF'; then
import json, os, re, sys
path, rules_out = sys.argv[1], sys.argv[2]
with open(path) as f:
    d = json.load(f)  # valid JSON
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

allowed = set(os.environ["metrics_counters"].split() + os.environ["metrics_gauges"].split())
for h in os.environ["metrics_histograms"].split():
    allowed |= {h + "_bucket", h + "_sum", h + "_count"}
families = set(os.environ["metrics_counters"].split() + os.environ["metrics_gauges"].split()
               + os.environ["metrics_histograms"].split())

check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36,
      f"schemaVersion {d.get('schemaVersion')!r}: need >= 36")
check(d.get("title") and d.get("uid"), "title and uid are required")
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = variables.get("DS_PROMETHEUS")
check(ds is not None and ds.get("type") == "datasource" and ds.get("query") == "prometheus",
      "no datasource variable DS_PROMETHEUS (type datasource, query prometheus)")
for name in ("protocol", "method"):
    check(name in variables and variables[name].get("type") == "query", f"no query variable {name!r}")

def ds_ok(ref):
    return isinstance(ref, dict) and ref.get("uid") == "${DS_PROMETHEUS}"

# Panels (rows may hold collapsed panels).
panels, rows = [], []
def walk(ps):
    for p in ps:
        (rows if p.get("type") == "row" else panels).append(p)
        walk(p.get("panels", []))
walk(d.get("panels", []))
check(panels, "no panels")
check(rows, "no rows")
ids = [p.get("id") for p in panels + rows]
check(len(ids) == len(set(ids)) and None not in ids, "panel ids must be present and unique")

exprs = []  # (where, expr)
for p in panels:
    where = f"panel {p.get('id')} {p.get('title')!r}"
    check(all(k in p.get("gridPos", {}) for k in "hwxy"), f"{where}: gridPos needs h, w, x, y")
    check(ds_ok(p.get("datasource")), f"{where}: datasource must be ${{DS_PROMETHEUS}}")
    targets = p.get("targets") or []
    check(targets, f"{where}: no queries")
    for t in targets:
        check(ds_ok(t.get("datasource", p.get("datasource"))), f"{where} {t.get('refId')}: datasource must be ${{DS_PROMETHEUS}}")
        check(bool(t.get("expr", "").strip()), f"{where} {t.get('refId')}: empty expr")
        exprs.append((f"{where} {t.get('refId')}", t.get("expr", "")))
for a in d.get("annotations", {}).get("list", []):
    if a.get("expr"):
        check(ds_ok(a.get("datasource")), f"annotation {a.get('name')!r}: datasource must be ${{DS_PROMETHEUS}}")
        exprs.append((f"annotation {a.get('name')!r}", a["expr"]))
for v in variables.values():
    if v.get("type") == "query":
        check(ds_ok(v.get("datasource")), f"variable {v['name']}: datasource must be ${{DS_PROMETHEUS}}")
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q, re.S)
        check(m, f"variable {v['name']}: expected label_values(<selector>, <label>), got {q!r}")
        if m:
            exprs.append((f"variable {v['name']}", m.group(1)))

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan"}
def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                        # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                       # ranges, subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    return {m.group(0) for m in re.finditer(r"(?<![\w.:$])[A-Za-z_:][\w:]*(?!\w*\s*\()", e)
            if m.group(0).lower() not in KEYWORDS}

used = set()
for where, e in exprs:
    names = metric_names(e)
    check(names, f"{where}: no metric name in {e!r}")
    for n in sorted(names - allowed):
        errors.append(f"{where}: {n!r} is not a protogate metric")
    used |= names
def family(n):
    for suffix in ("_bucket", "_sum", "_count"):
        if n.endswith(suffix) and n[: -len(suffix)] in families:
            return n[: -len(suffix)]
    return n
for f in sorted(families - {family(n) for n in used}):
    errors.append(f"no panel shows {f}")

# The queries as recording rules, for promtool to parse (Grafana variables replaced).
def concrete(e):
    e = re.sub(r"\$(__rate_interval|__interval|__range)\b", "5m", e)
    return re.sub(r"\$\{?\w+\}?", ".+", e)
with open(rules_out, "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query:{i}", "expr": concrete(e)} for i, (_, e) in enumerate(exprs)]}]}, f, indent=1)
with open(rules_out + ".where", "w") as f:
    f.write("\n".join(f"dashboard:query:{i}  {w}" for i, (w, _) in enumerate(exprs)) + "\n")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(rows)} rows, {len(panels)} panels, {len(exprs)} queries over {len(used)} metric names; "
      f"variables: {', '.join(variables)}")
EOF
  sed 's/^/    /' "$work/out"
  # Every query must parse as PromQL.
  if "$promtool" check rules "$work/dashboard_rules.json" >"$work/out" 2>&1; then
    echo "    promtool: every query parses"
    ok
  else
    sed 's/^/    /' "$work/out" >&2
    # Name the panels behind the failing dashboard:query:N rules.
    grep -oE 'dashboard:query:[0-9]+' "$work/out" | sort -u | while read -r q; do
      grep -E "^$q " "$work/dashboard_rules.json.where" | sed 's/^/    /' >&2
    done
    fail "dashboard queries" "a query does not parse as PromQL"
  fi
else
  sed 's/^/    /' "$work/out" >&2
  fail "dashboard" "$dashboard is invalid"
fi

# ---- 5. live gateway --------------------------------------------------------------------------
live() {
  step "5. live: protogate serve --mock, then GET /metrics on the admin listener"
  local log=$work/gateway.log main="" admin="" i
  # Text logs without colours; info level prints the addresses.
  NO_COLOR=1 RUST_LOG=info PROTOGATE_LOG_FORMAT=pretty \
    "$bin" serve --mock --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --watch false >"$log" 2>&1 &
  pids+=($!)
  # The gateway logs "protogate listening on http://ADDR" and "admin endpoints on http://ADDR/...".
  for ((i = 0; i < 300; i++)); do
    main=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$log" | grep -oE '[0-9.]+:[0-9]+$' | head -n 1) || true
    admin=$(grep -iE 'admin' "$log" | grep -oE 'http://[0-9.]+:[0-9]+' | grep -oE '[0-9.]+:[0-9]+$' | head -n 1) || true
    [[ -n $main && -n $admin ]] && break
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      tail -n 20 "$log" >&2
      fail "live: start" "protogate exited during startup"
      return
    fi
    sleep 0.1
  done
  if [[ -z $main || -z $admin ]]; then
    tail -n 20 "$log" >&2
    fail "live: start" "no 'listening on http://ADDR' (main: ${main:-none}) or admin address (admin: ${admin:-none}) in the log within 30 s"
    return
  fi
  echo "    gateway http://$main, admin http://$admin"

  # Traffic: a unary GET (200), a path no route matches (404), a server stream (3 generated
  # messages, NDJSON and SSE), a reload through the admin listener.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$main/v1/shelves/1/books/1")
  [[ $code == 200 ]] || fail "live: requests" "GET /v1/shelves/1/books/1 answered $code, expected 200"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$main/v1/no/such/route")
  [[ $code == 404 ]] || fail "live: requests" "GET /v1/no/such/route answered $code, expected 404"
  if ! curl -sfN --max-time 15 "http://$main/v1/shelves/1/books:stream" >"$work/stream.ndjson" ||
    [[ $(grep -c . "$work/stream.ndjson") -lt 1 ]]; then
    fail "live: requests" "server stream GET /v1/shelves/1/books:stream failed or was empty"
  fi
  curl -sfN --max-time 15 "http://$main/v1/shelves/1/books:stream?alt=sse" >/dev/null ||
    fail "live: requests" "server stream GET /v1/shelves/1/books:stream?alt=sse failed"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST "http://$admin/_protogate/reload")
  [[ $code == 200 ]] || fail "live: requests" "POST /_protogate/reload answered $code, expected 200"
  echo "    sent: GET (200), GET (404), 2 server streams, a reload"

  # The scrape.
  code=$(curl -s -o "$work/metrics.txt" -w '%{http_code}' --max-time 10 "http://$admin/metrics")
  if [[ $code != 200 ]]; then
    head -c 300 "$work/metrics.txt" >&2
    echo >&2
    fail "live: scrape" "GET http://$admin/metrics answered $code, expected 200"
    return
  fi
  echo "    scraped $(grep -c . "$work/metrics.txt") lines"
  # promtool check metrics reads stdin; it reports lint problems (naming, HELP) and fails on
  # an unparsable exposition.
  if "$promtool" check metrics <"$work/metrics.txt" >"$work/out" 2>&1; then
    echo "    promtool check metrics: ok"
  else
    sed 's/^/    /' "$work/out" >&2
    fail "live: promtool check metrics" "the /metrics output does not pass promtool check metrics"
  fi

  # What the rules and the dashboard rely on.
  local m missing=() absent=()
  for m in protogate_requests_total protogate_build_info; do
    grep -qE "^$m(\{| )" "$work/metrics.txt" || missing+=("$m")
  done
  # One series per line, so `.*` stays within a series (route values contain braces).
  local want=(
    'protogate_requests_total\{.*protocol="rest"'
    'protogate_requests_total\{.*method="library\.v1\.LibraryService/GetBook"'
    'protogate_requests_total\{.*route="GET /v1/\{name=shelves/\*/books/\*\}"'
    'protogate_requests_total\{.*code="OK"'
    'protogate_requests_total\{.*status="200"'
    'protogate_requests_total\{.*method="unknown".*status="404"|protogate_requests_total\{.*status="404".*method="unknown"'
    'protogate_request_duration_seconds_bucket\{.*le="0\.25"'
    'protogate_stream_messages_total\{.*direction="sent"'
    'protogate_config_reloads_total\{.*result="success"'
    'protogate_build_info\{.*version="[^"]+"\} 1'
  )
  for m in "${want[@]}"; do
    grep -qE "^($m)" "$work/metrics.txt" || missing+=("$m")
  done
  for m in $metrics_counters $metrics_gauges $metrics_histograms; do
    grep -qE "^$m(_bucket|_sum|_count)?(\{| )" "$work/metrics.txt" || absent+=("$m")
  done
  ((${#absent[@]})) && echo "    (no samples yet, fine for this traffic: ${absent[*]})"
  if ((${#missing[@]})); then
    printf '    missing from /metrics: %s\n' "${missing[@]}" >&2
    fail "live: metric names" "the scrape lacks series the rules and dashboard use"
  else
    echo "    protogate_requests_total, protogate_build_info and the labels the rules use: present"
    ok
  fi
}

if [[ -n ${OBS_SKIP_LIVE:-} ]]; then
  step "5. live gateway: skipped (OBS_SKIP_LIVE)"
elif [[ ! -x $bin ]]; then
  step "5. live gateway: skipped ($bin not built; cargo build --bin protogate)"
else
  live
fi

echo
if ((${#failed[@]})); then
  echo "observability checks FAILED (${#failed[@]}): $(printf '%s; ' "${failed[@]}")" >&2
  exit 1
fi
echo "observability checks: all ok"
