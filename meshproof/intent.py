"""The vocabulary suites speak: *what* the mesh must do, never how a mesh spells it.

Each intent is a frozen value that validates itself on construction (ValueError with the field named),
so a bad profile or a typo in a suite fails before any backend renders it. Backends translate intents
into their own configuration (Envoy xDS, Istio CRDs, Linkerd CRDs and annotations); `apply()` takes the
*whole* set in force, so removing an intent from the list removes it from the mesh.

This module does no I/O and imports nothing from backends (enforced by import-linter).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

TRUST_DOMAIN = "cluster.local"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a DNS-1123 label, as Kubernetes names
_HEADER = re.compile(r"^[a-z0-9][-a-z0-9]*$")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"})

#: Retry conditions, in the spelling Istio's `retryOn` and Envoy's `retry_on` share.
RETRY_CONDITIONS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "refused-stream",
        "retriable-4xx",
        "retriable-status-codes",
    }
)


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{kind} {value!r} is not a valid name (lower-case letters, digits and '-')")


def _check_percent(name: str, value: int) -> None:
    if not 0 <= value <= 100:
        raise ValueError(f"{name} must be between 0 and 100, got {value}")


def _check_positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass(frozen=True)
class Identity:
    """A workload identity: a service account in a namespace (SPIFFE `spiffe://<td>/ns/<ns>/sa/<sa>`)."""

    namespace: str
    service_account: str

    @property
    def principal(self) -> str:
        """Istio's principal spelling, without the scheme: `cluster.local/ns/default/sa/api-gateway`."""
        return f"{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{self.principal}"

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Accepts the SPIFFE ID or Istio's principal form."""
        match = re.fullmatch(rf"(?:spiffe://)?{re.escape(TRUST_DOMAIN)}/ns/([^/]+)/sa/([^/]+)", text)
        if not match:
            raise ValueError(
                f"identity {text!r} is not of the form {TRUST_DOMAIN}/ns/<namespace>/sa/<service-account>"
            )
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return self.principal


@dataclass(frozen=True)
class Workload:
    """One deployment: a version of a service, run as `replicas` instances under one identity."""

    name: str
    service: str
    version: str = "v1"
    namespace: str = "default"
    service_account: str = ""
    replicas: int = 1
    port: int = 80

    def __post_init__(self) -> None:
        for kind, value in (("workload", self.name), ("service", self.service), ("namespace", self.namespace)):
            _check_name(kind, value)
        if not self.service_account:
            object.__setattr__(self, "service_account", self.service)
        _check_name("service account", self.service_account)
        if self.replicas < 0:
            raise ValueError(f"workload {self.name}: replicas must be >= 0, got {self.replicas}")

    @property
    def identity(self) -> Identity:
        return Identity(self.namespace, self.service_account)

    def instance_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.replicas)]


class MtlsMode(StrEnum):
    STRICT = "STRICT"
    PERMISSIVE = "PERMISSIVE"


@dataclass(frozen=True)
class MtlsPolicy:
    """Peer authentication for inbound traffic: mesh-wide, for a namespace, or for one service.

    The most specific policy wins (service > namespace > mesh), as in Istio's PeerAuthentication.
    """

    mode: MtlsMode
    namespace: str | None = None
    service: str | None = None

    def __post_init__(self) -> None:
        if self.service is not None and self.namespace is None:
            raise ValueError("an mTLS policy for a service needs its namespace")

    def applies_to(self, workload: Workload) -> int:
        """How specifically this policy selects `workload`: 0 not at all, 1 mesh, 2 namespace, 3 service."""
        if self.namespace is None:
            return 1
        if self.namespace != workload.namespace:
            return 0
        if self.service is None:
            return 2
        return 3 if self.service == workload.service else 0


class AuthzAction(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"


@dataclass(frozen=True)
class Rule:
    """Who may do what. Empty tuples mean "any"; the three conditions must all hold.

    `principals` use Istio's spelling (`cluster.local/ns/<ns>/sa/<sa>`); `paths` use Istio's path
    syntax: an exact path, a prefix ending in `*`, a suffix starting with `*`, or `*` alone.
    """

    principals: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Either spelling is accepted; Istio's (no scheme) is kept, so renderers add the scheme once.
        object.__setattr__(self, "principals", tuple(Identity.parse(p).principal for p in self.principals))
        for method in self.methods:
            if method not in HTTP_METHODS:
                raise ValueError(f"unknown HTTP method {method!r} in an authorization rule")
        for path in self.paths:
            if not path or ("*" in path[1:-1]) or (not path.startswith(("/", "*"))):
                raise ValueError(
                    f"path {path!r}: use an exact path, 'prefix*', '*suffix' or '*' (no '*' in the middle)"
                )


@dataclass(frozen=True)
class AuthzPolicy:
    """An authorization policy on the inbound side of a service.

    Istio's semantics, which Linkerd's and the local mesh's renderers reproduce: DENY policies are
    evaluated first and win; if any ALLOW policy selects a workload, a request must match one of its
    rules; an ALLOW policy with no rules therefore denies everything; no policy allows everything.
    """

    name: str
    target: str
    namespace: str = "default"
    action: AuthzAction = AuthzAction.ALLOW
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        _check_name("authorization policy", self.name)
        _check_name("service", self.target)


@dataclass(frozen=True)
class Retry:
    """Retries made by the caller's proxy. `attempts` counts retries, not the first try (Istio's meaning).

    `retry_on` holds conditions from RETRY_CONDITIONS and HTTP status codes as strings ("503").
    `attempts=0` turns retries off explicitly, which is not the same as leaving the mesh's default.
    Conditions mean what Envoy means: "5xx" and "gateway-error" also cover resets and connect
    failures (both end in a 503), so only a list without them leaves those unretried.
    """

    attempts: int
    per_try_timeout: float | None = None
    retry_on: tuple[str, ...] = ("5xx",)

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError(f"retry attempts must be >= 0, got {self.attempts}")
        _check_positive("per-try timeout", self.per_try_timeout)
        for condition in self.retry_on:
            if condition not in RETRY_CONDITIONS and not (condition.isdigit() and len(condition) == 3):
                known = ", ".join(sorted(RETRY_CONDITIONS))
                raise ValueError(f"unknown retry condition {condition!r}; use an HTTP status or one of {known}")

    @property
    def status_codes(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self.retry_on if c.isdigit())

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(c for c in self.retry_on if not c.isdigit())


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    exact: str

    def __post_init__(self) -> None:
        if not _HEADER.match(self.name):
            raise ValueError(f"header name {self.name!r} must be lower-case letters, digits and '-'")


@dataclass(frozen=True)
class RouteRule:
    """One HTTP rule of a route: when all `match`es hold, split by version weight.

    `splits` maps versions to integer weights summing to 100; empty means every endpoint of the
    service, unweighted. `timeout=None` and `retries=None` leave the mesh's default in place.
    """

    match: tuple[HeaderMatch, ...] = ()
    splits: Mapping[str, int] = field(default_factory=dict)
    timeout: float | None = None
    retries: Retry | None = None

    def __post_init__(self) -> None:
        if self.splits:
            for version, weight in self.splits.items():
                _check_name("version", version)
                if weight < 0:
                    raise ValueError(f"weight for {version} must be >= 0, got {weight}")
            total = sum(self.splits.values())
            if total != 100:
                raise ValueError(f"route weights must add up to 100, got {total} ({dict(self.splits)})")
        _check_positive("route timeout", self.timeout)


@dataclass(frozen=True)
class Route:
    """How callers reach `service`: rules tried in order, the first that matches wins."""

    service: str
    rules: tuple[RouteRule, ...]
    namespace: str = "default"

    def __post_init__(self) -> None:
        _check_name("service", self.service)
        if not self.rules:
            raise ValueError(f"route for {self.service} needs at least one rule")
        if any(not rule.match for rule in self.rules[:-1]):
            raise ValueError(f"route for {self.service}: a rule without matches must come last (it matches all)")

    def versions(self) -> set[str]:
        return {version for rule in self.rules for version in rule.splits}


@dataclass(frozen=True)
class OutlierPolicy:
    """Passive health checking of a service's endpoints by its callers (Istio's outlierDetection)."""

    service: str
    namespace: str = "default"
    consecutive_5xx: int | None = 5
    consecutive_gateway_errors: int | None = None
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10
    min_health_percent: int = 0

    def __post_init__(self) -> None:
        _check_name("service", self.service)
        for name in ("consecutive_5xx", "consecutive_gateway_errors"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        _check_positive("interval", self.interval)
        _check_positive("base_ejection_time", self.base_ejection_time)
        _check_percent("max_ejection_percent", self.max_ejection_percent)
        _check_percent("min_health_percent", self.min_health_percent)


@dataclass(frozen=True)
class ConnectionPool:
    """Circuit-breaker limits callers apply to a service (Istio's connectionPool); None = unlimited."""

    service: str
    namespace: str = "default"
    max_connections: int | None = None
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None

    def __post_init__(self) -> None:
        _check_name("service", self.service)
        for name in (
            "max_connections",
            "http1_max_pending_requests",
            "http2_max_requests",
            "max_requests_per_connection",
            "max_retries",
        ):
            _check_positive(name, getattr(self, name), allow_zero=name == "max_retries")


class LbPolicy(StrEnum):
    """How a caller picks one endpoint of a service for each request (Istio's `loadBalancer.simple`)."""

    LEAST_REQUEST = "LEAST_REQUEST"  # Istio's default: of two endpoints drawn at random, the one with fewer requests
    LEAST_CONN = "LEAST_REQUEST"  # the seed's spelling: Istio deprecated it for LEAST_REQUEST and renders both alike
    ROUND_ROBIN = "ROUND_ROBIN"
    RANDOM = "RANDOM"


@dataclass(frozen=True)
class LoadBalancer:
    """The load-balancing algorithm callers use for a service; without one, the mesh's default (Istio's and
    the local mesh's: LEAST_REQUEST, which with one request at a time picks an endpoint at random)."""

    service: str
    policy: LbPolicy = LbPolicy.LEAST_REQUEST
    namespace: str = "default"

    def __post_init__(self) -> None:
        _check_name("service", self.service)


@dataclass(frozen=True)
class RateLimit:
    """A local (per proxy) token-bucket limit on a service's inbound side.

    `rate_limit_headers` adds `x-ratelimit-limit/-remaining/-reset` (IETF draft 03) to every response
    that passes the limiter; `limited_remaining_header` names a header carried by limited (429)
    responses, which have by definition no tokens left (the seed's `x-rate-limit-remaining`).
    """

    target: str
    max_tokens: int
    tokens_per_fill: int
    fill_interval: float
    namespace: str = "default"
    rate_limit_headers: bool = True
    limited_remaining_header: str | None = "x-rate-limit-remaining"

    def __post_init__(self) -> None:
        _check_name("service", self.target)
        if self.max_tokens < 1 or self.tokens_per_fill < 1:
            raise ValueError("max_tokens and tokens_per_fill must be >= 1")
        if self.fill_interval < 0.05:
            raise ValueError(f"fill_interval must be >= 50ms (Envoy's minimum), got {self.fill_interval}s")


Intent = MtlsPolicy | AuthzPolicy | Route | OutlierPolicy | ConnectionPool | LoadBalancer | RateLimit


def as_json(intent: Intent) -> dict[str, Any]:
    """An intent as plain JSON for evidence and reports: its kind, then its fields."""

    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, tuple | list):
            return [plain(item) for item in value]
        if isinstance(value, Mapping):
            return {key: plain(item) for key, item in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return value

    return {"kind": type(intent).__name__, **plain(intent)}
