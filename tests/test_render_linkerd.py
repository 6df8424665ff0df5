"""The Linkerd renderer: Servers carry the mTLS mode, authorization keeps Istio's ALLOW semantics or is
refused, routes, retries, failure accrual and rate limits map onto Linkerd's resources and annotations,
every rendered resource validates against the CRDs, and what Linkerd cannot say raises with its name."""

from typing import Any

import pytest

from meshproof import scenario
from meshproof.backends.kube import schema
from meshproof.backends.kube.conventions import NOT_EXPRESSED
from meshproof.backends.linkerd import DESCRIPTOR, UNSUPPORTED, render
from meshproof.backends.linkerd.render import BEHAVIOUR
from meshproof.features import UnsupportedFeature
from meshproof.intent import (
    AuthzAction,
    AuthzPolicy,
    ConnectionPool,
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
from tests.test_render_istio import GATEWAY, ORDER, PAYMENT, SEED_ROUTE

STRICT = MtlsPolicy(MtlsMode.STRICT)


def plain_limit(max_tokens: int, tokens_per_fill: int, fill_interval: float) -> RateLimit:
    """A rate limit without the response headers Linkerd cannot add."""
    return RateLimit(GATEWAY, max_tokens, tokens_per_fill, fill_interval, rate_limit_headers=False,
                     limited_remaining_header=None)


PLAIN_LIMIT = plain_limit(max_tokens=100, tokens_per_fill=100, fill_interval=1.0)
SUPPORTED_SEED: tuple[Intent, ...] = (  # the seed minus what Linkerd cannot say
    STRICT,
    scenario.seed_peer_authentication(),
    scenario.seed_authorization_policy(),
    Route(ORDER, (SEED_ROUTE.rules[0], RouteRule(splits={"v1": 90, "v2": 10}, timeout=10.0,
                                                 retries=Retry(3, per_try_timeout=3.0)))),
    OutlierPolicy(ORDER, consecutive_5xx=5, interval=10, base_ejection_time=30, max_ejection_percent=100),
    PLAIN_LIMIT,
)


def rendered(intents: tuple[Intent, ...], probe_paths: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return render(intents, scenario.WORKLOADS, probe_paths=probe_paths)


def of_kind(manifests: list[dict[str, Any]], kind: str, api_group: str = "") -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests
            if m["kind"] == kind and m["apiVersion"].startswith(api_group)}


def test_every_rendered_resource_validates_against_the_crds() -> None:
    open_reads = AuthzPolicy("open", PAYMENT, rules=(Rule(methods=("GET",)),))
    permissive_anyone = (MtlsPolicy(MtlsMode.PERMISSIVE), open_reads)
    for intents in (SUPPORTED_SEED, scenario.BASELINE, permissive_anyone):
        schema.check(rendered(intents, probe_paths=("/healthz",)))


def test_each_service_gets_a_server_with_the_most_specific_mtls_mode() -> None:
    intents = (STRICT, MtlsPolicy(MtlsMode.PERMISSIVE, namespace="monitoring"),
               MtlsPolicy(MtlsMode.PERMISSIVE, namespace="default", service=GATEWAY))
    servers = of_kind(rendered(intents), "Server")
    access = {name: server["spec"]["accessPolicy"] for name, server in servers.items()}
    assert access == {GATEWAY: "all-unauthenticated", "guest": "all-authenticated",
                      ORDER: "all-authenticated", PAYMENT: "all-authenticated",
                      "prometheus": "all-unauthenticated"}
    assert servers[ORDER]["spec"]["podSelector"] == {"matchLabels": {"app": ORDER}}
    assert servers[ORDER]["spec"]["port"] == "http"


def test_without_an_mtls_policy_there_is_no_server_unless_one_is_needed_and_then_it_is_permissive() -> None:
    assert of_kind(rendered(()), "Server") == {}
    servers = of_kind(rendered((PLAIN_LIMIT,)), "Server")
    assert list(servers) == [GATEWAY]
    assert servers[GATEWAY]["spec"]["accessPolicy"] == "all-unauthenticated"


def test_every_service_is_rendered_and_only_the_outlier_target_carries_failure_accrual() -> None:
    services = of_kind(rendered(SUPPORTED_SEED), "Service")
    assert sorted(services) == sorted([GATEWAY, "guest", ORDER, "order-service-v1", "order-service-v2",
                                       PAYMENT, "prometheus"])
    assert services[ORDER]["metadata"]["annotations"] == {
        "balancer.linkerd.io/failure-accrual": "consecutive",
        "balancer.linkerd.io/failure-accrual-consecutive-max-failures": "5",
        "balancer.linkerd.io/failure-accrual-consecutive-min-penalty": "30s",
        "balancer.linkerd.io/failure-accrual-consecutive-max-penalty": "300s",
        "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio": "0",
    }
    assert all("annotations" not in s["metadata"] for name, s in services.items() if name != ORDER)


def test_the_seed_authorization_becomes_routes_per_caller_set_with_a_deny_server() -> None:
    manifests = rendered((STRICT, scenario.seed_authorization_policy()))
    assert of_kind(manifests, "Server")[ORDER]["spec"]["accessPolicy"] == "deny"
    authentications = of_kind(manifests, "MeshTLSAuthentication")
    identities = {name: m["spec"]["identities"] for name, m in authentications.items()}
    assert identities == {
        "order-service-authz-0": ["api-gateway.default.serviceaccount.identity.linkerd.cluster.local",
                                  "payment-service.default.serviceaccount.identity.linkerd.cluster.local"],
        "order-service-authz-1": ["prometheus.monitoring.serviceaccount.identity.linkerd.cluster.local"],
    }
    routes = of_kind(manifests, "HTTPRoute", "policy.linkerd.io")
    assert routes["order-service-authz-0"]["spec"]["rules"] == [{"matches": [
        {"path": {"type": "RegularExpression", "value": "^/api/v1/orders/.*$"}, "method": "GET"},
        {"path": {"type": "RegularExpression", "value": "^/api/v1/orders/.*$"}, "method": "POST"},
    ]}]
    assert routes["order-service-authz-1"]["spec"]["rules"] == [
        {"matches": [{"path": {"type": "Exact", "value": "/metrics"}, "method": "GET"}]}]
    # Requests no rule's route matches get a route too, with no authorization: a 403 as in Istio, not a 404.
    assert routes["order-service-unmatched"]["spec"]["rules"] == [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
    assert all(r["spec"]["parentRefs"] == [{"group": "policy.linkerd.io", "kind": "Server", "name": ORDER}]
               for r in routes.values())
    policies = of_kind(manifests, "AuthorizationPolicy")
    assert policies["order-service-authz-0"]["spec"] == {
        "targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "order-service-authz-0"},
        "requiredAuthenticationRefs": [
            {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "order-service-authz-0"}],
    }
    assert sorted(policies) == ["order-service-authz-0", "order-service-authz-1"]


def test_a_rule_without_method_or_path_authorizes_the_whole_server_and_needs_no_route() -> None:
    policy = AuthzPolicy("callers", ORDER, rules=(Rule(principals=("cluster.local/ns/default/sa/guest",)),))
    manifests = rendered((STRICT, policy))
    assert of_kind(manifests, "HTTPRoute") == {}
    assert of_kind(manifests, "AuthorizationPolicy")["order-service-authz-0"]["spec"]["targetRef"] == {
        "group": "policy.linkerd.io", "kind": "Server", "name": ORDER}


@pytest.mark.parametrize(("mode", "kind", "name"), [
    (MtlsMode.STRICT, "MeshTLSAuthentication", "all-meshed"),
    (MtlsMode.PERMISSIVE, "NetworkAuthentication", "all-networks"),
])
def test_a_rule_for_anyone_means_any_meshed_client_under_strict_and_any_address_under_permissive(
        mode: MtlsMode, kind: str, name: str) -> None:
    manifests = rendered((MtlsPolicy(mode), AuthzPolicy("reads", ORDER, rules=(Rule(methods=("GET",)),))))
    authentication = of_kind(manifests, kind)[name]
    everyone = ({"identities": ["*"]}, {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]})
    assert authentication["spec"] in everyone
    policy = of_kind(manifests, "AuthorizationPolicy")["order-service-authz-0"]
    reference = {"group": "policy.linkerd.io", "kind": kind, "name": name}
    assert policy["spec"]["requiredAuthenticationRefs"] == [reference]


def test_an_allow_policy_without_rules_leaves_a_server_that_denies_everything() -> None:
    manifests = rendered((STRICT, AuthzPolicy("nothing", ORDER)))
    assert of_kind(manifests, "Server")[ORDER]["spec"]["accessPolicy"] == "deny"
    assert of_kind(manifests, "AuthorizationPolicy") == {}


def test_probe_paths_get_a_route_open_to_every_network_once_the_server_has_routes() -> None:
    manifests = rendered((STRICT, scenario.seed_authorization_policy()), probe_paths=("/healthz",))
    probes = of_kind(manifests, "HTTPRoute")["order-service-probes"]
    assert probes["spec"]["rules"] == [
        {"matches": [{"path": {"type": "Exact", "value": "/healthz"}, "method": "GET"}]}]
    policy = of_kind(manifests, "AuthorizationPolicy")["order-service-probes"]
    assert policy["spec"]["requiredAuthenticationRefs"][0]["name"] == "all-networks"
    # Without routes Linkerd authorizes probes itself.
    callers = AuthzPolicy("callers", ORDER, rules=(Rule(principals=("cluster.local/ns/default/sa/guest",)),))
    without_routes = rendered((STRICT, callers), probe_paths=("/healthz",))
    assert "order-service-probes" not in of_kind(without_routes, "HTTPRoute")
    with pytest.raises(ValueError, match="probe path /metrics overlaps"):
        rendered((STRICT, scenario.seed_authorization_policy()), probe_paths=("/metrics",))


def test_rules_of_the_same_callers_may_overlap() -> None:
    who = ("cluster.local/ns/default/sa/guest",)
    rules = (Rule(who, paths=("/a*",)), Rule(who, methods=("GET",), paths=("/a/b",)))
    policy = AuthzPolicy("p", ORDER, rules=rules)
    assert "order-service-authz-0" in of_kind(rendered((STRICT, policy)), "HTTPRoute")


def test_the_seed_route_splits_through_gamma_with_retries_as_annotations_on_its_own_httproute() -> None:
    routes = of_kind(rendered(SUPPORTED_SEED), "HTTPRoute", "gateway.networking.k8s.io")
    premium, default = routes["order-service-0"], routes["order-service-1"]
    assert "annotations" not in premium["metadata"]  # no retries asked: Linkerd's default is none
    assert default["metadata"]["annotations"] == {
        "retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "3", "retry.linkerd.io/timeout": "3s"}
    assert default["spec"]["rules"][0]["timeouts"] == {"request": "10s"}


@pytest.mark.parametrize(("retry", "annotations"), [
    (None, {}),
    (Retry(0), {}),
    (Retry(2, retry_on=("gateway-error", "retriable-4xx", "503")),
     {"retry.linkerd.io/http": "gateway-error,409,503", "retry.linkerd.io/limit": "2"}),
    (Retry(1, per_try_timeout=0.25, retry_on=("5xx", "refused-stream")),
     {"retry.linkerd.io/http": "5xx", "retry.linkerd.io/limit": "1", "retry.linkerd.io/timeout": "250ms"}),
    (Retry(1, retry_on=("retriable-status-codes",)), {}),
])
def test_retry_conditions_map_to_linkerd_status_lists(retry: Retry | None,
                                                      annotations: dict[str, str]) -> None:
    manifests = rendered((Route(ORDER, (RouteRule(retries=retry),)),))
    route = of_kind(manifests, "HTTPRoute", "gateway.networking.k8s.io")[ORDER]
    assert route["metadata"].get("annotations", {}) == annotations


@pytest.mark.parametrize(("policy", "annotated"), [
    (OutlierPolicy(ORDER, consecutive_5xx=None), False),
    (OutlierPolicy(ORDER, max_ejection_percent=0), False),
    (OutlierPolicy(ORDER, consecutive_5xx=2, max_ejection_percent=100, base_ejection_time=0.5), True),
])
def test_an_outlier_policy_that_ejects_nothing_needs_no_failure_accrual(policy: OutlierPolicy,
                                                                       annotated: bool) -> None:
    service = of_kind(rendered((policy,)), "Service")[ORDER]
    assert ("annotations" in service["metadata"]) is annotated
    if annotated:
        annotations = service["metadata"]["annotations"]
        assert annotations["balancer.linkerd.io/failure-accrual-consecutive-min-penalty"] == "500ms"


def test_a_rate_limit_of_one_seconds_burst_becomes_requests_per_second_on_the_server() -> None:
    limit = plain_limit(max_tokens=20, tokens_per_fill=2, fill_interval=0.1)
    policy = of_kind(rendered((STRICT, limit)), "HTTPLocalRateLimitPolicy")[GATEWAY]
    assert policy["spec"] == {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": GATEWAY},
                              "total": {"requestsPerSecond": 20}}


def test_a_connection_pool_without_limits_asks_for_nothing() -> None:
    assert rendered((ConnectionPool(ORDER),)) == rendered(())


def retrying(retry: Retry) -> Route:
    return Route(ORDER, (RouteRule(retries=retry),))


WHO = ("cluster.local/ns/default/sa/guest",)
OTHERS = ("cluster.local/ns/default/sa/api-gateway",)
UNSUPPORTED_TRIGGERS: dict[str, Intent] = {
    "authz.deny": AuthzPolicy("deny", ORDER, action=AuthzAction.DENY, rules=(Rule(methods=("DELETE",)),)),
    "authz.overlapping_rules": AuthzPolicy("p", ORDER, rules=(Rule(WHO, paths=("/a*",)),
                                                               Rule(OTHERS, paths=("*.json",)))),
    "authz.root_path": AuthzPolicy("p", ORDER, rules=(Rule(WHO, paths=("/",)),)),
    "connpool": ConnectionPool(ORDER, max_connections=10),
    "outlier.gateway_errors": OutlierPolicy(ORDER, consecutive_5xx=6, consecutive_gateway_errors=5,
                                            max_ejection_percent=100),
    "outlier.max_ejection_percent": OutlierPolicy(ORDER, max_ejection_percent=50),
    "outlier.min_health_percent": OutlierPolicy(ORDER, max_ejection_percent=100, min_health_percent=30),
    "outlier.base_ejection_time": OutlierPolicy(ORDER, max_ejection_percent=100, base_ejection_time=300),
    "ratelimit.headers": RateLimit(GATEWAY, 100, 100, 1.0),
    "ratelimit.limited_header": RateLimit(GATEWAY, 100, 100, 1.0, rate_limit_headers=False),
    "ratelimit.burst": plain_limit(1000, 100, 1.0),
    "ratelimit.rate": plain_limit(1, 1, 3.0),
    "retries.per_try_timeout": retrying(Retry(1, per_try_timeout=1, retry_on=("503",))),
    "canary.load_balancer": LoadBalancer(ORDER, LbPolicy.ROUND_ROBIN),
    "canary.match_order": Route(ORDER, (RouteRule(match=(scenario.PREMIUM,), retries=Retry(1)),
                                       RouteRule(match=(scenario.PREMIUM,)), RouteRule())),
}


def test_the_unsupported_table_is_exactly_what_the_renderer_refuses() -> None:
    assert set(UNSUPPORTED_TRIGGERS) == set(UNSUPPORTED)


@pytest.mark.parametrize("feature", UNSUPPORTED_TRIGGERS)
def test_an_unsupported_feature_raises_with_its_name(feature: str) -> None:
    with pytest.raises(UnsupportedFeature) as raised:
        rendered((STRICT, UNSUPPORTED_TRIGGERS[feature]))
    assert (raised.value.mesh, raised.value.feature) == ("linkerd", feature)
    assert UNSUPPORTED[feature] in str(raised.value)


def test_a_retry_condition_linkerd_lacks_leaves_the_rest_of_the_route_and_says_so() -> None:
    """The seed's retryOn 5xx,reset,connect-failure: the split, timeout and 5xx retries render; the route names
    the two conditions it left out, and `meshproof render` lists them."""
    routes = of_kind(rendered((STRICT, SEED_ROUTE)), "HTTPRoute", "gateway.networking.k8s.io")
    default = routes["order-service-1"]
    annotations = default["metadata"]["annotations"]
    assert (annotations["retry.linkerd.io/http"], annotations["retry.linkerd.io/limit"]) == ("5xx", "3")
    assert "retryOn reset: " + BEHAVIOUR["retries.retry_on_reset"] in annotations[NOT_EXPRESSED]
    assert "retryOn connect-failure: " in annotations[NOT_EXPRESSED]
    assert default["spec"]["rules"][0]["timeouts"] == {"request": "10s"}
    assert [b["weight"] for b in default["spec"]["rules"][0]["backendRefs"]] == [90, 10]
    left_out = DESCRIPTOR.render((STRICT, SEED_ROUTE), scenario.WORKLOADS).left_out
    assert any(line.startswith("HTTPRoute order-service-1 (in part): retryOn reset") for line in left_out), left_out
    only_reset = of_kind(rendered((STRICT, retrying(Retry(2, retry_on=("reset",))))), "HTTPRoute",
                         "gateway.networking.k8s.io")["order-service"]
    assert list(only_reset["metadata"]["annotations"]) == [NOT_EXPRESSED]  # no retries at all, said so


def test_gateway_errors_at_or_above_the_5xx_threshold_are_the_5xx_policy() -> None:
    """A gateway-error streak is part of a 5xx streak, so the 5xx detector ejects first: nothing is lost."""
    def accrual(policy: OutlierPolicy) -> dict[str, str]:
        return of_kind(rendered((STRICT, policy)), "Service")[ORDER]["metadata"]["annotations"]

    five = OutlierPolicy(ORDER, consecutive_5xx=5, max_ejection_percent=100)
    for gateway in (5, 7):
        both = OutlierPolicy(ORDER, consecutive_5xx=5, consecutive_gateway_errors=gateway, max_ejection_percent=100)
        assert accrual(both) == accrual(five)
