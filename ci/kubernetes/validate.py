"""Validates rendered Kubernetes manifests (`kubectl kustomize` output), offline.

    python validate.py [--dockerfile FILE] [--protogate BIN] [--k8s 1.29 --k8s 1.37] NAME=FILE...

1. Schemas: every object against the Kubernetes JSON schemas that the PyPI package
   kubernetes-validate ships, in their strict form (unknown fields are errors), for each
   Kubernetes version given. A kind with no schema is an error, except the CRDs listed in
   CRD_SCHEMAS, checked against a schema kept beside this file.
2. Consistency, which no schema sees: selectors match the Deployment's pods; ports, probes and
   mounts name what exists; the ConfigMap is mounted as a directory (never subPath, which never
   updates) and holds the files PROTOGATE_ROUTES and PROTOGATE_DESCRIPTORS name; the pod
   hardening is all there and runs as the Dockerfile's USER; the grace period covers the drain.
3. With --protogate: `protogate check` on the ConfigMap's files as the pod sees them.

Prints one line per rendering; errors go to stderr, exit 1.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate.utils as kv
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): os.path.join(HERE, "servicemonitor.schema.json"),
}
CONFIG_ENV = ("PROTOGATE_ROUTES", "PROTOGATE_DESCRIPTORS")
CONFIGMAP_LIMIT = 1024 * 1024  # bytes, data and binaryData together
DEFAULT_DRAIN = 5.0  # --drain-delay's default, seconds
DEFAULT_DRAIN_GRACE = 20.0  # --drain-grace's default, seconds
LINGER = 1.0  # how long the gateway waits for the last records after the cut (server::LINGER)


def seconds(text):
    """'10s', '1m30s', '500ms', '2h' -> seconds (the gateway's duration syntax, roughly)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).strip():
        raise ValueError(f"not a duration: {text!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def ref(obj):
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def matches(selector, labels):
    """A LabelSelector's matchLabels and matchExpressions against a label map."""
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        have, op, vals = labels.get(e["key"]), e["operator"], e.get("values") or []
        if (op == "In" and have not in vals) or (op == "NotIn" and have in vals):
            return False
        if (op == "Exists" and have is None) or (op == "DoesNotExist" and have is not None):
            return False
    return True


def dockerfile_uid(path):
    """The numeric uid of the last stage's USER (the image `docker build` makes by default)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    last_stage = re.split(r"(?im)^\s*FROM\s", text)[-1]
    users = re.findall(r"(?im)^\s*USER\s+(\S+)", last_stage)
    if not users:
        return None, f"{path}: the last stage has no USER (the image would run as root)"
    uid = users[-1].split(":")[0]
    if not uid.isdigit():
        return None, f"{path}: USER {users[-1]} is not numeric (runAsNonRoot cannot verify a name)"
    return int(uid), None


class Checker:
    def __init__(self, name, docs, versions, uid, protogate):
        self.name, self.docs, self.versions, self.uid, self.protogate = name, docs, versions, uid, protogate
        self.errors = []
        self.notes = []

    def err(self, obj, msg):
        self.errors.append(f"{self.name}: {ref(obj) if obj else ''}: {msg}")

    def of(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    # 1. schemas
    def schemas(self):
        for d in self.docs:
            key = (d.get("apiVersion"), d.get("kind"))
            if key in CRD_SCHEMAS:
                with open(CRD_SCHEMAS[key]) as f:
                    schema = json.load(f)
                for e in jsonschema.Draft202012Validator(schema).iter_errors(d):
                    path = ".".join(str(p) for p in e.absolute_path)
                    self.err(d, f"{path}: {e.message} (schema {os.path.relpath(CRD_SCHEMAS[key])})")
                continue
            for v in self.versions:
                try:
                    kv.validate(d, v, strict=True)
                except kv.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    self.err(d, f"Kubernetes {e.version} (strict): {path}: {e.message}")
                except kv.SchemaNotFoundError as e:
                    self.err(d, f"{e.message}; no schema, so it cannot be validated (a CRD needs a schema in CRD_SCHEMAS)")
                except (kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
                    self.err(d, e.message)

    # 2. consistency
    def pods(self):
        """(workload, pod template spec, pod labels) for each Deployment."""
        for d in self.of("Deployment"):
            tpl = d["spec"]["template"]
            yield d, tpl["spec"], (tpl.get("metadata") or {}).get("labels") or {}

    def consistency(self):
        configmaps = {c["metadata"]["name"]: c for c in self.of("ConfigMap")}
        deployments = {d["metadata"]["name"]: d for d in self.of("Deployment")}
        services = self.of("Service")

        for d, spec, labels in self.pods():
            if not matches(d["spec"].get("selector"), labels):
                self.err(d, "spec.selector does not match the pod template's labels")
            self.pod(d, spec, configmaps)

        def selected(obj, selector):
            hit = [d for d, _, labels in self.pods() if matches(selector, labels)]
            if not hit:
                self.err(obj, f"selector {json.dumps(selector, sort_keys=True)} matches no Deployment's pods")
            return hit

        for s in services:
            sel = s["spec"].get("selector")
            hit = selected(s, {"matchLabels": sel}) if sel else []
            names, numbers = set(), set()
            for d in hit:
                for c in d["spec"]["template"]["spec"]["containers"]:
                    names |= {p.get("name") for p in c.get("ports") or []}
                    numbers |= {p["containerPort"] for p in c.get("ports") or []}
            for p in s["spec"].get("ports") or []:
                t = p.get("targetPort", p["port"])
                if hit and t not in (names if isinstance(t, str) else numbers):
                    self.err(s, f"port {p.get('name') or p['port']}: targetPort {t} is no container port of the selected pods")

        for p in self.of("PodDisruptionBudget"):
            selected(p, p["spec"].get("selector"))

        for h in self.of("HorizontalPodAutoscaler"):
            t = h["spec"]["scaleTargetRef"]
            d = deployments.get(t["name"]) if t["kind"] == "Deployment" else None
            if d is None:
                self.err(h, f"scaleTargetRef {t['kind']}/{t['name']} is not in the rendering")
            elif "replicas" in d["spec"]:
                self.err(d, "spec.replicas is set while an HPA scales it: every apply would reset the count")

        for m in self.of("ServiceMonitor"):
            hit = [s for s in services if matches(m["spec"]["selector"], (s["metadata"].get("labels") or {}))]
            if not hit:
                self.err(m, "spec.selector matches no Service's labels")
            ports = {p.get("name") for s in hit for p in s["spec"].get("ports") or []}
            for e in m["spec"].get("endpoints") or []:
                if "port" in e and hit and e["port"] not in ports:
                    self.err(m, f"endpoint port {e['port']!r} is no port name of the selected Services")

        for c in configmaps.values():
            size = sum(len(v.encode()) for v in (c.get("data") or {}).values())
            size += sum(len(base64.b64decode(v)) for v in (c.get("binaryData") or {}).values())
            if size > CONFIGMAP_LIMIT:
                self.err(c, f"{size} bytes: over the 1 MiB a ConfigMap may hold")

    def pod(self, d, spec, configmaps):
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            self.err(d, "securityContext.runAsNonRoot must be true")
        if self.uid is not None and psc.get("runAsUser") != self.uid:
            self.err(d, f"securityContext.runAsUser {psc.get('runAsUser')} is not the Dockerfile's USER {self.uid}")
        if spec.get("automountServiceAccountToken") is not False:
            self.err(d, "automountServiceAccountToken must be false (the gateway never calls the API)")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for v in volumes.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                self.err(d, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not in the rendering")
        for c in spec["containers"]:
            where = f"container {c['name']}"
            csc = c.get("securityContext") or {}
            seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                self.err(d, f"{where}: seccompProfile must be RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                self.err(d, f"{where}: allowPrivilegeEscalation must be false")
            if csc.get("readOnlyRootFilesystem") is not True:
                self.err(d, f"{where}: readOnlyRootFilesystem must be true")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                self.err(d, f"{where}: capabilities.drop must include ALL")
            if csc.get("privileged"):
                self.err(d, f"{where}: privileged")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        self.err(d, f"{where}: resources.{part}.{r} is not set")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    self.err(d, f"{where}: no {probe}")
                    continue
                port = (p.get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    self.err(d, f"{where}: {probe} port {port!r} is no container port name")
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            mounts = []
            for m in c.get("volumeMounts") or []:
                v = volumes.get(m["name"])
                if v is None:
                    self.err(d, f"{where}: volumeMount {m['name']} names no volume")
                    continue
                if "configMap" in v:
                    if m.get("subPath") or m.get("subPathExpr"):
                        self.err(d, f"{where}: ConfigMap volume {m['name']} mounted with subPath: its files would never update, so the gateway could not reload them")
                    mounts.append((m["mountPath"].rstrip("/"), configmaps.get(v["configMap"]["name"]), v))
            for var in CONFIG_ENV:
                for path in filter(None, (env.get(var) or "").split(",")):
                    if path.startswith("reflect://"):
                        continue
                    hit = [(mp, cm, v) for mp, cm, v in mounts if os.path.dirname(path) == mp]
                    if not hit:
                        self.err(d, f"{where}: {var}={path} is not a file in a mounted ConfigMap directory")
                        continue
                    _, cm, v = hit[0]
                    key = os.path.basename(path)
                    items = v["configMap"].get("items")
                    keys = set((cm or {}).get("data") or {}) | set((cm or {}).get("binaryData") or {})
                    if items is not None:
                        keys = {i["path"] for i in items if i["key"] in keys}
                    if cm is not None and key not in keys:
                        self.err(d, f"{where}: {var}={path}: ConfigMap {cm['metadata']['name']} has no key {key}")
            # Drain: the grace period must outlast the gateway's own: the drain delay, the drain
            # grace (calls still open then end with UNAVAILABLE) and the last records' second.
            def env_seconds(var, default):
                return seconds(env[var]) if env.get(var) else default
            drain = env_seconds("PROTOGATE_DRAIN_DELAY", DEFAULT_DRAIN)
            calls = env_seconds("PROTOGATE_DRAIN_GRACE", DEFAULT_DRAIN_GRACE)
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace <= drain + calls + LINGER:
                self.err(d, f"terminationGracePeriodSeconds {grace} does not exceed the drain delay ({drain:g}s) plus the drain grace ({calls:g}s) plus {LINGER:g}s")

    # 3. protogate check on the files the pod gets
    def gateway_check(self):
        if not self.protogate:
            return
        for d, spec, _ in self.pods():
            volumes = {v["name"]: v for v in spec.get("volumes") or []}
            configmaps = {c["metadata"]["name"]: c for c in self.of("ConfigMap")}
            for c in spec["containers"]:
                env = {e["name"]: e.get("value") for e in c.get("env") or []}
                if not all(env.get(v) for v in CONFIG_ENV):
                    continue
                with tempfile.TemporaryDirectory() as root:
                    for m in c.get("volumeMounts") or []:
                        cm = configmaps.get(((volumes.get(m["name"]) or {}).get("configMap") or {}).get("name"))
                        if cm is None:
                            continue
                        dest = os.path.join(root, m["mountPath"].lstrip("/"))
                        os.makedirs(dest, exist_ok=True)
                        for k, v in (cm.get("data") or {}).items():
                            with open(os.path.join(dest, k), "w", encoding="utf-8") as f:
                                f.write(v)
                        for k, v in (cm.get("binaryData") or {}).items():
                            with open(os.path.join(dest, k), "wb") as f:
                                f.write(base64.b64decode(v))
                    args = [self.protogate, "check"]
                    for var, flag in zip(CONFIG_ENV, ("--routes", "--descriptors")):
                        for p in env[var].split(","):
                            args += [flag, p if p.startswith("reflect://") else os.path.join(root, p.lstrip("/"))]
                    run = subprocess.run(args, capture_output=True, text=True, cwd=root)
                    out = (run.stdout + run.stderr).strip().replace(root, "")
                    if run.returncode != 0:
                        self.err(d, f"container {c['name']}: protogate check on the mounted ConfigMap failed:\n{out}")
                    else:
                        self.notes.append(f"protogate check: {out.splitlines()[-1] if out else 'ok'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s", action="append", help="Kubernetes version (repeatable)")
    ap.add_argument("--dockerfile")
    ap.add_argument("--protogate")
    ap.add_argument("renders", nargs="+", metavar="NAME=FILE")
    a = ap.parse_args()
    versions = a.k8s or [kv.latest_version()]
    uid, problem = dockerfile_uid(a.dockerfile) if a.dockerfile else (None, None)
    failed = False
    if problem:
        print(problem, file=sys.stderr)
        failed = True
    for spec in a.renders:
        name, _, path = spec.partition("=")
        try:
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
        except (OSError, yaml.YAMLError) as e:
            print(f"{name}: cannot read {path}: {e}", file=sys.stderr)
            failed = True
            continue
        c = Checker(name, docs, versions, uid, a.protogate and os.path.abspath(a.protogate))
        try:
            c.schemas()
            if not c.errors:  # consistency checks assume schema-valid objects
                c.consistency()
            if not c.errors:
                c.gateway_check()
        except (KeyError, TypeError, ValueError) as e:
            c.errors.append(f"{name}: cannot check: {type(e).__name__}: {e}")
        if c.errors:
            failed = True
            for e in c.errors:
                print(e, file=sys.stderr)
        else:
            kinds = ", ".join(ref(d) for d in docs)
            crds = sorted({k for (_, k) in CRD_SCHEMAS if c.of(k)})
            extra = f"; {', '.join(crds)} against ci/kubernetes/ subset schema" if crds else ""
            print(f"ok: {name}: {kinds} (Kubernetes {', '.join(versions)}, strict{extra})")
            for n in c.notes:
                print(f"    {n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
