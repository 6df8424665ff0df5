"""GAMMA routing: a Route intent as Gateway API HTTPRoutes on the Service with one Service per version, valid
against the Gateway API (v1.6.1 standard) CRD, and refused where Gateway API would pick another rule."""

from typing import Any

import pytest

from meshproof import scenario
from meshproof.backends.kube import gamma, schema
from meshproof.features import UnsupportedFeature
from meshproof.intent import HeaderMatch, Retry, Route, RouteRule, Workload
from tests.test_render_istio import ORDER, SEED_ROUTE

BETA = HeaderMatch("x-beta", "1")


def rendered(route: Route, **options: Any) -> dict[str, list[dict[str, Any]]]:
    manifests = gamma.render(route, scenario.WORKLOADS, mesh="test", **options)
    schema.check(manifests)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in manifests:
        by_kind.setdefault(item["kind"], []).append(item)
    return by_kind


def test_the_seed_route_is_one_httproute_on_the_service_with_a_service_per_version() -> None:
    result = rendered(SEED_ROUTE)
    assert [(s["metadata"]["name"], s["spec"]["selector"]) for s in result["Service"]] == [
        ("order-service-v1", {"app": ORDER, "version": "v1"}),
        ("order-service-v2", {"app": ORDER, "version": "v2"}),
    ]
    assert result["Service"][0]["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    (route,) = result["HTTPRoute"]
    assert (route["apiVersion"], route["metadata"]["name"]) == ("gateway.networking.k8s.io/v1", ORDER)
    assert route["spec"] == {
        "parentRefs": [{"group": "", "kind": "Service", "name": ORDER, "port": 80}],
        "rules": [
            {"matches": [{"headers": [{"type": "Exact", "name": "x-user-type", "value": "premium"}]}],
             "backendRefs": [{"name": "order-service-v2", "port": 80}]},
            {"backendRefs": [{"name": "order-service-v1", "port": 80, "weight": 90},
                             {"name": "order-service-v2", "port": 80, "weight": 10}],
             "timeouts": {"request": "10s"}},
        ],
    }


def test_a_rule_without_split_sends_to_the_service_itself_and_zero_weights_are_dropped() -> None:
    route = Route(ORDER, (RouteRule(match=(BETA,), splits={"v1": 0, "v2": 100}), RouteRule(timeout=0.5)))
    rules = rendered(route)["HTTPRoute"][0]["spec"]["rules"]
    assert rules[0]["backendRefs"] == [{"name": "order-service-v2", "port": 80}]
    assert rules[1] == {"backendRefs": [{"name": ORDER, "port": 80}], "timeouts": {"request": "500ms"}}


def test_rules_are_grouped_into_httproutes_by_their_annotations_keeping_the_order() -> None:
    def annotate(rule: RouteRule) -> dict[str, str]:
        return {"example.com/retries": str(rule.retries.attempts)} if rule.retries else {}

    result = rendered(SEED_ROUTE, rule_annotations=annotate)
    routes = {r["metadata"]["name"]: r for r in result["HTTPRoute"]}
    assert sorted(routes) == ["order-service-0", "order-service-1"]
    assert "annotations" not in routes["order-service-0"]["metadata"]
    assert routes["order-service-1"]["metadata"]["annotations"] == {"example.com/retries": "3"}
    assert "matches" not in routes["order-service-1"]["spec"]["rules"][0]


@pytest.mark.parametrize(("rules", "why"), [
    ((RouteRule(match=(BETA,)), RouteRule(match=(BETA, scenario.PREMIUM)), RouteRule()),
     "rule 1 has more header matches than rule 0"),
    ((RouteRule(match=(BETA,), retries=Retry(1)), RouteRule(match=(scenario.PREMIUM,)), RouteRule()),
     "rules 0 and 1 tie but sit in different HTTPRoutes"),
])
def test_a_route_gateway_api_would_resolve_differently_is_refused(rules: tuple[RouteRule, ...],
                                                                   why: str) -> None:
    def annotate(rule: RouteRule) -> dict[str, str]:
        return {"retries": "yes"} if rule.retries else {}

    with pytest.raises(UnsupportedFeature, match=why) as raised:
        rendered(Route(ORDER, rules), rule_annotations=annotate)
    assert raised.value.feature == "canary.match_order"


def test_rules_that_cannot_match_the_same_request_keep_their_order_freely() -> None:
    not_beta = HeaderMatch("x-beta", "0")
    rules = (RouteRule(match=(not_beta,)), RouteRule(match=(BETA, scenario.PREMIUM)), RouteRule())
    assert len(rendered(Route(ORDER, rules))["HTTPRoute"]) == 1


def test_tied_rules_in_one_httproute_keep_istios_first_match() -> None:
    rules = (RouteRule(match=(BETA,), splits={"v2": 100}), RouteRule(match=(scenario.PREMIUM,)), RouteRule())
    assert len(rendered(Route(ORDER, rules))["HTTPRoute"][0]["spec"]["rules"]) == 3


@pytest.mark.parametrize(("workloads", "route", "message"), [
    (scenario.WORKLOADS, Route(ORDER, (RouteRule(splits={"v1": 50, "v9": 50}),)),
     "no workload of version 'v9'"),
    ((*scenario.WORKLOADS, Workload("odd", ORDER, "v9", port=8080)), SEED_ROUTE, "disagree on the port"),
    ((*scenario.WORKLOADS, Workload("clash", "order-service-v1")), SEED_ROUTE, "would replace a service"),
])
def test_routes_the_workloads_cannot_back_are_refused(workloads: tuple[Workload, ...], route: Route,
                                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gamma.render(route, workloads, mesh="test")
