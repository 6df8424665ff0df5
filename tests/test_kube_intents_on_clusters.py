"""The scenario on a real cluster: its namespaces moved onto a borrowed cluster, and the consistency probes an
apply derives from the intents (what must be observable, and how often in a row)."""

from __future__ import annotations

import itertools

import pytest

from meshproof import scenario
from meshproof.backend import Request, Response
from meshproof.backends.kube import consistency
from meshproof.backends.kube.namespaces import NamespaceMap
from meshproof.errors import UserError
from meshproof.intent import (
    AuthzAction,
    AuthzPolicy,
    HeaderMatch,
    Identity,
    MtlsMode,
    MtlsPolicy,
    RateLimit,
    Route,
    RouteRule,
    Rule,
)
from meshproof.profile import Profile
from meshproof.workloads.directives import SERVED_VERSION

BORROWED = NamespaceMap("mp-3f2a1c-")
GUEST = scenario.workload(scenario.GUEST).identity


def test_on_a_cluster_meshproof_owns_nothing_moves() -> None:
    names = NamespaceMap()
    intents = scenario.seed_intents(Profile())
    assert names.intents(intents, ["default", "monitoring"]) == list(intents)
    assert names.moved(Request("order-service")).host() == "order-service.default"


def test_on_a_borrowed_cluster_every_namespace_an_intent_names_moves_principals_included() -> None:
    policy = scenario.seed_authorization_policy()
    (moved,) = BORROWED.intents([policy], ["default", "monitoring"])
    assert isinstance(moved, AuthzPolicy) and moved.namespace == "mp-3f2a1c-default"
    assert [list(rule.principals) for rule in moved.rules] == [
        ["cluster.local/ns/mp-3f2a1c-default/sa/api-gateway", "cluster.local/ns/mp-3f2a1c-default/sa/payment-service"],
        ["cluster.local/ns/mp-3f2a1c-monitoring/sa/prometheus"]]
    route = scenario.seed_virtual_service(Profile().retries.retry(), 1.0, {"v1": 90, "v2": 10})
    assert BORROWED.intents([route], ["default"])[0] == Route(route.service, route.rules, namespace="mp-3f2a1c-default")
    workload = BORROWED.moved(scenario.workload(scenario.PROMETHEUS))
    assert workload.namespace == "mp-3f2a1c-monitoring" and workload.identity.principal.endswith(
        "/ns/mp-3f2a1c-monitoring/sa/prometheus")
    assert BORROWED.moved(Request("order-service", namespace="default")).host() == "order-service.mp-3f2a1c-default"
    assert BORROWED.identity(Identity("mp-3f2a1c-default", "api-gateway")) == Identity("default", "api-gateway")
    assert BORROWED.scenario("kube-system") == "kube-system"


def test_a_mesh_wide_mtls_policy_becomes_one_per_meshproof_namespace_without_its_own() -> None:
    intents = [MtlsPolicy(MtlsMode.STRICT), MtlsPolicy(MtlsMode.PERMISSIVE, namespace="monitoring")]
    moved = BORROWED.intents(intents, ["default", "monitoring"])
    assert moved == [MtlsPolicy(MtlsMode.STRICT, namespace="mp-3f2a1c-default"),
                     MtlsPolicy(MtlsMode.PERMISSIVE, namespace="mp-3f2a1c-monitoring")]
    assert NamespaceMap.borrowed().prefix != NamespaceMap.borrowed().prefix


def test_istio_s_authorization_verdicts_deny_first_then_any_allow_must_match() -> None:
    seed = [scenario.seed_authorization_policy()]
    gateway = Identity("default", "api-gateway")
    assert consistency.allowed(seed, "order-service", "default", gateway, "GET", "/api/v1/orders/7")
    assert not consistency.allowed(seed, "order-service", "default", gateway, "DELETE", "/api/v1/orders/7")
    assert not consistency.allowed(seed, "order-service", "default", GUEST, "GET", "/api/v1/orders/7")
    assert consistency.allowed(seed, "payment-service", "default", GUEST, "GET", "/")  # no policy: allowed
    deny = AuthzPolicy("no-delete", "order-service", action=AuthzAction.DENY, rules=(Rule(methods=("GET",)),))
    assert not consistency.allowed([*seed, deny], "order-service", "default", gateway, "GET", "/api/v1/orders/7")
    nothing = AuthzPolicy("nothing", "order-service")
    assert not consistency.allowed([nothing], "order-service", "default", gateway, "GET", "/")
    suffix = AuthzPolicy("json", "order-service", rules=(Rule(paths=("*.json",)),))
    assert consistency.allowed([suffix], "order-service", "default", GUEST, "GET", "/a.json")


def _descriptions(found: list[consistency.Expectation]) -> list[str]:
    return [expectation.description for expectation in found]


def test_the_seed_s_observable_effects_are_the_premium_route_and_the_guest_s_denial() -> None:
    route = scenario.seed_virtual_service(Profile().retries.retry(), 1.0, {"v1": 90, "v2": 10})
    with_policy = [*scenario.BASELINE, route, scenario.seed_authorization_policy()]
    found = consistency.expectations(with_policy, scenario.BASELINE, source="guest", identity=GUEST)
    # order-service is guarded now: the guest's verdict is certain (403), its route answers are not observable
    assert _descriptions(found) == ["guest -> order-service: denied (403)"]
    found = consistency.expectations([*scenario.BASELINE, route], with_policy, source="guest", identity=GUEST)
    assert _descriptions(found) == ["guest -> order-service: allowed",
                                    "guest -> order-service with x-user-type: premium is served by v2"]
    premium = found[1]
    assert premium.request.headers == {"x-user-type": "premium"} and premium.request.path == consistency.PROBE_PATH


def test_splits_shadowed_rules_and_rate_limited_services_give_no_probe() -> None:
    premium, beta = HeaderMatch("x-user-type", "premium"), HeaderMatch("x-beta", "1")
    shadowed = Route("order-service", (RouteRule(match=(premium,), splits={"v2": 100}),
                                       RouteRule(match=(premium, beta), splits={"v3": 100}),
                                       RouteRule(splits={"v1": 100})))
    split = Route("order-service", (RouteRule(splits={"v1": 50, "v2": 50}),))
    # rule 1's requests all match rule 0 first (the first match wins): only rules 0 and 2 are observable
    assert _descriptions(consistency.expectations([shadowed], [], source="guest", identity=GUEST)) == [
        "guest -> order-service with x-user-type: premium is served by v2",
        "guest -> order-service with no routing header is served by v1"]
    assert consistency.expectations([split], [], source="guest", identity=GUEST) == []
    limited = [RateLimit("order-service", 10, 10, 1.0), scenario.seed_authorization_policy(), shadowed]
    assert consistency.expectations(limited, [], source="guest", identity=GUEST) == []


def _response(status: int, version: str | None = None) -> Response:
    headers = {SERVED_VERSION: version, "content-type": "application/json"} if version else {}
    body = '{"instance": "order-service-v2-abc"}' if version else "RBAC: access denied"
    return Response(status, headers, body, 0.001)


def test_each_probe_judges_the_response_it_expects() -> None:
    route = Route("order-service", (RouteRule(splits={"v2": 100}),))
    (served,) = consistency.expectations([route], [], source="guest", identity=GUEST)
    assert served.judge(_response(200, "v2")) is None
    assert "version v1" in (served.judge(_response(200, "v1")) or "")
    guarded = [AuthzPolicy("nothing", "order-service")]
    (denied,) = consistency.expectations(guarded, [], source="guest", identity=GUEST)
    assert denied.judge(_response(403)) is None and denied.judge(_response(200, "v1")) is not None
    (allowed,) = consistency.expectations([], guarded, source="guest", identity=GUEST)
    assert allowed.judge(_response(200, "v1")) is None and allowed.judge(_response(403)) is not None


def test_consistency_needs_n_clean_rounds_in_a_row_and_a_failure_resets_the_count() -> None:
    script = iter([[], ["stale"], [], [], ["stale"], [], [], []])
    convergence = consistency.until_consistent(lambda: next(script), consecutive=3, timeout=10, interval=0.001,
                                               what="the mesh")
    assert convergence.rounds == 8
    with pytest.raises(StopIteration):
        next(script)


def test_a_mesh_that_never_settles_fails_with_the_last_problems_after_the_deadline() -> None:
    flapping = itertools.cycle([[], [], ["guest -> order-service: denied (403): got HTTP 200 from order-service-v1-x"]])
    with pytest.raises(UserError, match=r"the mesh: not consistent within 0.2 s \(\d+ probe rounds; 3 in a row "
                                        r"needed\): guest -> order-service: denied \(403\): got HTTP 200"):
        consistency.until_consistent(lambda: next(flapping), consecutive=3, timeout=0.2, interval=0.01,
                                     what="the mesh")
