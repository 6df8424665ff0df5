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

The Kubernetes conventions both mesh renderers share are in conventions.py, which intents apply where in
meshproof.selection. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from meshproof.backends.kube.conventions import (
    APP_LABEL,
    VERSION_LABEL,
    Json,
    manifest,
    service,
    service_port,
    version_service_name,
)
from meshproof.durations import format_duration
from meshproof.features import UnsupportedFeature
from meshproof.intent import (
    HeaderMatch,
    Route,
    RouteRule,
    Workload,
)
from meshproof.selection import check_versions, services_of, versions_of

GATEWAY_API = "gateway.networking.k8s.io/v1"
MATCH_ORDER_REASON = (
    "Gateway API sends a request to the most specific matching rule (more header matches win; a tie "
    "between HTTPRoutes goes to the oldest), Istio and the intent to the first one"
)


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
