"""Every mesh feature a check can exercise, as a typed constant: the one registry checks, backends and
renderers name features from (after gateway-api's pkg/features).

A feature is `capability` (the capability's core, which every mesh claiming the capability has) or
`capability.detail` (extended: a part of it some meshes cannot express). `mesh.*` features are parts of
the backend contract beyond its core (fault injection, the proxies' own telemetry, load targets): a
backend has them by implementing the matching interface in meshproof.backend, never by declaring it.

Checks declare what they exercise (`@pytest.mark.requires(features.AUTHZ_DENY)`), backends and
renderers what they cannot express (`{"authz.deny": "why"}`); both are checked against this registry,
so a misspelt name fails at collection or import instead of silently running a check.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from meshproof.capabilities import CAPABILITIES
from meshproof.errors import UserError


class Level(StrEnum):
    CORE = "core"  # every mesh that claims the capability must have it
    EXTENDED = "extended"  # a mesh may declare it unsupported, with the reason


@dataclass(frozen=True)
class Feature:
    name: str
    level: Level
    doc: str

    @property
    def capability(self) -> str:
        return self.name.split(".", 1)[0]

    def __str__(self) -> str:
        return self.name


REGISTRY: dict[str, Feature] = {}


def _feature(name: str, doc: str) -> Feature:
    level = Level.CORE if "." not in name else Level.EXTENDED
    feature = Feature(name, level, doc)
    assert name not in REGISTRY, f"feature {name} defined twice"
    REGISTRY[name] = feature
    return feature


# --- the capabilities' core ---------------------------------------------------------------------------
MTLS = _feature("mtls", "STRICT peer authentication: meshed callers get through with their identity, "
                        "clients without a mesh certificate are refused")
AUTHZ = _feature("authz", "ALLOW policies on principal, method and path, as Istio's AuthorizationPolicy")
RETRIES = _feature("retries", "retries by the caller's proxy: attempts and retryOn conditions on status codes")
TIMEOUTS = _feature("timeouts", "a route timeout that answers 504 at T")
OUTLIER = _feature("outlier", "passive health checking: consecutive 5xx eject an endpoint for a time")
CONNPOOL = _feature("connpool", "connection-pool limits: beyond connections + pending, requests are refused")
RATELIMIT = _feature("ratelimit", "a local token-bucket rate limit on a service's inbound side")
CANARY = _feature("canary", "weighted splits between versions and header-based routing")
LOAD = _feature("load", "the latency overhead and proxy cost under open-model load")
CHAOS = _feature("chaos", "errors, latency and recovery under faults injected while load runs")

# --- extended parts of a capability -----------------------------------------------------------------
MTLS_PERMISSIVE = _feature("mtls.permissive", "PERMISSIVE mode: plaintext and mTLS both accepted")
# How a mesh refuses a plaintext client of a STRICT workload: each mesh documents one form, and declares the
# other unsupported, so the check expects exactly the refusal its mesh documents.
MTLS_PLAINTEXT_CLOSED = _feature("mtls.plaintext_closed", "under STRICT, a plaintext client's connection is "
                                 "closed without a byte (Istio's sidecar, the local mesh)")
MTLS_PLAINTEXT_FORBIDDEN = _feature("mtls.plaintext_forbidden", "under STRICT, a plaintext client's request is "
                                    "answered HTTP 403 by the proxy (Linkerd's authenticated-only Server)")
MTLS_OUTSIDE_CERTIFICATE = _feature("mtls.outside_certificate", "a client outside the mesh can hold a certificate "
                                    "of the mesh's own CA: the positive control of every refusal check")
AUTHZ_DENY = _feature("authz.deny", "DENY policies, evaluated before ALLOW and winning over it")
AUTHZ_OVERLAPPING_RULES = _feature("authz.overlapping_rules", "ALLOW rules for different callers whose "
                                   "method/path sets overlap, OR-ed together")
AUTHZ_ROOT_PATH = _feature("authz.root_path", "a rule without methods that matches the path '/'")
RETRIES_RETRY_ON_RESET = _feature("retries.retry_on_reset", "retryOn reset: a connection reset mid-request "
                                  "is retried")
RETRIES_RETRY_ON_CONNECT_FAILURE = _feature("retries.retry_on_connect_failure", "retryOn connect-failure: "
                                            "a refused connection is retried on another endpoint")
RETRIES_RETRY_ON_REFUSED_STREAM = _feature("retries.retry_on_refused_stream", "retryOn refused-stream alone")
RETRIES_PER_TRY_TIMEOUT = _feature("retries.per_try_timeout", "perTryTimeout: a slow attempt is abandoned "
                                   "and retried")
RETRIES_SAME_VERSION = _feature("retries.same_version", "on a weighted route, a retry goes to the version the "
                                 "first attempt went to (Envoy picks the weighted cluster once per request)")
RETRIES_STATUS_CODE = _feature("retries.status_code", "retryOn an arbitrary HTTP status code")
ROUTE_MATCH_ORDER = _feature("canary.match_order", "the first matching rule of a route wins, whatever the "
                             "specificity of later ones")
ROUTE_LOAD_BALANCER = _feature("canary.load_balancer", "a load-balancing algorithm chosen per service (round "
                                "robin, random) instead of the mesh's least-loaded choice")
OUTLIER_MAX_EJECTION_PERCENT = _feature("outlier.max_ejection_percent", "a cap on the share of endpoints "
                                        "ejected at once")
OUTLIER_GATEWAY_ERRORS = _feature("outlier.gateway_errors", "counting only gateway errors (502, 503, 504) "
                                  "towards ejection")
OUTLIER_MIN_HEALTH_PERCENT = _feature("outlier.min_health_percent", "a panic threshold below which ejected "
                                      "endpoints are used anyway")
OUTLIER_BASE_EJECTION_TIME = _feature("outlier.base_ejection_time", "any base ejection time, including "
                                      "300 s and more")
CONNPOOL_MAX_RETRIES_ZERO = _feature("connpool.max_retries_zero", "a pool allowing no concurrent retries")
RATELIMIT_HEADERS = _feature("ratelimit.headers", "x-ratelimit-limit/-remaining/-reset on passing responses")
RATELIMIT_LIMITED_HEADER = _feature("ratelimit.limited_header", "a header added to limited (429) responses")
RATELIMIT_BURST = _feature("ratelimit.burst", "a bucket larger than one second's refill")
RATELIMIT_RATE = _feature("ratelimit.rate", "a refill rate that is not a whole number per second")

# --- parts of the backend contract beyond its core ----------------------------------------------------
FAULT_PROXY_CRASH = _feature("mesh.fault.proxy_crash", "kill one instance's proxy (open connections reset, "
                             "new ones refused) and restart it on undo")
FAULT_APP_ERROR = _feature("mesh.fault.app_error", "make one instance's app answer every request with an "
                           "error status until undone")
FAULT_CONTROL_PLANE_DOWN = _feature("mesh.fault.control_plane_down", "stop the mesh's control plane (the "
                                    "proxies keep what they were given) and start it again on undo")
FAULT_APP_CRASH = _feature("mesh.fault.app_crash", "kill one instance's app (its proxy stays up) and start it "
                           "again on undo")
FAULT_APP_FREEZE = _feature("mesh.fault.app_freeze", "stop one instance's app process (SIGSTOP) for a duration, "
                            "so requests pile up, then continue it")
FAULT_APP_DELAY = _feature("mesh.fault.app_delay", "make one instance's app delay every response (a slow version)")
FAULT_HTTP = _feature("mesh.fault.http", "abort or delay a share of a caller's requests to a service at its proxy, "
                      "as Istio's VirtualService fault injection")
FAULT_PORT_REFUSED = _feature("mesh.fault.port_refused", "refuse connections to one instance's inbound port while "
                              "its proxy and app run (connect failures)")
FAULT_PORT_BLACKHOLED = _feature("mesh.fault.port_blackholed", "drop connection attempts to one instance's inbound "
                                 "port unanswered (connect timeouts)")
FAULT_IMPOSTOR = _feature("mesh.fault.impostor", "put an impostor at one instance's address, presenting a "
                          "foreign CA's certificate or another identity's, and report what reached it")
TELEMETRY = _feature("mesh.telemetry", "the proxies' own counters: requests and 5xx a version answered, "
                     "a caller's outlier-ejection counters")
LOAD_TARGETS = _feature("mesh.load_targets", "addresses a load generator can send to as a workload (through "
                        "its proxy, and straight to the app), and the proxies' processes for their cost")

CONTRACT = "mesh"
assert all(capability in REGISTRY for capability in CAPABILITIES)
assert all(f.capability in (*CAPABILITIES, CONTRACT) for f in REGISTRY.values())


class UnknownFeature(UserError):
    pass


def feature(name: str | Feature) -> Feature:
    """The registered feature of that name; UnknownFeature (with the closest names) otherwise."""
    if isinstance(name, Feature):
        return name
    found = REGISTRY.get(name)
    if found is None:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see meshproof/features.py for the registry"
        raise UnknownFeature(f"unknown feature {name!r}: {hint}")
    return found


class UnsupportedFeature(UserError):
    """An intent asks for something the mesh cannot express; `feature` is a registered feature's name.

    Raised by renderers (and so by a backend's apply()); a check that meets it ends `not_supported`."""

    def __init__(self, mesh: str, feature_name: str, reason: str, *, detail: str = "") -> None:
        self.mesh = mesh
        self.feature = feature(feature_name).name
        self.reason = reason
        super().__init__(f"{mesh} cannot express {feature_name}: {reason}" + (f" ({detail})" if detail else ""))


def check_table(table: Mapping[str, str], *, owner: str) -> Mapping[str, str]:
    """A table of unsupported features (name -> reason), validated: every name registered, every reason given."""
    for name, reason in table.items():
        try:
            feature(name)
        except UnknownFeature as exc:
            raise UnknownFeature(f"{owner}: {exc}") from None
        if not reason.strip():
            raise ValueError(f"{owner}: unsupported feature {name} needs a reason")
    return table


def by_capability(features: Iterable[Feature]) -> dict[str, list[Feature]]:
    grouped: dict[str, list[Feature]] = {}
    for item in features:
        grouped.setdefault(item.capability, []).append(item)
    return grouped
