"""Istio on a Kubernetes cluster (kind or an existing one): installed with istioctl, judged by istiod's own view.

Install (a cluster meshproof owns): `istioctl install` with the `minimal` profile (istiod only; the
suites need no gateway) and three mesh settings, each for a reason:
- `meshConfig.defaultConfig.drainDuration=1s` (default 45 s): after a listener change, an open
  connection keeps the old filter chain until the drain ends, so a request could still meet the old
  authorization policy; apply() waits for the drain, which must be short;
- `meshConfig.defaultConfig.holdApplicationUntilProxyStarts=true`: the echo app starts once its
  proxy serves, so no early call leaves the pod unproxied;
- `meshConfig.accessLogFile=/dev/stdout`: the proxies' access logs are the evidence `kubectl logs`
  shows for a failing check.
Ready: the istiod Deployment rolled out and the injector webhook (`istio-sidecar-injector`) holding
its CA bundle. Injection: the meshed namespaces carry `istio-injection=enabled`, the outside one
`istio-injection=disabled`. Each pod's control port (8081) is excluded from inbound capture, and its
proxy keeps the outlier-detection and listener-drain stats meshproof reads from :15020.

Served (apply()'s mesh signal), from istiod's debug API, which answers only its own pod's loopback
(port-forward, kube/portforward.py), in four steps as the local Istio backend judges it:
1. istiod's store (`/debug/configz`) holds every applied object at the resourceVersion the API server
   returned, and none of the deleted ones;
2. only then the marker VirtualService (host `meshproof-sync` in the outside namespace, which every
   sidecar's port-80 routes include) gets a new token; istiod computes each push from its whole
   store, so a push carrying the token carries step 1's objects too;
3. per meshed pod (`/debug/syncz`): istiod has sent it routes since the marker changed, and the pod's
   proxy acknowledged every type it was sent (a refused one fails the apply with Envoy's reason);
4. per meshed pod (:15020): no listener or filter chain is still warming or draining.

Telemetry: `istio_requests_total{reporter="destination"}` from each server pod's :15020 (the seed's
query sums the same counter); the caller's `envoy_cluster_outlier_detection_*` for the outlier evidence.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from meshproof import xfcc
from meshproof.backend import ObservedIdentity, RequestCounts
from meshproof.backends.istio.debug import parse_configz, parse_syncz
from meshproof.backends.istio.render import DECLARED, KIND_ORDER, MTLS_ALPN, NETWORKING, ROOT_NAMESPACE, render
from meshproof.backends.kube import metrics, objects, readiness
from meshproof.backends.kube.api import Json
from meshproof.backends.kube.calls import PodInstance
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.commands import Command, Runner
from meshproof.backends.kube.conventions import manifest, service
from meshproof.backends.kube.deploy import CONTROL_PORT, MeshFlavour
from meshproof.backends.kube.descriptor import CLUSTER_UNSUPPORTED
from meshproof.backends.kube.integration import ObjectKey
from meshproof.backends.kube.mesh import ClusterMesh
from meshproof.backends.kube.metrics import Sample
from meshproof.backends.kube.namespaces import OUTSIDE, NamespaceMap
from meshproof.backends.kube.pods import PodProxy
from meshproof.backends.kube.portforward import http_get
from meshproof.errors import ConfigRejected, UserError
from meshproof.intent import Intent, Workload
from meshproof.profile import ClusterSettings

XFCC = "x-forwarded-client-cert"
ISTIOD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "namespace": ROOT_NAMESPACE}}
INJECTOR = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "istio-sidecar-injector"}}
DEBUG_PORT = 8080  # istiod's debug HTTP server (loopback answered without authentication)
AGENT_PORT = 15020  # pilot-agent: merged Prometheus stats of the agent and Envoy
MARKER = "meshproof-sync"
MARKER_HEADER = "x-meshproof-sync"
ROUTES = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
#: Envoy stats of listeners in flux (Prometheus names); pods' proxyStatsMatcher keeps them
IN_FLUX = ("envoy_listener_manager_total_listeners_warming", "envoy_listener_manager_total_listeners_draining",
           "envoy_listener_manager_total_filter_chains_draining")
PROXY_CONFIG = {
    "holdApplicationUntilProxyStarts": True,
    "proxyStatsMatcher": {"inclusionRegexps": [".*outlier_detection.*", r"listener_manager\..*(warming|draining).*"]},
}


def version_command() -> Command:
    return Command("istioctl-version", ("istioctl", "version", "--remote=false", "--output", "json"),
                   "read the version of istioctl", 60)


def client_version(output: str) -> str:
    """istioctl's own version from `istioctl version --remote=false -o json` (its `clientVersion`)."""
    try:
        return str(json.loads(output)["clientVersion"]["version"])
    except (ValueError, KeyError, TypeError):
        raise UserError(f"istioctl version printed no clientVersion: {output[:200]!r}") from None


def install_command(cluster: Cluster, settings: ClusterSettings) -> Command:
    argv = ["istioctl", "install", "--skip-confirmation", "--kubeconfig", str(cluster.kubeconfig)]
    argv += ["--context", cluster.context] if cluster.context else []
    argv += ["--set", "profile=minimal",
             "--set", "meshConfig.defaultConfig.drainDuration=1s",
             "--set", "meshConfig.defaultConfig.holdApplicationUntilProxyStarts=true",
             "--set", "meshConfig.accessLogFile=/dev/stdout",
             "--readiness-timeout", f"{int(settings.install)}s"]
    return Command("istioctl-install", tuple(argv), "install Istio with istioctl", settings.install + 60)


def image_version(deployment: Json) -> str:
    """The tag of istiod's `discovery` container image, without a `-distroless` variant suffix."""
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", ())
    images = [str(c.get("image", "")) for c in containers if c.get("name") == "discovery"] or ["?"]
    return images[0].rsplit(":", 1)[-1].removesuffix("-distroless")


def _wait(problems: Callable[[], list[str]], deadline: float, what: str) -> None:
    readiness.wait_until_none(problems, timeout=max(0.0, deadline - time.monotonic()), what=what, interval=0.1)


def marker_service(names: NamespaceMap) -> Json:
    return service(MARKER, names.cluster(OUTSIDE), 80, {"app": MARKER})


def marker_virtual_service(names: NamespaceMap, token: str) -> Json:
    host = f"{MARKER}.{names.cluster(OUTSIDE)}.svc.cluster.local"
    spec = {"hosts": [host], "http": [{"route": [{"destination": {"host": host}}],
                                      "headers": {"response": {"set": {MARKER_HEADER: token}}}}]}
    return manifest(NETWORKING, "VirtualService", MARKER, names.cluster(OUTSIDE), spec)


class IstioOnCluster(ClusterMesh):
    name = "istio"
    cli = "istioctl"
    unsupported = MappingProxyType({**DECLARED, **CLUSTER_UNSUPPORTED})
    overflow_marker = ("x-envoy-overloaded", "true")
    mesh_client_alpn = MTLS_ALPN
    kind_order = KIND_ORDER
    flavour = MeshFlavour(
        proxy_container="istio-proxy",
        meshed_namespace_labels={"istio-injection": "enabled"},
        unmeshed_namespace_labels={"istio-injection": "disabled"},
        pod_annotations={"traffic.sidecar.istio.io/excludeInboundPorts": str(CONTROL_PORT),
                         "proxy.istio.io/config": json.dumps(PROXY_CONFIG, sort_keys=True)},
        metrics_port=AGENT_PORT, metrics_path="/stats/prometheus",
    )
    _tokens = itertools.count(1)

    def render(self, intents: Sequence[Intent], workloads: Sequence[Workload]) -> list[Json]:
        return render(intents, workloads)

    def cli_version(self, tools: Runner) -> str:
        return client_version(tools(version_command()))

    def install(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        tools(install_command(cluster, settings))

    def installed_version(self, cluster: Cluster) -> str:
        found = objects.get(cluster.api, ISTIOD)
        if found is None:
            raise UserError(f"no istiod Deployment in {ROOT_NAMESPACE} on {cluster.api.description}: meshproof "
                            "installs Istio only on a kind cluster of its own; install it there first (istioctl "
                            "install) or use --cluster kind")
        return image_version(found)

    def wait_ready(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        readiness.wait_rolled_out(cluster.api, [ISTIOD], timeout=settings.install, what="istiod")
        readiness.wait_webhooks(cluster.api, [INJECTOR], timeout=settings.install, what="Istio's sidecar injector")

    def control_plane(self) -> list[Json]:
        return [ISTIOD]

    def support_manifests(self, names: NamespaceMap) -> list[Json]:
        return [marker_service(names)]

    # --- the mesh's signal ----------------------------------------------------------------------------
    def _istiod(self, cluster: Cluster) -> str:
        pods = readiness.list_pods(cluster.api, ROOT_NAMESPACE, "app=istiod")
        ready = [p for p in pods if readiness.pod_problem(p, None) is None]
        if not ready:
            raise UserError(f"no ready istiod pod in {ROOT_NAMESPACE}")
        return str(ready[0]["metadata"]["name"])

    def _debug(self, cluster: Cluster, istiod: str, path: str) -> Any:
        body = http_get(cluster.api.client, ROOT_NAMESPACE, istiod, DEBUG_PORT, path,
                        timeout=self.profile.cluster.request)
        try:
            return json.loads(body)
        except ValueError:
            raise UserError(f"istiod's {path} answered {body[:200]!r}, not JSON") from None

    def wait_served(self, cluster: Cluster, proxy: PodProxy, applied: Mapping[ObjectKey, Json | None],
                    pods: Sequence[PodInstance], names: NamespaceMap, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        istiod = self._istiod(cluster)
        expected = {(kind, namespace, name): (None if stored is None else str(stored["metadata"]["resourceVersion"]))
                    for (_, kind, namespace, name), stored in applied.items()}
        self._wait_stored(cluster, istiod, expected, deadline)
        proxies = {f"{pod.ref.name}.{pod.ref.namespace}": pod for pod in pods}
        before = {proxy_id: sync.sent.get(ROUTES, "") for proxy_id, sync in
                  parse_syncz(self._debug(cluster, istiod, "/debug/syncz")).items()}
        token = f"{next(self._tokens)}-{time.monotonic_ns()}"
        stored = cluster.apply(marker_virtual_service(names, token))
        self._wait_stored(cluster, istiod, {("VirtualService", names.cluster(OUTSIDE), MARKER):
                                            str(stored["metadata"]["resourceVersion"])}, deadline)

        def unsynced() -> list[str]:
            rows = parse_syncz(self._debug(cluster, istiod, "/debug/syncz"))
            late = []
            for proxy_id in proxies:
                sync = rows.get(proxy_id)
                if sync is not None and sync.errors:
                    kinds = "; ".join(f"{kind.rsplit('.', 1)[-1]}: {error}" for kind, error in sync.errors.items())
                    raise ConfigRejected(f"the proxy of {proxy_id} refused istiod's config: {kinds[:600]}")
                if sync is None or sync.sent.get(ROUTES, "") in ("", before.get(proxy_id)) or not sync.in_sync:
                    late.append(proxy_id)
            return late

        _wait(unsynced, deadline, "Istio's push (proxies that have not acknowledged it)")

        def in_flux() -> list[str]:
            return [proxy_id for proxy_id, pod in proxies.items()
                    if any(metrics.total(self._metrics(pod), name) for name in IN_FLUX)]

        _wait(in_flux, deadline, "Istio's push (proxies whose listeners are still warming or draining)")
        return {"istiod": istiod, "proxies": len(proxies), "marker": token}

    def _wait_stored(self, cluster: Cluster, istiod: str, expected: Mapping[tuple[str, str, str], str | None],
                     deadline: float) -> None:
        def missing() -> list[str]:
            have = parse_configz(self._debug(cluster, istiod, "/debug/configz"))
            return [f"{kind} {namespace}/{name}" for (kind, namespace, name), version in expected.items()
                    if have.get((kind, namespace, name)) != version]

        _wait(missing, deadline, "Istio's push (objects istiod has not picked up)")

    # --- what the proxies say -------------------------------------------------------------------------
    @staticmethod
    def peer_identity(headers: Mapping[str, str]) -> ObservedIdentity:
        raw = str(headers.get(XFCC, ""))
        return ObservedIdentity(xfcc.peer_identity(raw), f"request header {XFCC} set by the server's sidecar", raw)

    @staticmethod
    def proxy_request_counts(samples: Sequence[Sample]) -> RequestCounts:
        def destination(labels: Mapping[str, str]) -> bool:
            return labels.get("reporter") == "destination"

        return RequestCounts(
            metrics.total(samples, "istio_requests_total", destination),
            metrics.total(samples, "istio_requests_total",
                          lambda labels: destination(labels) and labels.get("response_code", "").startswith("5")))

    @staticmethod
    def proxy_outlier_stats(samples: Sequence[Sample], service: str, namespace: str) -> dict[str, int]:
        prefix, suffix = "envoy_cluster_outlier_detection_", f"||{service}.{namespace}.svc.cluster.local"
        return {s.name.removeprefix(prefix): round(s.value) for s in samples if s.name.startswith(prefix)
                and s.labels.get("cluster_name", "").startswith("outbound|")
                and s.labels.get("cluster_name", "").endswith(suffix)}

    def mesh_ca(self, cluster: Cluster) -> tuple[bytes, bytes, bytes] | None:
        """istiod signs with a plugged-in CA (secret `cacerts`, Istio's "plug in CA certificates") when there
        is one, else with the self-signed CA it keeps in `istio-ca-secret` (security/pkg/pki/ca)."""
        for name, chain in (("cacerts", "cert-chain.pem"), ("istio-ca-secret", None)):
            stored = objects.get(cluster.api, {"apiVersion": "v1", "kind": "Secret",
                                               "metadata": {"name": name, "namespace": ROOT_NAMESPACE}})
            data = (stored or {}).get("data") or {}
            if "ca-cert.pem" in data and "ca-key.pem" in data:
                decoded = {key: base64.b64decode(value) for key, value in data.items()}
                return decoded["ca-cert.pem"], decoded["ca-key.pem"], decoded.get(chain, b"") if chain else b""
        return None

    def control_plane_diagnostics(self, cluster: Cluster, proxy: PodProxy) -> dict[str, object]:
        istiod = self._istiod(cluster)
        rows = parse_syncz(self._debug(cluster, istiod, "/debug/syncz"))
        return {"istiod": istiod, "proxies_out_of_sync": sorted(p for p, s in rows.items() if not s.in_sync),
                "refused_by_proxies": {p: dict(s.errors) for p, s in rows.items() if s.errors}}

