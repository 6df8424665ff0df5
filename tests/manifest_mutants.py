"""Manifest mutants: --manifest-hook functions that break the Istio config meshproof renders, the way a
wrong manifest would. tests/test_mutation_istio.py runs each against real istiod and Envoy and asserts
that the check guarding the property goes red: the checks judge Istio itself, not meshproof's render.
"""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]


def _of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def weights_88_12(manifests: list[Manifest]) -> list[Manifest]:
    """A 2-point shift: every 90/10 split of a VirtualService is written 88/12."""
    for service in _of_kind(manifests, "VirtualService"):
        for http in service["spec"]["http"]:
            weights = [destination.get("weight") for destination in http["route"]]
            if sorted(weights, key=str) == [10, 90]:
                for destination in http["route"]:
                    destination["weight"] = {90: 88, 10: 12}[destination["weight"]]
    return manifests


def principal_misspelled(manifests: list[Manifest]) -> list[Manifest]:
    """Every principal of every AuthorizationPolicy loses its last letter (api-gateway -> api-gatewa)."""
    for policy in _of_kind(manifests, "AuthorizationPolicy"):
        for rule in policy["spec"].get("rules", []):
            for source in rule.get("from", []):
                principals = source["source"].get("principals", [])
                source["source"]["principals"] = [principal[:-1] for principal in principals]
    return manifests


def fewer_retries(manifests: list[Manifest]) -> list[Manifest]:
    """Every route retries once less than it says (3 -> 2)."""
    for service in _of_kind(manifests, "VirtualService"):
        for http in service["spec"]["http"]:
            retries = http.get("retries")
            if retries and retries.get("attempts", 0) > 0:
                retries["attempts"] -= 1
    return manifests
