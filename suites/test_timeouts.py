"""timeouts: a route timeout T cuts slow upstreams at T, leaves fast ones alone, and bounds retries.

Reference: the seed's VirtualService `timeout: 10s` with `retries: {attempts: 3, perTryTimeout: 3s}`
(scaled by the profile). The mesh's answer to a timed-out request is HTTP 504 (Envoy/Istio
"upstream request timeout", Linkerd 504). The instant it arrives is judged within T +/- (floor + a small
share of T), stated in advance (meshproof.timing): a route timeout 20% off is outside it. The scheduling
noise measured right before only decides whether this machine can judge at all.
"""

import uuid

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, Request
from meshproof.checks import Check
from meshproof.intent import Retry, Route, RouteRule
from meshproof.profile import Profile
from meshproof.timing import Noise, measure_noise
from meshproof.workloads.directives import Echo

pytestmark = pytest.mark.capability("timeouts")

CALLER = scenario.API_GATEWAY


def _apply(mesh: Backend, timeout: float, retry: Retry) -> None:
    route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, timeout=timeout, retries=retry),))
    mesh.apply([*scenario.BASELINE, route])


def _slow_call(mesh: Backend, check: Check, profile: Profile, delay: float) -> tuple[float, int | None, Noise]:
    noise = measure_noise(mesh, check, CALLER, Request(scenario.ORDER_SERVICE, "/"), profile.timing)
    echo = Echo(key=uuid.uuid4().hex[:12], delay=delay)
    response = mesh.call(CALLER, Request(scenario.ORDER_SERVICE, "/api/v1/orders/1", headers=echo.headers()))
    attempts = sum(mesh.attempts(scenario.ORDER_SERVICE, echo.key).values())
    check.evidence({"directive": echo.headers(), "response": response.evidence(), "attempts_at_app": attempts})
    check.measure("latency", round(response.elapsed * 1000, 2), "ms")
    check.measure("status", response.status)
    check.measure("attempts_at_app", attempts, "requests")
    check.expect(attempts >= 1, f"inconclusive: the slow request never reached the app ({response.describe()}); "
                                "the route timeout was not exercised")
    return response.elapsed, response.status, noise


def test_an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """An upstream slower than the route timeout T: the caller gets 504 after T, within the stated window."""
    timeout = profile.retries.timeout
    _apply(mesh, timeout, Retry(0))
    check.criterion(f"upstream delayed {2 * timeout:g}s, route timeout {timeout:g}s, no retries: HTTP 504 with "
                    f"latency within T +/- {profile.timing.tolerance(timeout) * 1000:.0f} ms (timing.floor + "
                    f"timing.share x T); invalid when {profile.timing.multiplier:g} x the p99.9 of fast calls on the "
                    "path exceeds that tolerance")
    elapsed, status, noise = _slow_call(mesh, check, profile, delay=2 * timeout)
    check.expect(status == 504, f"route timeout: a {2 * timeout:g}s upstream gave the caller HTTP {status} after "
                                f"{elapsed * 1000:.1f} ms; expected 504 at {timeout * 1000:.0f} ms")
    window = noise.window(check, timeout, profile.timing)
    check.expect(window.contains(elapsed),
                 f"route timeout: the 504 came after {elapsed * 1000:.1f} ms, outside {window.describe()} "
                 f"around T={timeout * 1000:.0f} ms")


def test_an_upstream_faster_than_the_route_timeout_succeeds(mesh: Backend, check: Check, profile: Profile) -> None:
    """An upstream faster than the route timeout: the caller gets its answer."""
    timeout = profile.retries.timeout
    _apply(mesh, timeout, Retry(0))
    delay = timeout / 2
    elapsed, status, _ = _slow_call(mesh, check, profile, delay=delay)
    check.criterion(f"upstream delayed {delay:g}s under a {timeout:g}s route timeout: HTTP 200, not before {delay:g}s")
    check.expect(status == 200 and elapsed >= delay,
                 f"route timeout: a {delay:g}s upstream under a {timeout:g}s timeout gave HTTP {status} after "
                 f"{elapsed * 1000:.1f} ms; expected 200 after at least {delay * 1000:.0f} ms")


@pytest.mark.requires(features.RETRIES_PER_TRY_TIMEOUT)
def test_the_route_timeout_bounds_the_sum_of_retries(mesh: Backend, check: Check, profile: Profile) -> None:
    """With attempts x perTryTimeout > T, the caller still hears back at T."""
    settings = profile.retries
    retry = settings.retry()
    _apply(mesh, settings.timeout, retry)
    unbounded = (1 + retry.attempts) * settings.per_try_timeout
    check.criterion(f"every attempt slower than perTryTimeout {settings.per_try_timeout:g}s, so retries alone would "
                    f"take >= {unbounded:g}s; route timeout {settings.timeout:g}s: HTTP 504 with latency within T +/- "
                    f"{profile.timing.tolerance(settings.timeout) * 1000:.0f} ms (invalid on a machine too noisy)")
    elapsed, status, noise = _slow_call(mesh, check, profile, delay=settings.timeout + settings.per_try_timeout)
    check.expect(status == 504, f"route timeout does not bound retries: HTTP {status} after {elapsed * 1000:.1f} ms; "
                                f"expected 504 at {settings.timeout * 1000:.0f} ms")
    window = noise.window(check, settings.timeout, profile.timing)
    check.expect(window.contains(elapsed),
                 f"route timeout does not bound retries: the 504 came after {elapsed * 1000:.1f} ms, outside "
                 f"{window.describe()} (retries alone would take {unbounded * 1000:.0f} ms)")
