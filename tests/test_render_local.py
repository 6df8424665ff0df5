"""The local mesh's renderer: intents become the Envoy config Istio's sidecars would get, and Envoy
itself accepts every rendered config (`envoy --mode validate`)."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshproof import scenario
from meshproof.backends.host.ca import LocalCA
from meshproof.backends.host.envoy import find_envoy
from meshproof.backends.host.topology import Instance, Topology
from meshproof.backends.local import render
from meshproof.backends.local.render import SidecarFiles
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

SEED_ROUTE = Route(scenario.ORDER_SERVICE, (
    RouteRule(match=(scenario.PREMIUM,), splits={"v2": 100}),
    RouteRule(splits={"v1": 90, "v2": 10}, timeout=10.0,
              retries=Retry(3, per_try_timeout=3.0, retry_on=("5xx", "reset", "connect-failure"))),
))
EVERYTHING: tuple[Intent, ...] = (
    *scenario.BASELINE,
    MtlsPolicy(MtlsMode.PERMISSIVE, namespace="default", service=scenario.API_GATEWAY),
    scenario.seed_authorization_policy(),
    AuthzPolicy("deny-delete", scenario.ORDER_SERVICE, action=AuthzAction.DENY, rules=(Rule(methods=("DELETE",)),)),
    SEED_ROUTE,
    OutlierPolicy(scenario.ORDER_SERVICE, consecutive_5xx=5, consecutive_gateway_errors=5, interval=10,
                  base_ejection_time=30, max_ejection_percent=50, min_health_percent=30),
    ConnectionPool(scenario.ORDER_SERVICE, max_connections=100, http1_max_pending_requests=100,
                   http2_max_requests=1000, max_requests_per_connection=10, max_retries=3),
    RateLimit(scenario.API_GATEWAY, max_tokens=1000, tokens_per_fill=100, fill_interval=1.0),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Topology, SidecarFiles]:
    directory = tmp_path_factory.mktemp("render")
    ca = LocalCA(directory / "pki")
    svid = ca.issue(scenario.WORKLOADS[0].identity, file_stem="svid")
    instances, port = [], 40000
    for workload in scenario.WORKLOADS:
        for name in workload.instance_names():
            instances.append(Instance(name, workload, port, port + 1, port + 2, port + 3, port + 4))
            port += 5
    return Topology(tuple(instances)), SidecarFiles(svid.cert, svid.key, ca.root, directory / "xds")


def rendered(world: tuple[Topology, SidecarFiles], instance: str, intents: tuple[Intent, ...]) -> dict[str, Any]:
    topology, files = world
    config = render.render(topology.instance(instance), topology, intents, files)
    return {kind: response["resources"] for kind, response in config.resources.items()}


@pytest.mark.parametrize("instance", ["order-service-v1-0", "api-gateway-0", "prometheus-0"])
@pytest.mark.parametrize("intents", [scenario.BASELINE, EVERYTHING], ids=["baseline", "every intent"])
def test_envoy_accepts_every_rendered_config(world: tuple[Topology, SidecarFiles], tmp_path: Path, instance: str,
                                             intents: tuple[Intent, ...]) -> None:
    topology, files = world
    config = render.render(topology.instance(instance), topology, intents, files)
    path = tmp_path / "static.json"
    path.write_text(json.dumps(render.static_bootstrap(topology.instance(instance), files, config)))
    done = subprocess.run([str(find_envoy()), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                           "--log-level", "error"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_strict_mtls_is_one_tls_chain_requiring_a_client_certificate(world: tuple[Topology, SidecarFiles]) -> None:
    inbound = rendered(world, "order-service-v1-0", scenario.BASELINE)["lds"][0]
    assert [chain["name"] for chain in inbound["filter_chains"]] == ["mtls"]
    tls = inbound["filter_chains"][0]["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "URI", "matcher": {"prefix": "spiffe://cluster.local/"}}]
    assert "listener_filters" not in inbound


def test_permissive_mtls_adds_a_plaintext_chain_chosen_by_tls_inspection(world: tuple[Topology, SidecarFiles]) -> None:
    inbound = rendered(world, "api-gateway-0", EVERYTHING)["lds"][0]
    chains = inbound["filter_chains"]
    assert [chain["filter_chain_match"]["transport_protocol"] for chain in chains] == ["tls", "raw_buffer"]
    assert inbound["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    # the workload-scoped PERMISSIVE policy does not loosen the rest of the namespace
    assert len(rendered(world, "order-service-v1-0", EVERYTHING)["lds"][0]["filter_chains"]) == 1


def test_the_seed_authorization_policy_becomes_rbac_on_spiffe_ids(world: tuple[Topology, SidecarFiles]) -> None:
    route = rendered(world, "order-service-v1-0", EVERYTHING)["rds_inbound"][0]
    per_filter = route["virtual_hosts"][0]["typed_per_filter_config"]
    allow = per_filter[render.AUTHZ_ALLOW_FILTER]["rbac"]["rules"]
    assert allow["action"] == "ALLOW"
    first = allow["policies"]["default.order-service-policy[0]"]
    assert first["principals"] == [{"or_ids": {"ids": [
        {"authenticated": {"principal_name": {"exact": "spiffe://cluster.local/ns/default/sa/api-gateway"}}},
        {"authenticated": {"principal_name": {"exact": "spiffe://cluster.local/ns/default/sa/payment-service"}}},
    ]}}]
    conditions = first["permissions"][0]["and_rules"]["rules"]
    assert conditions[1] == {"url_path": {"path": {"prefix": "/api/v1/orders/"}}}
    deny = per_filter[render.AUTHZ_DENY_FILTER]["rbac"]["rules"]
    assert deny["action"] == "DENY" and list(deny["policies"]) == ["default.deny-delete[0]"]


def test_an_allow_policy_without_rules_allows_nothing(world: tuple[Topology, SidecarFiles]) -> None:
    intents = (*scenario.BASELINE, AuthzPolicy("nothing", scenario.ORDER_SERVICE))
    route = rendered(world, "order-service-v1-0", intents)["rds_inbound"][0]
    allow = route["virtual_hosts"][0]["typed_per_filter_config"][render.AUTHZ_ALLOW_FILTER]["rbac"]["rules"]
    assert allow == {"action": "ALLOW", "policies": {}}


def test_no_policy_means_no_rbac_config_at_all(world: tuple[Topology, SidecarFiles]) -> None:
    route = rendered(world, "order-service-v1-0", scenario.BASELINE)["rds_inbound"][0]
    assert "typed_per_filter_config" not in route["virtual_hosts"][0]


def test_the_seed_route_matches_premium_first_and_splits_the_rest(world: tuple[Topology, SidecarFiles]) -> None:
    outbound = rendered(world, "api-gateway-0", EVERYTHING)["rds_outbound"][0]
    host = next(v for v in outbound["virtual_hosts"] if v["name"].startswith("order-service."))
    premium, default = host["routes"]
    assert premium["match"]["headers"] == [{"name": "x-user-type", "string_match": {"exact": "premium"}}]
    assert premium["route"]["cluster"] == "outbound|80|v2|order-service.default.svc.cluster.local"
    assert premium["route"]["timeout"] == "0s"
    assert premium["route"]["retry_policy"] == render.default_retry_policy()  # no retries named: Istio's
    assert default["route"]["weighted_clusters"]["clusters"] == [
        {"name": "outbound|80|v1|order-service.default.svc.cluster.local", "weight": 90},
        {"name": "outbound|80|v2|order-service.default.svc.cluster.local", "weight": 10}]
    retry = default["route"]["retry_policy"]
    assert retry["retry_on"] == "5xx,reset,connect-failure"
    assert (retry["num_retries"], retry["per_try_timeout"]) == (3, "3.000s")
    assert default["route"]["timeout"] == "10.000s"


def test_status_codes_in_retry_on_become_retriable_status_codes() -> None:
    policy = render.retry_policy(Retry(2, retry_on=("connect-failure", "503")))
    assert policy["retry_on"] == "connect-failure,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]


def test_short_service_names_resolve_in_the_callers_namespace_only(world: tuple[Topology, SidecarFiles]) -> None:
    outbound = rendered(world, "prometheus-0", scenario.BASELINE)["rds_outbound"][0]
    domains = {d for v in outbound["virtual_hosts"] for d in v["domains"]}
    assert "order-service.default" in domains and "order-service" not in domains and "prometheus" in domains


def test_outlier_detection_enforces_only_what_was_asked(world: tuple[Topology, SidecarFiles]) -> None:
    clusters = {c["name"]: c for c in rendered(world, "api-gateway-0", EVERYTHING)["cds"]}
    detection = clusters["outbound|80||order-service.default.svc.cluster.local"]["outlier_detection"]
    assert detection["consecutive_5xx"] == 5 and detection["enforcing_consecutive_5xx"] == 100
    assert detection["enforcing_success_rate"] == 0 and detection["max_ejection_percent"] == 50
    only_5xx = (*scenario.BASELINE, OutlierPolicy(scenario.ORDER_SERVICE, consecutive_5xx=3))
    clusters = {c["name"]: c for c in rendered(world, "api-gateway-0", only_5xx)["cds"]}
    assert clusters["outbound|80|v1|order-service.default.svc.cluster.local"]["outlier_detection"][
        "enforcing_consecutive_gateway_failure"] == 0


def test_connection_limits_are_unlimited_unless_asked(world: tuple[Topology, SidecarFiles]) -> None:
    clusters = {c["name"]: c for c in rendered(world, "api-gateway-0", EVERYTHING)["cds"]}
    limited = clusters["outbound|80||order-service.default.svc.cluster.local"]["circuit_breakers"]["thresholds"][0]
    assert (limited["max_connections"], limited["max_pending_requests"], limited["max_requests"]) == (100, 100, 1000)
    free = clusters["outbound|80||payment-service.default.svc.cluster.local"]["circuit_breakers"]["thresholds"][0]
    assert free["max_connections"] == render.UNLIMITED


def test_a_split_to_a_version_nobody_runs_is_refused(world: tuple[Topology, SidecarFiles]) -> None:
    route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v1": 50, "v9": 50}),))
    with pytest.raises(ValueError, match="no workload of version 'v9'"):
        rendered(world, "api-gateway-0", (*scenario.BASELINE, route))


def test_the_rate_limit_answers_limited_requests_with_the_seeds_header(world: tuple[Topology, SidecarFiles]) -> None:
    chain = rendered(world, "api-gateway-0", EVERYTHING)["lds"][0]["filter_chains"][0]
    limit = chain["filters"][0]["typed_config"]["http_filters"][0]["typed_config"]
    assert limit["token_bucket"] == {"max_tokens": 1000, "tokens_per_fill": 100, "fill_interval": "1.000s"}
    assert limit["enable_x_ratelimit_headers"] == "DRAFT_VERSION_03"
    assert limit["response_headers_to_add"][0]["header"] == {"key": "x-rate-limit-remaining", "value": "0"}


# --- where Istio's generated config has a default, the local mesh has the same ---------------------------


def test_a_route_without_retries_gets_istios_default_policy_and_attempts_0_gets_none(
    world: tuple[Topology, SidecarFiles]
) -> None:
    """istio pilot/pkg/networking/core/route/retry/retry.go: DefaultPolicy, and nil for attempts <= 0."""
    for retries, expected in ((None, render.default_retry_policy()), (Retry(0), None)):
        route = Route(scenario.ORDER_SERVICE, (RouteRule(retries=retries),))
        outbound = rendered(world, "api-gateway-0", (*scenario.BASELINE, route))["rds_outbound"][0]
        host = next(v for v in outbound["virtual_hosts"] if v["name"].startswith("order-service."))
        assert host["routes"][0]["route"].get("retry_policy") == expected
    default = render.default_retry_policy()
    assert default["retry_on"] == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    assert default["num_retries"] == 2 and "retriable_status_codes" not in default  # no 503 since Istio 1.24
    assert default["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"


def test_inbound_routes_retry_only_requests_reset_before_they_were_sent(world: tuple[Topology, SidecarFiles]) -> None:
    """route.go BuildDefaultHTTPInboundRoute (ENABLE_INBOUND_RETRY_POLICY, on since Istio 1.24)."""
    for route in rendered(world, "order-service-v1-0", scenario.BASELINE)["rds_inbound"]:
        assert route["virtual_hosts"][0]["routes"][0]["route"]["retry_policy"] == {
            "retry_on": "reset-before-request", "num_retries": 2}


def test_load_balancing_is_least_request_unless_asked_and_least_conn_means_it(
    world: tuple[Topology, SidecarFiles]
) -> None:
    """cluster_traffic_policy.go applyLoadBalancer: default LEAST_REQUEST, LEAST_CONN treated as it."""
    def policies(intents: tuple[Intent, ...]) -> set[str]:
        return {c["lb_policy"] for c in rendered(world, "api-gateway-0", intents)["cds"]
                if c["name"].endswith("|order-service.default.svc.cluster.local")}

    assert policies(scenario.BASELINE) == {"LEAST_REQUEST"}
    assert policies((*scenario.BASELINE, LoadBalancer(scenario.ORDER_SERVICE, LbPolicy.LEAST_CONN))) == {
        "LEAST_REQUEST"}
    assert policies((*scenario.BASELINE, LoadBalancer(scenario.ORDER_SERVICE, LbPolicy.ROUND_ROBIN))) == {
        "ROUND_ROBIN"}


def test_a_services_connection_pool_also_limits_its_own_inbound_cluster(world: tuple[Topology, SidecarFiles]) -> None:
    """cluster_builder.go buildInboundCluster applies the DestinationRule's connection pool on the server side."""
    def inbound(instance: str) -> dict[str, Any]:
        return next(c for c in rendered(world, instance, EVERYTHING)["cds"] if c["name"].startswith("inbound|"))

    server = inbound("order-service-v1-0")
    assert server["circuit_breakers"]["thresholds"][0]["max_connections"] == 100
    options = server["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"]["max_requests_per_connection"] == 10
    assert inbound("api-gateway-0")["circuit_breakers"]["thresholds"][0]["max_connections"] == render.UNLIMITED


def test_paths_are_normalized_as_istios_base_setting_without_merging_slashes(
    world: tuple[Topology, SidecarFiles]
) -> None:
    """listener_builder.go: pathNormalization BASE (the default) is normalize_path alone."""
    for listener in rendered(world, "api-gateway-0", EVERYTHING)["lds"]:
        for chain in listener["filter_chains"]:
            hcm = chain["filters"][0]["typed_config"]
            assert (hcm["normalize_path"], hcm["merge_slashes"], hcm["path_with_escaped_slashes_action"]) == (
                True, False, "KEEP_UNCHANGED")


def test_each_inbound_filter_chain_has_its_own_rate_limit_filter(world: tuple[Topology, SidecarFiles]) -> None:
    """The seed's EnvoyFilter patch inserts the filter, first, into every inbound HTTP connection manager
    (envoyfilter/listener_patch.go): a bucket per filter chain, none where no limit is asked."""
    chains = rendered(world, "api-gateway-0", EVERYTHING)["lds"][0]["filter_chains"]  # PERMISSIVE: two chains
    assert [chain["name"] for chain in chains] == ["mtls", "plaintext"]
    for chain in chains:
        assert chain["filters"][0]["typed_config"]["http_filters"][0]["name"] == render.RATELIMIT_FILTER
    unlimited = rendered(world, "order-service-v1-0", EVERYTHING)["lds"][0]["filter_chains"][0]
    assert render.RATELIMIT_FILTER not in {f["name"] for f in unlimited["filters"][0]["typed_config"]["http_filters"]}
