"""Timing verdicts with a tolerance stated in advance, and a noise measurement that can only invalidate.

A timing check first sends `noise_samples` fast requests along the same path (same caller, same route),
one at a time, and takes their p99.9 latency as this machine's scheduling noise right now. The verdict
window around an expected instant T is fixed before that: [T - tol, T + tol + known delays] with
tol = floor + share x T (meshproof.profile.TimingProfile), narrow enough that a 20% change of T falls
outside it. The noise never widens the window: when `multiplier` x p99.9 exceeds tol, a correct mesh's
answer could fall outside by noise alone, so the check is invalid ("machine too noisy to judge") and
fails saying so, rather than pass or fail on luck. The p99.9 of 200 calls is nearly their maximum, so one
scheduling hiccup (a 18 ms call among 2 ms ones on real Istio here) decides it: a noisy first sample gets
one second look, and only a machine that is noisy twice in a row cannot judge. Noise, tolerance and window
are recorded with the check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from meshproof.backend import Backend, Request
from meshproof.checks import Check, CheckInvalid
from meshproof.profile import TimingProfile


@dataclass(frozen=True)
class Window:
    expected: float
    early: float
    late: float

    @property
    def low(self) -> float:
        return self.expected - self.early

    @property
    def high(self) -> float:
        return self.expected + self.late

    def contains(self, elapsed: float) -> bool:
        return self.low <= elapsed <= self.high

    def describe(self) -> str:
        return f"[{self.low * 1000:.1f}, {self.high * 1000:.1f}] ms"


@dataclass(frozen=True)
class Noise:
    p50: float
    p999: float
    samples: int
    #: takes the second look (a fresh sample on the same path) that a noisy first sample gets
    again: Callable[[], Noise] | None = None

    def window(self, check: Check, expected: float, timing: TimingProfile, *, extra_late: float = 0.0) -> Window:
        """The acceptance window around `expected`: +/- the tolerance, `extra_late` adding known delays (a
        retry's backoff, a sweep interval). Raises CheckInvalid when the noise does not fit the tolerance,
        twice."""
        tolerance = timing.tolerance(expected)
        noise = self
        if timing.multiplier * noise.p999 > tolerance and noise.again is not None:
            noise = noise.again()
        check.measure("tolerance", round(tolerance * 1000, 2), "ms", rule=f"{timing.floor * 1000:g} ms + "
                      f"{timing.share:.0%} of {expected * 1000:.0f} ms", noise_allowance_ms=round(
                          timing.multiplier * noise.p999 * 1000, 2))
        if timing.multiplier * noise.p999 > tolerance:
            raise CheckInvalid(
                f"invalid: machine too noisy to judge: {'twice, ' if noise is not self else ''}{noise.samples} fast "
                f"calls on this path had p99.9 {'up to ' if noise is not self else ''}"
                f"{max(self.p999, noise.p999) * 1000:.1f} ms, and {timing.multiplier:g} x that exceeds the "
                f"{tolerance * 1000:.1f} ms tolerance (timing.floor + timing.share x {expected * 1000:.0f} ms) that "
                "keeps a 20% change detectable; run it on a quieter machine")
        return Window(expected, tolerance, tolerance + extra_late)


def measure_noise(mesh: Backend, check: Check, source: str, request: Request, timing: TimingProfile) -> Noise:
    """The scheduling noise on the path from `source` with `request`, with its second look ready."""
    first = _sample(mesh, check, source, request, timing, "noise")
    return dataclasses.replace(first, again=lambda: _sample(mesh, check, source, request, timing, "noise_again"))


def _sample(mesh: Backend, check: Check, source: str, request: Request, timing: TimingProfile, name: str) -> Noise:
    tally = mesh.call_batch(source, request, count=timing.noise_samples, concurrency=1)
    failures = tally.sent - tally.statuses.get("200", 0)
    check.expect(failures == 0, f"timing noise measurement: {failures} of {tally.sent} fast calls failed "
                                f"({dict(tally.statuses)}, {dict(tally.errors)}); the path itself is broken")
    p50, p999 = tally.latency["p50"], tally.latency["p999"]
    assert p50 is not None and p999 is not None
    check.measure(f"{name}_p50", round(p50 * 1000, 3), "ms", samples=tally.sent)
    check.measure(f"{name}_p999", round(p999 * 1000, 3), "ms", samples=tally.sent)
    return Noise(p50, p999, tally.sent)
