"""Intents -> the Istio resources that express them (pure; no I/O, no cluster).

| intent        | Istio resource                                                                         |
| ------------- | -------------------------------------------------------------------------------------- |
| MtlsPolicy    | security.istio.io/v1 PeerAuthentication: `default` in istio-system (mesh-wide),       |
|               | `default` in the namespace, or `<service>` there selecting `app: <service>`            |
| AuthzPolicy   | security.istio.io/v1 AuthorizationPolicy selecting `app: <target>`                     |
| Route         | networking.istio.io/v1 VirtualService `<service>` (first matching rule wins)           |
| OutlierPolicy | networking.istio.io/v1 DestinationRule `<service>`: trafficPolicy.outlierDetection     |
| ConnectionPool| the same DestinationRule: trafficPolicy.connectionPool                                 |
| LoadBalancer  | the same DestinationRule: trafficPolicy.loadBalancer.simple                            |
| RateLimit     | networking.istio.io/v1alpha3 EnvoyFilter inserting envoy.filters.http.local_ratelimit  |
|               | first in the workload's inbound HTTP filters (before Istio's RBAC, as the local mesh)  |

The DestinationRule also carries a subset (label `version`) for each version the service's Route names.
Istio defaults and quirks the rendering accounts for (checked against istio/istio
1.30: pilot/pkg/networking/core/route/retry/retry.go, cluster_traffic_policy.go, envoyfilter/):

- `timeout` absent: no route timeout (Istio's default is disabled). `retries` absent: Istio's default
  policy, 2 retries on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
  (503 no longer among them since 1.24, EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY), to another host.
  That is what a RouteRule with `retries=None` ("the mesh's default") gets; `Retry(attempts=0)` is
  rendered `retries: {attempts: 0}`, which Istio translates to no retry policy at all.
- retryOn: Istio adds `retriable-status-codes` itself when it sees a status code, but only
  recognises codes Go's net/http knows (any other would become a condition Envoy ignores: refused).
  A Retry with no condition is rendered `retryOn: retriable-status-codes` (with no code: retry
  nothing), because an empty retryOn would give Istio's default conditions instead.
- outlierDetection: an absent consecutive5xxErrors leaves Envoy's default (5, enforced), so a detector
  not asked for is written as 0; `maxEjectionPercent: 0` reads as unset (Envoy's 10%), so "eject no
  host" is written as both detectors off; minHealthPercent is the healthy panic threshold (0, Istio's
  default when absent, turns panic routing off, as in the local mesh).
- connectionPool: Istio treats 0 as unset for every limit, so `maxRetries: 0` cannot be expressed.
- principals carry no `spiffe://` scheme; paths use Istio's exact / `prefix*` / `*suffix` / `*` forms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshproof.backends.kube.conventions import APP_LABEL, VERSION_LABEL, finish, manifest
from meshproof.durations import format_duration
from meshproof.features import UnsupportedFeature, check_table
from meshproof.intent import (
    AuthzPolicy,
    ConnectionPool,
    Identity,
    Intent,
    LoadBalancer,
    MtlsPolicy,
    OutlierPolicy,
    RateLimit,
    Retry,
    Route,
    RouteRule,
    Rule,
    Workload,
)
from meshproof.selection import check_targets, check_versions, one_per_service, versions_of

Json = dict[str, Any]

MESH = "istio"
#: What an Istio sidecar offers as ALPN on its mTLS connections, by which the server's sidecar tells them from
#: an app's own TLS: under PERMISSIVE, TLS without it is passed through to the app (pilot/pkg/networking/core
#: inbound filter chain match: mtlsHTTPALPNs). A client outside the mesh holding a mesh certificate offers it too.
MTLS_ALPN = ("istio-http/1.1", "istio", "http/1.1")
ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace: a PeerAuthentication here is mesh-wide
SECURITY = "security.istio.io/v1"
NETWORKING = "networking.istio.io/v1"
ENVOY_FILTER = "networking.istio.io/v1alpha3"  # EnvoyFilter is served in v1alpha3 only
#: The order to apply kinds in: subsets (DestinationRule) exist before a VirtualService names them.
KIND_ORDER = ("PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "VirtualService", "EnvoyFilter")

#: Status codes Go's net/http.StatusText knows: the only ones Istio's parseRetryOn reads as codes.
GO_STATUS_CODES = frozenset(
    [*range(100, 104), *range(200, 209), 226, *range(300, 306), 307, 308, *range(400, 419), *range(421, 427),
     428, 429, 431, 451, *range(500, 509), 510, 511]
)

UNSUPPORTED: Mapping[str, str] = check_table({
    "connpool.max_retries_zero": "Istio reads DestinationRule connectionPool.http.maxRetries: 0 as unset and "
    "keeps its default of 2^32-1 concurrent retries (cluster_traffic_policy.go), so 'no concurrent "
    "retries' cannot be expressed",
    "retries.status_code": "Istio reads a retryOn entry as a status code only if Go's net/http knows it "
    "(retry.go parseRetryOn); any other code becomes a retry condition Envoy does not know and ignores",
}, owner=f"the {MESH} renderer")


#: What Istio does differently from a feature, though nothing is refused in rendering: checks of it end
#: not_supported (the descriptor declares both tables).
BEHAVIOUR: Mapping[str, str] = check_table({
    "mtls.plaintext_forbidden": "Istio's sidecar closes a plaintext connection to a STRICT workload without "
    "answering it (no filter chain matches plaintext)",
}, owner=f"the {MESH} renderer")
#: everything a backend of this mesh declares: what it cannot express and what it does instead
DECLARED: Mapping[str, str] = {**UNSUPPORTED, **BEHAVIOUR}


def _unsupported(feature: str, detail: str) -> UnsupportedFeature:
    return UnsupportedFeature(MESH, feature, UNSUPPORTED[feature], detail=detail)


def render(intents: Sequence[Intent], workloads: Sequence[Workload]) -> list[Json]:
    """Every Istio object the intents need, sorted in apply order (kind, namespace, name).

    Raises UnsupportedFeature for what Istio cannot express (see UNSUPPORTED) and ValueError for
    intents that contradict each other or the workloads (a split to a version nobody runs).
    """
    check_targets(intents, workloads)
    result = [peer_authentication(i) for i in intents if isinstance(i, MtlsPolicy)]
    result += [authorization_policy(i) for i in intents if isinstance(i, AuthzPolicy)]
    routes = one_per_service(intents, Route)
    outliers = one_per_service(intents, OutlierPolicy)
    pools = one_per_service(intents, ConnectionPool)
    balancers = one_per_service(intents, LoadBalancer)
    for key in sorted({*routes, *outliers, *pools, *balancers}):
        namespace, service = key
        route = routes.get(key)
        if route is not None:
            check_versions(route, versions_of(workloads, service, namespace))
            result.append(virtual_service(route))
        # Subsets only for the versions a route names: a DestinationRule is what the seed's is, no more.
        subsets = sorted(route.versions()) if route is not None else []
        if subsets or key in outliers or key in pools or key in balancers:
            result.append(destination_rule(service, namespace, subsets, outliers.get(key), pools.get(key),
                                           balancers.get(key)))
    result += [envoy_filter(limit) for limit in one_per_service(intents, RateLimit).values()]
    return finish(result, KIND_ORDER)


# --- security -------------------------------------------------------------------------------------------


def _selector(service: str) -> Json:
    return {"matchLabels": {APP_LABEL: service}}


def peer_authentication(policy: MtlsPolicy) -> Json:
    spec: Json = {}
    if policy.namespace is None:
        name, namespace = "default", ROOT_NAMESPACE
    elif policy.service is None:
        name, namespace = "default", policy.namespace
    else:
        name, namespace = policy.service, policy.namespace
        spec["selector"] = _selector(policy.service)
    spec["mtls"] = {"mode": policy.mode.value}
    return manifest(SECURITY, "PeerAuthentication", name, namespace, spec)


def authorization_policy(policy: AuthzPolicy) -> Json:
    """An ALLOW policy without rules is written without `rules`: Istio's allow-nothing."""
    spec: Json = {"selector": _selector(policy.target), "action": policy.action.value}
    if policy.rules:
        spec["rules"] = [_authz_rule(rule) for rule in policy.rules]
    return manifest(SECURITY, "AuthorizationPolicy", policy.name, policy.namespace, spec)


def _authz_rule(rule: Rule) -> Json:
    """A rule with no condition at all is `{}`, which Istio matches for every request."""
    result: Json = {}
    if rule.principals:
        # Rule accepts SPIFFE IDs too; Istio's principals are written without the scheme.
        result["from"] = [{"source": {"principals": [Identity.parse(p).principal for p in rule.principals]}}]
    operation: Json = {}
    if rule.methods:
        operation["methods"] = list(rule.methods)
    if rule.paths:
        operation["paths"] = list(rule.paths)
    if operation:
        result["to"] = [{"operation": operation}]
    return result


# --- traffic --------------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """Whole seconds as "10s", fractions as "0.25s": both Go's and protobuf's duration syntax, so valid
    for Istio's CRD rules and for the Envoy config an EnvoyFilter carries."""
    format_duration(seconds)  # refuses what is not whole milliseconds
    whole, millis = divmod(round(seconds * 1000), 1000)
    return f"{whole}.{millis:03d}".rstrip("0") + "s" if millis else f"{whole}s"


def virtual_service(route: Route) -> Json:
    spec = {"hosts": [route.service], "http": [_http_route(rule, route.service) for rule in route.rules]}
    return manifest(NETWORKING, "VirtualService", route.service, route.namespace, spec)


def _http_route(rule: RouteRule, host: str) -> Json:
    result: Json = {}
    if rule.match:
        result["match"] = [{"headers": {m.name: {"exact": m.exact} for m in rule.match}}]
    weighted = [(version, weight) for version, weight in rule.splits.items() if weight > 0]
    if not weighted:  # no split: every endpoint of the service
        result["route"] = [{"destination": {"host": host}}]
    elif len(weighted) == 1:
        result["route"] = [{"destination": {"host": host, "subset": weighted[0][0]}}]
    else:
        result["route"] = [{"destination": {"host": host, "subset": version}, "weight": weight}
                           for version, weight in weighted]
    if rule.timeout is not None:
        result["timeout"] = _duration(rule.timeout)
    if rule.retries is not None:
        result["retries"] = retries(rule.retries)
    return result


def retries(retry: Retry) -> Json:
    if retry.attempts == 0:
        return {"attempts": 0}
    unknown = [code for code in retry.status_codes if code not in GO_STATUS_CODES]
    if unknown:
        raise _unsupported("retries.status_code", f"retryOn {', '.join(map(str, unknown))}")
    result: Json = {"attempts": retry.attempts}
    if retry.per_try_timeout is not None:
        result["perTryTimeout"] = _duration(retry.per_try_timeout)
    result["retryOn"] = ",".join(retry.retry_on) or "retriable-status-codes"
    return result


def destination_rule(service: str, namespace: str, subsets: Sequence[str], outlier: OutlierPolicy | None,
                     pool: ConnectionPool | None, balancer: LoadBalancer | None = None) -> Json:
    traffic_policy: Json = {}
    if pool is not None:
        traffic_policy["connectionPool"] = connection_pool(pool)
    if balancer is not None:  # the seed's LEAST_CONN is written LEAST_REQUEST, which istiod renders alike
        traffic_policy["loadBalancer"] = {"simple": balancer.policy.value}
    if outlier is not None:
        traffic_policy["outlierDetection"] = outlier_detection(outlier)
    spec: Json = {"host": service}
    if traffic_policy:
        spec["trafficPolicy"] = traffic_policy
    if subsets:
        spec["subsets"] = [{"name": version, "labels": {VERSION_LABEL: version}} for version in subsets]
    return manifest(NETWORKING, "DestinationRule", service, namespace, spec)


def connection_pool(pool: ConnectionPool) -> Json:
    if pool.max_retries == 0:
        raise _unsupported("connpool.max_retries_zero", f"connection pool of {pool.service}")
    result: Json = {}
    if pool.max_connections is not None:
        result["tcp"] = {"maxConnections": pool.max_connections}
    http = {
        name: value
        for name, value in (
            ("http1MaxPendingRequests", pool.http1_max_pending_requests),
            ("http2MaxRequests", pool.http2_max_requests),
            ("maxRequestsPerConnection", pool.max_requests_per_connection),
            ("maxRetries", pool.max_retries),
        )
        if value is not None
    }
    if http:
        result["http"] = http
    return result


def outlier_detection(policy: OutlierPolicy) -> Json:
    # maxEjectionPercent 0 would read as unset (Envoy's 10%): "eject no host" is detection switched off.
    eject = policy.max_ejection_percent > 0
    result: Json = {"consecutive5xxErrors": (policy.consecutive_5xx or 0) if eject else 0}
    if eject and policy.consecutive_gateway_errors:
        result["consecutiveGatewayErrors"] = policy.consecutive_gateway_errors
    result["interval"] = _duration(policy.interval)
    result["baseEjectionTime"] = _duration(policy.base_ejection_time)
    if eject:
        result["maxEjectionPercent"] = policy.max_ejection_percent
    if policy.min_health_percent:
        result["minHealthPercent"] = policy.min_health_percent
    return result


# --- rate limit -----------------------------------------------------------------------------------------

LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit"
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
LOCAL_RATELIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"


def envoy_filter(limit: RateLimit) -> Json:
    """The seed's EnvoyFilter, with the limited-response header fixed (see below) and the non-deprecated
    `append_action` in place of `append: false`."""
    percent = {"numerator": 100, "denominator": "HUNDRED"}
    config: Json = {
        "stat_prefix": "http_local_rate_limiter",
        "token_bucket": {
            "max_tokens": limit.max_tokens,
            "tokens_per_fill": limit.tokens_per_fill,
            "fill_interval": _duration(limit.fill_interval),
        },
        "filter_enabled": {"runtime_key": "local_rate_limit_enabled", "default_value": dict(percent)},
        "filter_enforced": {"runtime_key": "local_rate_limit_enforced", "default_value": dict(percent)},
    }
    if limit.rate_limit_headers:
        config["enable_x_ratelimit_headers"] = "DRAFT_VERSION_03"
    if limit.limited_remaining_header:
        # Only limited (429) responses carry response_headers_to_add, and they have no token left by
        # definition. The seed's value,
        # %DYNAMIC_METADATA(envoy.filters.http.local_ratelimit:remaining_tokens)%, names metadata the
        # filter never sets (checked on Envoy 1.40): it renders empty and Envoy drops the header. The
        # local mesh renders the same constant.
        header = {"key": limit.limited_remaining_header, "value": "0"}
        config["response_headers_to_add"] = [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                               "header": header}]
    patch = {
        "applyTo": "HTTP_FILTER",
        "match": {
            "context": "SIDECAR_INBOUND",
            "listener": {"filterChain": {"filter": {"name": HTTP_CONNECTION_MANAGER}}},
        },
        # Without a subFilter, INSERT_BEFORE puts the filter first (envoyfilter/listener_patch.go), ahead of
        # Istio's RBAC filters: limited requests are refused before authorization, as in the local mesh.
        "patch": {
            "operation": "INSERT_BEFORE",
            "value": {
                "name": LOCAL_RATELIMIT,
                "typed_config": {
                    "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                    "type_url": LOCAL_RATELIMIT_TYPE,
                    "value": config,
                },
            },
        },
    }
    spec = {"workloadSelector": {"labels": {APP_LABEL: limit.target}}, "configPatches": [patch]}
    return manifest(ENVOY_FILTER, "EnvoyFilter", f"{limit.target}-local-ratelimit", limit.namespace, spec)
