"""Render a Helm chart offline with the real Helm engine (helm-sdkpy's bundled libhelm).

helm-sdkpy exposes Helm's *install* action but no ``helm template`` / dry-run call, and Helm's install path
talks to a Kubernetes API server before and after it renders: a reachability check (``GET /version``),
discovery (``/api``, ``/apis``, ``/apis/<group>/<version>``) to build the capabilities and the REST mapper,
a ``GET`` per rendered object to detect ownership conflicts, release storage, and one ``POST`` per object.
No API server runs here, so :class:`DiscoveryOnlyApiServer` answers exactly that surface on 127.0.0.1: it
advertises the built-in resource types, reports every object as absent, echoes every create back and keeps
nothing. The manifests are rendered by Helm itself (templates, ``_helpers.tpl``, value merging, ``required``/
``fail``, chart ``kubeVersion`` checks), and the release record it returns carries the rendered manifest.

Tests in tests/deploy get it through the ``render_chart`` fixture (conftest.py). Elsewhere:

    >>> from helm_render import render_chart   # with tests/deploy on sys.path
    >>> docs = render_chart("deploy/helm/scale-diffusion", values={"diffusion": {"gpu": {"enabled": True}}})
    >>> sorted({d["kind"] for d in docs})
    ['Deployment', 'Role', 'RoleBinding', 'Secret', 'Service', 'ServiceAccount', 'StatefulSet']
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

DEFAULT_KUBE_VERSION = "1.33"

# The shape of the ``render_chart`` fixture: values (plus keyword options) -> rendered objects.
RenderChart = Callable[..., list[dict[str, Any]]]

# Built-in API resources the fake server advertises: (group, version) -> [(plural, kind, namespaced)].
# Only what charts in this repo (and Helm's own release storage) use needs to be here; add a row when a
# template uses a new kind and the render fails with "no matches for kind".
_RESOURCES: dict[tuple[str, str], list[tuple[str, str, bool]]] = {
    ("", "v1"): [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("pods", "Pod", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("endpoints", "Endpoints", True),
    ],
    ("apps", "v1"): [
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("daemonsets", "DaemonSet", True),
        ("replicasets", "ReplicaSet", True),
    ],
    ("batch", "v1"): [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    ("rbac.authorization.k8s.io", "v1"): [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    ("networking.k8s.io", "v1"): [
        ("networkpolicies", "NetworkPolicy", True),
        ("ingresses", "Ingress", True),
    ],
    ("autoscaling", "v2"): [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
}
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


class HelmRenderError(RuntimeError):
    """Helm refused to render the chart (template error, ``required``/``fail``, bad values)."""


def _api_resource_list(group: str, version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": _VERBS}
            for plural, kind, namespaced in _RESOURCES[(group, version)]
        ],
    }


def _api_group_list() -> dict[str, Any]:
    groups = []
    for group, version in _RESOURCES:
        if not group:
            continue
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY each response waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, path: str) -> None:
        self._send(
            404,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": f"{path} not found",
                "reason": "NotFound",
                "code": 404,
            },
        )

    def _read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if "json" in (self.headers.get("Content-Type") or "") and raw:
            return json.loads(raw)
        # Typed clients (Helm's release storage) send protobuf; answer with a bare object of the URL's kind,
        # which is all they read back.
        parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        plural = parts[-1] if self.command == "POST" else parts[-2]
        kind = next(k for p, k, _ in _RESOURCES[(group, version)] if p == plural)
        return {"apiVersion": f"{group}/{version}" if group else version, "kind": kind, "metadata": {}}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            major, minor = self.server.kube_version.split(".")[:2]
            self._send(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{major}.{minor}.0",
                    "platform": "linux/amd64",
                },
            )
        elif path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        elif path == "/apis":
            self._send(200, _api_group_list())
        elif parts == ["api", "v1"]:
            self._send(200, _api_resource_list("", "v1"))
        elif len(parts) == 3 and parts[0] == "apis" and (parts[1], parts[2]) in _RESOURCES:
            self._send(200, _api_resource_list(parts[1], parts[2]))
        elif parts and parts[-1] in {p for rows in _RESOURCES.values() for p, _, _ in rows}:
            # A collection (Helm's secret/configmap release storage lists its history): always empty.
            self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []})
        else:
            # A single object (ownership-conflict check, release lookup): nothing exists here.
            self._not_found(path)

    def _echo(self, code: int) -> None:
        obj = self._read_body()
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = "1"
        self.server.writes.append(obj)
        self._send(code, obj)

    def do_POST(self) -> None:
        self._echo(201)

    def do_PUT(self) -> None:
        self._echo(200)

    def do_PATCH(self) -> None:
        self._echo(200)

    def do_DELETE(self) -> None:
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, kube_version: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.kube_version = kube_version
        self.writes: list[dict[str, Any]] = []


class DiscoveryOnlyApiServer:
    """The part of a Kubernetes API server that Helm's install action needs, on 127.0.0.1, in memory.

    It stores nothing: every GET of a single object is 404, every collection is empty, every write is
    echoed back. Use it as a context manager; :attr:`kubeconfig` is a kubeconfig YAML string for it.
    """

    def __init__(self, kube_version: str = DEFAULT_KUBE_VERSION) -> None:
        self._server = _Server(kube_version)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-kube-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def kubeconfig(self) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "offline", "cluster": {"server": self.url}}],
                "users": [{"name": "offline", "user": {"token": "offline"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
                "current-context": "offline",
            }
        )

    def __enter__(self) -> DiscoveryOnlyApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def offline_cluster(kube_version: str = DEFAULT_KUBE_VERSION) -> Iterator[DiscoveryOnlyApiServer]:
    """Start a :class:`DiscoveryOnlyApiServer` for the duration of the block."""
    with DiscoveryOnlyApiServer(kube_version) as server:
        yield server


def render_manifest(
    chart_dir: str | Path,
    *,
    values: dict[str, Any] | None = None,
    release_name: str = "sd",
    namespace: str = "scale-diffusion",
    server: DiscoveryOnlyApiServer | None = None,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> dict[str, Any]:
    """Run Helm's install action against an offline API server and return Helm's release record.

    Args:
        chart_dir: Path to the chart directory.
        values: Values merged over the chart's values.yaml (like ``helm install -f``).
        release_name: The release name (``.Release.Name``).
        namespace: The release namespace (``.Release.Namespace``).
        server: A running :class:`DiscoveryOnlyApiServer` to reuse; one is started for this call if None.
        kube_version: Kubernetes version the started server reports (``.Capabilities.KubeVersion``).

    Returns:
        Helm's release as a dict; ``["manifest"]`` is the rendered YAML and ``["info"]["notes"]`` the NOTES.

    Raises:
        HelmRenderError: Helm failed to load or render the chart; the message is Helm's.
    """
    import helm_sdkpy  # heavy (loads a 120 MB shared library): imported where it is used

    if server is None:
        with offline_cluster(kube_version) as started:
            return render_manifest(
                chart_dir, values=values, release_name=release_name, namespace=namespace, server=started
            )
    config = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=server.kubeconfig)
    install = helm_sdkpy.Install(config)
    try:
        return asyncio.run(
            install.run(
                release_name,
                str(Path(chart_dir).resolve()),
                values=values or {},
                wait=False,
                timeout=60,
            )
        )
    except helm_sdkpy.HelmError as exc:
        raise HelmRenderError(str(exc)) from exc


def lint_chart(chart_dir: str | Path, *, server: DiscoveryOnlyApiServer) -> list[dict[str, Any]]:
    """Run ``helm lint`` (Helm's lint action, default values) and return its messages.

    Each message is ``{"Severity": 1 info | 2 warning | 3 error, "Path": ..., "Err": ...}``; helm-sdkpy
    serializes the Go error as ``{}``, so the text is lost and only severity and path are informative.
    """
    import helm_sdkpy

    config = helm_sdkpy.Configuration(namespace="default", kubeconfig=server.kubeconfig)
    result = asyncio.run(helm_sdkpy.Lint(config).run(str(Path(chart_dir).resolve())))
    return list(result.get("Messages") or [])


def render_chart(chart_dir: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Render a chart (see :func:`render_manifest`) and return its objects, in Helm's install order."""
    release = render_manifest(chart_dir, **kwargs)
    return [doc for doc in yaml.safe_load_all(release.get("manifest", "")) if doc]
