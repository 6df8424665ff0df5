"""connpool: the seed's circuit breaker, connection-pool side: excess concurrency is refused at once.

Reference: the seed's DestinationRule `connectionPool` (maxConnections 100, http1MaxPendingRequests
100, http2MaxRequests 1000, maxRequestsPerConnection 10, maxRetries 3; scaled by the profile).
HTTP/1.1 carries one request per connection, so at most maxConnections requests are in flight and
http1MaxPendingRequests more wait; anything beyond is refused immediately with the mesh's overflow
response. The app holds every burst request for `hold` seconds so the burst overlaps completely.
The pool is opened first, in waves that double up to maxConnections + 1 requests: requests waiting for a
*new* connection count as pending, so a cold pool would refuse earlier than the limits say, and doubling
keeps those waiting to half a wave, within any pending limit at least 0.8 x maxConnections. The last wave
asks for one connection more than the limit (its extra request waits, as pending): a mesh allowing more
connections opens it, and the burst then shows it (a connection still being opened only serves pending
requests, so a pool opened just to the limit hides a higher one). Exact counts,
and the burst's answered requests are also counted at the app (evidence the requests got through, not
only that nothing was refused).
"""

import uuid

import pytest

from meshproof import scenario
from meshproof.backend import Backend, Request, Tally
from meshproof.checks import Check
from meshproof.intent import Retry, Route, RouteRule
from meshproof.profile import ConnpoolProfile, Profile
from meshproof.workloads.directives import Echo

pytestmark = pytest.mark.capability("connpool")

CALLER = scenario.API_GATEWAY


def _burst(mesh: Backend, check: Check, settings: ConnpoolProfile, size: int) -> tuple[Tally, int]:
    """The burst's tally, and how many of its requests the app counted."""
    route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, retries=Retry(0)),))
    mesh.apply([*scenario.BASELINE, route, settings.pool(scenario.ORDER_SERVICE)])
    opener = Request(scenario.ORDER_SERVICE, "/", headers=Echo(delay=0.1).headers())
    wave, widest = 1, settings.max_connections + 1
    while True:
        opened = mesh.call_batch(CALLER, opener, count=wave, concurrency=wave)
        check.expect(opened.statuses.get("200", 0) == wave,
                     f"connection pool: opening {wave} connections failed ({dict(opened.statuses)})")
        if wave == widest:
            break
        wave = min(2 * wave, widest)
    marker = mesh.overflow_marker
    key = uuid.uuid4().hex[:12]
    request = Request(scenario.ORDER_SERVICE, "/", headers=Echo(key=key, delay=settings.hold).headers())
    tally = mesh.call_batch(CALLER, request, count=size, concurrency=size, capture=(marker[0],) if marker else ())
    at_app = sum(mesh.attempts(scenario.ORDER_SERVICE, key).values())
    check.evidence({"burst": size, "statuses": dict(tally.statuses), "errors": dict(tally.errors),
                    "counted_at_app": at_app,
                    "latency_ms": sorted(round(row.latency * 1000, 1) for row in tally.trace)})
    check.measure("counted_at_app", at_app, "requests")
    return tally, at_app


def _overflowed(mesh: Backend, tally: Tally, settings: ConnpoolProfile) -> tuple[int, int, int]:
    """(accepted, refused at once with the overflow response, anything else)."""
    marker = mesh.overflow_marker
    accepted = refused = other = 0
    for row in tally.trace:
        if row.outcome == 200:
            accepted += 1
        elif (row.outcome == 503 and row.latency < settings.hold / 2
              and (marker is None or row.headers.get(marker[0]) == marker[1])):
            refused += 1
        else:
            other += 1
    return accepted, refused, other


def test_concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """Concurrency above maxConnections + pending: exactly the excess is refused at once (503, flagged)."""
    settings = profile.connpool
    limit = settings.max_connections + settings.http1_max_pending_requests
    size = limit + settings.excess
    marker = mesh.overflow_marker
    check.criterion(f"{size} concurrent requests held {settings.hold:g}s each, maxConnections "
                    f"{settings.max_connections} + http1MaxPendingRequests {settings.http1_max_pending_requests}: "
                    f"exactly {limit} answered, exactly {settings.excess} refused with 503"
                    f"{f' and {marker[0]}: {marker[1]}' if marker else ''} in under {settings.hold / 2:g}s")
    tally, at_app = _burst(mesh, check, settings, size)
    accepted, refused, other = _overflowed(mesh, tally, settings)
    check.measure("accepted", accepted, "requests", expected=limit)
    check.measure("refused_at_once", refused, "requests", expected=settings.excess)
    check.expect(accepted == limit and refused == settings.excess and other == 0 and at_app == accepted,
                 f"connection pool overflow: of {size} concurrent requests {accepted} were answered, {refused} refused "
                 f"at once with the overflow response, {other} ended otherwise ({at_app} counted at the app); "
                 f"expected {limit} answered and {settings.excess} refused")


def test_concurrency_within_the_pool_sees_no_overflow(mesh: Backend, check: Check, profile: Profile) -> None:
    """Concurrency up to maxConnections + pending: every request is answered, none refused."""
    settings = profile.connpool
    limit = settings.max_connections + settings.http1_max_pending_requests
    check.criterion(f"{limit} concurrent requests (= maxConnections + http1MaxPendingRequests) held "
                    f"{settings.hold:g}s: all {limit} answered with 200 and counted at the app")
    tally, at_app = _burst(mesh, check, settings, limit)
    accepted, refused, other = _overflowed(mesh, tally, settings)
    check.measure("accepted", accepted, "requests", expected=limit)
    check.expect(accepted == limit and at_app == limit,
                 f"connection pool overflow within the limits: {refused} of {limit} requests were refused and {other} "
                 f"failed otherwise, {at_app} reached the app; expected all {limit} answered by it")
