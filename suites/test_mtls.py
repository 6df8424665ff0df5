"""mtls: workloads reach each other over mutual TLS, with identities the server side can see."""

import pytest

from meshproof import scenario
from meshproof.backend import Backend, Request
from meshproof.checks import Check

pytestmark = pytest.mark.capability("mtls")


@pytest.mark.parametrize("caller", scenario.CALLERS)
def test_a_meshed_caller_reaches_order_service_which_sees_its_identity(
    mesh: Backend, check: Check, caller: str
) -> None:
    """A meshed caller reaches order-service, and order-service sees the caller's SPIFFE identity."""
    expected = scenario.workload(caller).identity
    check.criterion("HTTP 200 answered by an order-service instance, and the identity the server-side proxy "
                    "passed to it equals the caller's service account (exact match, no tolerance)")
    request = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1")
    response = mesh.call(caller, request)
    check.evidence({"from": caller, "request": request.describe(), "response": response.evidence()})
    check.expect(
        response.status == 200 and response.served_by is not None,
        f"mTLS reachability: {caller} -> order-service got {response.describe()}; "
        "expected HTTP 200 from an order-service instance",
    )
    seen = mesh.observed_identity(response)
    check.measure("identity_seen", str(seen.identity) if seen.identity else None, source=seen.source)
    check.evidence({"identity_evidence": seen.raw})
    check.expect(
        seen.identity == expected,
        f"mTLS identity: order-service saw {seen.identity or 'no caller identity'} in {seen.source} "
        f"({seen.raw!r}); expected {expected}",
    )
