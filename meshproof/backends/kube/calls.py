"""What the test runner does as and to the echo apps of a cluster: a request made *as* a workload (its
app's `/forward`, so the request leaves through the pod's own proxy by the mesh's capture), a client
outside the mesh (the unmeshed namespace's app `/probe`s a pod's IP), attempts read from each app, and
the app's own faults (errors, delays). Every call reaches an app's control port through the API server (pods.py).

Names are the scenario's: a caller is a workload or a pod name, services and namespaces are what the
suites say; the NamespaceMap turns them into the cluster's. An instance is a pod, named as the pod
(which is what its echo app reports as `instance`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from meshproof import features
from meshproof.backend import Injected, RawOutcome, Request, Response, Tally, Transport
from meshproof.backends.kube.deploy import APP_PORT, CONTROL_PORT
from meshproof.backends.kube.namespaces import NamespaceMap
from meshproof.backends.kube.pods import PodProxy, PodRef
from meshproof.errors import UserError
from meshproof.faults import AppDelay, AppError
from meshproof.features import UnsupportedFeature
from meshproof.intent import Workload
from meshproof.profile import Profile


@dataclass(frozen=True)
class PodInstance:
    ref: PodRef
    workload: Workload  # in the scenario's namespaces
    ip: str


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate as PEM text, sent to the outside app for its TLS probe."""

    cert_pem: str
    key_pem: str


class PodCalls:
    """A mixin for a cluster backend, which sets these attributes once its pods are ready."""

    name: str
    profile: Profile
    names: NamespaceMap
    pod_proxy: PodProxy | None
    pods: dict[str, PodInstance]
    outside: PodInstance | None
    foreign_client: ClientCertificate | None
    mesh_client: ClientCertificate | None
    #: what the outside client holding `mesh_client` offers as ALPN, where the mesh tells its mTLS by it
    mesh_client_alpn: tuple[str, ...] = ()

    def _proxy(self) -> PodProxy:
        if self.pod_proxy is None:
            raise UserError(f"the {self.name} mesh is not up")
        return self.pod_proxy

    def _caller(self, source: str) -> PodInstance:
        if source in self.pods:
            return self.pods[source]
        for pod in self.pods.values():
            if pod.workload.name == source:
                return pod
        raise UserError(f"no workload or pod {source!r} in the {self.name} mesh; "
                        f"known: {', '.join(sorted({p.workload.name for p in self.pods.values()}))}")

    def _instance(self, target: str) -> PodInstance:
        """A pod by name, or the first pod of a workload or service."""
        for pod in self.pods.values():
            if target in (pod.ref.name, pod.workload.name, pod.workload.service):
                return pod
        raise UserError(f"no pod, workload or service {target!r} in the {self.name} mesh")

    def _timeout(self, request: Request) -> float:
        return self.profile.timeouts.call if request.timeout is None else request.timeout

    def _forward_payload(self, request: Request) -> dict[str, Any]:
        moved = self.names.moved(request)
        return {"service": moved.host(), "port": moved.port, "method": moved.method, "path": moved.path,
                "headers": dict(moved.headers), "body_b64": base64.b64encode(moved.body).decode(),
                "timeout": self._timeout(request)}

    def call(self, source: str, request: Request) -> Response:
        pod = self._caller(source)
        data = self._proxy().json("POST", pod.ref, CONTROL_PORT, "/forward", body=self._forward_payload(request),
                                  timeout=self._timeout(request) + self.profile.timeouts.forward_margin)
        return Response(status=data["status"], headers=data["headers"], body=data["body"],
                        elapsed=data["elapsed_s"], error=data["error"], detail=data.get("detail", ""))

    def call_batch(self, source: str, request: Request, *, count: int, rate: float = 0.0,
                   concurrency: int = 8, capture: tuple[str, ...] | None = None) -> Tally:
        pod = self._caller(source)
        payload = {**self._forward_payload(request), "count": count, "rate": rate, "concurrency": concurrency,
                   "capture": None if capture is None else list(capture)}
        timeouts = self.profile.timeouts
        expected = count / (rate or timeouts.batch_floor_rate)
        deadline = expected * timeouts.batch_slowdown + self._timeout(request) + timeouts.batch_margin
        return Tally.from_json(self._proxy().json("POST", pod.ref, CONTROL_PORT, "/forward", body=payload,
                                                  timeout=deadline))

    def call_unmeshed(self, target: str, request: Request, transport: Transport) -> RawOutcome:
        """From the unmeshed namespace's app to the target pod's IP and app port (which its proxy captures)."""
        if self.outside is None:
            raise UserError(f"the {self.name} mesh has no outside caller (is it up?)")
        pod = self._instance(target)
        timeout = min(self._timeout(request), self.profile.timeouts.outside_client)
        payload: dict[str, Any] = {
            "host": pod.ip, "port": APP_PORT, "method": request.method, "path": request.path,
            "host_header": self.names.moved(request).host(), "headers": dict(request.headers),
            "body_b64": base64.b64encode(request.body).decode(), "tls": transport is not Transport.PLAINTEXT,
            "timeout": timeout,
        }
        clients = {Transport.TLS_FOREIGN_CA: self.foreign_client, Transport.TLS_MESH_CERT: self.mesh_client}
        client = clients.get(transport)
        if transport is Transport.TLS_MESH_CERT and client is None:
            raise UnsupportedFeature(self.name, features.MTLS_OUTSIDE_CERTIFICATE.name,
                                     f"meshproof cannot read the {self.name} CA's key on this cluster")
        if client is not None:
            payload.update(client_cert_pem=client.cert_pem, client_key_pem=client.key_pem)
        if transport is Transport.TLS_MESH_CERT:
            payload["alpn"] = list(self.mesh_client_alpn)
        data = self._proxy().json("POST", self.outside.ref, CONTROL_PORT, "/probe", body=payload,
                                  timeout=timeout + self.profile.timeouts.forward_margin)
        return RawOutcome(transport, data["outcome"], status=data["status"], detail=data["detail"])

    def instances(self, service: str, namespace: str = "default", version: str | None = None) -> list[str]:
        return sorted(name for name, pod in self.pods.items()
                      if (pod.workload.service, pod.workload.namespace) == (service, namespace)
                      and (version is None or pod.workload.version == version))

    def attempts(self, service: str, key: str, namespace: str = "default") -> dict[str, int]:
        proxy = self._proxy()
        return {name: int(proxy.json("GET", self.pods[name].ref, CONTROL_PORT, "/attempts",
                                     query=[("key", key)])["attempts"])
                for name in self.instances(service, namespace)}

    def reset_apps(self) -> None:
        """Counters, timelines and faults of every app back to zero."""
        for pod in self.pods.values():
            self._proxy().json("POST", pod.ref, CONTROL_PORT, "/reset", body={})

    def app_fault(self, fault: AppError | AppDelay, instance: str) -> Injected:
        """The app of pod `instance` answers `fault.status` to everything (AppError), or answers everything
        `fault.seconds` late (AppDelay), until undone: the echo app's own instance-wide fault."""
        pod = self._caller(instance)
        proxy = self._proxy()
        payload = {"status": fault.status} if isinstance(fault, AppError) else {"delay": fault.seconds}
        proxy.json("POST", pod.ref, CONTROL_PORT, "/fault", body=payload)
        return Injected(fault, instance, lambda: proxy.json("POST", pod.ref, CONTROL_PORT, "/fault", body={}))
