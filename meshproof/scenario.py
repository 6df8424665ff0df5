"""The reference scenario, from the service-mesh chapter the project grew from (shared/seed).

Workloads: `order-service` v1 (2 replicas) and v2 (1 replica); its callers `api-gateway` and
`payment-service`; `prometheus` in namespace `monitoring`; and `guest`, a meshed identity that no
policy grants anything. Beyond the seed: `order-service` v3 (1 replica), the next canary, so that a
split over three versions can be checked. The seed's resources are expressed here once, as intents, so every suite
checks the same thing on every mesh; the profile scales their durations.
"""

from __future__ import annotations

from meshproof.intent import (
    AuthzAction,
    AuthzPolicy,
    HeaderMatch,
    Intent,
    LbPolicy,
    LoadBalancer,
    MtlsMode,
    MtlsPolicy,
    Retry,
    Route,
    RouteRule,
    Rule,
    Workload,
)
from meshproof.profile import Profile

ORDER_SERVICE = "order-service"
API_GATEWAY = "api-gateway"
PAYMENT_SERVICE = "payment-service"
PROMETHEUS = "prometheus"
GUEST = "guest"
MONITORING = "monitoring"
PREMIUM = HeaderMatch("x-user-type", "premium")

WORKLOADS: tuple[Workload, ...] = (
    Workload("order-service-v1", ORDER_SERVICE, "v1", replicas=2),
    Workload("order-service-v2", ORDER_SERVICE, "v2", replicas=1),
    Workload("order-service-v3", ORDER_SERVICE, "v3", replicas=1),
    Workload(API_GATEWAY, API_GATEWAY),
    Workload(PAYMENT_SERVICE, PAYMENT_SERVICE),
    Workload(PROMETHEUS, PROMETHEUS, namespace=MONITORING),
    Workload(GUEST, GUEST),
)

def workload(name: str) -> Workload:
    for candidate in WORKLOADS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no workload {name!r} in the reference scenario")


#: Every workload caller in the scenario: the meshed identities a check can call from.
CALLERS = (API_GATEWAY, PAYMENT_SERVICE, PROMETHEUS, GUEST)

#: What every check starts from: strict mTLS everywhere, no other policy (Kubernetes-like routing).
BASELINE: tuple[Intent, ...] = (MtlsPolicy(MtlsMode.STRICT),)


def seed_peer_authentication() -> MtlsPolicy:
    """`PeerAuthentication default` in namespace default: STRICT."""
    return MtlsPolicy(MtlsMode.STRICT, namespace="default")


def seed_virtual_service(retries: Retry, timeout: float, weights: dict[str, int]) -> Route:
    """`VirtualService order-service`: premium users to v2; everyone else split, with timeout and retries."""
    return Route(ORDER_SERVICE, (
        RouteRule(match=(PREMIUM,), splits={"v2": 100}),
        RouteRule(splits=weights, timeout=timeout, retries=retries),
    ))


def seed_intents(profile: Profile) -> tuple[Intent, ...]:
    """Every resource of the seed at once, with the profile's values: what `meshproof render` shows."""
    return (
        seed_peer_authentication(),
        seed_authorization_policy(),
        seed_virtual_service(profile.retries.retry(), profile.retries.timeout, profile.canary.weights),
        profile.outlier.policy(ORDER_SERVICE),
        profile.connpool.pool(ORDER_SERVICE),
        LoadBalancer(ORDER_SERVICE, LbPolicy.LEAST_CONN),
        profile.ratelimit.limit(),
    )


def seed_authorization_policy() -> AuthzPolicy:
    """`AuthorizationPolicy order-service-policy`: two callers may GET/POST orders, prometheus GET /metrics."""
    return AuthzPolicy(
        name="order-service-policy",
        target=ORDER_SERVICE,
        action=AuthzAction.ALLOW,
        rules=(
            Rule(
                principals=("cluster.local/ns/default/sa/api-gateway", "cluster.local/ns/default/sa/payment-service"),
                methods=("GET", "POST"),
                paths=("/api/v1/orders/*",),
            ),
            Rule(principals=("cluster.local/ns/monitoring/sa/prometheus",), methods=("GET",), paths=("/metrics",)),
        ),
    )
