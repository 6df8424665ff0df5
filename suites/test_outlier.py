"""outlier: callers eject an endpoint after exactly N consecutive errors, for the base ejection time, and
never more endpoints than maxEjectionPercent allows.

Reference: the seed's DestinationRule `outlierDetection: {consecutive5xxErrors: 5, interval: 10s,
baseEjectionTime: 30s, maxEjectionPercent: 50}` and the circuit-breaker variant's
`consecutiveGatewayErrors: 5` (scaled by the profile). Traffic goes to the whole service (four
endpoints, no subsets) with retries off, so every error is seen; one endpoint fails on demand and the
per-endpoint timeline of a batch sent from api-gateway, one request at a time, shows what happened.
The load balancer (Istio's LEAST_REQUEST) picks an endpoint at random for each request, so each phase's
size is planned for the endpoint it is about to get enough requests with probability 1 - outlier.shortfall;
requests that await an ejection are spaced (outlier.probe_rate) so the caller's proxy has acted on it
before the next one leaves. Counts are exact, and where the mesh exposes the caller proxy's ejection
counter, it must count exactly the ejections the timeline shows. The ejection's duration is timed on a
route to one endpoint, so its return is seen on the next probe, within base .. base + one sweep interval
(Envoy's checkHostForUneject) + one probe spacing, +/- the stated timing tolerance.
"""

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, FaultInjection, Request, Tally, Telemetry, TraceRow
from meshproof.checks import Check, CheckInvalid
from meshproof.faults import AppError
from meshproof.intent import OutlierPolicy, Retry, Route, RouteRule
from meshproof.profile import OutlierProfile, Profile
from meshproof.stats import requests_to_reach
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


def _errors_before_silence(rows: Sequence[TraceRow], status: int) -> tuple[int, int]:
    """(errors the endpoint returned, requests it got after its last error)."""
    errors = [index for index, row in enumerate(rows) if row.outcome == status]
    return len(errors), (len(rows) - errors[-1] - 1) if errors else len(rows)


def _reaching(settings: OutlierProfile, requests: int, endpoints: int, share_of: int = 1) -> int:
    """Requests for a phase in which one of `endpoints` must get `requests` of them (one of `share_of` such
    endpoints at once), short with probability <= outlier.shortfall."""
    return requests_to_reach(requests, 1 / endpoints, settings.shortfall / share_of)


def _ejections(mesh: Backend) -> int | None:
    """The caller proxy's own count of enforced ejections, where the mesh exposes it."""
    return mesh.ejections_enforced(CALLER, scenario.ORDER_SERVICE) if isinstance(mesh, Telemetry) else None


def _expect_counted(check: Check, mesh: Backend, before: int | None, expected: int, phase: str) -> None:
    """The proxy's counter, judged against the timeline: it rose by exactly the ejections the traffic shows."""
    if before is None:
        return
    counted = (_ejections(mesh) or 0) - before
    check.measure(f"proxy_ejections_{phase.replace(' ', '_')}", counted, "ejections", expected=expected)
    check.expect(counted == expected, f"outlier counters: the caller's proxy counted {counted} ejections {phase}, "
                                      f"where the traffic timeline shows {expected}")


def _consecutive_5xx_only(mesh: Backend, profile: Profile) -> tuple[OutlierPolicy, int, list[str]]:
    """The profile's policy with only the 5xx detector on (so HTTP 500s count), applied."""
    policy = profile.outlier.policy(scenario.ORDER_SERVICE, consecutive_gateway_errors=None)
    assert policy.consecutive_5xx is not None
    return policy, policy.consecutive_5xx, _apply(mesh, policy)


def test_an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An endpoint failing N-1 times in a row stays in; failing N times in a row, it is ejected at once."""
    settings = profile.outlier
    _, threshold, instances = _consecutive_5xx_only(mesh, profile)
    failing = instances[0]
    below_n = _reaching(settings, 2 * threshold - 1, len(instances))
    at_n = _reaching(settings, threshold + 1, len(instances))
    check.criterion(f"consecutive5xxErrors={threshold}, HTTP 500 from {failing} only, requests one at a time: after "
                    f"{threshold - 1} errors it keeps getting traffic ({below_n} requests); after {threshold} errors "
                    f"it gets none for the rest of a batch of {at_n} spaced at {settings.probe_rate:g}/s (well inside "
                    "baseEjectionTime); exact counts, and the caller proxy's ejection counter rises by 0, then by 1")
    before = _ejections(mesh)
    below = _sequential(mesh, Echo(key=uuid.uuid4().hex, status=500, first=threshold - 1, only_instance=failing),
                        count=below_n)
    _record(check, mesh, f"{threshold - 1} errors", below, instances)
    rows = _served_by(below.trace, failing)
    errors, after = _errors_before_silence(rows, 500)
    check.measure("errors_then_requests_below_threshold", [errors, after], "requests")
    check.expect(errors == threshold - 1 and after >= threshold,
                 f"outlier threshold: after {errors} consecutive errors (one fewer than {threshold}) {failing} got "
                 f"only {after} more requests; it must stay in the pool")
    _expect_counted(check, mesh, before, 0, f"below the threshold of {threshold}")
    before = _ejections(mesh)
    at = _sequential(mesh, Echo(status=500, only_instance=failing), count=at_n, rate=settings.probe_rate)
    _record(check, mesh, f"{threshold} errors", at, instances)
    errors, after = _errors_before_silence(_served_by(at.trace, failing), 500)
    check.measure("errors_before_ejection", errors, "errors", expected=threshold)
    check.expect(errors == threshold and after == 0,
                 f"outlier threshold: {failing} returned {errors} consecutive errors and then got {after} more "
                 f"requests; expected exactly {threshold} errors, then none (ejected)")
    _expect_counted(check, mesh, before, 1, f"at the threshold of {threshold}")


def test_an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An ejected endpoint receives no traffic for baseEjectionTime (within the stated window), then again."""
    settings = profile.outlier
    base = settings.base_ejection_time
    # The sweep interval of this check: an endpoint returns on the first sweep after base, so a long interval
    # would widen the window beyond a 20% change of base; a twentieth of base keeps it tight.
    sweep = min(settings.interval, profile.timing.share * base)
    # One endpoint behind the route, and leave to eject it: its return shows on the very next probe.
    policy = settings.policy(scenario.ORDER_SERVICE, consecutive_gateway_errors=None, max_ejection_percent=100,
                             interval=sweep)
    threshold = policy.consecutive_5xx
    assert threshold is not None
    route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, retries=Retry(0)),))
    mesh.apply([*scenario.BASELINE, route, policy])
    (failing,) = mesh.instances(scenario.ORDER_SERVICE, version="v2")
    spacing = 1 / settings.probe_rate
    tolerance_ms = profile.timing.tolerance(base) * 1000
    check.criterion(f"route to {failing} alone, maxEjectionPercent 100, sweep interval {sweep:g}s; it fails its first "
                    f"{threshold} requests, then recovers; probes one at a time at {settings.probe_rate:g}/s: the time "
                    f"from its last error to its next answer is baseEjectionTime {base:g}s - {tolerance_ms:.0f} ms .. "
                    f"+ one sweep ({sweep * 1000:.0f} ms) + one probe spacing ({spacing * 1000:.0f} ms) + "
                    f"{tolerance_ms:.0f} ms (timing.floor + timing.share x base); meanwhile the probes are refused by "
                    "the caller's proxy (evidence the endpoint was out, not idle)")
    noise = measure_noise(mesh, check, CALLER, Request(scenario.ORDER_SERVICE, "/"), profile.timing)
    before = _ejections(mesh)
    duration = base + sweep + 1.0
    tally = _sequential(mesh, Echo(key=uuid.uuid4().hex, status=500, first=threshold, only_instance=failing),
                        count=round(duration * settings.probe_rate), rate=settings.probe_rate)
    _record(check, mesh, "ejection", tally, [failing])
    rows = _served_by(tally.trace, failing)
    errors = [row for row in rows if row.outcome == 500]
    back = [row for row in rows if row.outcome == 200]
    check.expect(len(errors) == threshold and bool(back),
                 f"outlier ejection time: {failing} returned {len(errors)} errors and then "
                 f"{'served again' if back else 'never served again'} within {duration:g}s; expected {threshold} "
                 "errors, then traffic again")
    out = [row for row in tally.trace if errors[-1].sent_at < row.sent_at < back[0].sent_at]
    check.measure("refused_while_ejected", len(out), "requests")
    check.expect(bool(out) and all(row.instance is None for row in out),
                 f"outlier ejection time: while {failing} was out, {len(out)} probes went out and "
                 f"{sum(row.instance is not None for row in out)} were answered by an endpoint; expected them all "
                 "refused by the caller's proxy")
    ejected_for = back[0].sent_at - (errors[-1].sent_at + errors[-1].latency)
    window = noise.window(check, base, profile.timing, extra_late=sweep + spacing)
    check.measure("ejected_for", round(ejected_for, 4), "s", window_s=[round(window.low, 4), round(window.high, 4)])
    check.expect(window.contains(ejected_for),
                 f"outlier ejection time: {failing} was out of the pool for {ejected_for * 1000:.0f} ms, outside "
                 f"{window.describe()}")
    _expect_counted(check, mesh, before, 1, "while timing one ejection")


@pytest.mark.requires(features.OUTLIER_MAX_EJECTION_PERCENT, features.FAULT_APP_ERROR)
def test_no_more_endpoints_than_max_ejection_percent_are_ejected(
    mesh: Backend, faults: FaultInjection, check: Check, profile: Profile
) -> None:
    """With more failing endpoints than maxEjectionPercent allows, only the allowed number is ejected."""
    settings = profile.outlier
    policy, threshold, instances = _consecutive_5xx_only(mesh, profile)
    allowed = len(instances) * policy.max_ejection_percent // 100  # an ejection may not exceed the percentage
    if allowed + 1 > len(instances):
        pytest.skip(f"maxEjectionPercent {policy.max_ejection_percent} allows ejecting all {len(instances)} endpoints")
    failing = instances[: allowed + 1]
    settle = settings.settle
    rounds_n = _reaching(settings, threshold, len(instances), share_of=len(failing))
    tail_n = _reaching(settings, 1, len(instances), share_of=len(instances))
    check.criterion(f"{len(instances)} endpoints, maxEjectionPercent={policy.max_ejection_percent}: at most "
                    f"{allowed} may be ejected; {len(failing)} answer every request with 500; once each has failed "
                    f"{threshold} times ({rounds_n} requests) and {settle:g}s have passed (outlier.settle: Envoy "
                    f"merges later host-health updates into 1 s windows), exactly {allowed} of them get none of "
                    f"{tail_n} more requests and the others do; the caller proxy's ejection counter rises by exactly "
                    f"{allowed}")
    for instance in failing:
        faults.inject(AppError(500), instance)
    before = _ejections(mesh)
    rounds = _sequential(mesh, Echo(), count=rounds_n)
    _record(check, mesh, "every failing endpoint past the threshold", rounds, instances)
    time.sleep(settle)  # the mesh may batch the second ejection (profile: outlier.settle), judged after it
    tail = _sequential(mesh, Echo(), count=tail_n)
    _record(check, mesh, f"{settle:.2f}s later", tail, instances)
    took = tail.started_at + tail.elapsed - rounds.started_at
    check.measure("phases_took", round(took, 3), "s", limit=settings.base_ejection_time)
    if took >= settings.base_ejection_time:
        raise CheckInvalid(f"inconclusive: the phases took {took:.2f}s, not under baseEjectionTime "
                           f"{settings.base_ejection_time:g}s, so the first ejections may have ended before the count")
    still_served = {row.instance for row in tail.trace}
    ejected = [instance for instance in failing if instance not in still_served]
    check.measure("ejected", len(ejected), "endpoints", allowed=allowed, which=ejected)
    check.expect(len(ejected) == allowed,
                 f"maxEjectionPercent: {len(ejected)} of {len(instances)} endpoints were ejected ({ejected}); "
                 f"{policy.max_ejection_percent}% allows exactly {allowed}")
    _expect_counted(check, mesh, before, allowed, f"with {len(failing)} failing endpoints")


@pytest.mark.requires(features.OUTLIER_GATEWAY_ERRORS)
def test_consecutive_gateway_errors_eject_on_503_but_not_on_500(mesh: Backend, check: Check, profile: Profile) -> None:
    """consecutiveGatewayErrors counts only 502/503/504: repeated 500s do not eject, N 503s do."""
    settings = profile.outlier
    threshold = settings.consecutive_gateway_errors
    policy = settings.policy(scenario.ORDER_SERVICE, consecutive_5xx=None)
    instances = _apply(mesh, policy)
    failing = instances[0]
    five_hundreds_n = _reaching(settings, threshold + 6, len(instances))
    gateway_n = _reaching(settings, threshold + 1, len(instances))
    check.criterion(f"consecutiveGatewayErrors={threshold}, consecutive5xxErrors off: {failing} answering 500 "
                    f"{threshold + 5} times in a row keeps getting traffic; answering 503, it is ejected after exactly "
                    f"{threshold} (requests spaced at {settings.probe_rate:g}/s); the caller proxy's ejection counter "
                    "rises by 0, then by 1")
    before = _ejections(mesh)
    echo = Echo(status=500, only_instance=failing, key=uuid.uuid4().hex, first=threshold + 5)
    five_hundreds = _sequential(mesh, echo, count=five_hundreds_n)
    _record(check, mesh, "500s", five_hundreds, instances)
    errors, after = _errors_before_silence(_served_by(five_hundreds.trace, failing), 500)
    check.measure("errors_then_requests_with_500", [errors, after], "requests")
    check.expect(errors == threshold + 5 and after > 0,
                 f"outlier gateway errors: {failing} was ejected by {errors} HTTP 500s (got {after} requests after); "
                 "500 is not a gateway error")
    _expect_counted(check, mesh, before, 0, "on 500s")
    before = _ejections(mesh)
    gateway = _sequential(mesh, Echo(status=503, only_instance=failing), count=gateway_n, rate=settings.probe_rate)
    _record(check, mesh, "503s", gateway, instances)
    errors, after = _errors_before_silence(_served_by(gateway.trace, failing), 503)
    check.measure("gateway_errors_before_ejection", errors, "errors", expected=threshold)
    check.expect(errors == threshold and after == 0,
                 f"outlier gateway errors: {failing} returned {errors} consecutive 503s, then got {after} more "
                 f"requests; expected exactly {threshold}, then none")
    _expect_counted(check, mesh, before, 1, "on 503s")
