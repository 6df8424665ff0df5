"""Mutants: hooks that break the local mesh the way a bad mesh release would.

Each one is passed as --envoy-config-hook to a real run; tests/test_mutation.py asserts that the
check guarding the broken property goes red with a message naming it and the measured values the
break implies. A check that stays green against its mutant cannot fail, and is not done.

Besides the named mutants, every numeric parameter a check verifies has proportional ones, resolved by
name: `<parameter>_x<factor>` with the factor's point written `_`, e.g. `route_timeout_x0_8` renders
every route timeout 20% shorter, `max_connections_x1_2` every connection limit 20% higher (integers
rounded, percentages capped at 100), `canary_weight_10_x1_2` a split's or rollout step's 10% as 12%.
benchmarks/sensitivity.py sweeps the factors to find the smallest change each check catches. The
parameters are the keys of SCALED, and canary_weight_<w>.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from meshproof import scenario
from meshproof.backends.local.hook import resources

Config = dict[str, Any]


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a config, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts(value)


def _inbound_listener(config: Config) -> dict[str, Any] | None:
    return next((listener for listener in resources(config, "Listener") if listener["name"] == "inbound"), None)


def _inbound_route(config: Config) -> dict[str, Any] | None:
    routes = resources(config, "RouteConfiguration")
    return next((route for route in routes if route["name"] == "inbound"), None)


def _per_filter(config: Config) -> dict[str, Any]:
    route = _inbound_route(config)
    return route["virtual_hosts"][0].get("typed_per_filter_config", {}) if route else {}


# --- mtls -----------------------------------------------------------------------------------------------


def client_cert_optional(workload: str, config: Config) -> Config:
    """The inbound listener does server-side TLS only: no client certificate requested or validated.

    (Only flipping require_client_certificate is not enough to break Envoy 1.40: with SAN matchers in
    the validation context it still fails a handshake without a certificate, stat fail_verify_no_cert.)
    """
    for context in _dicts(_inbound_listener(config)):
        if "require_client_certificate" in context:
            context["require_client_certificate"] = False
            context["common_tls_context"].pop("validation_context")
    return config


def plaintext_accepted(workload: str, config: Config) -> Config:
    """The inbound listener also serves plaintext, whatever the mTLS mode says."""
    listener = _inbound_listener(config)
    if listener is not None and not any(c.get("name") == "plaintext" for c in listener["filter_chains"]):
        tls_chain = listener["filter_chains"][0]
        tls_chain["filter_chain_match"] = {"transport_protocol": "tls"}
        inspector = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
        listener["listener_filters"] = [{"name": "tls_inspector", "typed_config": {"@type": inspector}}]
        listener["filter_chains"].append({
            "name": "plaintext",
            "filter_chain_match": {"transport_protocol": "raw_buffer"},
            "filters": tls_chain["filters"],
        })
    return config


def foreign_ca_trusted(workload: str, config: Config) -> Config:
    """The inbound listener accepts a client certificate that does not chain to the mesh CA."""
    for context in _dicts(_inbound_listener(config)):
        if "trusted_ca" in context:
            context["trust_chain_verification"] = "ACCEPT_UNTRUSTED"
    return config


def client_identity_not_forwarded(workload: str, config: Config) -> Config:
    """The server-side proxy strips the caller's identity instead of passing it to the app."""
    for hcm in _dicts(_inbound_listener(config)):
        if hcm.get("forward_client_cert_details") == "SANITIZE_SET":
            hcm["forward_client_cert_details"] = "SANITIZE"
            hcm.pop("set_current_client_cert_details")
    return config


def permissive_ignored(workload: str, config: Config) -> Config:
    """The inbound listener stays strict when the policy says PERMISSIVE."""
    listener = _inbound_listener(config)
    if listener is not None:
        listener["filter_chains"] = [c for c in listener["filter_chains"] if c.get("name") != "plaintext"]
        for chain in listener["filter_chains"]:
            chain.pop("filter_chain_match", None)
        listener.pop("listener_filters", None)
    return config


def _upstream_validation(config: Config) -> Iterator[dict[str, Any]]:
    for cluster in _outbound_clusters(config):
        for node in _dicts(cluster.get("transport_socket")):
            if "trusted_ca" in node:
                yield node


def caller_trusts_any_ca(workload: str, config: Config) -> Config:
    """A caller's proxy accepts a server certificate that does not chain to the mesh CA."""
    for context in _upstream_validation(config):
        context["trust_chain_verification"] = "ACCEPT_UNTRUSTED"
    return config


def caller_accepts_any_identity(workload: str, config: Config) -> Config:
    """A caller's proxy accepts any identity the mesh CA signed, not only the destination's."""
    for context in _upstream_validation(config):
        context.pop("match_typed_subject_alt_names", None)
    return config


# --- authz ----------------------------------------------------------------------------------------------


def rbac_filters_removed(workload: str, config: Config) -> Config:
    """The authorization filters are gone from the inbound HTTP filter chain."""
    for hcm in _dicts(_inbound_listener(config)):
        if "http_filters" in hcm:
            hcm["http_filters"] = [f for f in hcm["http_filters"] if not f["name"].startswith("meshproof.authz.")]
    return config


def rbac_shadow_only(workload: str, config: Config) -> Config:
    """Policies are evaluated in shadow (dry-run) mode: logged, never enforced."""
    for per_route in _per_filter(config).values():
        rbac = per_route.get("rbac")
        if rbac and "rules" in rbac:
            rbac["shadow_rules"] = rbac.pop("rules")
    return config


def principal_misspelled(workload: str, config: Config) -> Config:
    """The listed callers' principals are misspelled in the rendered policy."""
    route = _inbound_route(config)
    if route is not None:
        text = json.dumps(route).replace("/sa/api-gateway", "/sa/api-gatway").replace("/sa/payment-", "/sa/paymnt-")
        route.clear()
        route.update(json.loads(text))
    return config


def methods_ignored(workload: str, config: Config) -> Config:
    """Method conditions are dropped from every rule: a listed principal may use any method."""
    for node in _dicts(_per_filter(config)):
        if "and_rules" in node:
            kept = [rule for rule in node["and_rules"]["rules"] if ":method" not in json.dumps(rule)]
            node["and_rules"]["rules"] = kept or [{"any": True}]
    return config


def path_prefix_widened(workload: str, config: Config) -> Config:
    """The orders prefix /api/v1/orders/ is rendered as /, every path."""
    for node in _dicts(_per_filter(config)):
        if node.get("prefix") == "/api/v1/orders/":
            node["prefix"] = "/"
    return config


def deny_ignored(workload: str, config: Config) -> Config:
    """DENY policies are not enforced."""
    _per_filter(config).pop("meshproof.authz.deny", None)
    return config


def empty_allow_allows_all(workload: str, config: Config) -> Config:
    """An ALLOW policy without rules is treated as no policy at all."""
    per_filter = _per_filter(config)
    allow = per_filter.get("meshproof.authz.allow")
    if allow is not None and not allow["rbac"]["rules"]["policies"]:
        del per_filter["meshproof.authz.allow"]
    return config


def policy_leaks_to_other_workloads(workload: str, config: Config) -> Config:
    """order-service's policy is also enforced on payment-service, which no policy selects."""
    route = _inbound_route(config)
    if workload == "payment-service" and route is not None:
        route["virtual_hosts"][0]["typed_per_filter_config"] = {"meshproof.authz.allow": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
            "rbac": {"rules": {"action": "ALLOW", "policies": {"leaked": {
                "permissions": [{"any": True}],
                "principals": [{"authenticated": {"principal_name": {
                    "exact": "spiffe://cluster.local/ns/default/sa/api-gateway"}}}]}}}},
        }}
    return config


# --- retries and timeouts (on every caller's outbound routes) -------------------------------------------


def _route_actions(config: Config) -> Iterator[dict[str, Any]]:
    for route_config in resources(config, "RouteConfiguration"):
        if route_config["name"] == "outbound":
            for host in route_config["virtual_hosts"]:
                for route in host["routes"]:
                    yield route["route"]


def _retry_policies(config: Config) -> Iterator[dict[str, Any]]:
    for action in _route_actions(config):
        if "retry_policy" in action:
            yield action["retry_policy"]


def retry_on_4xx_too(workload: str, config: Config) -> Config:
    """Client errors are retried as well: the route's retryOn is not honoured."""
    for policy in _retry_policies(config):
        policy["retry_on"] += ",retriable-status-codes"
        policy["retriable_status_codes"] = [404, 409]
    return config


# Envoy's 5xx and gateway-error also retry resets and connect failures (both end in a 503), so the
# mutants below drop those too, and fall back to a condition that covers neither.
_NEITHER = "retriable-4xx"


def _drop_conditions(config: Config, dropped: tuple[str, ...]) -> Config:
    for policy in _retry_policies(config):
        policy["retry_on"] = ",".join(c for c in policy["retry_on"].split(",") if c not in dropped) or _NEITHER
    return config


def reset_never_retried(workload: str, config: Config) -> Config:
    return _drop_conditions(config, ("reset", "5xx", "gateway-error"))


def reset_always_retried(workload: str, config: Config) -> Config:
    for policy in _retry_policies(config):
        if "reset" not in policy["retry_on"].split(","):
            policy["retry_on"] += ",reset"
    return config


def connect_failure_never_retried(workload: str, config: Config) -> Config:
    return _drop_conditions(config, ("connect-failure", "5xx", "gateway-error", "reset"))


def status_errors_never_retried(workload: str, config: Config) -> Config:
    """Error statuses are not retried: the route's 5xx is dropped (resets and connect failures still are)."""
    return _drop_conditions(config, ("5xx", "gateway-error"))


def no_per_try_timeout(workload: str, config: Config) -> Config:
    for policy in _retry_policies(config):
        policy.pop("per_try_timeout", None)
    return config


def no_route_timeout(workload: str, config: Config) -> Config:
    for action in _route_actions(config):
        action["timeout"] = "0s"
    return config


# --- outlier detection and connection pools (on every caller's clusters) --------------------------------


def _outbound_clusters(config: Config) -> Iterator[dict[str, Any]]:
    for cluster in resources(config, "Cluster"):
        if cluster["name"].startswith("outbound|"):
            yield cluster


def _detectors(config: Config) -> Iterator[dict[str, Any]]:
    for cluster in _outbound_clusters(config):
        if "outlier_detection" in cluster:
            yield cluster["outlier_detection"]


def max_ejection_percent_100(workload: str, config: Config) -> Config:
    for detector in _detectors(config):
        detector["max_ejection_percent"] = 100
    return config


def gateway_errors_count_every_5xx(workload: str, config: Config) -> Config:
    """The gateway-error detector is wired to the 5xx counter."""
    for detector in _detectors(config):
        if detector.get("enforcing_consecutive_gateway_failure"):
            detector["consecutive_5xx"] = detector.pop("consecutive_gateway_failure")
            detector["enforcing_consecutive_5xx"] = 100
            detector["enforcing_consecutive_gateway_failure"] = 0
    return config


def no_circuit_breaker(workload: str, config: Config) -> Config:
    """No pool limits anywhere: callers' clusters and (where Istio applies the pool too) the servers' inbound."""
    for cluster in resources(config, "Cluster"):
        del cluster["circuit_breakers"]
        cluster["circuit_breakers"] = {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000}]}
    return config


# --- the local rate limit (in the target's inbound HTTP connection managers) -----------------------------


def _rate_limits(config: Config) -> Iterator[dict[str, Any]]:
    for hcm in _dicts(_inbound_listener(config)):
        for http_filter in hcm.get("http_filters", []):
            if http_filter["name"] == "envoy.filters.http.local_ratelimit":
                yield http_filter["typed_config"]


def rate_limit_not_enforced(workload: str, config: Config) -> Config:
    for limit in _rate_limits(config):
        limit["filter_enforced"]["default_value"]["numerator"] = 0
    return config


def rate_limit_headers_off(workload: str, config: Config) -> Config:
    for limit in _rate_limits(config):
        limit.pop("enable_x_ratelimit_headers", None)
    return config


def limited_header_on_every_response(workload: str, config: Config) -> Config:
    """The limited responses' header is added to every response the route answers."""
    route = _inbound_route(config)
    if route is not None and _rate_limits_of(workload):
        route["virtual_hosts"][0]["response_headers_to_add"] = [
            {"header": {"key": "x-rate-limit-remaining", "value": "0"}}]
    return config


def _rate_limits_of(workload: str) -> bool:
    return workload == scenario.API_GATEWAY  # the rate-limited target of the scenario


def limited_header_missing(workload: str, config: Config) -> Config:
    for limit in _rate_limits(config):
        limit.pop("response_headers_to_add", None)
    return config


# --- canary routing (on every caller's outbound routes) --------------------------------------------------


def _weighted(config: Config) -> Iterator[list[dict[str, Any]]]:
    for action in _route_actions(config):
        if "weighted_clusters" in action:
            yield action["weighted_clusters"]["clusters"]


def _reweigh(config: Config, change: dict[int, int]) -> Config:
    """In every split whose second version's weight is a key of `change`, give it the new weight and the
    first version the difference (so 90/10 -> {10: 12} -> 88/12, 50/30/20 -> {30: 32} -> 48/32/20)."""
    for clusters in _weighted(config):
        weights = [cluster["weight"] for cluster in clusters]
        if weights[1] in change:
            clusters[1]["weight"] = change[weights[1]]
            clusters[0]["weight"] = 100 - sum(cluster["weight"] for cluster in clusters[1:])
    return config


def weights_88_12(workload: str, config: Config) -> Config:
    """A 2-point shift: the 90/10 split is served as 88/12."""
    return _reweigh(config, {10: 12})


def weights_52_48(workload: str, config: Config) -> Config:
    """A 2-point shift: the 50/50 split is served as 52/48."""
    return _reweigh(config, {50: 48})


def weights_48_32_20(workload: str, config: Config) -> Config:
    """A 2-point shift: the 50/30/20 split is served as 48/32/20."""
    return _reweigh(config, {30: 32})


def canary_weight_doubled(workload: str, config: Config) -> Config:
    """Every rollout step sends twice the canary's share to it."""
    return _reweigh(config, {10: 20, 25: 50, 50: 75, 75: 90})


def premium_header_ignored(workload: str, config: Config) -> Config:
    for route_config in resources(config, "RouteConfiguration"):
        for host in route_config.get("virtual_hosts", []):
            host["routes"] = [route for route in host["routes"] if "headers" not in route["match"]]
    return config


_served: dict[str, Config] = {}


def stale_by_one_update(workload: str, config: Config) -> Config:
    """A control plane one update behind: each caller is served the outbound routes it should have had
    before (the config it is given now reaches it at the next update)."""
    if not any(r.get("name") == "outbound" for r in resources(config, "RouteConfiguration")):
        return config
    previous = _served.get(workload, config)
    _served[workload] = config
    return previous


def errors_hidden_from_callers(workload: str, config: Config) -> Config:
    """v2's proxy turns its app's 5xx into 200s (what callers and the mesh's telemetry see)."""
    listener = _inbound_listener(config)
    if workload == "order-service-v2" and listener is not None:
        code = ("function envoy_on_response(handle) if tonumber(handle:headers():get(':status')) >= 500 then "
                "handle:headers():replace(':status', '200') end end")
        lua = {"name": "envoy.filters.http.lua", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": code}}}
        for hcm in _dicts(listener):
            if "http_filters" in hcm:
                hcm["http_filters"].insert(0, lua)
    return config


# --- proportional mutants: every numeric parameter a check verifies, scaled by a factor ------------------


def _seconds(value: str) -> float:
    return float(value.rstrip("s"))


def _scale_duration(node: dict[str, Any], key: str, factor: float) -> None:
    if key in node and _seconds(node[key]) > 0:
        node[key] = f"{_seconds(node[key]) * factor:.3f}s"


def _scale_count(node: dict[str, Any], key: str, factor: float, cap: int | None = None) -> None:
    if key in node:
        scaled = max(1, round(node[key] * factor))
        node[key] = min(scaled, cap) if cap is not None else scaled


def _scale_percent(node: dict[str, Any], key: str, factor: float) -> None:
    _scale_count(node, key, factor, cap=100)


def _scale_limit(node: dict[str, Any], key: str, factor: float) -> None:
    """A pool limit, unless it is Istio's 'unlimited'."""
    if node.get(key, UNLIMITED) < UNLIMITED:
        _scale_count(node, key, factor)


def _thresholds(config: Config) -> Iterator[dict[str, Any]]:
    """Every cluster's pool limits: the callers' and, as in Istio, the servers' inbound cluster."""
    for cluster in resources(config, "Cluster"):
        yield from cluster.get("circuit_breakers", {}).get("thresholds", [])[:1]


def _buckets(config: Config) -> Iterator[dict[str, Any]]:
    for limit in _rate_limits(config):
        yield limit["token_bucket"]


Scale = Callable[[dict[str, Any], str, float], None]


def _each(nodes: Callable[[Config], Iterator[dict[str, Any]]], key: str,
          scale: Scale) -> Callable[[Config, float], None]:
    def apply(config: Config, factor: float) -> None:
        for node in nodes(config):
            scale(node, key, factor)

    return apply


UNLIMITED = 4294967295
SCALED: dict[str, Callable[[Config, float], None]] = {
    "route_timeout": _each(_route_actions, "timeout", _scale_duration),
    "per_try_timeout": _each(_retry_policies, "per_try_timeout", _scale_duration),
    "retries": _each(_retry_policies, "num_retries", _scale_count),
    "consecutive_5xx": _each(_detectors, "consecutive_5xx", _scale_count),
    "consecutive_gateway_errors": _each(_detectors, "consecutive_gateway_failure", _scale_count),
    "base_ejection_time": _each(_detectors, "base_ejection_time", _scale_duration),
    "max_ejection_percent": _each(_detectors, "max_ejection_percent", _scale_percent),
    "max_connections": _each(_thresholds, "max_connections", _scale_limit),
    "max_pending_requests": _each(_thresholds, "max_pending_requests", _scale_limit),
    "max_tokens": _each(_buckets, "max_tokens", _scale_count),
    "tokens_per_fill": _each(_buckets, "tokens_per_fill", _scale_count),
    "fill_interval": _each(_buckets, "fill_interval", _scale_duration),
}
_PROPORTIONAL = re.compile(r"(?P<parameter>[a-z_0-9]+?)_x(?P<whole>\d+)_(?P<fraction>\d+)")
_CANARY_WEIGHT = re.compile(r"canary_weight_(?P<weight>\d+)")


def proportional(parameter: str, factor: float) -> Callable[[str, Config], Config]:
    """The mutant rendering `parameter` (a key of SCALED, or canary_weight_<w>: the second version's weight w
    in a split, as at the rollout step w, the first version taking the difference) `factor` times what was
    asked."""
    canary = _CANARY_WEIGHT.fullmatch(parameter)
    if canary is None and parameter not in SCALED:
        raise AttributeError(f"no parameter {parameter!r} to scale; known: {', '.join(SCALED)}, canary_weight_<w>")

    def mutant(workload: str, config: Config) -> Config:
        if canary is not None:
            weight = int(canary["weight"])
            return _reweigh(config, {weight: round(weight * factor)})
        SCALED[parameter](config, factor)
        return config

    mutant.__name__ = mutant.__qualname__ = f"{parameter}_x{factor:g}".replace(".", "_")
    return mutant


def __getattr__(name: str) -> Callable[[str, Config], Config]:
    """`route_timeout_x0_8` and the like (see the module doc): resolved on demand, so any factor can be tried."""
    match = _PROPORTIONAL.fullmatch(name)
    if match is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return proportional(match["parameter"], float(f"{match['whole']}.{match['fraction']}"))


# --- load (api-gateway's outbound: the mesh path of a load run, never its baseline) -----------------------
# Envoy's fault-injection filter first in the caller's outbound HTTP filters.

HTTP_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"


def _with_fault(workload: str, config: Config, **fault: Any) -> Config:
    if workload != scenario.API_GATEWAY:
        return config
    for listener in resources(config, "Listener"):
        if listener["name"] == "outbound":
            for chain in listener["filter_chains"]:
                for network_filter in chain["filters"]:
                    network_filter["typed_config"]["http_filters"].insert(
                        0, {"name": "envoy.filters.http.fault", "typed_config": {"@type": HTTP_FAULT, **fault}})
    return config


def _every(share: int = 100) -> dict[str, Any]:
    return {"numerator": share, "denominator": "HUNDRED"}


def outbound_delay_20ms(workload: str, config: Config) -> Config:
    """Every request through the caller's proxy waits 20 ms: an overhead far beyond any sane SLO."""
    return _with_fault(workload, config, delay={"fixed_delay": "0.020s", "percentage": _every()})


def outbound_overloaded(workload: str, config: Config) -> Config:
    """Every request through the caller's proxy takes 200 ms: 16 connections carry at most 80 req/s."""
    return _with_fault(workload, config, delay={"fixed_delay": "0.200s", "percentage": _every()})


def outbound_aborts_some(workload: str, config: Config) -> Config:
    """The caller's proxy answers 5% of requests itself with 503."""
    return _with_fault(workload, config, abort={"http_status": 503, "percentage": _every(5)})
