"""Intents -> the Linkerd resources and annotations that express them (pure; no I/O, no cluster).

Target: Linkerd edge-26.x (the 2.16+ retry/timeout annotations, 2.17+ HTTPLocalRateLimitPolicy).

| intent         | Linkerd                                                                              |
| -------------- | ------------------------------------------------------------------------------------ |
| MtlsPolicy     | a Server per service (policy.linkerd.io/v1beta3, pods `app: <service>`, port `http`)  |
|                | with accessPolicy `all-authenticated` (STRICT) or `all-unauthenticated` (PERMISSIVE) |
| AuthzPolicy    | the Server's accessPolicy becomes `deny`; each set of callers gets a                 |
| (ALLOW only)   | MeshTLSAuthentication (or, for "anyone" under PERMISSIVE, a NetworkAuthentication)   |
|                | and an AuthorizationPolicy on the Server (rules without method/path) or on a         |
|                | policy.linkerd.io HTTPRoute holding the rules' method/path matches                   |
| Route          | GAMMA HTTPRoutes (kube/gamma.py), timeouts.request, retry.linkerd.io/* annotations   |
| OutlierPolicy  | balancer.linkerd.io/failure-accrual* annotations on the service's Service            |
| RateLimit      | HTTPLocalRateLimitPolicy on the Server                                               |
| ConnectionPool | nothing: unsupported                                                                 |
| LoadBalancer   | nothing for LEAST_REQUEST (Linkerd's balancer is its own least-loaded choice: EWMA    |
|                | latency, power of two choices); any other algorithm is unsupported                   |

Choices, and why:
- Servers rather than `config.linkerd.io/default-inbound-policy` annotations: the annotation is read
  once, when the proxy starts (changing it needs a rollout), while Servers take effect live, as
  `apply()` promises. The renderer computes the most specific MtlsPolicy per service itself (service >
  namespace > mesh, Istio's rule); STRICT is `all-authenticated` (any meshed identity: what Istio's
  STRICT accepts, any peer with a mesh certificate), PERMISSIVE `all-unauthenticated`. A service no
  MtlsPolicy selects gets no Server, so the cluster default applies (`all-unauthenticated` unless the
  install says otherwise), like Istio's PERMISSIVE default; if it needs a Server anyway (authorization,
  rate limit), the Server is PERMISSIVE.
- Authorization follows Istio's ALLOW semantics: a request is allowed when any rule of any ALLOW policy
  matches it. Linkerd authorizes a request against the *one* route that matches it best, and ranks
  path matches by matched length only (linkerd2-proxy http-route), so rules with different callers
  whose requests overlap cannot be OR-ed: refused ("authz.overlapping_rules"), not approximated.
  Istio's `prefix*` and `*suffix` paths are plain string affixes, not Gateway API's segment-wise
  PathPrefix (which also matches the prefix without its trailing slash), so they are rendered as
  anchored regular expressions. Requests no rule's route matches would get Linkerd's 404; a catch-all
  route with no authorization makes them a 403, as in Istio. Once a Server has HTTPRoutes Linkerd no
  longer authorizes kubelet probes by itself: `probe_paths` adds a GET route for them open to every
  network (so those paths are open to any caller, unlike Istio, which rewrites probes past the proxy).
- Linkerd reads failure accrual from annotations on the Service callers address, so this renderer
  renders every service's Service (the spec `kube.conventions.service` gives, the same the deploy layer
  uses): removing an OutlierPolicy then removes the annotations with the next apply.

Semantics that differ from Istio and the local mesh even where rendering succeeds (checks must allow):
- Strict mTLS: a plaintext HTTP request is answered `403` by Linkerd's proxy; Istio and the local
  mesh close the connection without a response. Declared as features (`mtls.plaintext_forbidden` is
  Linkerd's form, `mtls.plaintext_closed` the others'), so the check expects each mesh's own refusal.
- Retries: Linkerd retries responses (5xx, gateway-error, listed codes), fail-fast errors, refused
  streams and attempts cut off by `retry.linkerd.io/timeout`, never connection errors or resets
  (linkerd2-proxy retry.rs), which Envoy's `5xx` includes. On the last attempt Linkerd drops the
  retry timeout and lets it run to the request timeout; Envoy's per-try timeout bounds every attempt.
  Requests with bodies over 64 KiB are not retried. A retry may go to another backend of a weighted
  route (declared: `retries.same_version`). A route whose retryOn names reset or connect-failure still
  renders, with the conditions Linkerd has, and says what it left out (kube.objects.NOT_EXPRESSED).
  No retries unless configured: `retries=None` and
  `Retry(attempts=0)` render alike (Istio's default retries twice on connect-failure/refused-stream).
- Failure accrual counts consecutive 5xx/errors per endpoint and ejects at once, as Envoy's
  consecutive_5xx; but there is no sweep interval (the intent's `interval` has no equivalent), an
  ejected endpoint comes back on probation (one probe request; a failed probe doubles the penalty up
  to max-penalty) rather than fully after base_ejection_time x ejections, and no cap on the share
  ejected (so only max_ejection_percent 100, or 0 = no ejection, render). consecutiveGatewayErrors
  renders only where it changes nothing: at or above consecutive5xxErrors, the 5xx detector ejects first.
- Rate limits are a GCRA of `requestsPerSecond` with one second of tolerance: a burst of one second's
  requests refilled continuously, where Envoy's bucket refills `tokens_per_fill` at each interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshproof.backends.kube import gamma
from meshproof.backends.kube.conventions import (
    APP_LABEL,
    APP_PORT_NAME,
    NOT_EXPRESSED,
    finish,
    manifest,
    service,
    service_port,
)
from meshproof.backends.kube.gamma import MATCH_ORDER_REASON
from meshproof.durations import format_duration
from meshproof.features import UnsupportedFeature, check_table
from meshproof.intent import (
    TRUST_DOMAIN,
    AuthzAction,
    AuthzPolicy,
    ConnectionPool,
    Identity,
    Intent,
    LbPolicy,
    LoadBalancer,
    MtlsMode,
    OutlierPolicy,
    RateLimit,
    Route,
    RouteRule,
    Workload,
)
from meshproof.selection import check_targets, effective_mtls, one_per_service, services_of

Json = dict[str, Any]

MESH = "linkerd"
POLICY_GROUP = "policy.linkerd.io"
SERVER_API = f"{POLICY_GROUP}/v1beta3"
HTTPROUTE_API = f"{POLICY_GROUP}/v1beta3"
POLICY_API = f"{POLICY_GROUP}/v1alpha1"  # AuthorizationPolicy, authentications, HTTPLocalRateLimitPolicy
KIND_ORDER = ("Service", "Server", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute",
              "AuthorizationPolicy", "HTTPLocalRateLimitPolicy")
ALL_MESHED = "all-meshed"  # MeshTLSAuthentication of every meshed identity, one per namespace
ALL_NETWORKS = "all-networks"  # NetworkAuthentication of every address, one per namespace
#: Envoy's default max_ejection_time: the longest an ejection lasts, which max-penalty stands in for.
MAX_PENALTY = 300.0
_ROUTE_RULES, _RULE_MATCHES = 16, 8  # maxItems in the policy.linkerd.io HTTPRoute CRD
_RETRY = "retry.linkerd.io"
_ACCRUAL = "balancer.linkerd.io/failure-accrual"

UNSUPPORTED: Mapping[str, str] = check_table({
    "authz.deny": "Linkerd's authorization only grants access: there is no DENY action",
    "authz.overlapping_rules": "Linkerd checks a request against the single route that matches it best "
    "(ranking path matches by matched length only), so ALLOW rules for different callers whose "
    "method/path sets overlap cannot be OR-ed as Istio does",
    "authz.root_path": "a rule without a method that matches the path '/' ties, for the request '/', with "
    "the catch-all route that turns Linkerd's 404 for unrouted requests into Istio's 403",
    "connpool": "Linkerd has no connection-pool or concurrency limits (no Envoy circuit breakers)",
    "outlier.gateway_errors": "failure accrual counts every failure (5xx or error); it cannot count only "
    "gateway errors (502, 503, 504)",
    "outlier.max_ejection_percent": "failure accrual has no cap on the share of endpoints made unavailable; "
    "only 100 (no cap) or 0 (no ejection) can be expressed",
    "outlier.min_health_percent": "Linkerd has no panic threshold: with every endpoint unavailable it fails "
    "requests (503) instead of using them anyway",
    "outlier.base_ejection_time": "max-penalty must exceed min-penalty, and Envoy caps an ejection at "
    "max(300s, base_ejection_time), which for a base of 300s or more leaves nothing to exceed it",
    "ratelimit.headers": "HTTPLocalRateLimitPolicy answers limited requests with 429 but sets no "
    "x-ratelimit-limit/-remaining/-reset headers",
    "ratelimit.limited_header": "HTTPLocalRateLimitPolicy cannot add a header to limited (429) responses",
    "ratelimit.burst": "HTTPLocalRateLimitPolicy takes only requestsPerSecond; Linkerd's GCRA allows a burst "
    "of one second's requests, so max_tokens must equal tokens_per_fill / fill_interval",
    "ratelimit.rate": "requestsPerSecond is a whole number of at least 1",
    "retries.per_try_timeout": "retry.linkerd.io/timeout always retries the attempt it cuts off; Envoy "
    "retries a per-try timeout only under 5xx or gateway-error, so without those it cannot be expressed",
    "canary.match_order": MATCH_ORDER_REASON,
    "canary.load_balancer": "Linkerd always balances by peak-EWMA latency over two endpoints drawn at random; "
    "round robin or random cannot be chosen",
}, owner=f"the {MESH} renderer")


#: What Linkerd does differently from a feature, though rendering refuses nothing for it (a retry condition
#: it cannot express is left out of the route, and the route says so in its NOT_EXPRESSED annotation):
#: checks of these features end not_supported (the descriptor declares both tables).
BEHAVIOUR: Mapping[str, str] = check_table({
    "retries.retry_on_refused_stream": "Linkerd retries refused streams whenever it retries anything, but "
    "cannot be told to retry only those: a response status to retry is needed",
    "retries.retry_on_connect_failure": "Linkerd never retries a request whose connection failed "
    "(linkerd2-proxy outbound retry.rs)",
    "retries.retry_on_reset": "Linkerd never retries a request that failed with a connection error or reset "
    "(linkerd2-proxy outbound retry.rs)",
    "mtls.plaintext_closed": "Linkerd's proxy answers a plaintext request to an authenticated-only Server with "
    "HTTP 403 rather than closing the connection",
    "retries.same_version": "Linkerd may send each retry of a request on a weighted route to another backend, "
    "so a version's failures can be retried on the other version",
}, owner=f"the {MESH} renderer")
#: everything a backend of this mesh declares: what it cannot express and what it does instead
DECLARED: Mapping[str, str] = {**UNSUPPORTED, **BEHAVIOUR}


def _unsupported(feature: str, detail: str) -> UnsupportedFeature:
    return UnsupportedFeature(MESH, feature, UNSUPPORTED[feature], detail=detail)


def render(intents: Sequence[Intent], workloads: Sequence[Workload], *,
           probe_paths: Sequence[str] = ()) -> list[Json]:
    """Every Linkerd object the intents need, sorted in apply order (kind, namespace, name).

    `probe_paths` are the HTTP GET paths kubelet probes on the app port, if any (see the module doc).
    Raises UnsupportedFeature for what Linkerd cannot express (see UNSUPPORTED) and ValueError for
    intents that contradict each other or the workloads.
    """
    check_targets(intents, workloads)
    for intent in intents:
        if isinstance(intent, AuthzPolicy) and intent.action is AuthzAction.DENY:
            raise _unsupported("authz.deny", f"authorization policy {intent.name}")
        if isinstance(intent, ConnectionPool) and _has_limit(intent):
            raise _unsupported("connpool", f"connection pool of {intent.service}")
        if isinstance(intent, LoadBalancer) and intent.policy is not LbPolicy.LEAST_REQUEST:
            raise _unsupported("canary.load_balancer", f"{intent.policy.value} for {intent.service}")
    outliers = one_per_service(intents, OutlierPolicy)
    routes = one_per_service(intents, Route)
    limits = one_per_service(intents, RateLimit)
    result: list[Json] = []
    for key in services_of(workloads):
        namespace, name = key
        accrual = failure_accrual(outliers[key]) if key in outliers else None
        result.append(service(name, namespace, service_port(workloads, name, namespace), {APP_LABEL: name},
                              annotations=accrual))
        result += inbound_policy(key, intents, workloads, limits.get(key), probe_paths)
    for route in routes.values():
        result += gamma.render(route, workloads, mesh=MESH, rule_annotations=retry_annotations)
    return finish(result, KIND_ORDER)


def _has_limit(pool: ConnectionPool) -> bool:
    limits = (pool.max_connections, pool.http1_max_pending_requests, pool.http2_max_requests,
              pool.max_requests_per_connection, pool.max_retries)
    return any(limit is not None for limit in limits)


# --- inbound: Server, authorization, rate limit ---------------------------------------------------------


#: The Server accessPolicy that lets in what each mTLS mode lets in, when no authorization narrows it.
_ACCESS = {MtlsMode.STRICT: "all-authenticated", MtlsMode.PERMISSIVE: "all-unauthenticated"}


def inbound_policy(key: tuple[str, str], intents: Sequence[Intent], workloads: Sequence[Workload],
                   limit: RateLimit | None, probe_paths: Sequence[str]) -> list[Json]:
    """The Server of one service and what hangs off it; nothing when no intent concerns its inbound side."""
    namespace, name = key
    workload = next(w for w in workloads if (w.namespace, w.service) == key)
    mode = effective_mtls(intents, workload)
    policies = [i for i in intents if isinstance(i, AuthzPolicy) and (i.namespace, i.target) == key]
    if mode is None and not policies and limit is None:
        return []
    mode = mode or MtlsMode.PERMISSIVE
    access = "deny" if policies else _ACCESS[mode]
    spec = {"podSelector": {"matchLabels": {APP_LABEL: name}}, "port": APP_PORT_NAME, "accessPolicy": access}
    result = [manifest(SERVER_API, "Server", name, namespace, spec)]
    if policies:
        result += authorization(namespace, name, policies, mode, probe_paths)
    if limit is not None:
        result.append(rate_limit(limit, server=name))
    return result


# An Istio path pattern: (kind, text) with kind "exact", "prefix" or "suffix"; None for any path.
_Path = tuple[str, str] | None
_Atom = tuple[str | None, _Path]  # (method or None for any, path)


def _path(pattern: str) -> _Path:
    if pattern in ("*", "/*"):  # every path (an HTTP path starts with "/")
        return None
    if pattern.endswith("*"):
        return ("prefix", pattern[:-1])
    if pattern.startswith("*"):
        return ("suffix", pattern[1:])
    return ("exact", pattern)


def _matches_path(path: _Path, request_path: str) -> bool:
    if path is None:
        return True
    kind, text = path
    return {"exact": request_path == text, "prefix": request_path.startswith(text),
            "suffix": request_path.endswith(text)}[kind]


def _paths_overlap(first: _Path, second: _Path) -> bool:
    """Could one request path match both? (A prefix and a suffix always could: prefix + suffix.)"""
    if first is None or second is None:
        return True
    if first[0] == "exact":
        return _matches_path(second, first[1])
    if second[0] == "exact":
        return _matches_path(first, second[1])
    if first[0] == second[0]:
        a, b = first[1], second[1]
        return a.startswith(b) or b.startswith(a) if first[0] == "prefix" else a.endswith(b) or b.endswith(a)
    return True


def _atoms_overlap(first: _Atom, second: _Atom) -> bool:
    methods_overlap = first[0] is None or second[0] is None or first[0] == second[0]
    return methods_overlap and _paths_overlap(first[1], second[1])


@dataclass
class _Grant:
    """Everything one set of callers (None: anyone the mTLS mode lets in) may do."""

    index: int
    callers: frozenset[Identity] | None
    server_wide: bool = False  # some rule of theirs has neither method nor path
    atoms: list[_Atom] = field(default_factory=list)


def _grants(policies: Iterable[AuthzPolicy]) -> list[_Grant]:
    grants: dict[frozenset[Identity] | None, _Grant] = {}
    for policy in policies:
        for rule in policy.rules:
            callers = frozenset(Identity.parse(p) for p in rule.principals) or None
            grant = grants.setdefault(callers, _Grant(len(grants), callers))
            for method in rule.methods or (None,):
                for path in [_path(p) for p in rule.paths] or [None]:
                    if method is None and path is None:
                        grant.server_wide = True
                    elif (method, path) not in grant.atoms:
                        grant.atoms.append((method, path))
    for grant in grants.values():
        if grant.server_wide:  # allowed everywhere already: their routes would add nothing
            grant.atoms.clear()
    return list(grants.values())


def _refuse_ambiguity(service_name: str, grants: Sequence[_Grant], mode: MtlsMode, probe_paths: Sequence[str],
                      ) -> None:
    routed = [(grant, atom) for grant in grants for atom in grant.atoms]
    for i, (grant, atom) in enumerate(routed):
        for other, other_atom in routed[i + 1:]:
            if other is not grant and _atoms_overlap(atom, other_atom):
                raise _unsupported("authz.overlapping_rules",
                                   f"{service_name}: {_describe(atom)} and {_describe(other_atom)} overlap")
        if atom[0] is None and _matches_path(atom[1], "/"):
            raise _unsupported("authz.root_path", f"{service_name}: {_describe(atom)}")
        admits_kubelet = grant.callers is None and mode is MtlsMode.PERMISSIVE  # every network already
        for probe in () if admits_kubelet else probe_paths:
            if _atoms_overlap(atom, ("GET", ("exact", probe))):
                raise ValueError(f"{service_name}: the probe path {probe} overlaps the authorization rule "
                                 f"{_describe(atom)}; probe another path or port")


def _describe(atom: _Atom) -> str:
    method, path = atom
    if path is None:
        return f"{method or 'any method'} *"
    kind, text = path
    pattern = {"exact": text, "prefix": f"{text}*", "suffix": f"*{text}"}[kind]
    return f"{method or 'any method'} {pattern}"


def authorization(namespace: str, service_name: str, policies: Sequence[AuthzPolicy], mode: MtlsMode,
                  probe_paths: Sequence[str]) -> list[Json]:
    grants = _grants(policies)
    _refuse_ambiguity(service_name, grants, mode, probe_paths)
    result: list[Json] = []
    for grant in grants:
        name = f"{service_name}-authz-{grant.index}"
        authn, authn_ref = _authentication(namespace, name, grant.callers, mode)
        result.append(authn)
        if grant.server_wide:
            target = {"group": POLICY_GROUP, "kind": "Server", "name": service_name}
        else:
            result.append(_policy_route(name, namespace, service_name, grant.atoms))
            target = {"group": POLICY_GROUP, "kind": "HTTPRoute", "name": name}
        result.append(_authorization_policy(name, namespace, target, authn_ref))
    if any(grant.atoms for grant in grants):
        # Without it a request no rule's route matches gets Linkerd's 404; unauthorized, it is a 403.
        everything: list[_Atom] = [(None, ("prefix", "/"))]
        result.append(_policy_route(f"{service_name}-unmatched", namespace, service_name, everything))
        if probe_paths:
            probes = f"{service_name}-probes"
            networks, networks_ref = _authentication(namespace, probes, None, MtlsMode.PERMISSIVE)
            probe_atoms: list[_Atom] = [("GET", ("exact", path)) for path in probe_paths]
            probe_route = {"group": POLICY_GROUP, "kind": "HTTPRoute", "name": probes}
            result += [
                networks,
                _policy_route(probes, namespace, service_name, probe_atoms),
                _authorization_policy(probes, namespace, probe_route, networks_ref),
            ]
    return result


def _authentication(namespace: str, name: str, callers: frozenset[Identity] | None, mode: MtlsMode,
                    ) -> tuple[Json, Json]:
    """The authentication object for `callers` and a reference to it."""
    if callers is None and mode is MtlsMode.PERMISSIVE:  # plaintext callers too: every address
        kind, name = "NetworkAuthentication", ALL_NETWORKS
        spec: Json = {"networks": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}
    else:
        kind = "MeshTLSAuthentication"
        if callers is None:
            name, spec = ALL_MESHED, {"identities": ["*"]}
        else:
            spec = {"identities": sorted(linkerd_identity(identity) for identity in callers)}
    reference = {"group": POLICY_GROUP, "kind": kind, "name": name}
    return manifest(POLICY_API, kind, name, namespace, spec), reference


def linkerd_identity(identity: Identity) -> str:
    """Linkerd's name for a workload identity (its identity trust domain is `cluster.local` by default)."""
    return f"{identity.service_account}.{identity.namespace}.serviceaccount.identity.linkerd.{TRUST_DOMAIN}"


def _policy_route(name: str, namespace: str, server: str, atoms: Sequence[_Atom]) -> Json:
    matches = [_match(atom) for atom in atoms]
    rules = [{"matches": matches[i:i + _RULE_MATCHES]} for i in range(0, len(matches), _RULE_MATCHES)]
    if len(rules) > _ROUTE_RULES:
        raise ValueError(f"{server}: {len(matches)} method/path matches for one set of callers; "
                         f"a Linkerd HTTPRoute holds at most {_ROUTE_RULES * _RULE_MATCHES}")
    spec = {"parentRefs": [{"group": POLICY_GROUP, "kind": "Server", "name": server}], "rules": rules}
    return manifest(HTTPROUTE_API, "HTTPRoute", name, namespace, spec)


_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")  # what Rust's regex::escape escapes


def _regex(text: str) -> str:
    return "".join(f"\\{char}" if char in _REGEX_META else char for char in text)


def _match(atom: _Atom) -> Json:
    method, path = atom
    result: Json = {}
    if path is not None:
        kind, text = path
        if kind == "exact":
            result["path"] = {"type": "Exact", "value": text}
        elif kind == "prefix" and text == "/":
            result["path"] = {"type": "PathPrefix", "value": "/"}  # every path: the same in both syntaxes
        else:  # Istio's affixes are string affixes: an anchored regex says exactly that
            value = f"^{_regex(text)}.*$" if kind == "prefix" else f"^.*{_regex(text)}$"
            result["path"] = {"type": "RegularExpression", "value": value}
    if method is not None:
        result["method"] = method
    return result


def _authorization_policy(name: str, namespace: str, target: Json, authentication: Json) -> Json:
    spec = {"targetRef": target, "requiredAuthenticationRefs": [authentication]}
    return manifest(POLICY_API, "AuthorizationPolicy", name, namespace, spec)


def rate_limit(limit: RateLimit, *, server: str) -> Json:
    where = f"rate limit of {limit.target}"
    if limit.rate_limit_headers:
        raise _unsupported("ratelimit.headers", where)
    if limit.limited_remaining_header:
        raise _unsupported("ratelimit.limited_header", f"{where}: {limit.limited_remaining_header}")
    rate = limit.tokens_per_fill / limit.fill_interval
    per_second = round(rate)
    if per_second < 1 or abs(rate - per_second) > 1e-9 * rate:
        raise _unsupported("ratelimit.rate", f"{where}: {rate:g} requests per second")
    if limit.max_tokens != per_second:
        raise _unsupported("ratelimit.burst", f"{where}: a burst of {limit.max_tokens} at {per_second}/s")
    spec = {"targetRef": {"group": POLICY_GROUP, "kind": "Server", "name": server},
            "total": {"requestsPerSecond": per_second}}
    return manifest(POLICY_API, "HTTPLocalRateLimitPolicy", limit.target, limit.namespace, spec)


# --- outbound: failure accrual, retries -----------------------------------------------------------------


def failure_accrual(policy: OutlierPolicy) -> dict[str, str] | None:
    """The Service annotations for `policy`; None when it ejects nothing."""
    where = f"outlier policy of {policy.service}"
    detects = policy.consecutive_5xx is not None or policy.consecutive_gateway_errors is not None
    if not detects or not policy.max_ejection_percent:
        return None
    # Every gateway error is a 5xx, and a 500 breaks a run of gateway errors but not of 5xx, so a gateway
    # streak is never longer than the 5xx streak it is part of: with consecutiveGatewayErrors >=
    # consecutive5xxErrors the 5xx detector always ejects first, and the policy is 5xx alone.
    gateway = policy.consecutive_gateway_errors
    if gateway is not None and (policy.consecutive_5xx is None or gateway < policy.consecutive_5xx):
        raise _unsupported("outlier.gateway_errors", where)
    if policy.max_ejection_percent != 100:
        raise _unsupported("outlier.max_ejection_percent", f"{where}: {policy.max_ejection_percent}%")
    if policy.min_health_percent:
        raise _unsupported("outlier.min_health_percent", f"{where}: {policy.min_health_percent}%")
    if policy.base_ejection_time >= MAX_PENALTY:
        base = format_duration(policy.base_ejection_time)
        raise _unsupported("outlier.base_ejection_time", f"{where}: {base}")
    return {
        _ACCRUAL: "consecutive",
        f"{_ACCRUAL}-consecutive-max-failures": str(policy.consecutive_5xx),
        f"{_ACCRUAL}-consecutive-min-penalty": format_duration(policy.base_ejection_time),
        f"{_ACCRUAL}-consecutive-max-penalty": format_duration(MAX_PENALTY),
        f"{_ACCRUAL}-consecutive-jitter-ratio": "0",  # Envoy adds no jitter to ejection times
    }


_CONDITION_STATUSES = (("5xx", "5xx"), ("gateway-error", "gateway-error"), ("retriable-4xx", "409"))
#: Retry conditions Linkerd cannot express, by the feature that declares why.
_INEXPRESSIBLE = {"reset": "retries.retry_on_reset", "connect-failure": "retries.retry_on_connect_failure"}


def retry_annotations(rule: RouteRule) -> dict[str, str]:
    """The retry.linkerd.io annotations for the HTTPRoute holding `rule`; {} for no retries, which is also
    Linkerd's default (so `retries=None` and `attempts=0` render alike). Conditions Linkerd cannot express
    are left out, the route keeping the rest (matches, split, timeout, the other conditions), and named in
    the NOT_EXPRESSED annotation; a per-try timeout without 5xx or gateway-error is refused, since Linkerd
    would retry what Envoy does not."""
    retry = rule.retries
    if retry is None or retry.attempts == 0:
        return {}
    where = f"retry on {','.join(retry.retry_on)}"
    conditions = set(retry.conditions)
    statuses = [status for condition, status in _CONDITION_STATUSES if condition in conditions]
    statuses += [str(code) for code in retry.status_codes]
    missing = [(condition, BEHAVIOUR[feature]) for condition, feature in _INEXPRESSIBLE.items()
               if condition in conditions]
    if "refused-stream" in conditions and not statuses:
        missing.append(("refused-stream", BEHAVIOUR["retries.retry_on_refused_stream"]))
    if retry.per_try_timeout is not None and not conditions & {"5xx", "gateway-error"}:
        raise _unsupported("retries.per_try_timeout", where)
    annotations = {}
    if statuses:
        annotations = {f"{_RETRY}/http": ",".join(statuses), f"{_RETRY}/limit": str(retry.attempts)}
        if retry.per_try_timeout is not None:
            annotations[f"{_RETRY}/timeout"] = format_duration(retry.per_try_timeout)
    if missing:
        annotations[NOT_EXPRESSED] = "; ".join(f"retryOn {condition}: {why}" for condition, why in missing)
    return annotations
