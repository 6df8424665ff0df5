"""Linkerd on a Kubernetes cluster (kind or an existing one): installed with the linkerd CLI, judged by its
policy controller's route status.

Install (a cluster meshproof owns), in the order Linkerd's docs give for a CLI install:
1. the Gateway API CRDs, which Linkerd no longer installs itself: the standard channel of the same
   v1.6.1 bundle meshproof's renderer is validated against (kube/crds/gateway-api.yaml);
2. `linkerd install --crds` and 3. `linkerd install`, each printing manifests that meshproof applies
   itself (server-side apply, strict validation; no kubectl), waiting for the CRDs to be Established
   between the two;
4. `linkerd check --output json --wait`: every check must pass (a warning is recorded, an error ends
   the run with its hint).
Ready: linkerd-identity, -destination and -proxy-injector rolled out, the injector webhook holding its
CA bundle, and `linkerd check` clean. Injection: each meshed pod's template is annotated
`linkerd.io/inject: enabled` (Linkerd honours it on a pod as on a namespace) with the control port
skipped (`config.linkerd.io/skip-inbound-ports`); the outside namespace's pods carry no annotation.

Served (apply()'s mesh signal): the policy controller accepts each HTTPRoute it indexes by writing
`status.parents[]` for the route's parents (a Server, a Service) with `Accepted=True` at the route's
generation; `Accepted=False` fails the apply with the controller's message. Servers, authorizations and
rate limits carry no status, so what they change is left to the consistency probes.

Telemetry: `response_total{direction="inbound"}` from each server pod's proxy (:4191/metrics), and the
caller's `outbound_http_balancer_endpoints` (ready/pending endpoints per backend) for the outlier evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import yaml

from meshproof.backend import ObservedIdentity, RequestCounts
from meshproof.backends.kube import metrics, objects, readiness
from meshproof.backends.kube.api import Json, KubeApi, describe
from meshproof.backends.kube.calls import PodInstance
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.commands import Command, Runner
from meshproof.backends.kube.deploy import CONTROL_PORT, MeshFlavour
from meshproof.backends.kube.descriptor import CLUSTER_UNSUPPORTED
from meshproof.backends.kube.integration import ObjectKey
from meshproof.backends.kube.mesh import ClusterMesh
from meshproof.backends.kube.metrics import Sample
from meshproof.backends.kube.namespaces import NamespaceMap
from meshproof.backends.kube.pods import PodProxy
from meshproof.backends.kube.schema import CRD_DIR
from meshproof.backends.linkerd.render import DECLARED, KIND_ORDER, render
from meshproof.errors import UserError
from meshproof.intent import Identity, Intent, Workload
from meshproof.profile import ClusterSettings

NAMESPACE = "linkerd"
CLIENT_ID = "l5d-client-id"
ADMIN_PORT = 4191  # the proxy's admin server: Prometheus metrics
CONTROL_PLANE = ("linkerd-identity", "linkerd-destination", "linkerd-proxy-injector")
INJECTOR = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "linkerd-proxy-injector-webhook-config"}}
GATEWAY_API_CHANNEL = "gateway.networking.k8s.io/channel"
ROUTE_KINDS = frozenset({"HTTPRoute"})
_IDENTITY = re.compile(r"^([^.]+)\.([^.]+)\.serviceaccount\.identity\.[^.]+\.")


def _deployment(name: str) -> Json:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE}}


def _cluster_flags(cluster: Cluster) -> list[str]:
    return ["--kubeconfig", str(cluster.kubeconfig)] + (["--context", cluster.context] if cluster.context else [])


def version_command() -> Command:
    return Command("linkerd-version", ("linkerd", "version", "--client", "--short"), "read the version of linkerd", 60)


def install_commands(cluster: Cluster, settings: ClusterSettings) -> tuple[Command, Command, Command]:
    """`linkerd install --crds`, `linkerd install` (both print manifests) and `linkerd check`."""
    flags = _cluster_flags(cluster)
    wait = f"{int(settings.install)}s"
    return (
        Command("linkerd-install-crds", ("linkerd", "install", "--crds", *flags),
                "render Linkerd's CRDs with linkerd install --crds", 120),
        Command("linkerd-install", ("linkerd", "install", *flags), "render Linkerd's control plane with linkerd "
                "install", 120),
        Command("linkerd-check", ("linkerd", "check", *flags, "--output", "json", "--wait", wait),
                "check Linkerd with linkerd check", settings.install + 60),
    )


def check_results(output: str) -> list[str]:
    """The failed checks of `linkerd check -o json` (linkerd2 pkg/healthcheck's checkOutput), as lines."""
    try:
        parsed = json.loads(output)
        categories = parsed["categories"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"linkerd check printed no check results: {output[:200]!r}") from None
    failed = [f"{category['categoryName']}: {check['description']}: {check.get('error', '')}"
              + (f" (see {check['hint']})" if check.get("hint") else "")
              for category in categories for check in category.get("checks", ()) if check.get("result") == "error"]
    if not failed and not parsed.get("success", False):
        failed.append("linkerd check reported failure without a failed check")
    return failed


def manifests_of(output: str) -> list[Json]:
    """The objects in a CLI's YAML output, in order."""
    return [doc for doc in yaml.safe_load_all(output) if isinstance(doc, dict) and doc.get("kind")]


def gateway_api_crds(channel: str = "standard") -> list[Json]:
    """The vendored Gateway API CRDs of one release channel."""
    with (CRD_DIR / "gateway-api.yaml").open() as stream:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = [doc for doc in yaml.load_all(stream, Loader=loader) if isinstance(doc, dict)]
    return [doc for doc in documents if doc.get("kind") == "CustomResourceDefinition"
            and doc["metadata"].get("annotations", {}).get(GATEWAY_API_CHANNEL) == channel]


def route_problem(stored: Json | None) -> str | None:
    """Why the policy controller has not accepted a route yet (None once every parent is Accepted at the
    route's generation); UserError when it refused the route."""
    if stored is None:
        return "not found"
    generation = stored["metadata"].get("generation")
    parents = (stored.get("status") or {}).get("parents") or []
    wanted = stored["spec"].get("parentRefs") or []
    for reference in wanted:
        found = [p for p in parents if p.get("parentRef", {}).get("name") == reference.get("name")
                 and p.get("parentRef", {}).get("kind", "Service") == reference.get("kind", "Service")]
        accepted = objects.condition({"status": found[0]} if found else None, "Accepted")
        if accepted is None:
            return f"no status for its parent {reference.get('kind')} {reference.get('name')} yet"
        if accepted.get("observedGeneration") not in (None, generation):
            return f"status for generation {accepted.get('observedGeneration')}, the route is at {generation}"
        if accepted.get("status") == "False":
            raise UserError(f"Linkerd's policy controller did not accept {describe(stored)}: "
                            f"{accepted.get('reason')}: {accepted.get('message')}")
        if accepted.get("status") != "True":
            return f"Accepted={accepted.get('status')} for {reference.get('name')}"
    return None


def wait_routes_accepted(api: KubeApi, routes: Sequence[Json], *, timeout: float) -> None:
    """Until the policy controller accepted every route (route_problem), within `timeout` s."""
    def problems() -> list[str]:
        return [f"{describe(route)}: {problem}" for route in routes
                if (problem := route_problem(objects.get(api, route))) is not None]

    readiness.wait_until_none(problems, timeout=timeout, what="Linkerd's routes", interval=0.1)


def linkerd_identity(header: str) -> Identity | None:
    """`api-gateway.default.serviceaccount.identity.linkerd.cluster.local` -> Identity(default, api-gateway)."""
    match = _IDENTITY.match(header)
    return Identity(match.group(2), match.group(1)) if match else None


class LinkerdOnCluster(ClusterMesh):
    name = "linkerd"
    cli = "linkerd"
    unsupported = MappingProxyType({
        **DECLARED, **CLUSTER_UNSUPPORTED,
        "mtls.outside_certificate": "Linkerd names a workload by a DNS identity its issuer signs in the "
        "linkerd-identity-issuer secret; this version does not mint one for a client outside the mesh, so the "
        "refusal checks lack their positive control",
    })
    kind_order = KIND_ORDER
    flavour = MeshFlavour(
        proxy_container="linkerd-proxy",
        pod_annotations={"linkerd.io/inject": "enabled", "config.linkerd.io/skip-inbound-ports": str(CONTROL_PORT)},
        metrics_port=ADMIN_PORT, metrics_path="/metrics",
    )

    def render(self, intents: Sequence[Intent], workloads: Sequence[Workload]) -> list[Json]:
        return render(intents, workloads)

    def cli_version(self, tools: Runner) -> str:
        return tools(version_command()).strip()

    def install(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        self._install_crds(cluster, gateway_api_crds(), settings)
        crds, control_plane, _ = install_commands(cluster, settings)
        self._install_crds(cluster, manifests_of(tools(crds)), settings)
        for item in manifests_of(tools(control_plane)):
            cluster.apply(item)

    @staticmethod
    def _install_crds(cluster: Cluster, crds: Sequence[Json], settings: ClusterSettings) -> None:
        for crd in crds:
            cluster.apply(crd)
        for crd in crds:
            objects.wait_for_condition(cluster.api, crd, "Established", timeout=settings.install, current=False)

    def installed_version(self, cluster: Cluster) -> str:
        found = objects.get(cluster.api, _deployment("linkerd-destination"))
        if found is None:
            raise UserError(f"no linkerd-destination Deployment in {NAMESPACE} on {cluster.api.description}: meshproof "
                            "installs Linkerd only on a kind cluster of its own; install it there first (linkerd "
                            "install) or use --cluster kind")
        created_by = found["metadata"].get("annotations", {}).get("linkerd.io/created-by", "unknown")
        return str(created_by).rsplit(" ", 1)[-1]

    def wait_ready(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        readiness.wait_rolled_out(cluster.api, [_deployment(name) for name in CONTROL_PLANE], timeout=settings.install,
                                  what="Linkerd's control plane")
        readiness.wait_webhooks(cluster.api, [INJECTOR], timeout=settings.install, what="Linkerd's proxy injector")
        failed = check_results(tools(install_commands(cluster, settings)[2]))
        if failed:
            raise UserError(f"linkerd check failed: {'; '.join(failed)[:600]}")

    def control_plane(self) -> list[Json]:
        return [_deployment(name) for name in CONTROL_PLANE]

    # --- the mesh's signal ----------------------------------------------------------------------------
    def wait_served(self, cluster: Cluster, proxy: PodProxy, applied: Mapping[ObjectKey, Json | None],
                    pods: Sequence[PodInstance], names: NamespaceMap, timeout: float) -> dict[str, object]:
        routes = [stored for (_, kind, _, _), stored in applied.items() if kind in ROUTE_KINDS and stored is not None]
        wait_routes_accepted(cluster.api, routes, timeout=timeout)
        return {"routes_accepted": len(routes)}

    # --- what the proxies say -------------------------------------------------------------------------
    @staticmethod
    def peer_identity(headers: Mapping[str, str]) -> ObservedIdentity:
        raw = str(headers.get(CLIENT_ID, ""))
        return ObservedIdentity(linkerd_identity(raw) if raw else None,
                                f"request header {CLIENT_ID} set by the server's proxy", raw)

    @staticmethod
    def proxy_request_counts(samples: Sequence[Sample]) -> RequestCounts:
        def inbound(labels: Mapping[str, str]) -> bool:
            return labels.get("direction") == "inbound"

        return RequestCounts(
            metrics.total(samples, "response_total", inbound),
            metrics.total(samples, "response_total",
                          lambda labels: inbound(labels) and labels.get("status_code", "").startswith("5")))

    @staticmethod
    def proxy_outlier_stats(samples: Sequence[Sample], service: str, namespace: str) -> dict[str, int]:
        def of(state: str) -> Any:
            return lambda labels: (labels.get("backend_name"), labels.get("backend_namespace"),
                                   labels.get("endpoint_state")) == (service, namespace, state)

        return {f"endpoints_{state}": metrics.total(samples, "outbound_http_balancer_endpoints", of(state))
                for state in ("ready", "pending")}
