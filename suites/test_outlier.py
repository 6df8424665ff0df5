"""outlier: callers eject an endpoint after exactly N consecutive errors, for a measured time, and never
more endpoints than maxEjectionPercent allows.

Reference: the seed's DestinationRule `outlierDetection: {consecutive5xxErrors: 5, interval: 10s,
baseEjectionTime: 30s, maxEjectionPercent: 50}` and the circuit-breaker variant's
`consecutiveGatewayErrors: 5` (scaled by the profile). Traffic goes to the whole service (three
endpoints, no subsets) with retries off, so every error is seen; one endpoint fails on demand and the
per-endpoint timeline of a batch sent from api-gateway, one request at a time, shows what happened.
Counts are exact; the ejection's duration is judged in a window: an endpoint returns on the detector's
first sweep after baseEjectionTime, so between base and base + interval (Envoy's
checkHostForUneject), plus the wait for the balancer to pick it again and the measured noise.

The balancer is the mesh's default, which the intents do not fix: round robin (the local mesh) sends
an endpoint every m-th request, Istio's LEAST_REQUEST picks at random among endpoints with nothing in
flight. So batches are sized for the worse one: big enough that the failing endpoint gets what the
check needs with probability >= 1 - outlier.batch_alpha (1e-4) when each request picks it with
probability 1/m (meshproof.stats.trials_for_hits), and the wait for its next request is bounded the same way.
"""

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, FaultInjection, Request, Tally, Telemetry, TraceRow
from meshproof.checks import Check
from meshproof.faults import AppError
from meshproof.intent import OutlierPolicy, Retry, Route, RouteRule
from meshproof.profile import Profile
from meshproof.stats import draws_until_hit, trials_for_hits
from meshproof.timing import measure_noise
from meshproof.workloads.directives import Echo

pytestmark = pytest.mark.capability("outlier")

CALLER = scenario.API_GATEWAY
NO_RETRIES = Route(scenario.ORDER_SERVICE, (RouteRule(retries=Retry(0)),))


def _apply(mesh: Backend, policy: OutlierPolicy) -> list[str]:
    mesh.apply([*scenario.BASELINE, NO_RETRIES, policy])
    return mesh.instances(scenario.ORDER_SERVICE)


def _sequential(mesh: Backend, echo: Echo, count: int, rate: float = 0.0) -> Tally:
    request = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1", headers=echo.headers())
    return mesh.call_batch(CALLER, request, count=count, rate=rate, concurrency=1, capture=())


def _served_by(trace: Sequence[TraceRow], instance: str) -> list[TraceRow]:
    return [row for row in trace if row.instance == instance]


def _timed_runs(trace: Sequence[TraceRow], instances: Sequence[str]) -> dict[str, list[list[Any]]]:
    """Per endpoint, its outcomes in order as runs [first_s, last_s, outcome, count] (s since the batch began):
    the report draws the ejection timeline from them, a gap being time without traffic."""
    timed: dict[str, list[list[Any]]] = {}
    for instance in instances:
        runs: list[list[Any]] = []
        for row in _served_by(trace, instance):
            if runs and runs[-1][2] == row.outcome:
                runs[-1][1] = round(row.sent_at, 4)
                runs[-1][3] += 1
            else:
                runs.append([round(row.sent_at, 4), round(row.sent_at, 4), row.outcome, 1])
        timed[instance] = runs
    return timed


def _record(check: Check, mesh: Backend, phase: str, tally: Tally, instances: Sequence[str]) -> None:
    """The phase's per-endpoint timeline, compressed for reading ('500x5 200x12') and timed for plotting."""
    timed = _timed_runs(tally.trace, instances)
    readable = {instance: " ".join(f"{outcome}x{n}" for _, _, outcome, n in runs) or "(no requests)"
                for instance, runs in timed.items()}
    evidence = {"phase": phase, "requests": tally.sent, "elapsed_s": round(tally.elapsed, 4),
                "timeline": readable, "timeline_s": timed}
    if isinstance(mesh, Telemetry):  # the caller proxy's own counters, where the mesh exposes them
        evidence["proxy_outlier_stats"] = mesh.outlier_stats(CALLER, scenario.ORDER_SERVICE)
    check.evidence(evidence)


def _batch(profile: Profile, instances: Sequence[str], needed: int, endpoints: int = 1) -> int:
    """Requests that give each of `endpoints` endpoints `needed` of them whatever the balancer (see above)."""
    return trials_for_hits(needed, 1 / len(instances), profile.outlier.batch_alpha / endpoints)


def _errors_before_silence(rows: Sequence[TraceRow], status: int) -> tuple[int, int]:
    """(errors the endpoint returned, requests it got after its last error)."""
    errors = [index for index, row in enumerate(rows) if row.outcome == status]
    return len(errors), (len(rows) - errors[-1] - 1) if errors else len(rows)


def _consecutive_5xx_only(mesh: Backend, profile: Profile) -> tuple[OutlierPolicy, int, list[str]]:
    """The profile's policy with only the 5xx detector on (so HTTP 500s count), applied."""
    policy = profile.outlier.policy(scenario.ORDER_SERVICE, consecutive_gateway_errors=None)
    assert policy.consecutive_5xx is not None
    return policy, policy.consecutive_5xx, _apply(mesh, policy)


def test_an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An endpoint failing N-1 times in a row stays in; failing N times in a row, it is ejected at once."""
    _, threshold, instances = _consecutive_5xx_only(mesh, profile)
    failing = instances[0]
    check.criterion(f"consecutive5xxErrors={threshold}, HTTP 500 from {failing} only, requests one at a time: after "
                    f"{threshold - 1} errors it keeps getting traffic; after {threshold} errors it gets none for the "
                    "rest of the batch (well inside baseEjectionTime); exact counts")
    below = _sequential(mesh, Echo(key=uuid.uuid4().hex, status=500, first=threshold - 1, only_instance=failing),
                        count=_batch(profile, instances, 2 * threshold - 1))
    _record(check, mesh, f"{threshold - 1} errors", below, instances)
    rows = _served_by(below.trace, failing)
    errors, after = _errors_before_silence(rows, 500)
    check.measure("errors_then_requests_below_threshold", [errors, after], "requests")
    check.expect(errors == threshold - 1 and after >= threshold,
                 f"outlier threshold: after {errors} consecutive errors (one fewer than {threshold}) {failing} got "
                 f"only {after} more requests; it must stay in the pool")
    at = _sequential(mesh, Echo(status=500, only_instance=failing),
                     count=_batch(profile, instances, threshold + 1))
    _record(check, mesh, f"{threshold} errors", at, instances)
    errors, after = _errors_before_silence(_served_by(at.trace, failing), 500)
    check.measure("errors_before_ejection", errors, "errors", expected=threshold)
    check.expect(errors == threshold and after == 0,
                 f"outlier threshold: {failing} returned {errors} consecutive errors and then got {after} more "
                 f"requests; expected exactly {threshold} errors, then none (ejected)")


def test_an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An ejected endpoint receives no traffic for baseEjectionTime (within the stated window), then again."""
    settings = profile.outlier
    policy = settings.policy(scenario.ORDER_SERVICE)
    threshold = policy.consecutive_5xx
    assert threshold is not None
    instances = _apply(mesh, policy)
    failing = instances[0]
    noise = measure_noise(mesh, check, CALLER, Request(scenario.ORDER_SERVICE, "/"), profile.timing)
    # until the balancer picks the returned endpoint again, at random (one cycle in round robin)
    spacing = draws_until_hit(1 / len(instances), settings.batch_alpha) / settings.probe_rate
    window = noise.window(settings.base_ejection_time, profile.timing, extra_late=settings.interval + spacing)
    check.criterion(f"{failing} fails its first {threshold} requests, then recovers; probes at "
                    f"{settings.probe_rate:g}/s: the time from its last error to its next request is in "
                    f"{window.describe()} = baseEjectionTime {settings.base_ejection_time:g}s, + up to one sweep "
                    f"interval {settings.interval:g}s + {spacing * 1000:.0f} ms until the balancer picks it again "
                    "(p >= 1 - 1e-4 at random, one cycle in round robin), +/- the measured noise bounds")
    duration = settings.base_ejection_time + settings.interval + 1.0
    tally = _sequential(mesh, Echo(key=uuid.uuid4().hex, status=500, first=threshold, only_instance=failing),
                        count=round(duration * settings.probe_rate), rate=settings.probe_rate)
    _record(check, mesh, "ejection", tally, instances)
    rows = _served_by(tally.trace, failing)
    errors = [row for row in rows if row.outcome == 500]
    back = [row for row in rows if row.outcome == 200]
    check.expect(len(errors) == threshold and bool(back),
                 f"outlier ejection time: {failing} returned {len(errors)} errors and then "
                 f"{'served again' if back else 'never served again'} within {duration:g}s; expected {threshold} "
                 "errors, then traffic again")
    ejected_for = back[0].sent_at - (errors[-1].sent_at + errors[-1].latency)
    check.measure("ejected_for", round(ejected_for, 4), "s", window_s=[round(window.low, 4), round(window.high, 4)])
    check.expect(window.contains(ejected_for),
                 f"outlier ejection time: {failing} was out of the pool for {ejected_for * 1000:.0f} ms, outside "
                 f"{window.describe()}")


@pytest.mark.requires(features.OUTLIER_MAX_EJECTION_PERCENT, features.FAULT_APP_ERROR)
def test_no_more_endpoints_than_max_ejection_percent_are_ejected(
    mesh: Backend, faults: FaultInjection, check: Check, profile: Profile
) -> None:
    """With more failing endpoints than maxEjectionPercent allows, only the allowed number is ejected."""
    policy, threshold, instances = _consecutive_5xx_only(mesh, profile)
    allowed = len(instances) * policy.max_ejection_percent // 100  # an ejection may not exceed the percentage
    if allowed + 1 > len(instances):
        pytest.skip(f"maxEjectionPercent {policy.max_ejection_percent} allows ejecting all {len(instances)} endpoints")
    failing = instances[: allowed + 1]
    settle = profile.outlier.settle
    check.criterion(f"{len(instances)} endpoints, maxEjectionPercent={policy.max_ejection_percent}: at most "
                    f"{allowed} may be ejected; {len(failing)} answer every request with 500; once each has failed "
                    f"{threshold} times and {settle:g}s have passed (outlier.settle: Envoy merges later host-health "
                    f"updates into 1 s windows), exactly {allowed} of them get no more traffic")
    for instance in failing:
        faults.inject(AppError(500), instance)
    rounds = _sequential(mesh, Echo(), count=_batch(profile, instances, threshold, endpoints=len(failing)))
    _record(check, mesh, "every failing endpoint past the threshold", rounds, instances)
    time.sleep(settle)  # the mesh may batch the second ejection (profile: outlier.settle), judged after it
    tail = _sequential(mesh, Echo(), count=_batch(profile, instances, 1, endpoints=len(failing)))
    _record(check, mesh, f"{settle:.2f}s later", tail, instances)
    still_served = {row.instance for row in tail.trace}
    ejected = [instance for instance in failing if instance not in still_served]
    check.measure("ejected", len(ejected), "endpoints", allowed=allowed, which=ejected)
    check.expect(len(ejected) == allowed,
                 f"maxEjectionPercent: {len(ejected)} of {len(instances)} endpoints were ejected ({ejected}); "
                 f"{policy.max_ejection_percent}% allows exactly {allowed}")


@pytest.mark.requires(features.OUTLIER_GATEWAY_ERRORS)
def test_consecutive_gateway_errors_eject_on_503_but_not_on_500(mesh: Backend, check: Check, profile: Profile) -> None:
    """consecutiveGatewayErrors counts only 502/503/504: repeated 500s do not eject, N 503s do."""
    threshold = profile.outlier.consecutive_gateway_errors
    policy = profile.outlier.policy(scenario.ORDER_SERVICE, consecutive_5xx=None)
    instances = _apply(mesh, policy)
    failing = instances[0]
    check.criterion(f"consecutiveGatewayErrors={threshold}, consecutive5xxErrors off: {failing} answering 500 "
                    f"{threshold + 5} times in a row keeps getting traffic; answering 503, it is ejected after exactly "
                    f"{threshold}")
    echo = Echo(status=500, only_instance=failing, key=uuid.uuid4().hex, first=threshold + 5)
    five_hundreds = _sequential(mesh, echo, count=_batch(profile, instances, threshold + 6))
    _record(check, mesh, "500s", five_hundreds, instances)
    errors, after = _errors_before_silence(_served_by(five_hundreds.trace, failing), 500)
    check.expect(errors == threshold + 5 and after > 0,
                 f"outlier gateway errors: {failing} was ejected by {errors} HTTP 500s (got {after} requests after); "
                 "500 is not a gateway error")
    gateway = _sequential(mesh, Echo(status=503, only_instance=failing),
                          count=_batch(profile, instances, threshold + 1))
    _record(check, mesh, "503s", gateway, instances)
    errors, after = _errors_before_silence(_served_by(gateway.trace, failing), 503)
    check.measure("gateway_errors_before_ejection", errors, "errors", expected=threshold)
    check.expect(errors == threshold and after == 0,
                 f"outlier gateway errors: {failing} returned {errors} consecutive 503s, then got {after} more "
                 f"requests; expected exactly {threshold}, then none")
