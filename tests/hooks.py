"""Hooks for meshproof's own tests of the harness (mutants of the mesh live in tests/mutants.py)."""

from __future__ import annotations

import time
from typing import Any

from meshproof import scenario

_calls = 0


def unknown_listener_field(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """A typo an extension author could make: Envoy must reject the listeners, meshproof must say so."""
    for resource in config.get("resources", []):
        if resource.get("@type", "").endswith("Listener"):
            resource["bogus_field"] = 1
    return config


def broken_bootstrap(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """One sidecar's bootstrap is invalid: its Envoy exits at start, after others have started."""
    if workload == "api-gateway" and "admin" in config:
        config["admin"]["address"]["socket_address"]["port_value"] = "not-a-port"
    return config


# Starting the mesh calls a hook once per sidecar for the bootstrap and for each of the four xDS kinds.
CALLS_AT_STARTUP = sum(workload.replicas for workload in scenario.WORKLOADS) * 5


def stall_after_startup(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """Lets the mesh start, then hangs the first reconfiguration, so a run can be interrupted mid-check."""
    global _calls
    _calls += 1
    if _calls > CALLS_AT_STARTUP:
        time.sleep(600)
    return config


def raises(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("this hook is broken")


def tag_inbound_responses(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """Adds a response header naming the workload on every inbound route: proof the hook ran on xDS."""
    for resource in config.get("resources", []):
        if resource.get("name") == "inbound" and "virtual_hosts" in resource:
            for host in resource["virtual_hosts"]:
                host["response_headers_to_add"] = [{"header": {"key": "x-hooked-by", "value": workload}}]
    return config


_manifest_calls = 0


def stall_manifests_after_startup(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--manifest-hook: lets the local Istio mesh start (its baseline is the first apply), then hangs the
    next one (the first check's reset), so a run on real Istio can be interrupted mid-check."""
    global _manifest_calls
    _manifest_calls += 1
    if _manifest_calls > 1:
        time.sleep(600)
    return manifests


def drop_every_manifest(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--manifest-hook returning no objects: what the intents rendered is deleted, nothing is applied."""
    return []


def unparsable_rate_limit(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """--manifest-hook: the rate limit's bucket size becomes a word. istiod passes the filter's TypedStruct
    through untouched; Envoy cannot parse it and refuses the listeners."""
    for manifest in manifests:
        if manifest["kind"] == "EnvoyFilter":
            for patch in manifest["spec"]["configPatches"]:
                patch["patch"]["value"]["typed_config"]["value"]["token_bucket"]["max_tokens"] = "lots"
    return manifests


def out_of_range_integer(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    """A value Envoy cannot even parse into its proto (a retry count beyond uint32): not a rejection by
    validation but a failure to load the file, which Envoy only logs. Only in retry policies with a per-try
    timeout (a check's, not the mesh's default), so the mesh starts and a check's apply() meets it."""
    for resource in config.get("resources", []):
        for host in resource.get("virtual_hosts", []):
            for route in host["routes"]:
                if "per_try_timeout" in route.get("route", {}).get("retry_policy", {}):
                    route["route"]["retry_policy"]["num_retries"] = 2**32
    return config
