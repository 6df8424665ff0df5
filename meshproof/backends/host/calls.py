"""What the test runner does *as* and *to* the host's echo apps, whatever configures their proxies: calls
from a workload (through the app's `/forward`, so through its proxy's outbound side), clients outside
the mesh, the caller identity the serving app was handed (Istio's XFCC header), attempts counted per
key (the faults on the apps' processes are meshproof.backends.host.app_faults). Both the local mesh
and the local Istio mesh are made of these apps.

`EchoCalls` is a mixin: a backend supplies `profile`, `apps`, `topology`, `foreign_client`, `mesh_client`
(a certificate of the mesh's own CA for a client outside the mesh: the refusal checks' positive control)
and `inbound_address`.
"""

from __future__ import annotations

import base64
from typing import Any

from meshproof.backend import ObservedIdentity, RawOutcome, Request, Response, Tally, Transport
from meshproof.backends.host.apps import EchoApp
from meshproof.backends.host.ca import Svid
from meshproof.backends.host.outside_client import probe
from meshproof.backends.host.topology import Instance, Topology
from meshproof.errors import UserError
from meshproof.profile import Profile
from meshproof.xfcc import peer_identity

XFCC = "x-forwarded-client-cert"


def forward_payload(request: Request, timeout: float) -> dict[str, Any]:
    """The echo app's `/forward` body for one request, bounded by `timeout` s at the app."""
    return {
        "service": request.host(),
        "port": request.port,
        "method": request.method,
        "path": request.path,
        "headers": dict(request.headers),
        "body_b64": base64.b64encode(request.body).decode(),
        "timeout": timeout,
    }


class EchoCalls:
    name: str
    profile: Profile
    apps: dict[str, EchoApp]
    topology: Topology
    foreign_client: Svid | None
    mesh_client: Svid | None
    #: what the outside client holding `mesh_client` offers as ALPN, where the mesh tells its mTLS by it
    mesh_client_alpn: tuple[str, ...] = ()

    def inbound_address(self, instance: Instance) -> tuple[str, int]:
        """Where a client outside the mesh reaches the instance's proxy."""
        raise NotImplementedError

    def _caller(self, source: str) -> EchoApp:
        if source in self.apps:
            return self.apps[source]
        for app in self.apps.values():
            if app.instance.workload.name == source:
                return app
        raise UserError(f"no workload or instance {source!r} in the {self.name} mesh; "
                        f"known: {', '.join(sorted({a.instance.workload.name for a in self.apps.values()}))}")

    def _instance(self, target: str) -> Instance:
        """An instance by name, or the first instance of a workload or service."""
        for instance in self.topology.instances:
            if target in (instance.name, instance.workload.name, instance.service):
                return instance
        raise UserError(f"no instance, workload or service {target!r} in the {self.name} mesh")

    def _timeout(self, request: Request) -> float:
        return self.profile.timeouts.call if request.timeout is None else request.timeout

    def call(self, source: str, request: Request) -> Response:
        app = self._caller(source)
        timeout = self._timeout(request)
        reply = app.control.post("/forward", json=forward_payload(request, timeout),
                                 timeout=timeout + self.profile.timeouts.forward_margin)
        reply.raise_for_status()
        data = reply.json()
        return Response(status=data["status"], headers=data["headers"], body=data["body"],
                        elapsed=data["elapsed_s"], error=data["error"], detail=data.get("detail", ""))

    def call_batch(self, source: str, request: Request, *, count: int, rate: float = 0.0,
                   concurrency: int = 8, capture: tuple[str, ...] | None = None) -> Tally:
        app = self._caller(source)
        payload = {**forward_payload(request, self._timeout(request)), "count": count, "rate": rate,
                   "concurrency": concurrency, "capture": None if capture is None else list(capture)}
        timeouts = self.profile.timeouts
        expected = count / (rate or timeouts.batch_floor_rate)
        deadline = expected * timeouts.batch_slowdown + self._timeout(request) + timeouts.batch_margin
        reply = app.control.post("/forward", json=payload, timeout=deadline)
        reply.raise_for_status()
        return Tally.from_json(reply.json())

    def call_unmeshed(self, target: str, request: Request, transport: Transport) -> RawOutcome:
        host, port = self.inbound_address(self._instance(target))
        svid = {Transport.TLS_FOREIGN_CA: self.foreign_client, Transport.TLS_MESH_CERT: self.mesh_client}.get(transport)
        client_cert = None if svid is None else (svid.cert, svid.key)
        return probe(host, port, request, transport, client_cert=client_cert,
                     timeout=min(self._timeout(request), self.profile.timeouts.outside_client),
                     alert_wait=self.profile.timeouts.tls_verdict,
                     alpn=self.mesh_client_alpn if transport is Transport.TLS_MESH_CERT else ())

    def observed_identity(self, response: Response) -> ObservedIdentity:
        echo = response.echo
        raw = str(echo["headers"].get(XFCC, "")) if echo else ""
        return ObservedIdentity(peer_identity(raw), f"request header {XFCC} set by the server's sidecar", raw)

    def instances(self, service: str, namespace: str = "default", version: str | None = None) -> list[str]:
        return [i.name for i in self.topology.of_service(service, namespace, version)]

    def attempts(self, service: str, key: str, namespace: str = "default") -> dict[str, int]:
        result = {}
        for name in self.instances(service, namespace):
            reply = self.apps[name].control.get("/attempts", params={"key": key})
            reply.raise_for_status()
            result[name] = int(reply.json()["attempts"])
        return result

    def reset_apps(self) -> None:
        """Counters, timelines and faults of every app back to zero."""
        for app in self.apps.values():
            app.control.post("/reset").raise_for_status()
