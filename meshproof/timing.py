"""Timing verdicts with a tolerance measured, not guessed.

A timing check first sends `noise_samples` fast requests along the same path (same caller, same
route) one at a time, and takes their p99.9 latency as the scale of this machine's scheduling noise
right now (under `pytest -n auto` the other core may be busy; the tolerance follows). The verdict
window around an expected instant T is then [T - early, T + late] with the bounds documented in
`meshproof.profile.TimingProfile`. The measured noise and the window are recorded with the check.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshproof.backend import Backend, Request
from meshproof.checks import Check
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

    def window(self, expected: float, timing: TimingProfile, *, extra_late: float = 0.0) -> Window:
        """The acceptance window around `expected`; `extra_late` adds known delays (retry backoff)."""
        return Window(expected, timing.floor + self.p999, timing.floor + timing.multiplier * self.p999 + extra_late)


def measure_noise(mesh: Backend, check: Check, source: str, request: Request, timing: TimingProfile) -> Noise:
    tally = mesh.call_batch(source, request, count=timing.noise_samples, concurrency=1)
    failures = tally.sent - tally.statuses.get("200", 0)
    check.expect(failures == 0, f"timing noise measurement: {failures} of {tally.sent} fast calls failed "
                                f"({dict(tally.statuses)}, {dict(tally.errors)}); the path itself is broken")
    p50, p999 = tally.latency["p50"], tally.latency["p999"]
    assert p50 is not None and p999 is not None
    noise = Noise(p50, p999, tally.sent)
    check.measure("noise_p50", round(p50 * 1000, 3), "ms", samples=tally.sent)
    check.measure("noise_p999", round(p999 * 1000, 3), "ms", samples=tally.sent)
    return noise
