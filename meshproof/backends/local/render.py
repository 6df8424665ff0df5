"""Intents -> Envoy v3 configuration for one sidecar of the local mesh (pure; no I/O).

The shape follows Istio's sidecars, so the local mesh behaves like the meshes it stands in for:
- an *inbound* listener (mTLS per the effective MtlsPolicy; XFCC set from the peer certificate) in
  front of the app, with the local rate limit and two RBAC filters (DENY first, then ALLOW);
- an *outbound* listener for the app's calls, routing by Host to `outbound|<port>|<subset>|<fqdn>`
  clusters that originate mTLS with the workload's SVID and verify the server's SPIFFE ID.

Where Istio's generated config has a default the intents do not mention, the local mesh renders the same
(read in istio/istio pilot/pkg/networking/core): LEAST_REQUEST load balancing (cluster_traffic_policy.go
applyLoadBalancer, LEAST_CONN being its alias); a route without retries gets Istio's default retry policy
and every inbound route its reset-before-request retries (route/retry/retry.go, route/route.go); a
service's connection pool also limits its own inbound cluster (cluster_builder.go buildInboundCluster);
paths are normalized without merging slashes (listener_builder.go, meshConfig pathNormalization BASE);
and the rate limit is a filter in each inbound HTTP connection manager, with a bucket per filter chain,
as the seed's EnvoyFilter patch puts it there (envoyfilter/listener_patch.go).

Where each setting lives decides how fast it takes effect, which was measured on Envoy 1.40: a
listener (LDS) update leaves open connections on the *old* filter chain until they drain, while a
route configuration (RDS) update applies to the very next request. So everything that can be per
route is: authorization is a per-route filter config on the inbound route, retries, timeouts and weights
live on the outbound route. The mTLS mode and the rate limit (where Istio has it too) change the listener.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshproof.backends.host.topology import Instance, Topology
from meshproof.durations import protobuf_duration
from meshproof.faults import HttpFault
from meshproof.intent import (
    TRUST_DOMAIN,
    AuthzAction,
    AuthzPolicy,
    ConnectionPool,
    Intent,
    LbPolicy,
    LoadBalancer,
    MtlsMode,
    OutlierPolicy,
    RateLimit,
    Retry,
    Route,
    RouteRule,
    Rule,
    Workload,
)
from meshproof.selection import effective_mtls, for_service, one_per_service

Json = dict[str, Any]


@dataclass(frozen=True)
class SidecarFiles:
    """The files one sidecar reads: its SVID, the trust bundle, and one watched directory per xDS kind."""

    cert: Path
    key: Path
    trust_bundle: Path
    xds_dir: Path

    def xds_file(self, kind: str) -> Path:
        return self.xds_dir / kind / f"{kind}.json"



#: xDS kinds and the order they are applied in: clusters before the routes that name them.
XDS_KINDS = ("cds", "lds", "rds_inbound", "rds_outbound")
TYPE_URLS = {
    "lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "rds_inbound": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "rds_outbound": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
}
UNLIMITED = 4294967295  # what Istio sets for connection-pool limits nobody asked for
AUTHZ_DENY_FILTER = "meshproof.authz.deny"
AUTHZ_ALLOW_FILTER = "meshproof.authz.allow"
RATELIMIT_FILTER = "envoy.filters.http.local_ratelimit"
RATELIMIT_STAT_PREFIX = "inbound_ratelimit"
FAULT_FILTER = "envoy.filters.http.fault"
HTTP_FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault"
CONNECT_TIMEOUT = "10s"  # Istio's default connectTimeout
#: Istio's retry policy for a route that names none (route/retry/retry.go DefaultPolicy; 503 is not among
#: the codes since Istio 1.24, EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY): 2 retries, on another host.
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
DEFAULT_RETRIES = 2
#: What Istio gives every inbound route (route.go BuildDefaultHTTPInboundRoute, ENABLE_INBOUND_RETRY_POLICY).
INBOUND_RETRY_POLICY: Json = {"retry_on": "reset-before-request", "num_retries": 2}


@dataclass(frozen=True)
class SidecarConfig:
    """Everything one sidecar serves: a DiscoveryResponse body (no version yet) per xDS kind."""

    resources: dict[str, Json]


def fqdn(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.{TRUST_DOMAIN}"


def cluster_name(service: str, namespace: str, port: int, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{fqdn(service, namespace)}"


def inbound_cluster_name(instance: Instance) -> str:
    return f"inbound|{instance.app_port}||"


def _address(port: int) -> Json:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _config_source(files: SidecarFiles, kind: str) -> Json:
    path = files.xds_file(kind)
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
    }


def _typed(type_name: str, **fields: Any) -> Json:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def bootstrap(instance: Instance, files: SidecarFiles) -> Json:
    return {
        "node": {
            "id": instance.name,
            "cluster": f"{instance.service}.{instance.namespace}",
            "metadata": {
                "workload": instance.workload.name,
                "version": instance.version,
                "namespace": instance.namespace,
            },
        },
        "admin": {"address": _address(instance.admin_port)},
        "dynamic_resources": {"lds_config": _config_source(files, "lds"), "cds_config": _config_source(files, "cds")},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections=50000,
                    ),
                }
            ]
        },
    }


# --- which intents apply where --------------------------------------------------------------------------


# --- listeners --------------------------------------------------------------------------------------------


def _downstream_tls(files: SidecarFiles) -> Json:
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": _typed(
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            require_client_certificate=True,
            common_tls_context=_common_tls(files, {"prefix": f"spiffe://{TRUST_DOMAIN}/"}),
        ),
    }


def _common_tls(files: SidecarFiles, *san_matchers: Json) -> Json:
    return {
        "tls_certificates": [
            {"certificate_chain": {"filename": str(files.cert)}, "private_key": {"filename": str(files.key)}}
        ],
        "validation_context": {
            "trusted_ca": {"filename": str(files.trust_bundle)},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": m} for m in san_matchers],
        },
    }


def _http_filter(name: str, type_name: str, **fields: Any) -> Json:
    return {"name": name, "typed_config": _typed(type_name, **fields)}


def _router() -> Json:
    return _http_filter("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router")


def _hcm(stat_prefix: str, rds_kind: str, route_name: str, files: SidecarFiles, filters: list[Json],
         **extra: Any) -> Json:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": _typed(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix=stat_prefix,
            rds={"route_config_name": route_name, "config_source": _config_source(files, rds_kind)},
            http_filters=[*filters, _router()],
            # Istio's default path normalization (BASE): RFC 3986 normalization, slashes kept as they are
            normalize_path=True,
            merge_slashes=False,
            path_with_escaped_slashes_action="KEEP_UNCHANGED",
            **extra,
        ),
    }


def inbound_listener(instance: Instance, files: SidecarFiles, mode: MtlsMode, limit: RateLimit | None) -> Json:
    """`limit`: the rate limit of the instance's service. Its filter, with its bucket, sits in each chain's HTTP
    connection manager, as the seed's EnvoyFilter inserts it (first, before authorization) into every inbound
    one: each chain has its own bucket, and changing the limit is a listener update, as on Istio."""
    rbac = "envoy.extensions.filters.http.rbac.v3.RBAC"

    def hcm() -> Json:
        limiter = [] if limit is None else [{"name": RATELIMIT_FILTER, "typed_config": _local_ratelimit(limit)}]
        return _hcm(
            "inbound",
            "rds_inbound",
            "inbound",
            files,
            [*limiter, _http_filter(AUTHZ_DENY_FILTER, rbac), _http_filter(AUTHZ_ALLOW_FILTER, rbac)],
            forward_client_cert_details="SANITIZE_SET",
            set_current_client_cert_details={"uri": True},
        )

    listener: Json = {
        "@type": TYPE_URLS["lds"],
        "name": "inbound",
        "address": _address(instance.inbound_port),
        "traffic_direction": "INBOUND",
    }
    if mode is MtlsMode.STRICT:
        listener["filter_chains"] = [{"name": "mtls", "filters": [hcm()], "transport_socket": _downstream_tls(files)}]
    else:
        listener["listener_filters"] = [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": _typed("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"),
            }
        ]
        listener["filter_chains"] = [
            {
                "name": "mtls",
                "filter_chain_match": {"transport_protocol": "tls"},
                "filters": [hcm()],
                "transport_socket": _downstream_tls(files),
            },
            {"name": "plaintext", "filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": [hcm()]},
        ]
    return listener


def outbound_listener(instance: Instance, files: SidecarFiles) -> Json:
    return {
        "@type": TYPE_URLS["lds"],
        "name": "outbound",
        "address": _address(instance.outbound_port),
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"name": "http", "filters": [_hcm("outbound", "rds_outbound", "outbound", files, [
            _http_filter(FAULT_FILTER, HTTP_FAULT),  # inert until a route configures it, as in Istio's sidecars
        ])]}],
    }


# --- clusters ---------------------------------------------------------------------------------------------


def _circuit_breakers(pool: ConnectionPool | None) -> Json:
    def limit(value: int | None) -> int:
        return UNLIMITED if value is None else value

    return {
        "thresholds": [
            {
                "priority": "DEFAULT",
                "max_connections": limit(pool.max_connections if pool else None),
                "max_pending_requests": limit(pool.http1_max_pending_requests if pool else None),
                "max_requests": limit(pool.http2_max_requests if pool else None),
                "max_retries": limit(pool.max_retries if pool else None),
                "track_remaining": True,
            }
        ]
    }


def _outlier_detection(policy: OutlierPolicy) -> Json:
    """Istio's translation: a detector not asked for is off (Envoy would enforce consecutive_5xx=5 and
    success-rate ejection by default), and success-rate ejection is never enforced."""
    detection: Json = {
        "interval": protobuf_duration(policy.interval),
        "base_ejection_time": protobuf_duration(policy.base_ejection_time),
        "max_ejection_percent": policy.max_ejection_percent,
        "enforcing_consecutive_5xx": 100 if policy.consecutive_5xx else 0,
        "enforcing_consecutive_gateway_failure": 100 if policy.consecutive_gateway_errors else 0,
        "enforcing_success_rate": 0,
    }
    if policy.consecutive_5xx:
        detection["consecutive_5xx"] = policy.consecutive_5xx
    if policy.consecutive_gateway_errors:
        detection["consecutive_gateway_failure"] = policy.consecutive_gateway_errors
    return detection


def _endpoints(name: str, instances: Sequence[Instance], port_of: str) -> Json:
    return {
        "cluster_name": name,
        "endpoints": [
            {
                "lb_endpoints": [
                    {"endpoint": {"address": _address(getattr(i, port_of)), "hostname": i.name}} for i in instances
                ]
            }
        ],
    }


def _pool_options(cluster: Json, pool: ConnectionPool | None) -> None:
    """The pool's per-connection limit, as Istio sets it (cluster_traffic_policy.go applyConnectionPool)."""
    if pool is not None and pool.max_requests_per_connection is not None:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                common_http_protocol_options={"max_requests_per_connection": pool.max_requests_per_connection},
                explicit_http_config={"http_protocol_options": {}},
            )
        }


def _outbound_cluster(
    name: str,
    sni: str,
    servers: Sequence[Instance],
    files: SidecarFiles,
    outlier: OutlierPolicy | None,
    pool: ConnectionPool | None,
    balancer: LbPolicy,
) -> Json:
    """Outbound mTLS to the servers, accepting only their own SPIFFE IDs (Istio's ISTIO_MUTUAL validation
    context matches the destination's service accounts, cluster_tls.go): a certificate of any other
    identity, or from another CA, fails the handshake before a request is sent."""
    server_ids = sorted({server.identity.spiffe_id for server in servers})
    cluster: Json = {
        "@type": TYPE_URLS["cds"],
        "name": name,
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": balancer.value,
        "load_assignment": _endpoints(name, servers, "inbound_port"),
        "circuit_breakers": _circuit_breakers(pool),
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": _typed(
                "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                sni=sni,
                common_tls_context=_common_tls(files, *({"exact": spiffe_id} for spiffe_id in server_ids)),
            ),
        },
    }
    _pool_options(cluster, pool)
    if outlier is not None:
        cluster["outlier_detection"] = _outlier_detection(outlier)
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": float(outlier.min_health_percent)}}
    return cluster


def clusters(instance: Instance, topology: Topology, intents: Sequence[Intent], files: SidecarFiles) -> list[Json]:
    pools = one_per_service(intents, ConnectionPool)
    # The app's own service's pool limits its inbound cluster too, as in Istio (cluster_builder.go
    # buildInboundCluster: "circuit breakers ... need to be set on the receiver end as well").
    own_pool = pools.get((instance.namespace, instance.service))
    local_app: Json = {
        "@type": TYPE_URLS["cds"],
        "name": inbound_cluster_name(instance),
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "load_assignment": _endpoints(inbound_cluster_name(instance), [instance], "app_port"),
        "circuit_breakers": _circuit_breakers(own_pool),
    }
    _pool_options(local_app, own_pool)
    result = [local_app]
    for namespace, service, port in topology.services():
        outlier = one_per_service(intents, OutlierPolicy).get((namespace, service))
        balancer = one_per_service(intents, LoadBalancer).get((namespace, service))
        for subset in ["", *topology.versions(service, namespace)]:
            name = cluster_name(service, namespace, port, subset)
            sni = f"outbound_.{port}_.{subset}_.{fqdn(service, namespace)}"
            servers = topology.of_service(service, namespace, subset or None)
            result.append(_outbound_cluster(name, sni, servers, files, outlier, pools.get((namespace, service)),
                                            balancer.policy if balancer else LbPolicy.LEAST_REQUEST))
    return result


# --- inbound routes: authorization --------------------------------------------------------------------------


def _path_matcher(path: str) -> Json:
    if path == "*":
        return {"safe_regex": {"regex": ".*"}}
    if path.endswith("*"):
        return {"prefix": path[:-1]}
    if path.startswith("*"):
        return {"suffix": path[1:]}
    return {"exact": path}


def _or(key: str, items: list[Json]) -> Json:
    return items[0] if len(items) == 1 else {key: {"rules" if key == "or_rules" else "ids": items}}


def rbac_policy(rule: Rule) -> Json:
    """One Istio rule as one Envoy RBAC policy: (any principal) AND (any method) AND (any path)."""
    principals = (
        [_or("or_ids", [{"authenticated": {"principal_name": {"exact": f"spiffe://{p}"}}} for p in rule.principals])]
        if rule.principals
        else [{"any": True}]
    )
    conditions = []
    if rule.methods:
        conditions.append(
            _or("or_rules", [{"header": {"name": ":method", "string_match": {"exact": m}}} for m in rule.methods])
        )
    if rule.paths:
        conditions.append(_or("or_rules", [{"url_path": {"path": _path_matcher(p)}} for p in rule.paths]))
    if not conditions:
        permissions: list[Json] = [{"any": True}]
    elif len(conditions) == 1:
        permissions = conditions
    else:
        permissions = [{"and_rules": {"rules": conditions}}]
    return {"permissions": permissions, "principals": principals}


def _rbac_per_route(action: AuthzAction, policies: Sequence[AuthzPolicy]) -> Json:
    rules = {
        f"{policy.namespace}.{policy.name}[{index}]": rbac_policy(rule)
        for policy in policies
        for index, rule in enumerate(policy.rules)
    }
    return _typed(
        "envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
        rbac={"rules": {"action": action.value, "policies": rules}},
    )


def _local_ratelimit(limit: RateLimit) -> Json:
    percent = {"numerator": 100, "denominator": "HUNDRED"}
    config = _typed(
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix=RATELIMIT_STAT_PREFIX,
        token_bucket={
            "max_tokens": limit.max_tokens,
            "tokens_per_fill": limit.tokens_per_fill,
            "fill_interval": protobuf_duration(limit.fill_interval),
        },
        filter_enabled={"runtime_key": "local_rate_limit_enabled", "default_value": percent},
        filter_enforced={"runtime_key": "local_rate_limit_enforced", "default_value": percent},
    )
    if limit.rate_limit_headers:
        config["enable_x_ratelimit_headers"] = "DRAFT_VERSION_03"
    if limit.limited_remaining_header:
        # A limited response has no token left by definition. The seed's value,
        # %DYNAMIC_METADATA(envoy.filters.http.local_ratelimit:remaining_tokens)%, names metadata
        # that Envoy 1.40's filter never sets, so it renders empty and Envoy drops the header.
        config["response_headers_to_add"] = [
            {
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                "header": {"key": limit.limited_remaining_header, "value": "0"},
            }
        ]
    return config


def inbound_routes(instance: Instance, intents: Sequence[Intent]) -> Json:
    per_filter: Json = {}
    policies = for_service(intents, AuthzPolicy, instance.service, instance.namespace)
    for action, name in ((AuthzAction.DENY, AUTHZ_DENY_FILTER), (AuthzAction.ALLOW, AUTHZ_ALLOW_FILTER)):
        selected = [policy for policy in policies if policy.action is action]
        if selected:
            per_filter[name] = _rbac_per_route(action, selected)
    to_app: Json = {"cluster": inbound_cluster_name(instance), "timeout": "0s",
                    "retry_policy": dict(INBOUND_RETRY_POLICY)}
    virtual_host: Json = {"name": "inbound", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": to_app}]}
    if per_filter:
        virtual_host["typed_per_filter_config"] = per_filter
    return {"@type": TYPE_URLS["rds_inbound"], "name": "inbound", "virtual_hosts": [virtual_host]}


# --- outbound routes: splits, retries, timeouts -----------------------------------------------------------


def _previous_hosts() -> list[Json]:
    """As Istio: prefer another endpoint for each retry."""
    return [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": _typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
        }
    ]


def default_retry_policy() -> Json:
    return {"retry_on": DEFAULT_RETRY_ON, "num_retries": DEFAULT_RETRIES, "retry_host_predicate": _previous_hosts(),
            "host_selection_retry_max_attempts": 5}


def retry_policy(retry: Retry) -> Json:
    conditions = list(retry.conditions)
    if retry.status_codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy: Json = {
        "retry_on": ",".join(conditions),
        "num_retries": retry.attempts,
        "retry_host_predicate": _previous_hosts(),
        "host_selection_retry_max_attempts": 5,
    }
    if retry.status_codes:
        policy["retriable_status_codes"] = list(retry.status_codes)
    if retry.per_try_timeout is not None:
        policy["per_try_timeout"] = protobuf_duration(retry.per_try_timeout)
    return policy


def _route_action(rule: RouteRule, service: str, namespace: str, port: int, known_versions: list[str]) -> Json:
    for version in rule.splits:
        if version not in known_versions:
            raise ValueError(f"route for {service}: no workload of version {version!r} (have {known_versions})")
    weighted = [(version, weight) for version, weight in rule.splits.items() if weight > 0]
    action: Json = {"timeout": protobuf_duration(rule.timeout) if rule.timeout else "0s"}
    if not weighted:
        action["cluster"] = cluster_name(service, namespace, port)
    elif len(weighted) == 1:
        action["cluster"] = cluster_name(service, namespace, port, weighted[0][0])
    else:
        action["weighted_clusters"] = {
            "clusters": [
                {"name": cluster_name(service, namespace, port, version), "weight": weight}
                for version, weight in weighted
            ]
        }
    if rule.retries is None:  # the mesh's default, as istiod renders it (retry.go ConvertPolicy)
        action["retry_policy"] = default_retry_policy()
    elif rule.retries.attempts > 0:  # attempts 0: no retry policy at all
        action["retry_policy"] = retry_policy(rule.retries)
    return action


def _domains(service: str, namespace: str, port: int, caller_namespace: str) -> list[str]:
    names = [f"{service}.{namespace}", f"{service}.{namespace}.svc", fqdn(service, namespace)]
    if namespace == caller_namespace:  # short names resolve in the caller's own namespace, as in Kubernetes
        names.insert(0, service)
    return [form for name in names for form in (name, f"{name}:{port}")]


def _fraction(percent: float) -> Json:
    return {"numerator": round(percent * 10000), "denominator": "MILLION"}


def http_fault(fault: HttpFault) -> Json:
    """A route's fault filter config, as istiod's TranslateFault renders a VirtualService `fault`
    (pilot/pkg/networking/core/route/route.go): percentages in millionths, a fixed delay, an HTTP abort."""
    config: Json = {}
    if fault.delay_percent:
        config["delay"] = {"fixed_delay": protobuf_duration(fault.delay), "percentage": _fraction(fault.delay_percent)}
    if fault.abort_percent:
        config["abort"] = {"http_status": fault.abort_status, "percentage": _fraction(fault.abort_percent)}
    return _typed(HTTP_FAULT, **config)


def outbound_routes(instance: Instance, topology: Topology, intents: Sequence[Intent],
                    http_faults: Sequence[HttpFault] = ()) -> Json:
    """`http_faults` in force at this instance's proxy go on every route to their service, as Istio puts a
    VirtualService's `fault` on each route it renders (typed_per_filter_config of the fault filter)."""
    faults = {(fault.namespace, fault.service): http_fault(fault) for fault in http_faults}
    virtual_hosts = []
    for namespace, service, port in topology.services():
        route: Route | None = one_per_service(intents, Route).get((namespace, service))
        rules = route.rules if route else (RouteRule(),)
        versions = topology.versions(service, namespace)
        routes = []
        for rule in rules:
            match: Json = {"prefix": "/"}
            if rule.match:
                match["headers"] = [{"name": m.name, "string_match": {"exact": m.exact}} for m in rule.match]
            entry: Json = {"match": match, "route": _route_action(rule, service, namespace, port, versions)}
            if (namespace, service) in faults:
                entry["typed_per_filter_config"] = {FAULT_FILTER: faults[(namespace, service)]}
            routes.append(entry)
        virtual_hosts.append(
            {
                "name": f"{fqdn(service, namespace)}:{port}",
                "domains": _domains(service, namespace, port, instance.namespace),
                "routes": routes,
                "include_request_attempt_count": True,
            }
        )
    return {"@type": TYPE_URLS["rds_outbound"], "name": "outbound", "virtual_hosts": virtual_hosts}


def static_bootstrap(instance: Instance, files: SidecarFiles, config: SidecarConfig) -> Json:
    """The same configuration as one static bootstrap (routes inlined), for `envoy --mode validate`
    and for reading: what the sidecar serves over xDS, in one file."""
    routes = {
        route["name"]: {key: value for key, value in route.items() if key != "@type"}
        for kind in ("rds_inbound", "rds_outbound")
        for route in config.resources[kind]["resources"]
    }
    listeners = []
    for listener in config.resources["lds"]["resources"]:
        listener = {key: value for key, value in listener.items() if key != "@type"}
        chains = []
        for chain in listener["filter_chains"]:
            hcm = dict(chain["filters"][0]["typed_config"])
            hcm["route_config"] = routes[hcm.pop("rds")["route_config_name"]]
            chains.append({**chain, "filters": [{**chain["filters"][0], "typed_config": hcm}]})
        listeners.append({**listener, "filter_chains": chains})
    static = bootstrap(instance, files)
    del static["dynamic_resources"]
    static["static_resources"] = {
        "listeners": listeners,
        "clusters": [
            {key: value for key, value in cluster.items() if key != "@type"}
            for cluster in config.resources["cds"]["resources"]
        ],
    }
    return static


def render(instance: Instance, topology: Topology, intents: Sequence[Intent], files: SidecarFiles, *,
           http_faults: Sequence[HttpFault] = (), inbound: bool = True) -> SidecarConfig:
    """`http_faults`: HTTP faults injected at this proxy; `inbound=False`: no inbound listener (its port
    refuses connections, meshproof.faults.PortRefused)."""
    mode = effective_mtls(intents, instance.workload) or MtlsMode.STRICT  # the fallback; baselines set it
    limit = one_per_service(intents, RateLimit).get((instance.namespace, instance.service))
    listeners = [inbound_listener(instance, files, mode, limit)] if inbound else []
    return SidecarConfig(
        resources={
            "cds": {"resources": clusters(instance, topology, intents, files)},
            "lds": {"resources": [*listeners, outbound_listener(instance, files)]},
            "rds_inbound": {"resources": [inbound_routes(instance, intents)]},
            "rds_outbound": {"resources": [outbound_routes(instance, topology, intents, http_faults)]},
        }
    )


def illustrative_sidecars(intents: Sequence[Intent], workloads: Sequence[Workload]) -> dict[str, dict[str, Any]]:
    """Each sidecar's Envoy configuration as one static bootstrap, with illustrative ports and paths (a real
    run allocates its own): what `meshproof render --mesh local` shows and an --envoy-config-hook author
    starts from."""
    instances, port = [], 20000
    for workload in workloads:
        for name in workload.instance_names():
            instances.append(Instance(name, workload, *range(port, port + 5)))
            port += 5
    topology = Topology(tuple(instances))
    configs = {}
    for instance in instances:
        base = Path("/run/meshproof") / instance.name
        files = SidecarFiles(base / "svid.crt", base / "svid.key", Path("/run/meshproof/root-cert.pem"), base / "xds")
        config = render(instance, topology, intents, files)
        configs[instance.name] = static_bootstrap(instance, files, config)
    return configs
