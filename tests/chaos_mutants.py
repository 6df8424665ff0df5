"""Mesh releases that break what the chaos checks rely on: their mutants (tests/test_mutation.py, `chaos`).

Apart from tests/mutants.py (the other capabilities' mutants) so each file stays about one thing. Each
breaks one promise an experiment's verdict rests on, through the local mesh's --envoy-config-hook.
"""

from __future__ import annotations

from typing import Any

from tests.mutants import _dicts

Config = dict[str, Any]
FAULT_FILTER = "envoy.filters.http.fault"


def resilience_ignored(workload: str, config: Config) -> Config:
    """Routes lose their retry policy and clusters their outlier detection, whatever the intents say; the route
    timeout stays, so only the resilience is gone."""
    for node in _dicts(config):
        node.pop("retry_policy", None)
        node.pop("outlier_detection", None)
    return config


def retries_forced(workload: str, config: Config) -> Config:
    """Every outbound route retries 3 times on 5xx, reset and connect-failure at another host, whatever the
    intents say: a dead endpoint costs nothing even when the intents ask for no resilience."""
    policy = {"retry_on": "5xx,reset,connect-failure", "num_retries": 3,
              "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                        "typed_config": {"@type": "type.googleapis.com/envoy.extensions."
                                                         "retry.host.previous_hosts.v3.PreviousHostsPredicate"}}]}
    for node in _dicts(config):
        if ("cluster" in node or "weighted_clusters" in node) and "timeout" in node:  # a route action
            node["retry_policy"] = policy
    return config


def connect_fails_fast_unretried(workload: str, config: Config) -> Config:
    """Clusters give up connecting after 50 ms and routes do not retry: a blackholed endpoint's requests end in
    a connect failure (503) instead of waiting for the route timeout."""
    for node in _dicts(config):
        node.pop("retry_policy", None)
        if "connect_timeout" in node:
            node["connect_timeout"] = "0.050s"
    return config


def _faults(config: Config) -> list[dict[str, Any]]:
    """Each route's fault filter config (HTTPFault, in its typed_per_filter_config)."""
    return [node[FAULT_FILTER] for node in _dicts(config) if isinstance(node.get(FAULT_FILTER), dict)
            and str(node[FAULT_FILTER].get("@type", "")).endswith("HTTPFault")]


def abort_doubled(workload: str, config: Config) -> Config:
    """The proxy aborts twice the share of requests the fault asks for."""
    for fault in _faults(config):
        abort = fault.get("abort")
        if abort:
            abort["percentage"]["numerator"] *= 2
    return config


def delay_halved(workload: str, config: Config) -> Config:
    """The proxy delays requests for half the time the fault asks for."""
    for fault in _faults(config):
        delay = fault.get("delay")
        if delay:
            delay["fixed_delay"] = f"{float(delay['fixed_delay'].rstrip('s')) / 2:.3f}s"
    return config


def split_ignored(workload: str, config: Config) -> Config:
    """A weighted route sends everything to its first (stable) version: a canary never gets a request."""
    for node in _dicts(config):
        weighted = node.get("weighted_clusters")
        if weighted:
            node["cluster"] = weighted["clusters"][0]["name"]
            del node["weighted_clusters"]
    return config
