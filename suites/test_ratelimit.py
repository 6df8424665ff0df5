"""ratelimit: a local token bucket lets exactly its tokens through, says so in headers, and refills.

Reference: the seed's EnvoyFilter on api-gateway: `token_bucket: {max_tokens: 1000, tokens_per_fill:
100, fill_interval: 1s}`, enabled and enforced at 100%, limited responses carrying
`x-rate-limit-remaining` (scaled by the profile). That header's seed value names metadata Envoy never sets,
so meshes are given the constant 0: it shows the mesh adds a configured header to limited responses only,
nothing about the bucket itself. The bucket starts full and refills continuously at
r = tokens_per_fill / fill_interval tokens/s (Envoy >= 1.33; older Envoys refilled in steps on a
timer, for which these windows would be too strict). So a burst of duration d lets max_tokens + r*d
requests through; the window allows one token either side for the fractional token carried in and
for the microseconds between the caller's clock and the proxy's. Requests go one at a time, so the
order the caller sees is the order the limiter decided.
"""

import itertools
import math
import time

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, Request, Tally, TraceRow
from meshproof.checks import Check
from meshproof.profile import Profile, RateLimitProfile

pytestmark = pytest.mark.capability("ratelimit")

CALLER = scenario.PAYMENT_SERVICE
LIMIT, REMAINING, RESET = "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"
CAPTURE = (LIMIT, REMAINING, RESET, "x-rate-limit-remaining")


def _burst_size(mesh: Backend, settings: RateLimitProfile) -> int:
    """Enough requests to drain the bucket and `burst_extra` more, given how fast requests go one at a
    time here (measured before the limit exists, over the whole pilot, not its median):
    N = (max_tokens + extra) * R / (R - r)."""
    pilot = mesh.call_batch(CALLER, Request(settings.target, "/"), count=settings.pilot_requests, concurrency=1)
    rate = pilot.sent / pilot.elapsed
    if rate < 2 * settings.refill_rate:
        pytest.fail(f"rate limit: requests go at {rate:.0f}/s here, too slow to outpace the refill "
                    f"({settings.refill_rate:g}/s); lower tokens_per_fill in the profile")
    return math.ceil((settings.max_tokens + settings.burst_extra) * rate / (rate - settings.refill_rate))


def _send(mesh: Backend, settings: RateLimitProfile, count: int) -> Tally:
    return mesh.call_batch(CALLER, Request(settings.target, "/"), count=count, concurrency=1, capture=CAPTURE)


def _passed(tally: Tally) -> list[TraceRow]:
    return [row for row in tally.trace if row.outcome == 200]


def _window(tokens_at_start: float, refill: float, tolerance: int) -> tuple[int, int]:
    return math.floor(tokens_at_start + refill) - tolerance, math.ceil(tokens_at_start + refill) + tolerance


def _drain(mesh: Backend, check: Check, settings: RateLimitProfile) -> tuple[Tally, tuple[int, int]]:
    size = _burst_size(mesh, settings)
    mesh.apply([*scenario.BASELINE, settings.limit()])
    tally = _send(mesh, settings, size)
    span = tally.trace[-1].sent_at - tally.trace[0].sent_at
    window = _window(settings.max_tokens, settings.refill_rate * span, settings.token_tolerance)
    check.measure("burst", size, "requests", duration_s=round(span, 4))
    check.evidence({"burst": size, "duration_s": span, "statuses": dict(tally.statuses), "errors": dict(tally.errors)})
    return tally, window


def test_a_burst_lets_exactly_the_bucket_through_and_limits_the_rest(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """A burst faster than the refill: max_tokens (+ the tokens refilled meanwhile) pass, the rest get 429."""
    settings = profile.ratelimit
    tally, (low, high) = _drain(mesh, check, settings)
    passed = len(_passed(tally))
    limited = tally.statuses.get("429", 0)
    check.criterion(f"max_tokens {settings.max_tokens}, refill {settings.refill_rate:g}/s: passes within "
                    f"[{low}, {high}] = max_tokens + refill x measured burst duration, +/- 1 token; every other "
                    "request gets 429")
    check.measure("passed", passed, "requests", window=[low, high])
    check.measure("limited", limited, "requests")
    check.expect(low <= passed <= high and passed + limited == tally.sent,
                 f"rate limit: {passed} of {tally.sent} requests passed and {limited} got 429; expected {low}..{high} "
                 f"to pass (bucket {settings.max_tokens} + refill) and the rest 429")


@pytest.mark.requires(features.RATELIMIT_HEADERS)
def test_responses_carry_the_rate_limit_headers(mesh: Backend, check: Check, profile: Profile) -> None:
    """Passing responses carry x-ratelimit-limit/-remaining/-reset with remaining counting down; limited
    responses, and only they, carry the seed's x-rate-limit-remaining."""
    settings = profile.ratelimit
    tally, (_, high) = _drain(mesh, check, settings)
    passed = _passed(tally)
    limited = [row for row in tally.trace if row.outcome == 429]
    check.criterion(f"every 200 has {LIMIT}={settings.max_tokens}, an integer {REMAINING} and {RESET} "
                    f"<= {math.ceil(settings.fill_interval)}s; {REMAINING} never rises and repeats at most once per "
                    "token refilled during the burst; every 429 and no 200 has x-rate-limit-remaining: the header is a "
                    "constant 0 the mesh is configured with (the seed's dynamic value renders empty), so it proves "
                    "the mesh adds a configured header to limited responses only, not a count the mesh computed")
    missing = [row for row in passed if any(name not in row.headers for name in (LIMIT, REMAINING, RESET))]
    check.expect(not missing and bool(passed),
                 f"rate limit headers: {len(missing)} of {len(passed)} passing responses lack "
                 f"{LIMIT}/{REMAINING}/{RESET} (first: {missing[0].headers if missing else None})")
    wrong_limit = sorted({row.headers[LIMIT] for row in passed if row.headers[LIMIT] != str(settings.max_tokens)})
    check.expect(not wrong_limit, f"rate limit headers: {LIMIT} is {wrong_limit}, expected {settings.max_tokens}")
    resets = [int(row.headers[RESET]) for row in passed]
    check.expect(all(0 <= reset <= math.ceil(settings.fill_interval) for reset in resets),
                 f"rate limit headers: {RESET} values {sorted(set(resets))} are not within "
                 f"0..{settings.fill_interval:g}s")
    remaining = [int(row.headers[REMAINING]) for row in passed]
    rises = sum(later > earlier for earlier, later in itertools.pairwise(remaining))
    repeats = sum(later == earlier for earlier, later in itertools.pairwise(remaining))
    refilled = high - settings.max_tokens
    check.measure(f"{REMAINING}_first_last", [remaining[0], remaining[-1]], "tokens")
    check.measure("remaining_repeats", repeats, "steps", allowed=refilled)
    check.expect(rises == 0 and repeats <= refilled and remaining[0] == settings.max_tokens - 1,
                 f"rate limit headers: {REMAINING} went {remaining[0]} -> {remaining[-1]} with {rises} rises and "
                 f"{repeats} repeats; expected to start at {settings.max_tokens - 1} and fall by one per request "
                 f"(at most {refilled} repeats for refilled tokens)")
    seed_header = [row.headers.get("x-rate-limit-remaining") for row in limited]
    on_passes = sum("x-rate-limit-remaining" in row.headers for row in passed)
    check.measure("limited_header_on_429s", sum(value == "0" for value in seed_header), "responses", of=len(limited))
    check.measure("limited_header_on_200s", on_passes, "responses", of=len(passed))
    check.expect(bool(limited) and all(value == "0" for value in seed_header),
                 "rate limit headers: limited responses carry x-rate-limit-remaining "
                 f"{sorted(set(map(str, seed_header)))}, expected 0 on every 429")
    check.expect(on_passes == 0, f"rate limit headers: {on_passes} passing responses carry x-rate-limit-remaining, "
                                 "which belongs to limited responses only")


def test_after_a_refill_interval_tokens_per_fill_requests_pass_again(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """After the bucket is drained, one fill interval later tokens_per_fill requests pass again."""
    settings = profile.ratelimit
    first, _ = _drain(mesh, check, settings)
    time.sleep(settings.fill_interval)  # the property under test is what one interval of waiting buys
    second = _send(mesh, settings, settings.tokens_per_fill + settings.burst_extra)
    waited = (second.started_at + second.trace[0].sent_at) - (first.started_at + first.trace[-1].sent_at)
    span = second.trace[-1].sent_at - second.trace[0].sent_at
    low, high = _window(0, settings.refill_rate * (waited + span), settings.token_tolerance)
    passed = len(_passed(second))
    check.criterion(f"after draining, wait one fill interval ({settings.fill_interval:g}s, measured {waited:.3f}s) "
                    f"and send {second.sent} more: passes within [{low}, {high}] = refill x (wait + burst), +/- 1 "
                    f"(tokens_per_fill = {settings.tokens_per_fill})")
    check.measure("passed_after_refill", passed, "requests", window=[low, high])
    check.evidence({"waited_s": waited, "statuses": dict(second.statuses)})
    check.expect(low <= passed <= high,
                 f"rate limit refill: {passed} requests passed {waited:.3f}s after draining; expected {low}..{high} "
                 f"(tokens_per_fill {settings.tokens_per_fill} per {settings.fill_interval:g}s)")
