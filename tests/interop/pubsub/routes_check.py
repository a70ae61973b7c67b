"""Routes expected vs served, with no overrides, for real Google API protos.

For each API whose .proto sources a PyPI package ships (google-cloud-pubsub,
googleapis-common-protos, grpc-google-iam-v1), counts the google.api.http
bindings in the proto text (additional_bindings included), and compares them
with what `protogate routes` serves from the same file with an empty
routes.yaml; runs `protogate check` on it too. Prints the table; exits 1 when
a binding is not served or a check fails.

The proto text is parsed here, independently of protogate; where the package
also ships a compiled module (_pb2), the parse is checked against that
module's descriptors. For Pub/Sub, the bindings the client's own REST
transport calls are compared with what is served as well.

    python routes_check.py --protogate BIN --pubsub-root DIR --site-packages DIR
"""

import argparse
import importlib
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

VERBS = ("get", "put", "post", "patch", "delete")

# (label, package, proto files (import names), root, --services, _pb2 modules)
# root "pubsub" is the laid-out google/pubsub/v1 tree, "site" site-packages.
APIS = [
    (
        "Pub/Sub",
        "google-cloud-pubsub",
        ["google/pubsub/v1/pubsub.proto", "google/pubsub/v1/schema.proto"],
        "pubsub",
        [],
        [],
    ),
    (
        "Long-running operations",
        "googleapis-common-protos",
        ["google/longrunning/operations_proto.proto"],
        "site",
        ["google.longrunning.Operations"],
        ["google.longrunning.operations_proto_pb2"],
    ),
    (
        "Locations",
        "googleapis-common-protos",
        ["google/cloud/location/locations.proto"],
        "site",
        ["google.cloud.location.Locations"],
        ["google.cloud.location.locations_pb2"],
    ),
    (
        "IAM policy",
        "grpc-google-iam-v1",
        ["google/iam/v1/iam_policy.proto"],
        "site",
        ["google.iam.v1.IAMPolicy"],
        ["google.iam.v1.iam_policy_pb2"],
    ),
]

IAM_METHODS = {"GetIamPolicy", "SetIamPolicy", "TestIamPermissions"}

# The Pub/Sub client's REST transports: (module, base class).
PUBSUB_TRANSPORTS = [
    ("google.pubsub_v1.services.publisher.transports.rest_base", "_BasePublisherRestTransport"),
    ("google.pubsub_v1.services.subscriber.transports.rest_base", "_BaseSubscriberRestTransport"),
    (
        "google.pubsub_v1.services.schema_service.transports.rest_base",
        "_BaseSchemaServiceRestTransport",
    ),
]


# --- the proto text ---------------------------------------------------------


def strip_comments(text):
    """The text without // and /* */ comments (strings kept whole)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i)
            i = n if i < 0 else i + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block(text, start):
    """The text inside the braces opening at or after `start`, and the index
    after the closing brace."""
    open_at = text.index("{", start)
    depth = 0
    for j in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[open_at + 1 : j], j + 1
    raise ValueError("unbalanced braces")


def text_bindings(text):
    """{(service, method, VERB, path)} declared by google.api.http options."""
    text = strip_comments(text)
    package = re.search(r"\bpackage\s+([\w.]+)\s*;", text).group(1)
    found = set()
    for svc in re.finditer(r"\bservice\s+(\w+)\s*\{", text):
        body, _ = block(text, svc.start())
        for rpc in re.finditer(r"\brpc\s+(\w+)\s*\(.*?\)\s*returns\s*\(.*?\)\s*([{;])", body, re.S):
            if rpc.group(2) == ";":
                continue
            rpc_body, _ = block(body, rpc.end() - 1)
            opt = re.search(r"option\s*\(\s*google\.api\.http\s*\)\s*=\s*\{", rpc_body)
            if not opt:
                continue
            rule, _ = block(rpc_body, opt.end() - 1)
            service = f"{package}.{svc.group(1)}"
            for verb, path in re.findall(r"\b(get|put|post|patch|delete)\s*:\s*\"([^\"]*)\"", rule):
                found.add((service, rpc.group(1), verb.upper(), path))
            for kind, path in re.findall(
                r"\bcustom\s*:?\s*\{\s*kind\s*:\s*\"([^\"]*)\"\s*path\s*:\s*\"([^\"]*)\"", rule
            ):
                found.add((service, rpc.group(1), kind.upper(), path))
    return found


def descriptor_bindings(module_name):
    """The same set, from a compiled _pb2 module's descriptors."""
    from google.api import annotations_pb2

    file = importlib.import_module(module_name).DESCRIPTOR
    found = set()

    def add(service, method, rule):
        verb = rule.WhichOneof("pattern")
        if verb == "custom":
            found.add((service, method, rule.custom.kind.upper(), rule.custom.path))
        elif verb:
            found.add((service, method, verb.upper(), getattr(rule, verb)))
        for extra in rule.additional_bindings:
            add(service, method, extra)

    for svc in file.services_by_name.values():
        for m in svc.methods:
            opts = m.GetOptions()
            if opts.HasExtension(annotations_pb2.http):
                add(svc.full_name, m.name, opts.Extensions[annotations_pb2.http])
    return found


def client_bindings():
    """{(method, VERB, path)} the Pub/Sub client's REST transports call."""
    found = set()
    for module_name, base in PUBSUB_TRANSPORTS:
        cls = getattr(importlib.import_module(module_name), base)
        for name, inner in vars(cls).items():
            if name.startswith("_Base") and hasattr(inner, "_get_http_options"):
                for o in inner._get_http_options():
                    found.add((name[len("_Base") :], o["method"].upper(), o["uri"]))
    return found


# --- protogate --------------------------------------------------------------


def protogate(binary, command, files, include, services, empty_routes):
    args = [binary, command, "--routes", str(empty_routes), "-I", str(include)]
    for f in files:
        args += ["--descriptors", str(include / f)]
    for s in services:
        args += ["--services", s]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def served_routes(table):
    """{(service, method, VERB, path)} of the annotation rows, and the count
    of auto-mapped rows, from `protogate routes`."""
    lines = [l for l in table.splitlines() if l.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    if header[:3] != ["METHOD", "TEMPLATE", "GRPC METHOD"] or header[-1] != "SOURCE":
        raise ValueError(f"unexpected `protogate routes` output:\n{table}")
    served, auto = set(), 0
    for line in lines[1:]:
        cols = re.split(r"\s{2,}", line.strip())
        if len(cols) != len(header):
            continue
        if cols[-1] == "auto":
            auto += 1
            continue
        service, method = cols[2].rsplit(".", 1)
        served.add((service, method, cols[0], cols[1]))
    return served, auto


# --- the table --------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protogate", required=True)
    parser.add_argument("--pubsub-root", required=True, type=Path)
    parser.add_argument("--site-packages", required=True, type=Path)
    args = parser.parse_args()
    roots = {"pubsub": args.pubsub_root, "site": args.site_packages}

    failures, rows, notes = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "routes.yaml"
        empty.write_text("{}\n")
        for label, package, files, root, services, modules in APIS:
            include = roots[root]
            expected = set()
            for f in files:
                expected |= text_bindings((include / f).read_text())
            for module_name in modules:
                from_descriptor = descriptor_bindings(module_name)
                if from_descriptor != expected:
                    failures.append(
                        f"{label}: the proto text parse disagrees with {module_name}: "
                        f"{sorted(expected ^ from_descriptor)}"
                    )
            rc, table = protogate(args.protogate, "routes", files[:1], include, services, empty)
            if rc != 0:
                failures.append(f"{label}: protogate routes failed:\n{table}")
                served, auto = set(), 0
            else:
                served, auto = served_routes(table)
            check_rc, check = protogate(args.protogate, "check", files[:1], include, services, empty)
            check_line = check.strip().splitlines()[-1] if check.strip() else ""
            if check_rc != 0:
                failures.append(f"{label}: protogate check failed:\n{check}")
            missing = sorted(expected - served)
            extra = sorted(served - expected)
            for m in missing:
                failures.append(f"{label}: not served: {m}")
            for m in extra:
                failures.append(f"{label}: served but not in the proto: {m}")
            names = sorted({s.rsplit(".", 1)[1] for s, *_ in expected})
            rows.append(
                (
                    f"{label} ({package})",
                    " + ".join(Path(f).name for f in files),
                    ", ".join(names),
                    str(len(expected)),
                    str(len(expected & served)),
                    str(len(missing)),
                    str(auto),
                    "ok" if check_rc == 0 else "FAILED",
                )
            )
            if label == "Pub/Sub":
                client_failures, note = pubsub_client_rows(expected, served)
                failures += client_failures
                notes.append(note)

    header = ("API (PyPI package)", "proto", "services", "bindings", "served", "missing",
              "auto", "check")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    print("\nRoutes expected vs served, no overrides (empty routes.yaml):")
    for r in [header] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("  (bindings: google.api.http rules in the proto, additional_bindings included;")
    print("   auto: methods without a binding, served at POST /pkg.Service/Method)")
    for note in notes:
        print(textwrap.fill(note, width=100, initial_indent="  ", subsequent_indent="  "))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)


def pubsub_client_rows(expected, served):
    """Compares what the Pub/Sub client's REST transports call with what is
    served; returns the failures and a summary."""
    calls = client_bindings()
    proto_methods = {m for _, m, _, _ in expected}
    served_methods = {(m, v, p) for _, m, v, p in served}
    own = {c for c in calls if c[0] in proto_methods}
    iam = {c for c in calls if c[0] in IAM_METHODS}
    newer = sorted({c[0] for c in calls - own - iam})
    not_served = sorted(own - served_methods)
    note = (
        f"Pub/Sub client (REST transport): {len(own)} bindings for the proto's methods, "
        f"{len(own) - len(not_served)} served as declared. {len(iam)} more for its IAM "
        "mixin come from Pub/Sub's service config, not from a proto (setIamPolicy and "
        "testIamPermissions match iam_policy.proto's {resource=**}; getIamPolicy is a GET "
        "there, a POST in the proto, so routes.yaml rules serve it). "
        f"{len(calls - own - iam)} are for methods the wheel's own .proto copy predates: "
        f"{', '.join(newer) or 'none'}."
    )
    return [f"Pub/Sub client calls a route not served: {c}" for c in not_served], note


if __name__ == "__main__":
    main()
