"""conformance.yaml: the run as a Gateway-API-style conformance report, the format mesh vendors publish.

Shaped after kubernetes-sigs/gateway-api's `ConformanceReport` (conformance/apis/v1): implementation,
date, mode, and one profile per capability with a `core` and an `extended` status, each a result
(`success`, `partial` when something was skipped, `failure` when anything failed), statistics and the
failed and skipped tests, and for extended the supported and unsupported features. What meshproof
adds, because its brief asks for reasons: `unsupportedFeatureReasons` (feature -> the mesh's reason)
and `suiteVersion` in place of `gatewayAPIVersion`.

Core and extended: a check that needs nothing beyond its capability is core; one marked with
`requires(feature)` is extended, and that feature is supported when the check ran (passed or failed),
unsupported when the mesh declined it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from meshproof.report.view import PROBLEMS, Record, by_capability, counts, counts_text, status_of

API_VERSION = "meshproof.dev/v1alpha1"
IMPLEMENTATIONS = {  # mesh -> (organization, project, url); the local mesh is Envoy configured by meshproof
    "local": ("envoyproxy", "envoy (meshproof local mesh)", "https://www.envoyproxy.io/"),
    "istio": ("istio", "istio", "https://istio.io/"),
    "linkerd": ("linkerd", "linkerd2", "https://linkerd.io/"),
}


def _reason(record: Record) -> str:
    return (record.get("message") or "").strip() or "no reason given"


def _status(records: Sequence[Record]) -> dict[str, Any]:
    """A Gateway API `Status`: result, statistics, failed and skipped tests (not-supported ones are neither)."""
    ran = [r for r in records if status_of(r) != "not_supported"]
    failed = [r["id"] for r in ran if status_of(r) in PROBLEMS]
    skipped = [r["id"] for r in ran if status_of(r) not in PROBLEMS and status_of(r) != "passed"]
    result = "failure" if failed else "partial" if skipped or not ran else "success"
    status: dict[str, Any] = {"result": result, "statistics": {"Failed": len(failed), "Passed": len(ran) - len(failed)
                                                                - len(skipped), "Skipped": len(skipped)}}
    if failed:
        status["failedTests"] = failed
    if skipped:
        status["skippedTests"] = skipped
    return status


def _extended(record: Record) -> list[str]:
    """The extended features a check exercises ("capability.detail"; the capability itself is its core)."""
    return [feature for feature in record.get("features") or () if "." in feature]


def _profile(capability: str, records: list[Record], declared: Mapping[str, str]) -> dict[str, Any]:
    """`declared`: the run's unsupported features (feature -> the mesh's reason)."""
    core = [r for r in records if not _extended(r)]
    extended = [r for r in records if _extended(r)]
    profile: dict[str, Any] = {"name": capability, "summary": counts_text(counts(records))}
    unsupported_core = [r for r in core if status_of(r) == "not_supported"]
    if core and len(unsupported_core) == len(core):
        profile["summary"] = f"not supported: {_reason(unsupported_core[0])}"
    profile["core"] = _status(core)
    if extended:
        supported: dict[str, None] = {}
        reasons: dict[str, str] = {}
        for record in extended:
            for feature in _extended(record):
                if feature in declared:
                    reasons.setdefault(feature, declared[feature])
                elif status_of(record) == "not_supported" and not any(f in declared for f in _extended(record)):
                    reasons.setdefault(feature, _reason(record))
                else:
                    supported[feature] = None
        details = _status(extended)
        details["supportedFeatures"] = sorted(feature for feature in supported if feature not in reasons)
        if reasons:
            details["unsupportedFeatures"] = sorted(reasons)
            details["unsupportedFeatureReasons"] = dict(sorted(reasons.items()))
        profile["extended"] = details
    return profile


def conformance_report(results: Mapping[str, Any]) -> dict[str, Any]:
    run = results["run"]
    organization, project, url = IMPLEMENTATIONS.get(run["mesh"], (run["mesh"], run["mesh"], ""))
    version = str(run.get("mesh_version") or "unknown")
    return {
        "apiVersion": API_VERSION,
        "kind": "ConformanceReport",
        "implementation": {"organization": organization, "project": project, "url": url,
                           "version": version.split()[-1], "contact": []},
        "date": run.get("started"),
        "suiteVersion": run.get("meshproof_version"),
        "mode": run.get("profile", "default"),
        "profiles": [_profile(capability, records, run.get("unsupported_features") or {})
                     for capability, records in by_capability(results).items()],
    }


def render_conformance(results: Mapping[str, Any]) -> str:
    header = ("# meshproof conformance report, shaped after Gateway API's ConformanceReport; rendered from "
              "results.json\n")
    return header + yaml.safe_dump(conformance_report(results), sort_keys=False, allow_unicode=True)
