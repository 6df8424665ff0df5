"""The scenario's workloads registered with Istio the way Istio registers workloads outside pods (pure).

On a cluster each instance would be a Pod: a kubelet runs it, the controller manager writes its
EndpointSlices, the injector labels it. None of those run here, so writing Pods would mean faking
their work by hand (status, endpoints). Istio has a first-class way to mesh a workload that is not a
pod, its VM support, and that is used as is:

- a Kubernetes `Service` per service (as on a cluster, rendered by the shared Kubernetes layer), whose
  selector istiod applies to WorkloadEntries too;
- a `WorkloadEntry` per instance: its address (127.0.0.x, never 127.0.0.1, which pilot-agent adds to
  every proxy's own addresses), its labels (`app`, `version`, and the instance's name so that a
  Sidecar can select it alone), its service account (hence its SPIFFE identity and mTLS);
- a `Sidecar` per instance, because without traffic capture (interception mode NONE) Istio needs to be
  told where a proxy listens: inbound `bind: <address>:<port>` forwarding to the app at
  `127.0.0.1:<app port>`, outbound `bind: 127.1.0.x:<port>` for the app's own calls, every host
  visible (`*/*`), as the default Sidecar scope is.

Also here: the *sync marker*, a Service and VirtualService of meshproof's own in the root namespace
that no workload calls. Its VirtualService sets a request header whose value changes on every apply,
so each proxy's outbound route table shows, in the proxy itself, which apply it has been pushed
(see propagation.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshproof.backends.host.topology import Instance
from meshproof.backends.kube.conventions import APP_LABEL, APP_PORT_NAME, VERSION_LABEL, Json, manifest, service
from meshproof.intent import Workload

NETWORKING = "networking.istio.io/v1"
ROOT_NAMESPACE = "istio-system"
INSTANCE_LABEL = "meshproof.dev/instance"
SYNC_NAME = "meshproof-sync"
SYNC_HOST = f"{SYNC_NAME}.{ROOT_NAMESPACE}.svc.cluster.local"
SYNC_HEADER = "x-meshproof-sync"
SYNC_PORT = 80
FIRST_HOST = 11  # 127.0.0.11 is the first instance: clear of 127.0.0.1 and easy to read in logs


@dataclass(frozen=True)
class Placement:
    """Where one instance's proxy and app live in the mesh's network namespace."""

    instance: Instance  # the app's ports and the proxy's admin port (inbound/outbound: the service port)
    address: str  # the instance's own address: its WorkloadEntry, its proxy's inbound listener
    outbound_address: str  # where its proxy listens for the app's own calls
    status_port: int  # pilot-agent's status server (health, merged stats)
    envoy_status_port: int  # Envoy's readiness listener in Istio's bootstrap (15021 on a cluster)
    prometheus_port: int  # Envoy's Prometheus listener in Istio's bootstrap (15090 on a cluster)

    @property
    def name(self) -> str:
        return self.instance.name

    @property
    def workload(self) -> Workload:
        return self.instance.workload

    @property
    def labels(self) -> dict[str, str]:
        return {APP_LABEL: self.workload.service, VERSION_LABEL: self.workload.version, INSTANCE_LABEL: self.name}

    @property
    def proxy_id(self) -> str:
        """How istiod names the proxy in its debug API (`<pod name>.<namespace>`)."""
        return f"{self.name}.{self.workload.namespace}"


def addresses(index: int) -> tuple[str, str]:
    """(inbound, outbound) address of the index-th instance (0-based)."""
    host = FIRST_HOST + index
    if host > 254:
        raise ValueError(f"the local Istio mesh places at most {254 - FIRST_HOST + 1} instances")
    return f"127.0.0.{host}", f"127.1.0.{host}"


def services(placements: list[Placement]) -> list[Json]:
    """One Service per service, selecting its instances by `app`, as on a cluster."""
    seen = sorted({(p.workload.namespace, p.workload.service, p.workload.port) for p in placements})
    return [service(name, namespace, port, {APP_LABEL: name}) for namespace, name, port in seen]


def workload_entry(placement: Placement) -> Json:
    workload = placement.workload
    spec = {"address": placement.address, "labels": placement.labels, "serviceAccount": workload.service_account,
            "ports": {APP_PORT_NAME: workload.port}}
    return manifest(NETWORKING, "WorkloadEntry", placement.name, workload.namespace, spec)


def sidecar(placement: Placement) -> Json:
    port = placement.workload.port
    listener = {"number": port, "protocol": "HTTP", "name": APP_PORT_NAME}
    spec = {
        "workloadSelector": {"labels": {INSTANCE_LABEL: placement.name}},
        "ingress": [{"port": listener, "bind": placement.address,
                     "defaultEndpoint": f"127.0.0.1:{placement.instance.app_port}"}],
        "egress": [{"port": listener, "bind": placement.outbound_address, "hosts": ["*/*"]}],
    }
    return manifest(NETWORKING, "Sidecar", placement.name, placement.workload.namespace, spec)


def registration(placements: list[Placement]) -> list[Json]:
    """Every object that makes the instances part of the mesh, in apply order."""
    return [*services(placements), *map(workload_entry, placements), *map(sidecar, placements), sync_service()]


def sync_service() -> Json:
    return service(SYNC_NAME, ROOT_NAMESPACE, SYNC_PORT, {APP_LABEL: SYNC_NAME})


def sync_marker(token: str) -> Json:
    """The marker's VirtualService for apply `token`: it changes every proxy's outbound route table."""
    route = {"headers": {"request": {"set": {SYNC_HEADER: token}}}, "route": [{"destination": {"host": SYNC_HOST}}]}
    return manifest(NETWORKING, "VirtualService", SYNC_NAME, ROOT_NAMESPACE, {"hosts": [SYNC_HOST], "http": [route]})
