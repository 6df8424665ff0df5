"""Talking to one port of one pod through the API server: `/api/v1/namespaces/<ns>/pods/<name>:<port>/proxy/...`.

Why the API server's pod proxy and not a port-forward: it is plain HTTP over the connection the
kubernetes client already has (its credentials, its CA), it needs no local listener or relay thread,
and the API server connects to the pod's IP directly, so the request never passes the pod's mesh
proxy as long as the port is one the mesh leaves alone (the echo app's control port, Istio's :15020,
Linkerd's :4191). The API server treats proxy requests as long-running (no 60 s request timeout),
which a batch of thousands of calls needs. What the pod answers comes back as is, status included;
when the API server cannot reach the pod it answers 503 itself, with its reason in a Status.

On a cluster whose API server cannot reach pod IPs (some managed control planes behind a firewall)
this transport does not work; meshproof says so with the API server's reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meshproof.backends.kube.api import KubeApi
from meshproof.errors import UserError


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def proxy_path(pod: PodRef, port: int, path: str) -> str:
    return f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}:{port}/proxy{path}"


class PodProxy:
    def __init__(self, api: KubeApi, *, timeout: float) -> None:
        self.api = api
        self.timeout = timeout

    def send(self, method: str, pod: PodRef, port: int, path: str, *, body: Any = None,
             query: Sequence[tuple[str, str]] = (), timeout: float | None = None) -> tuple[int, bytes]:
        status, _, data = self.api.send(method, proxy_path(pod, port, path), query=query, body=body,
                                        timeout=timeout or self.timeout)
        return status, data

    def json(self, method: str, pod: PodRef, port: int, path: str, *, body: Any = None,
             query: Sequence[tuple[str, str]] = (), timeout: float | None = None) -> Any:
        """The JSON a pod's port answers with 2xx; UserError naming the pod and the answer otherwise."""
        status, data = self.send(method, pod, port, path, body=body, query=query, timeout=timeout)
        if not 200 <= status <= 299:
            raise UserError(f"{method} {path} on pod {pod} port {port} (through {self.api.description}): "
                            f"HTTP {status}: {_reason(data)}")
        try:
            return json.loads(data)
        except ValueError:
            raise UserError(f"{method} {path} on pod {pod} port {port}: not JSON: {data[:200]!r}") from None

    def text(self, pod: PodRef, port: int, path: str, *, timeout: float | None = None) -> str:
        status, data = self.send("GET", pod, port, path, timeout=timeout)
        if not 200 <= status <= 299:
            raise UserError(f"GET {path} on pod {pod} port {port}: HTTP {status}: {_reason(data)}")
        return data.decode(errors="replace")


def _reason(data: bytes) -> str:
    """The message of an API server Status, else the start of the body."""
    try:
        decoded = json.loads(data)
    except ValueError:
        return data[:300].decode(errors="replace").strip()
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        return str(decoded.get("message") or decoded.get("reason"))
    return json.dumps(decoded)[:300]
