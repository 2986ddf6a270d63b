#!/usr/bin/env python3
"""A Kubernetes API server for druppie's end-to-end tests.

It answers the requests `druppie serve` sends, with the JSON shapes the
real API server uses: Flux Kustomizations (kustomize.toolkit.fluxcd.io/v1)
listed across namespaces or in one, Deployments (apps/v1) of a namespace,
and Leases (coordination.k8s.io/v1) to get, create and replace. Every
other path is a 404 `Status`, as on an API server without that type.

What it answers is read, on every request, from a JSON state file the
test writes (and rewrites, by rename, while the daemon runs):

    {
      "kustomizations": [
        {"name": "permits-dev", "namespace": "flux-system",
         "path": "./apps/dev/permits",
         "labels": {"druppie.io/plan": "permits", "druppie.io/environment": "dev"},
         "ready": true, "revision": "main@sha1:<commit>",
         "reason": "ReconciliationSucceeded", "message": "..."}
      ],
      "deployments": [
        {"namespace": "permits-dev", "name": "permits-app", "replicas": 1, "available": 1}
      ],
      "health": {"/health/permits-dev/app": 200}
    }

`ready` is true, false or null (Unknown); `revision` (the Kustomization's
`status.lastAppliedRevision`) may be null. Leases live in memory.

A second, plain HTTP listener answers health URLs: GET <path> answers the
status `health` gives that path (200 when the path is not listed).

Requests to the API must carry `Authorization: Bearer <token>`; any other
is answered 401. Every request (API and health) is appended to the log
file as one JSON line: {"port": "api"|"health", "method", "path", "query", "code"}.

Usage: mock-kube.py --state FILE --log FILE --token TOKEN [--tls-cert PEM --tls-key PEM]
With a certificate the API is served over TLS (the health endpoint stays
plain HTTP). On start it prints one JSON line to stdout: {"api": URL, "health": URL}.
Python 3 standard library only.
"""

import argparse
import datetime
import json
import re
import ssl
import sys
import threading
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLUX = "kustomize.toolkit.fluxcd.io/v1"
COORDINATION = "coordination.k8s.io/v1"

KUSTOMIZATIONS_ALL = re.compile(r"^/apis/kustomize\.toolkit\.fluxcd\.io/v1/kustomizations$")
KUSTOMIZATIONS_NS = re.compile(
    r"^/apis/kustomize\.toolkit\.fluxcd\.io/v1/namespaces/([^/]+)/kustomizations(?:/([^/]+))?$"
)
DEPLOYMENTS_ALL = re.compile(r"^/apis/apps/v1/deployments$")
DEPLOYMENTS_NS = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments(?:/([^/]+))?$")
LEASES = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases(?:/([^/]+))?$")

START = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """The state file, the Leases and the resourceVersion counter."""

    def __init__(self, state_path, log_path, token):
        self.state_path = state_path
        self.log_path = log_path
        self.token = token
        self.lock = threading.Lock()
        self.version = 100
        self.leases = {}

    def next_version(self):
        with self.lock:
            self.version += 1
            return str(self.version)

    def state(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def log(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def status(code, reason, message, details=None):
    """A `Status` object, as the API server answers every error."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return code, body


def not_found(group, kind, name):
    return status(
        404,
        "NotFound",
        f'{kind}.{group} "{name}" not found' if group else f'{kind} "{name}" not found',
        {"name": name, "group": group, "kind": kind},
    )


def parse_selector(text):
    """A label selector as a list of (key, op, values): `k=v`, `k==v`,
    `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`."""
    requirements = []
    for part in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"^(\S+)\s+(in|notin)\s+\(([^)]*)\)$", part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            requirements.append((m.group(1), m.group(2), values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            requirements.append((k.strip(), "!=", {v.strip()}))
        elif "==" in part:
            k, v = part.split("==", 1)
            requirements.append((k.strip(), "=", {v.strip()}))
        elif "=" in part:
            k, v = part.split("=", 1)
            requirements.append((k.strip(), "=", {v.strip()}))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!", set()))
        else:
            requirements.append((part, "exists", set()))
    return requirements


def matches(labels, requirements):
    for key, op, values in requirements:
        have = key in labels
        value = labels.get(key)
        if op == "=" and not (have and value in values):
            return False
        if op == "in" and not (have and value in values):
            return False
        if op == "!=" and have and value in values:
            return False
        if op == "notin" and have and value in values:
            return False
        if op == "exists" and not have:
            return False
        if op == "!" and have:
            return False
    return True


def field_matches(obj, selector):
    """`metadata.name=x`, `metadata.namespace=y` (what the API server
    supports for every type)."""
    for part in (selector or "").split(","):
        part = part.strip()
        if not part:
            continue
        negate = "!=" in part
        key, value = re.split(r"!=|==|=", part, maxsplit=1)
        have = obj["metadata"].get(key.strip().removeprefix("metadata."), "")
        if (have == value.strip()) == negate:
            return False
    return True


def uid(kind, namespace, name):
    """A stable UID per object."""
    return f"00000000-0000-4000-{kind}-{zlib.crc32(f'{namespace}/{name}'.encode()):012d}"


def kustomization(k, version):
    name, namespace = k["name"], k.get("namespace", "flux-system")
    spec = {
        "interval": "10m",
        "path": k.get("path", "./"),
        "prune": True,
        "wait": True,
        "timeout": "5m",
        "sourceRef": {"kind": "GitRepository", "name": "infra"},
    }
    if k.get("targetNamespace"):
        spec["targetNamespace"] = k["targetNamespace"]
    ready = k.get("ready")
    revision = k.get("revision")
    condition_status = {True: "True", False: "False"}.get(ready, "Unknown")
    reason = k.get("reason") or {
        True: "ReconciliationSucceeded",
        False: "HealthCheckFailed",
    }.get(ready, "Progressing")
    message = k.get("message") or (
        f"Applied revision: {revision}" if ready else "health check failed" if ready is False else "Reconciliation in progress"
    )
    st = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": condition_status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": START,
                "observedGeneration": 1,
            }
        ],
    }
    if revision:
        st["lastAppliedRevision"] = revision
        st["lastAttemptedRevision"] = revision
    return {
        "apiVersion": FLUX,
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": k.get("labels", {}),
            "uid": uid("8000", namespace, name),
            "resourceVersion": version,
            "generation": 1,
            "creationTimestamp": START,
        },
        "spec": spec,
        "status": st,
    }


def deployment(d, version, typed_item):
    name, namespace = d["name"], d["namespace"]
    replicas = d.get("replicas", 1)
    available = d.get("available", replicas)
    labels = {"app.kubernetes.io/name": name}
    obj = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "uid": uid("9000", namespace, name),
            "resourceVersion": version,
            "generation": 1,
            "creationTimestamp": START,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": d.get("image", "app:1")}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available >= replicas else "False",
                    "reason": "MinimumReplicasAvailable" if available >= replicas else "MinimumReplicasUnavailable",
                    "lastTransitionTime": START,
                    "lastUpdateTime": START,
                }
            ],
        },
    }
    if not typed_item:
        # A single object carries its type; the items of a list of a
        # built-in type do not (the list does), as the real server answers.
        obj = {"apiVersion": "apps/v1", "kind": "Deployment", **obj}
    if available == 0:
        obj["status"].pop("availableReplicas")
        obj["status"].pop("readyReplicas")
    return obj


def listing(api_version, kind, items, version):
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"resourceVersion": version},
        "items": items,
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-kube"
    store = None  # set per server
    port_name = "api"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        url = urllib.parse.urlsplit(self.path)
        self.store.log(
            {
                "port": self.port_name,
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "code": code,
            }
        )

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def handle_any(self):
        if self.port_name == "health":
            return self.health()
        if self.headers.get("Authorization") != f"Bearer {self.store.token}":
            return self.reply(*status(401, "Unauthorized", "Unauthorized"))
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if query.get("watch") in ("1", "true"):
            return self.reply(*status(405, "MethodNotAllowed", "this mock does not watch"))
        try:
            code, body = self.route(url.path, query)
        except Exception as e:  # a bug in the mock: say it, as a 500
            code, body = status(500, "InternalError", f"mock-kube: {e!r}")
        self.reply(code, body)

    def route(self, path, query):
        state = self.store.state()
        version = self.store.next_version()
        labels = parse_selector(query.get("labelSelector"))
        fields = query.get("fieldSelector")

        def select(objects):
            return [o for o in objects if matches(o["metadata"].get("labels", {}), labels) and field_matches(o, fields)]

        m_all, m_ns = KUSTOMIZATIONS_ALL.match(path), KUSTOMIZATIONS_NS.match(path)
        if m_all or m_ns:
            if self.command != "GET":
                return status(405, "MethodNotAllowed", "Kustomizations are read-only here")
            objects = [kustomization(k, version) for k in state.get("kustomizations", [])]
            if m_ns:
                objects = [o for o in objects if o["metadata"]["namespace"] == m_ns.group(1)]
                if m_ns.group(2):
                    found = [o for o in objects if o["metadata"]["name"] == m_ns.group(2)]
                    return (200, found[0]) if found else not_found("kustomize.toolkit.fluxcd.io", "kustomizations", m_ns.group(2))
            return 200, listing(FLUX, "KustomizationList", select(objects), version)

        m_all, m_ns = DEPLOYMENTS_ALL.match(path), DEPLOYMENTS_NS.match(path)
        if m_all or m_ns:
            if self.command != "GET":
                return status(405, "MethodNotAllowed", "Deployments are read-only here")
            wanted = state.get("deployments", [])
            if m_ns:
                wanted = [d for d in wanted if d["namespace"] == m_ns.group(1)]
                if m_ns.group(2):
                    found = [d for d in wanted if d["name"] == m_ns.group(2)]
                    return (200, deployment(found[0], version, False)) if found else not_found("apps", "deployments", m_ns.group(2))
            objects = [deployment(d, version, True) for d in wanted]
            return 200, listing("apps/v1", "DeploymentList", select(objects), version)

        m = LEASES.match(path)
        if m:
            return self.lease(m.group(1), m.group(2), version)

        return status(404, "NotFound", "the server could not find the requested resource")

    def lease(self, namespace, name, version):
        key = (namespace, name)
        with self.store.lock:
            if self.command == "GET" and name:
                lease = self.store.leases.get(key)
                return (200, lease) if lease else not_found("coordination.k8s.io", "leases", name)
            if self.command == "GET":
                items = [l for (ns, _), l in sorted(self.store.leases.items()) if ns == namespace]
                return 200, listing(COORDINATION, "LeaseList", items, version)
            body = self.body()
            if not isinstance(body, dict) or body.get("kind") != "Lease":
                return status(400, "BadRequest", "the body is not a Lease")
            meta = body.setdefault("metadata", {})
            if self.command == "POST" and not name:
                name = meta.get("name")
                key = (namespace, name)
                if key in self.store.leases:
                    return status(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists')
                meta.update(namespace=namespace, resourceVersion=version, uid=f"lease-{name}", creationTimestamp=START)
                body["apiVersion"] = COORDINATION
                self.store.leases[key] = body
                return 201, body
            if self.command == "PUT" and name:
                held = self.store.leases.get(key)
                if held is None:
                    return not_found("coordination.k8s.io", "leases", name)
                if meta.get("name") != name:
                    return status(400, "BadRequest", "the name in the body differs from the URL")
                if meta.get("resourceVersion") != held["metadata"]["resourceVersion"]:
                    return status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": '
                        "the object has been modified; please apply your changes to the latest version and try again",
                    )
                meta.update(namespace=namespace, resourceVersion=version, uid=held["metadata"]["uid"])
                body["apiVersion"] = COORDINATION
                self.store.leases[key] = body
                return 200, body
            return status(405, "MethodNotAllowed", f"{self.command} is not supported on leases here")

    def health(self):
        url = urllib.parse.urlsplit(self.path)
        code = int(self.store.state().get("health", {}).get(url.path, 200))
        self.reply(code, {"status": "ok" if code < 400 else "failing"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class TlsServer(ThreadingHTTPServer):
    """Each connection's TLS handshake runs on its own thread, so a
    client that never finishes one holds up nobody else."""

    context = None

    def finish_request(self, request, client_address):
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def serve(store, port_name, tls=None):
    handler = type(f"{port_name.title()}Handler", (Handler,), {"store": store, "port_name": port_name})
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server = TlsServer(("127.0.0.1", 0), handler)
        server.context = context
        scheme = "https"
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tls-cert", help="serve the API over TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this key (PEM)")
    args = parser.parse_args()
    store = Store(args.state, args.log, args.token)
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    urls = {"api": serve(store, "api", tls), "health": serve(store, "health")}
    print(json.dumps(urls), flush=True)
    # Until the test kills it or closes stdin.
    sys.stdin.read()


if __name__ == "__main__":
    main()
