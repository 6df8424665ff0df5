"""Chaos Toolkit probes: the live error rate and latency of the experiment's load, against the profile's limits,
and the mesh's own view (outlier ejections).

The load probes read the traffic meshproof.chaos.control runs for the whole experiment: the last
`chaos.probe_window` seconds of it, in whole blocks, once every request due in them has finished (a
stalled one can hold a probe up to `chaos.request_timeout`). Each returns its numbers with the limit and
`within_limit`; a steady-state hypothesis judges it with the tolerance probe `within_limit`
(`{"type": "probe", "name": ..., "provider": {"type": "python", "module": "meshproof.chaos.probes",
"func": "within_limit", "arguments": {}}}`), so the limit is the profile's and the journal keeps the numbers.

(No `from __future__ import annotations` here: chaoslib's discovery reads the annotations as types.)
"""

from typing import Any

from chaoslib.exceptions import ActivityFailed

from meshproof.chaos import traffic
from meshproof.chaos.target import attached
from meshproof.profile import ChaosProfile

__all__ = ["error_rate", "latency", "outlier_ejections", "within_limit"]

QUANTILES = {"p50": 0.5, "p99": 0.99}


def _window(profile: ChaosProfile) -> traffic.Window:
    try:
        return traffic.current().window(profile.probe_window)
    except traffic.TrafficError as exc:
        raise ActivityFailed(str(exc)) from None


def error_rate() -> dict[str, Any]:
    """The share of the load's requests that failed (an HTTP status >= 400, a reset, a timeout) over the last
    chaos.probe_window seconds; `within_limit` when it is at most chaos.max_error_rate."""
    with attached() as mesh:
        profile = mesh.profile.chaos
        window = _window(profile)
        rate = window.error_rate
        return {"error_rate": rate, "requests": window.requests, "errors": window.errors,
                "window_s": [round(window.start_s, 3), round(window.end_s, 3)], "limit": profile.max_error_rate,
                "within_limit": rate is not None and rate <= profile.max_error_rate}


def latency(quantile: str = "p99") -> dict[str, Any]:
    """The `quantile` (p50 or p99) of the successful requests' latency over the last chaos.probe_window seconds,
    timed from each request's due time; `within_limit` for a p99 at most chaos.max_p99 (a p50 has no limit)."""
    if quantile not in QUANTILES:
        raise ActivityFailed(f"quantile must be one of {', '.join(QUANTILES)}, got {quantile!r}")
    with attached() as mesh:
        profile = mesh.profile.chaos
        window = _window(profile)
        value = window.latency_us[quantile]
        limit_ms = profile.max_p99 * 1000 if quantile == "p99" else None
        value_ms = None if value is None else round(value / 1000, 3)
        within = value_ms is not None and (limit_ms is None or value_ms <= limit_ms)
        return {f"{quantile}_ms": value_ms, "requests": window.requests, "limit_ms": limit_ms,
                "window_s": [round(window.start_s, 3), round(window.end_s, 3)], "within_limit": within}


def outlier_ejections(caller: str = "api-gateway", service: str = "order-service") -> dict[str, int]:
    """The outlier-detection counters of `caller`'s proxy for `service`, as the proxy itself counts them
    (ejections_active, ejections_enforced_total, ejections_overflow, ...)."""
    with attached() as mesh:
        return mesh.telemetry.outlier_stats(caller, service)


def within_limit(value: Any = None) -> bool:
    """Tolerance probe: True when the probe result `value` (of error_rate or latency) says `within_limit`.
    Chaos Toolkit calls it with the hypothesis probe's output as `value`."""
    return isinstance(value, dict) and value.get("within_limit") is True
