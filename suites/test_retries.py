"""retries: the caller's proxy retries exactly as the route says, counted where the attempts land.

Reference: the seed's VirtualService `retries: {attempts: 3, perTryTimeout: 3s, retryOn:
5xx,reset,connect-failure}` (scaled by the profile). `attempts` counts retries, so an upstream that
never succeeds is tried 1 + attempts times. Attempts are counted by the echo app per request key;
the routes here pin one endpoint (order-service v2, one replica) so that "the first k attempts of
key K fail" is a single counter, except where a second endpoint is the point of the check.
Counts are exact (no tolerance); the per-try timeout's latency window is stated in advance, a floor plus a
small share of the timeout (meshproof.timing), so a per-try timeout 20% off falls outside it.
"""

import threading
import uuid

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, FaultInjection, Request, Response
from meshproof.checks import Check
from meshproof.faults import ProxyCrash
from meshproof.intent import Retry, Route, RouteRule
from meshproof.processes import wait_until
from meshproof.profile import Profile
from meshproof.timing import measure_noise
from meshproof.workloads.directives import Echo

pytestmark = pytest.mark.capability("retries")

CALLER = scenario.API_GATEWAY


def _route(retry: Retry, *, version: str = "v2", timeout: float | None = None) -> Route:
    return Route(scenario.ORDER_SERVICE, (RouteRule(splits={version: 100}, retries=retry, timeout=timeout),))


def _send(mesh: Backend, check: Check, echo: Echo) -> tuple[Response, int]:
    """One request from the caller; returns the response and the attempts the app saw for its key."""
    response = mesh.call(CALLER, Request(scenario.ORDER_SERVICE, "/api/v1/orders/1", headers=echo.headers()))
    per_instance = mesh.attempts(scenario.ORDER_SERVICE, echo.key)
    attempts = sum(per_instance.values())
    check.evidence({"directive": echo.headers(), "response": response.evidence(), "attempts_at_app": per_instance})
    return response, attempts


def _key() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_an_upstream_failing_the_first_k_attempts_succeeds_after_exactly_k_plus_one(
    mesh: Backend, check: Check, profile: Profile, failures: int
) -> None:
    """An upstream failing the first k <= attempts requests: the caller sees success, the app saw k + 1."""
    retry = profile.retries.retry()
    if failures > retry.attempts:
        pytest.skip(f"the profile allows {retry.attempts} retries; k={failures} is beyond them")
    mesh.apply([*scenario.BASELINE, _route(retry)])
    check.criterion(f"with {retry.attempts} retries on 5xx: HTTP 200 for the caller and exactly {failures + 1} "
                    "attempts counted at the app (exact)")
    response, attempts = _send(mesh, check, Echo(key=_key(), status=503, first=failures))
    check.measure("attempts_at_app", attempts, "requests")
    check.expect(response.status == 200,
                 f"retries on 5xx: after {failures} failing attempts the caller got {response.describe()}; "
                 f"expected HTTP 200 (the app saw {attempts} attempts)")
    check.expect(attempts == failures + 1,
                 f"retries on 5xx: the app saw {attempts} attempts; expected exactly {failures + 1}")


def test_an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An upstream that always answers 503: the caller sees 503, the app saw exactly 1 + attempts."""
    retry = profile.retries.retry()
    mesh.apply([*scenario.BASELINE, _route(retry)])
    expected = 1 + retry.attempts
    check.criterion(f"HTTP 503 for the caller and exactly {expected} attempts at the app (exact)")
    response, attempts = _send(mesh, check, Echo(key=_key(), status=503))
    check.measure("attempts_at_app", attempts, "requests")
    check.expect(response.status == 503, f"retries: an always-failing upstream gave the caller {response.describe()}; "
                                         "expected the upstream's 503")
    check.expect(attempts == expected,
                 f"retries: the number of attempts is wrong: the app saw {attempts}; expected exactly {expected} "
                 f"(1 try + {retry.attempts} retries)")


@pytest.mark.parametrize("status", [404, 409])
def test_a_status_not_in_retry_on_is_not_retried(mesh: Backend, check: Check, profile: Profile, status: int) -> None:
    """A status that retryOn does not list (404, 409) is returned at once, not retried."""
    retry = profile.retries.retry()
    mesh.apply([*scenario.BASELINE, _route(retry)])
    check.criterion(f"retryOn={','.join(retry.retry_on)}: HTTP {status} for the caller after exactly 1 attempt")
    response, attempts = _send(mesh, check, Echo(key=_key(), status=status))
    check.measure("attempts_at_app", attempts, "requests")
    check.expect(response.status == status and attempts == 1,
                 f"retryOn is not honoured: HTTP {status} is not in retryOn={','.join(retry.retry_on)} but the caller "
                 f"got {response.describe()} after {attempts} attempts; expected {status} after 1")


def _crash_while_in_flight(mesh: Backend, faults: FaultInjection, check: Check, echo: Echo) -> tuple[Response, str]:
    """Send a slow request; once it is in flight at some instance, crash that instance's proxy."""
    result: list[Response] = []
    request = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1", headers=echo.headers())
    sender = threading.Thread(target=lambda: result.append(mesh.call(CALLER, request)))
    sender.start()
    landed: list[str] = []

    def in_flight() -> bool:
        landed[:] = [name for name, n in mesh.attempts(scenario.ORDER_SERVICE, echo.key).items() if n]
        return bool(landed)

    check.expect(wait_until(in_flight, timeout=echo.delay), "retries on reset: the request never reached an app")
    faults.inject(ProxyCrash(), landed[0])
    sender.join()
    return result[0], landed[0]


@pytest.mark.requires(features.RETRIES_RETRY_ON_RESET, features.FAULT_PROXY_CRASH)
def test_a_reset_is_retried_only_when_reset_is_listed(
    mesh: Backend, faults: FaultInjection, check: Check, profile: Profile
) -> None:
    """A connection reset by the upstream is retried when retryOn lists `reset`, and not otherwise."""
    check.criterion("a request is in flight at one v1 endpoint when that endpoint's proxy crashes (its connection "
                    "is reset); retryOn=connect-failure -> the caller sees the failure after 1 attempt; "
                    "retryOn=reset -> HTTP 200 after exactly 2 attempts (the retry lands on the other endpoint)")
    echo_delay = profile.retries.reset_hold
    for retry_on, retried in ((("connect-failure",), False), (("reset",), True)):
        mesh.reset()
        mesh.apply([*scenario.BASELINE, _route(Retry(3, retry_on=retry_on), version="v1")])
        echo = Echo(key=_key(), delay=echo_delay, first=1)
        response, crashed = _crash_while_in_flight(mesh, faults, check, echo)
        attempts = sum(mesh.attempts(scenario.ORDER_SERVICE, echo.key).values())
        check.evidence({"retry_on": retry_on, "crashed_proxy_of": crashed, "response": response.evidence(),
                        "attempts_at_apps": attempts})
        check.measure(f"attempts_with_{retry_on[0]}", attempts, "requests", status=response.status)
        if retried:
            check.expect(response.status == 200 and attempts == 2,
                         f"retries on reset: with retryOn=reset the caller got {response.describe()} after {attempts} "
                         "attempts; expected HTTP 200 after exactly 2")
        else:
            check.expect(response.status != 200 and attempts == 1,
                         f"retryOn is not honoured: a reset was retried although retryOn={','.join(retry_on)} "
                         f"({response.describe()}, {attempts} attempts); expected a failure after 1 attempt")


@pytest.mark.requires(features.RETRIES_RETRY_ON_CONNECT_FAILURE, features.FAULT_PROXY_CRASH)
def test_a_refused_connection_is_retried_when_connect_failure_is_listed(
    mesh: Backend, faults: FaultInjection, check: Check, profile: Profile
) -> None:
    """With one of two endpoints refusing connections, connect-failure retries hide it from the caller."""
    requests = profile.retries.connect_failure_requests
    check.criterion(f"one v1 endpoint's proxy is down (connections refused); {requests} sequential requests: "
                    "retryOn=retriable-4xx -> some fail (proving the endpoint is picked), "
                    "retryOn=connect-failure -> none fail (exact); the balancer picks one of the two endpoints at "
                    f"random, so it misses the down one in all {requests} of a phase with probability "
                    f"{0.5 ** requests:.1g}")
    down = mesh.instances(scenario.ORDER_SERVICE, version="v1")[0]
    faults.inject(ProxyCrash(), down)
    for retry_on, retried in ((("retriable-4xx",), False), (("connect-failure",), True)):
        mesh.apply([*scenario.BASELINE, _route(Retry(2, retry_on=retry_on), version="v1")])
        tally = mesh.call_batch(CALLER, Request(scenario.ORDER_SERVICE, "/"), count=requests, concurrency=1)
        failed = tally.sent - tally.statuses.get("200", 0)
        check.evidence({"retry_on": retry_on, "down": down, "statuses": dict(tally.statuses),
                        "errors": dict(tally.errors), "instances": dict(tally.instances)})
        check.measure(f"failed_with_{retry_on[0]}", failed, "requests", of=requests)
        if retried:
            check.expect(failed == 0, f"retries on connect-failure: {failed} of {requests} requests failed while one "
                                      f"endpoint refused connections ({dict(tally.statuses)}); expected none")
        else:
            check.expect(failed > 0, "retries on connect-failure: the refusing endpoint was never picked without "
                                     "retries, so the check proves nothing (is the proxy really down?)")


@pytest.mark.requires(features.RETRIES_PER_TRY_TIMEOUT)
def test_a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """A first attempt slower than perTryTimeout is abandoned and retried; the caller's latency shows it."""
    retry = profile.retries.retry()
    per_try = retry.per_try_timeout
    assert per_try is not None
    mesh.apply([*scenario.BASELINE, _route(retry, timeout=profile.retries.timeout)])
    noise = measure_noise(mesh, check, CALLER, Request(scenario.ORDER_SERVICE, "/"), profile.timing)
    tolerance = profile.timing.tolerance(per_try + noise.p50)
    check.criterion(f"first attempt delayed {2 * per_try:g}s > perTryTimeout {per_try:g}s: HTTP 200 after exactly 2 "
                    f"attempts, latency = perTryTimeout + a fast attempt (p50 {noise.p50 * 1000:.1f} ms) +/- "
                    f"{tolerance * 1000:.1f} ms (timing.floor + timing.share x that), late by up to the first "
                    f"retry's backoff (<= {profile.timing.retry_backoff * 1000:.0f} ms) more; invalid on a machine "
                    "too noisy for that tolerance")
    response, attempts = _send(mesh, check, Echo(key=_key(), delay=2 * per_try, first=1))
    check.measure("attempts_at_app", attempts, "requests")
    check.expect(response.status == 200 and attempts == 2,
                 f"per-try timeout: the caller got {response.describe()} after {attempts} attempts; expected HTTP 200 "
                 f"after exactly 2 (the slow first attempt abandoned at {per_try:g}s)")
    window = noise.window(check, per_try + noise.p50, profile.timing, extra_late=profile.timing.retry_backoff)
    check.measure("latency", round(response.elapsed * 1000, 2), "ms", window_ms=[round(window.low * 1000, 2),
                                                                             round(window.high * 1000, 2)])
    check.expect(window.contains(response.elapsed),
                 f"per-try timeout: latency {response.elapsed * 1000:.1f} ms is outside {window.describe()}")
