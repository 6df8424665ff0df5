"""Intents validate themselves: a mistake fails at construction, naming the field."""

import pytest

from meshproof.intent import (
    AuthzPolicy,
    HeaderMatch,
    Identity,
    MtlsMode,
    MtlsPolicy,
    OutlierPolicy,
    RateLimit,
    Retry,
    Route,
    RouteRule,
    Rule,
    Workload,
)


def test_identity_reads_both_spiffe_and_istio_spellings() -> None:
    assert Identity.parse("spiffe://cluster.local/ns/a/sa/b") == Identity.parse("cluster.local/ns/a/sa/b")
    assert Identity("a", "b").spiffe_id == "spiffe://cluster.local/ns/a/sa/b"
    with pytest.raises(ValueError, match="is not of the form"):
        Identity.parse("api-gateway")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RouteRule(splits={"v1": 90, "v2": 20}), "must add up to 100, got 110"),
        (lambda: RouteRule(splits={"v1": 110, "v2": -10}), "must be >= 0"),
        (lambda: Retry(attempts=-1), "attempts must be >= 0"),
        (lambda: Retry(attempts=1, retry_on=("5xx", "sometimes")), "unknown retry condition 'sometimes'"),
        (lambda: Rule(methods=("FETCH",)), "unknown HTTP method 'FETCH'"),
        (lambda: Rule(paths=("/a/*/b",)), "no '\\*' in the middle"),
        (lambda: Rule(principals=("api-gateway",)), "is not of the form"),
        (lambda: OutlierPolicy("order-service", max_ejection_percent=150), "between 0 and 100"),
        (lambda: RateLimit("api-gateway", 10, 1, 0.01), "fill_interval must be >= 50ms"),
        (lambda: Workload("Order_Service", "order-service"), "not a valid name"),
        (lambda: MtlsPolicy(MtlsMode.STRICT, service="order-service"), "needs its namespace"),
        (lambda: Route("order-service", ()), "at least one rule"),
        (lambda: Route("order-service", (RouteRule(), RouteRule(match=(HeaderMatch("x-a", "1"),)))), "must come last"),
        (lambda: AuthzPolicy("p", "Order"), "not a valid name"),
    ],
)
def test_a_malformed_intent_is_refused_with_the_reason(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()


def test_principals_are_kept_in_istios_spelling_whichever_was_given() -> None:
    rule = Rule(principals=("spiffe://cluster.local/ns/default/sa/a", "cluster.local/ns/default/sa/b"))
    assert rule.principals == ("cluster.local/ns/default/sa/a", "cluster.local/ns/default/sa/b")


def test_mtls_policy_specificity_follows_istio() -> None:
    workload = Workload("order-service-v1", "order-service")
    assert MtlsPolicy(MtlsMode.STRICT).applies_to(workload) == 1
    assert MtlsPolicy(MtlsMode.STRICT, namespace="default").applies_to(workload) == 2
    assert MtlsPolicy(MtlsMode.STRICT, namespace="default", service="order-service").applies_to(workload) == 3
    assert MtlsPolicy(MtlsMode.STRICT, namespace="monitoring").applies_to(workload) == 0
