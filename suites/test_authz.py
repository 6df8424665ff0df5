"""authz: authorization policies allow and deny exactly as written.

The reference is the seed's `AuthorizationPolicy order-service-policy`: api-gateway and
payment-service may GET and POST `/api/v1/orders/*`; prometheus (namespace monitoring) may GET
`/metrics`. Semantics are Istio's: DENY wins over ALLOW, no policy allows everyone, an ALLOW policy
with no rules allows no one. A denial is an HTTP 403 from the server's proxy (no instance answered);
every verdict is exact.
"""

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, Request
from meshproof.checks import Check
from meshproof.intent import AuthzAction, AuthzPolicy, Rule

pytestmark = pytest.mark.capability("authz")

SEED_POLICY = scenario.seed_authorization_policy()
ORDER = "/api/v1/orders/42"


def _exchange(mesh: Backend, check: Check, caller: str, method: str, path: str, *, service: str,
              allowed: bool, property_name: str) -> None:
    """One request from `caller`; allowed means answered by the service itself, denied means 403."""
    request = Request(service, path, method=method)
    response = mesh.call(caller, request)
    check.evidence({"from": caller, "request": request.describe(), "response": response.evidence()})
    verdict = f"{caller} {method} {path} -> {response.describe()}"
    if allowed:
        check.expect(response.status == 200 and response.served_by is not None,
                     f"{property_name}: {verdict}; expected HTTP 200 from {service}")
    else:
        check.expect(response.status == 403 and response.served_by is None,
                     f"{property_name}: {verdict}; expected 403 from the mesh (denied before reaching {service})")


def _criterion(check: Check, expectation: str) -> None:
    check.criterion(f"{expectation}; allowed = HTTP 200 answered by the target workload, denied = HTTP 403 "
                    "from the mesh with no workload answering; exact, no tolerance")


@pytest.mark.parametrize(("caller", "method"), [(scenario.API_GATEWAY, "GET"), (scenario.PAYMENT_SERVICE, "POST")])
def test_a_listed_identity_may_use_a_listed_method_on_the_orders_api(
    mesh: Backend, check: Check, caller: str, method: str
) -> None:
    """An identity the policy lists gets through with a listed method on a path under the prefix."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, f"{caller} {method} {ORDER} is allowed")
    _exchange(mesh, check, caller, method, ORDER, service=scenario.ORDER_SERVICE, allowed=True,
              property_name="authz ALLOW by principal, method and path")


def test_an_identity_the_policy_does_not_list_gets_403(mesh: Backend, check: Check) -> None:
    """A meshed identity the policy does not list gets 403."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, f"guest GET and POST {ORDER} are denied")
    for method in ("GET", "POST"):
        _exchange(mesh, check, scenario.GUEST, method, ORDER, service=scenario.ORDER_SERVICE, allowed=False,
                  property_name="authz denies a principal not listed")


def test_a_listed_identity_with_a_method_not_listed_gets_403(mesh: Backend, check: Check) -> None:
    """A listed identity using a method the rule does not list (DELETE) gets 403."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, f"api-gateway DELETE and PUT {ORDER} are denied")
    for method in ("DELETE", "PUT"):
        _exchange(mesh, check, scenario.API_GATEWAY, method, ORDER, service=scenario.ORDER_SERVICE, allowed=False,
                  property_name="authz denies a method not listed")


@pytest.mark.parametrize("path", ["/api/v2/orders/42", "/api/v1/orders", "/api/v1/ordersX/1", "/admin"])
def test_a_listed_identity_on_a_path_outside_the_prefix_gets_403(mesh: Backend, check: Check, path: str) -> None:
    """A listed identity on a path outside `/api/v1/orders/*` gets 403."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, f"api-gateway GET {path} is denied (the rule's prefix is /api/v1/orders/)")
    _exchange(mesh, check, scenario.API_GATEWAY, "GET", path, service=scenario.ORDER_SERVICE, allowed=False,
              property_name="authz denies a path outside the prefix")


def test_prometheus_may_get_metrics_but_not_post_them_nor_read_orders(mesh: Backend, check: Check) -> None:
    """prometheus may GET /metrics, but not POST it, and not read /api/v1/orders."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, "prometheus GET /metrics allowed; POST /metrics and GET /api/v1/orders/42 denied")
    name = "authz for prometheus (namespace monitoring)"
    _exchange(mesh, check, scenario.PROMETHEUS, "GET", "/metrics", service=scenario.ORDER_SERVICE, allowed=True,
              property_name=name)
    _exchange(mesh, check, scenario.PROMETHEUS, "POST", "/metrics", service=scenario.ORDER_SERVICE, allowed=False,
              property_name=name)
    _exchange(mesh, check, scenario.PROMETHEUS, "GET", ORDER, service=scenario.ORDER_SERVICE, allowed=False,
              property_name=name)


@pytest.mark.requires(features.AUTHZ_DENY)
def test_a_deny_rule_wins_over_an_allow_rule_that_also_matches(mesh: Backend, check: Check) -> None:
    """A DENY rule wins over an ALLOW rule that also matches the request."""
    no_writes = AuthzPolicy(
        "no-gateway-writes", scenario.ORDER_SERVICE, action=AuthzAction.DENY,
        rules=(Rule(principals=("cluster.local/ns/default/sa/api-gateway",), methods=("POST",)),),
    )
    mesh.apply([*scenario.BASELINE, SEED_POLICY, no_writes])
    _criterion(check, f"with the seed ALLOW policy and a DENY on api-gateway POST: api-gateway POST {ORDER} denied, "
                      f"GET {ORDER} still allowed, payment-service POST still allowed")
    name = "authz DENY precedence over ALLOW"
    _exchange(mesh, check, scenario.API_GATEWAY, "POST", ORDER, service=scenario.ORDER_SERVICE, allowed=False,
              property_name=name)
    _exchange(mesh, check, scenario.API_GATEWAY, "GET", ORDER, service=scenario.ORDER_SERVICE, allowed=True,
              property_name=name)
    _exchange(mesh, check, scenario.PAYMENT_SERVICE, "POST", ORDER, service=scenario.ORDER_SERVICE, allowed=True,
              property_name=name)


def test_a_workload_with_no_policy_lets_everyone_in(mesh: Backend, check: Check) -> None:
    """A workload no policy selects lets every meshed caller in (order-service's policy does not leak)."""
    mesh.apply([*scenario.BASELINE, SEED_POLICY])
    _criterion(check, "every caller GET /anything on payment-service is allowed while order-service has a policy")
    for caller in (scenario.API_GATEWAY, scenario.PROMETHEUS, scenario.GUEST):
        _exchange(mesh, check, caller, "GET", "/anything", service=scenario.PAYMENT_SERVICE, allowed=True,
                  property_name="authz: no policy means allow all")


def test_an_allow_policy_with_no_rules_denies_everything(mesh: Backend, check: Check) -> None:
    """An ALLOW policy without rules denies every request to its workload."""
    mesh.apply([*scenario.BASELINE, AuthzPolicy("allow-nothing", scenario.PAYMENT_SERVICE)])
    _criterion(check, "with an empty ALLOW policy on payment-service, every caller and method is denied")
    for caller, method in ((scenario.API_GATEWAY, "GET"), (scenario.PROMETHEUS, "POST"), (scenario.GUEST, "GET")):
        _exchange(mesh, check, caller, method, "/anything", service=scenario.PAYMENT_SERVICE, allowed=False,
                  property_name="authz: an ALLOW policy with no rules allows nothing")
