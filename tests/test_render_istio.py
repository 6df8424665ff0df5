"""The Istio renderer: the seed's intents become the seed's resources (modulo apiVersion upgrades), Istio's
defaults and quirks are accounted for, and every rendered resource validates against Istio's CRDs.

The SEED_* intents here are the chapter's resources as intents; the Linkerd and GAMMA tests reuse them."""

from typing import Any

import pytest
import yaml

from meshproof import scenario
from meshproof.backends.istio import UNSUPPORTED, render
from meshproof.backends.kube import schema
from meshproof.features import UnsupportedFeature
from meshproof.intent import (
    AuthzAction,
    AuthzPolicy,
    ConnectionPool,
    HeaderMatch,
    Intent,
    LbPolicy,
    LoadBalancer,
    MtlsMode,
    MtlsPolicy,
    OutlierPolicy,
    RateLimit,
    Retry,
    Route,
    RouteRule,
    Rule,
)

ORDER, PAYMENT, GATEWAY = scenario.ORDER_SERVICE, scenario.PAYMENT_SERVICE, scenario.API_GATEWAY
SEED_ROUTE = Route(ORDER, (
    RouteRule(match=(scenario.PREMIUM,), splits={"v2": 100}),
    RouteRule(splits={"v1": 90, "v2": 10}, timeout=10.0,
              retries=Retry(3, per_try_timeout=3.0, retry_on=("5xx", "reset", "connect-failure"))),
))
SEED_OUTLIER = OutlierPolicy(ORDER, consecutive_5xx=5, interval=10, base_ejection_time=30,
                             max_ejection_percent=50)
SEED_POOL = ConnectionPool(ORDER, max_connections=100, http1_max_pending_requests=100,
                           http2_max_requests=1000)
SEED_BREAKER_POOL = ConnectionPool(PAYMENT, max_connections=100, http1_max_pending_requests=100,
                                   http2_max_requests=1000, max_requests_per_connection=10, max_retries=3)
SEED_BREAKER_OUTLIER = OutlierPolicy(PAYMENT, consecutive_5xx=5, consecutive_gateway_errors=5, interval=10,
                                     base_ejection_time=30, max_ejection_percent=50, min_health_percent=30)
SEED_RATE_LIMIT = RateLimit(GATEWAY, max_tokens=1000, tokens_per_fill=100, fill_interval=1.0)
SEED_BALANCER = LoadBalancer(ORDER, LbPolicy.LEAST_CONN)
SEED: tuple[Intent, ...] = (
    scenario.seed_peer_authentication(),
    scenario.seed_authorization_policy(),
    SEED_ROUTE,
    SEED_OUTLIER,
    SEED_POOL,
    SEED_BALANCER,
    SEED_BREAKER_POOL,
    SEED_BREAKER_OUTLIER,
    SEED_RATE_LIMIT,
)

# The chapter's resources (shared/seed/service-mesh-chapter.txt), indentation restored.
CHAPTER = {name: yaml.safe_load(text) for name, text in {
    "virtual-service": """
hosts: [order-service]
http:
- match:
  - headers:
      x-user-type:
        exact: premium
  route:
  - destination: {host: order-service, subset: v2}
- route:
  - destination: {host: order-service, subset: v1}
    weight: 90
  - destination: {host: order-service, subset: v2}
    weight: 10
  timeout: 10s
  retries:
    attempts: 3
    perTryTimeout: 3s
    retryOn: 5xx,reset,connect-failure
""",
    "destination-rule": """
host: order-service
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 100}
    http: {h2UpgradePolicy: UPGRADE, http1MaxPendingRequests: 100, http2MaxRequests: 1000}
  loadBalancer: {simple: LEAST_CONN}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    connectionPool:
      http: {http1MaxPendingRequests: 50}
- name: v2
  labels: {version: v2}
""",
    "circuit-breaker": """
host: payment-service
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 100}
    http: {http1MaxPendingRequests: 100, http2MaxRequests: 1000, maxRequestsPerConnection: 10, maxRetries: 3}
  outlierDetection:
    consecutive5xxErrors: 5
    consecutiveGatewayErrors: 5
    interval: 10s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
    minHealthPercent: 30
""",
    "peer-authentication": """
mtls: {mode: STRICT}
""",
    "authorization-policy": """
selector:
  matchLabels: {app: order-service}
action: ALLOW
rules:
- from:
  - source:
      principals: ["cluster.local/ns/default/sa/api-gateway", "cluster.local/ns/default/sa/payment-service"]
  to:
  - operation:
      methods: ["GET", "POST"]
      paths: ["/api/v1/orders/*"]
- from:
  - source:
      principals: ["cluster.local/ns/monitoring/sa/prometheus"]
  to:
  - operation:
      methods: ["GET"]
      paths: ["/metrics"]
""",
    "rate-limit": """
workloadSelector:
  labels: {app: api-gateway}
configPatches:
- applyTo: HTTP_FILTER
  match:
    context: SIDECAR_INBOUND
    listener:
      filterChain:
        filter:
          name: "envoy.filters.network.http_connection_manager"
  patch:
    operation: INSERT_BEFORE
    value:
      name: envoy.filters.http.local_ratelimit
      typed_config:
        "@type": type.googleapis.com/udpa.type.v1.TypedStruct
        type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
        value:
          stat_prefix: http_local_rate_limiter
          token_bucket: {max_tokens: 1000, tokens_per_fill: 100, fill_interval: 1s}
          filter_enabled:
            runtime_key: local_rate_limit_enabled
            default_value: {numerator: 100, denominator: HUNDRED}
          filter_enforced:
            runtime_key: local_rate_limit_enforced
            default_value: {numerator: 100, denominator: HUNDRED}
          response_headers_to_add:
          - append: false
            header:
              key: x-rate-limit-remaining
              value: "%DYNAMIC_METADATA(envoy.filters.http.local_ratelimit:remaining_tokens)%"
""",
}.items()}


def rendered(intents: tuple[Intent, ...]) -> list[dict[str, Any]]:
    return render(intents, scenario.WORKLOADS)


def one(intents: tuple[Intent, ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in rendered(intents) if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]


VARIANTS: dict[str, tuple[Intent, ...]] = {
    "seed": SEED,
    "baseline": scenario.BASELINE,
    "scopes and deny": (
        MtlsPolicy(MtlsMode.STRICT),
        MtlsPolicy(MtlsMode.PERMISSIVE, namespace="monitoring"),
        MtlsPolicy(MtlsMode.PERMISSIVE, namespace="default", service=GATEWAY),
        AuthzPolicy("deny-delete", ORDER, action=AuthzAction.DENY, rules=(Rule(methods=("DELETE",)),)),
        AuthzPolicy("nothing", PAYMENT),
        AuthzPolicy("anything", GATEWAY, rules=(Rule(),)),
    ),
    "edge values": (
        Route(ORDER, (RouteRule(retries=Retry(0)), )),
        OutlierPolicy(ORDER, consecutive_5xx=None, max_ejection_percent=0, interval=0.25,
                      base_ejection_time=1.5),
        RateLimit(GATEWAY, 10, 1, 0.05, rate_limit_headers=False, limited_remaining_header=None),
    ),
}


@pytest.mark.parametrize("intents", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_rendered_resource_validates_against_the_istio_crds(intents: tuple[Intent, ...]) -> None:
    manifests = rendered(intents)
    assert manifests
    schema.check(manifests)


def test_the_seed_renders_the_chapters_peer_and_authorization_policies() -> None:
    peer = one(SEED, "PeerAuthentication")
    assert (peer["apiVersion"], peer["metadata"]["namespace"], peer["metadata"]["name"]) == (
        "security.istio.io/v1", "default", "default")
    assert peer["spec"] == CHAPTER["peer-authentication"]
    policy = one(SEED, "AuthorizationPolicy")
    assert policy["metadata"]["name"] == "order-service-policy"
    assert policy["spec"] == CHAPTER["authorization-policy"]


def test_the_seed_route_renders_the_chapters_virtual_service() -> None:
    service = one(SEED, "VirtualService")
    assert (service["apiVersion"], service["metadata"]["name"]) == ("networking.istio.io/v1", "order-service")
    assert service["spec"] == CHAPTER["virtual-service"]


def test_the_seed_destination_rules_are_the_chapters_minus_what_no_intent_says() -> None:
    chapter = CHAPTER["destination-rule"]
    # No intent speaks of HTTP/2 upgrades or per-subset pools. LEAST_CONN is Istio's deprecated spelling of
    # LEAST_REQUEST (cluster_traffic_policy.go applyLoadBalancer renders them alike): the intent keeps one.
    chapter["trafficPolicy"]["loadBalancer"] = {"simple": "LEAST_REQUEST"}
    del chapter["trafficPolicy"]["connectionPool"]["http"]["h2UpgradePolicy"]
    del chapter["subsets"][0]["trafficPolicy"]
    assert one(SEED, "DestinationRule", ORDER)["spec"] == chapter
    assert one(SEED, "DestinationRule", PAYMENT)["spec"] == CHAPTER["circuit-breaker"]


def test_the_seed_rate_limit_is_the_chapters_envoy_filter_with_a_header_that_renders() -> None:
    chapter = CHAPTER["rate-limit"]
    value = chapter["configPatches"][0]["patch"]["value"]["typed_config"]["value"]
    # The header's value renders empty on Envoy, which then drops it: a limited response has no token left.
    # `append` is deprecated in favour of `append_action`; the intent asks for the draft-03 headers.
    value["response_headers_to_add"] = [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                         "header": {"key": "x-rate-limit-remaining", "value": "0"}}]
    value["enable_x_ratelimit_headers"] = "DRAFT_VERSION_03"
    envoy_filter = one(SEED, "EnvoyFilter")
    assert envoy_filter["apiVersion"] == "networking.istio.io/v1alpha3"
    assert envoy_filter["spec"] == chapter


@pytest.mark.parametrize(("policy", "namespace", "name", "selector"), [
    (MtlsPolicy(MtlsMode.STRICT), "istio-system", "default", None),
    (MtlsPolicy(MtlsMode.PERMISSIVE, namespace="monitoring"), "monitoring", "default", None),
    (MtlsPolicy(MtlsMode.STRICT, namespace="default", service=ORDER), "default", ORDER, {"app": ORDER}),
], ids=["mesh", "namespace", "workload"])
def test_mtls_scope_becomes_root_namespace_namespace_or_workload_selector(
        policy: MtlsPolicy, namespace: str, name: str, selector: dict[str, str] | None) -> None:
    peer = one((policy,), "PeerAuthentication")
    assert (peer["metadata"]["namespace"], peer["metadata"]["name"]) == (namespace, name)
    assert peer["spec"].get("selector", {}).get("matchLabels") == selector
    assert peer["spec"]["mtls"] == {"mode": policy.mode.value}


def test_an_allow_policy_without_rules_is_istios_allow_nothing_and_an_empty_rule_matches_all() -> None:
    nothing = one((AuthzPolicy("nothing", ORDER),), "AuthorizationPolicy")
    assert nothing["spec"] == {"selector": {"matchLabels": {"app": ORDER}}, "action": "ALLOW"}
    anything = one((AuthzPolicy("anything", ORDER, rules=(Rule(),)),), "AuthorizationPolicy")
    assert anything["spec"]["rules"] == [{}]


def test_principals_are_written_without_the_spiffe_scheme() -> None:
    policy = AuthzPolicy("p", ORDER, rules=(Rule(principals=("spiffe://cluster.local/ns/default/sa/guest",)),))
    rule = one((policy,), "AuthorizationPolicy")["spec"]["rules"][0]
    assert rule == {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/guest"]}}]}


def test_a_deny_policy_keeps_its_action_and_path_forms() -> None:
    rule = Rule(paths=("/admin*", "*.php", "*"))
    policy = AuthzPolicy("deny", ORDER, action=AuthzAction.DENY, rules=(rule,))
    spec = one((policy,), "AuthorizationPolicy")["spec"]
    assert spec["action"] == "DENY"
    assert spec["rules"] == [{"to": [{"operation": {"paths": ["/admin*", "*.php", "*"]}}]}]


def http_route(rule: RouteRule) -> dict[str, Any]:
    route = one((Route(ORDER, (rule,)),), "VirtualService")["spec"]["http"]
    assert len(route) == 1
    return dict(route[0])


def test_absent_retries_and_timeout_leave_istios_defaults_and_zero_attempts_disable_retries() -> None:
    default = http_route(RouteRule())
    assert default == {"route": [{"destination": {"host": ORDER}}]}  # Istio: 2 default retries, no timeout
    assert http_route(RouteRule(retries=Retry(0, per_try_timeout=1)))["retries"] == {"attempts": 0}


def test_status_codes_stay_in_retry_on_and_fractional_durations_are_seconds() -> None:
    retries = http_route(RouteRule(retries=Retry(2, per_try_timeout=0.25, retry_on=("503", "gateway-error"))))
    assert retries["retries"] == {"attempts": 2, "perTryTimeout": "0.25s", "retryOn": "503,gateway-error"}


def test_a_retry_with_no_condition_retries_nothing_rather_than_istios_default_conditions() -> None:
    retries = http_route(RouteRule(retries=Retry(2, retry_on=())))["retries"]
    assert retries["retryOn"] == "retriable-status-codes"


def test_a_route_without_split_goes_to_the_whole_service_and_needs_no_subsets() -> None:
    intents = (Route(ORDER, (RouteRule(match=(HeaderMatch("x-a", "1"),)), RouteRule(timeout=2))),)
    kinds = [m["kind"] for m in rendered(intents)]
    assert kinds == ["VirtualService"]


def test_outlier_detectors_not_asked_for_are_switched_off() -> None:
    only_gateway = OutlierPolicy(ORDER, consecutive_5xx=None, consecutive_gateway_errors=3)
    detection = one((only_gateway,), "DestinationRule")["spec"]["trafficPolicy"]["outlierDetection"]
    assert detection["consecutive5xxErrors"] == 0  # absent, Envoy would eject after 5 consecutive 5xx
    assert detection["consecutiveGatewayErrors"] == 3
    assert detection["maxEjectionPercent"] == 10
    assert "minHealthPercent" not in detection


def test_ejecting_no_host_is_written_as_detection_off_since_istio_reads_zero_percent_as_ten() -> None:
    detection = one((OutlierPolicy(ORDER, consecutive_gateway_errors=2, max_ejection_percent=0),),
                    "DestinationRule")["spec"]["trafficPolicy"]["outlierDetection"]
    assert detection == {"consecutive5xxErrors": 0, "interval": "10s", "baseEjectionTime": "30s"}


def test_rendering_is_sorted_in_apply_order_repeatable_and_shares_no_objects() -> None:
    manifests = rendered(SEED)
    assert [m["kind"] for m in manifests] == [
        "PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "DestinationRule", "VirtualService",
        "EnvoyFilter"]
    assert manifests == rendered(tuple(reversed(SEED)))
    assert "&id" not in yaml.safe_dump_all(manifests)  # no YAML anchors: every object is its own


@pytest.mark.parametrize(("intents", "message"), [
    ((Route(ORDER, (RouteRule(splits={"v1": 50, "v9": 50}),)),), "no workload of version 'v9'"),
    ((OutlierPolicy("inventory"),), "which no workload provides"),
    ((AuthzPolicy("p", "inventory"),), "which no workload provides"),
    ((SEED_ROUTE, Route(ORDER, (RouteRule(),))), "more than one Route"),
    ((MtlsPolicy(MtlsMode.STRICT), MtlsPolicy(MtlsMode.PERMISSIVE)), "two different PeerAuthentication"),
    ((Route(ORDER, (RouteRule(timeout=0.0001),)),), "whole milliseconds"),
])
def test_contradictory_or_dangling_intents_are_refused(intents: tuple[Intent, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rendered(intents)


UNSUPPORTED_TRIGGERS: dict[str, Intent] = {
    "connpool.max_retries_zero": ConnectionPool(ORDER, max_retries=0),
    "retries.status_code": Route(ORDER, (RouteRule(retries=Retry(1, retry_on=("599",))),)),
}


def test_the_unsupported_table_is_exactly_what_the_renderer_refuses() -> None:
    assert set(UNSUPPORTED_TRIGGERS) == set(UNSUPPORTED)


@pytest.mark.parametrize("feature", UNSUPPORTED_TRIGGERS)
def test_an_unsupported_feature_raises_with_its_name(feature: str) -> None:
    with pytest.raises(UnsupportedFeature) as raised:
        rendered((UNSUPPORTED_TRIGGERS[feature],))
    assert (raised.value.mesh, raised.value.feature) == ("istio", feature)
    assert UNSUPPORTED[feature] in str(raised.value)
