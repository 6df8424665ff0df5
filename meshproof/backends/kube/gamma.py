"""A Route intent as Gateway API HTTPRoutes attached to a Service (GAMMA mesh routing), and the
Kubernetes conventions the mesh renderers share.

GAMMA routes are `gateway.networking.k8s.io/v1` HTTPRoutes whose parentRef is the Service callers
address; Istio and Linkerd (2.14+) both serve them. A version split becomes weighted backendRefs, and
since a backendRef names a Service, each version gets its own Service (`order-service-v1`, selecting
`app=order-service,version=v1`), rendered here too. Header matches and `timeouts.request` are
standard; retries are not (GEP-1731 is experimental), so a mesh adds them itself: Linkerd through
annotations on the HTTPRoute, which is why `rule_annotations` may split a Route into several HTTPRoutes.

Route semantics differ in one way that is refused rather than approximated: Istio (and the intent)
take the *first* rule that matches, Gateway API the most *specific* one (more header matches win; a
tie goes to the first rule of one HTTPRoute, but between HTTPRoutes to the oldest). When the two could
pick different rules for some request, rendering raises UnsupportedFeature("canary.match_order").

Also here, because both renderers (and the deploy layer) must agree on them: the pod labels (`app`,
`version`), the name of the app's container port (`http`), Service manifests, the metadata every
rendered object carries, UnsupportedFeature, the intent lookups both renderers make (one intent per
service, no intent about a service nobody runs) and the final dedupe-and-sort. It renders no
Deployment or Namespace (the deploy layer does) and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from meshproof.durations import format_duration
from meshproof.features import UnsupportedFeature
from meshproof.intent import (
    AuthzPolicy,
    ConnectionPool,
    HeaderMatch,
    Intent,
    MtlsPolicy,
    OutlierPolicy,
    RateLimit,
    Route,
    RouteRule,
    Workload,
)

Json = dict[str, Any]

APP_LABEL = "app"
VERSION_LABEL = "version"
#: The name of the app's container port on every pod, which Services and Linkerd Servers refer to.
APP_PORT_NAME = "http"
#: Every rendered object carries this label, so a backend can find (and prune) what meshproof applied.
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshproof"}
GATEWAY_API = "gateway.networking.k8s.io/v1"
MATCH_ORDER_REASON = (
    "Gateway API sends a request to the most specific matching rule (more header matches win; a tie "
    "between HTTPRoutes goes to the oldest), Istio and the intent to the first one"
)


def manifest(api_version: str, kind: str, name: str, namespace: str, spec: Json | None = None, *,
             annotations: Mapping[str, str] | None = None) -> Json:
    """A namespaced object with meshproof's metadata."""
    metadata: Json = {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    result: Json = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        result["spec"] = spec
    return result


def service(name: str, namespace: str, port: int, selector: Mapping[str, str], *,
            annotations: Mapping[str, str] | None = None) -> Json:
    """A ClusterIP Service forwarding `port` to the pods' `http` container port."""
    ports = [{"name": APP_PORT_NAME, "port": port, "targetPort": APP_PORT_NAME}]
    spec = {"selector": dict(selector), "ports": ports}
    return manifest("v1", "Service", name, namespace, spec, annotations=annotations)


def services_of(workloads: Iterable[Workload]) -> list[tuple[str, str]]:
    """Every (namespace, service) the workloads make up, sorted."""
    return sorted({(w.namespace, w.service) for w in workloads})


def service_port(workloads: Iterable[Workload], service_name: str, namespace: str) -> int:
    """The port the Service of `service_name` listens on; its workloads must agree on it."""
    ports = {w.port for w in workloads if w.service == service_name and w.namespace == namespace}
    if len(ports) != 1:
        problem = "no workload" if not ports else f"workloads disagree on the port ({sorted(ports)})"
        raise ValueError(f"service {service_name}.{namespace}: {problem}")
    return ports.pop()


def versions_of(workloads: Iterable[Workload], service_name: str, namespace: str) -> list[str]:
    return sorted({w.version for w in workloads if w.service == service_name and w.namespace == namespace})


def version_service_name(service_name: str, version: str) -> str:
    return f"{service_name}-{version}"


def check_versions(route: Route, versions: Sequence[str]) -> None:
    """ValueError when `route` splits to a version none of `versions` (those the workloads run) is."""
    for version in sorted(route.versions()):
        if version not in versions:
            raise ValueError(f"route for {route.service}: no workload of version {version!r} "
                             f"(have {list(versions)})")


def target_of(intent: Intent) -> tuple[str, str] | None:
    """The (namespace, service) an intent is about; None for a mesh- or namespace-wide MtlsPolicy."""
    if isinstance(intent, MtlsPolicy):
        if intent.namespace is None or intent.service is None:
            return None
        return (intent.namespace, intent.service)
    if isinstance(intent, AuthzPolicy | RateLimit):
        return (intent.namespace, intent.target)
    return (intent.namespace, intent.service)


def check_targets(intents: Iterable[Intent], workloads: Iterable[Workload]) -> None:
    """ValueError for an intent about a service no workload provides: a typo would select nothing."""
    known = set(services_of(workloads))
    for intent in intents:
        key = target_of(intent)
        if key is not None and key not in known:
            raise ValueError(f"{type(intent).__name__} for {key[1]}.{key[0]}, which no workload provides")


PerService = TypeVar("PerService", Route, OutlierPolicy, ConnectionPool, RateLimit)


def one_per_service(intents: Iterable[Intent], kind: type[PerService]) -> dict[tuple[str, str], PerService]:
    """The intent of `kind` for each (namespace, service); two for one service is an error, as in the local
    mesh: which one should win is not for a renderer to guess."""
    found: dict[tuple[str, str], PerService] = {}
    for intent in intents:
        if isinstance(intent, kind):
            key = target_of(intent)
            assert key is not None  # these kinds always name a service
            if key in found:
                raise ValueError(f"more than one {kind.__name__} for {key[1]}.{key[0]}; merge them into one")
            found[key] = intent
    return found


def finish(manifests: Iterable[Json], kind_order: Sequence[str]) -> list[Json]:
    """`manifests` without repeats, sorted by kind (in `kind_order`, the order to apply them in), namespace
    and name. Two different objects with one identity are an error, not a silent overwrite."""
    unique: dict[tuple[str, str, str, str], Json] = {}
    for item in manifests:
        key = (item["apiVersion"], item["kind"], item["metadata"]["namespace"], item["metadata"]["name"])
        if key in unique and unique[key] != item:
            raise ValueError(f"two different {key[1]} objects named {key[2]}/{key[3]} (conflicting intents)")
        unique[key] = item
    return sorted(unique.values(), key=lambda m: (kind_order.index(m["kind"]), m["apiVersion"],
                                                  m["metadata"]["namespace"], m["metadata"]["name"]))


def render(route: Route, workloads: Sequence[Workload], *, mesh: str,
           rule_annotations: Callable[[RouteRule], Mapping[str, str]] | None = None) -> list[Json]:
    """The per-version Services a split needs, then the HTTPRoute(s) for `route`.

    Rules with equal `rule_annotations` share one HTTPRoute (named after the service, or
    `<service>-<n>` when there are several), in the intent's order.
    """
    port = service_port(workloads, route.service, route.namespace)
    check_versions(route, versions_of(workloads, route.service, route.namespace))
    taken = {name for namespace, name in services_of(workloads) if namespace == route.namespace}
    result = []
    for version in sorted(route.versions()):
        name = version_service_name(route.service, version)
        if name in taken:
            raise ValueError(f"route for {route.service}: the version Service {name} would replace a service")
        selector = {APP_LABEL: route.service, VERSION_LABEL: version}
        result.append(service(name, route.namespace, port, selector))

    annotate = rule_annotations or (lambda rule: {})
    groups: dict[tuple[tuple[str, str], ...], list[Json]] = {}
    group_of = []
    for rule in route.rules:
        key = tuple(sorted(annotate(rule).items()))
        group_of.append(list(groups).index(key) if key in groups else len(groups))
        groups.setdefault(key, []).append(_rule(rule, route.service, port))
    _refuse_reordering(route, group_of, mesh)
    for index, (notes_items, rules) in enumerate(groups.items()):
        notes = dict(notes_items)
        name = route.service if len(groups) == 1 else f"{route.service}-{index}"
        parent = {"group": "", "kind": "Service", "name": route.service, "port": port}
        spec = {"parentRefs": [parent], "rules": rules}
        result.append(manifest(GATEWAY_API, "HTTPRoute", name, route.namespace, spec, annotations=notes))
    return result


def _rule(rule: RouteRule, service_name: str, port: int) -> Json:
    weighted = [(version, weight) for version, weight in rule.splits.items() if weight > 0]
    if not weighted:  # no split: the Service itself, every endpoint
        backends: list[Json] = [{"name": service_name, "port": port}]
    else:
        backends = [{"name": version_service_name(service_name, v), "port": port} for v, _ in weighted]
        if len(weighted) > 1:
            for backend, (_, weight) in zip(backends, weighted, strict=True):
                backend["weight"] = weight
    result: Json = {}
    if rule.match:
        headers = [{"type": "Exact", "name": m.name, "value": m.exact} for m in rule.match]
        result["matches"] = [{"headers": headers}]
    result["backendRefs"] = backends
    if rule.timeout is not None:
        result["timeouts"] = {"request": format_duration(rule.timeout)}
    return result


def _refuse_reordering(route: Route, group_of: Sequence[int], mesh: str) -> None:
    """Raise when Gateway API precedence could pick another rule than Istio's first match."""
    for i, earlier in enumerate(route.rules):
        for j in range(i + 1, len(route.rules)):
            later = route.rules[j]
            if not _could_both_match(earlier.match, later.match):
                continue
            if len(later.match) > len(earlier.match):
                why = f"rule {j} has more header matches than rule {i}, so Gateway API prefers it"
            elif len(later.match) == len(earlier.match) and group_of[i] != group_of[j]:
                why = f"rules {i} and {j} tie but sit in different HTTPRoutes, where the oldest route wins"
            else:
                continue
            raise UnsupportedFeature(mesh, "canary.match_order", MATCH_ORDER_REASON,
                                     detail=f"route for {route.service}: {why}")


def _could_both_match(first: Sequence[HeaderMatch], second: Sequence[HeaderMatch]) -> bool:
    wanted = {m.name: m.exact for m in first}
    return all(wanted.get(m.name, m.exact) == m.exact for m in second)
