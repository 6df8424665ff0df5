"""Sampling a weighted route from inside the mesh and judging the split with stated error rates.

The calling workload sends the requests in batches (a forward call with a count, as Istio's echo
client does) and returns the tally per version, so the same code serves the local mesh and a cluster.
How a split is judged depends on how many versions get traffic:

- one version (100%): every response must come from it. n is the smallest number of requests that
  shows a leak of `delta` to other versions with probability `power`: 1 - (1 - delta)^n >= power.
- two versions: the group-sequential exact binomial test of `meshproof.stats` (four looks, O'Brien-
  Fleming-type alpha spending): a broken split fails at the first look that shows it, a correct one
  passes at the last look; the false-failure rate is <= alpha overall.
- three or more: Pearson's chi-square test at the planned n (no early stop).

Responses that no version answered (errors from the proxies) fail the sample outright: a split that
loses requests is not accurate, whatever the shares of the rest. A request that got no HTTP response at all
(a transport error between the caller and its own proxy, outside the split) is sent again, once, and
counted in `resent`; only a second loss counts against the split, so such errors do not fail a check
outside its false-failure budget. A check that judges several splits gives each its share of alpha.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from meshproof.backend import Backend, Request
from meshproof.checks import Check
from meshproof.profile import CanaryProfile
from meshproof.stats import (
    SequentialBinomialTest,
    binomial_p_value,
    clopper_pearson,
    judge_split,
    plan_chi_square,
    plan_sequential,
)

ANSWERED_BY_NO_VERSION = "-"


@dataclass
class SplitSample:
    """What a split check saw and decided; `record()` writes it into the check's results."""

    weights: dict[str, int]
    passed: bool
    criterion: str
    counts: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)  # failures and responses no version answered
    resent: Counter[str] = field(default_factory=Counter)  # transport errors sent again once, by kind
    plan: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def shares(self) -> dict[str, float]:
        return {version: count / self.n for version, count in sorted(self.counts.items())} if self.n else {}

    def record(self, check: Check, label: str, alpha: float) -> None:
        intervals = {v: [round(x, 5) for x in clopper_pearson(c, self.n, 1 - alpha)] for v, c in self.counts.items()}
        check.measure(f"{label}_n", self.n, "requests", planned=self.plan.get("n"), seconds=round(self.seconds, 2))
        check.measure(f"{label}_shares", {v: round(s, 5) for v, s in self.shares().items()},
                      ci=intervals, confidence=1 - alpha, expected={v: w / 100 for v, w in self.weights.items()})
        check.measure(f"{label}_resent", sum(self.resent.values()), "requests", kinds=dict(self.resent))
        check.evidence({"split": label, "weights": self.weights, "counts": dict(self.counts), "lost": dict(self.lost),
                        "resent": dict(self.resent), "plan": self.plan, "verdict": self.criterion, "alpha": alpha})

    def describe(self) -> str:
        shares = ", ".join(f"{v} {s:.2%}" for v, s in self.shares().items())
        lost = f"; {sum(self.lost.values())} lost ({dict(self.lost)})" if self.lost else ""
        return f"{self.n} requests: {shares}{lost}"


def _take(mesh: Backend, source: str, request: Request, count: int, canary: CanaryProfile,
          sample: SplitSample, *, resend: bool = True) -> None:
    tally = mesh.call_batch(source, request, count=count, concurrency=canary.concurrency)
    for version, n in tally.version_statuses.items():
        name = version.split(" ", 1)[0]
        if name == ANSWERED_BY_NO_VERSION:
            sample.lost[f"HTTP {version.split(' ', 1)[1]}"] += n
        else:
            sample.counts[name] += n
    errors = sum(tally.errors.values())
    if errors and resend:
        sample.resent.update(tally.errors)
        _take(mesh, source, request, errors, canary, sample, resend=False)
    else:
        sample.lost.update(tally.errors)


def exact_leak_n(delta: float, power: float) -> int:
    """Requests needed so that a route leaking a share `delta` elsewhere shows it with prob. `power`."""
    return math.ceil(math.log(1 - power) / math.log(1 - delta))


def sample_split(mesh: Backend, check: Check, *, source: str, request: Request, weights: Mapping[str, int],
                 delta: float, canary: CanaryProfile, alpha: float | None = None) -> SplitSample:
    """Sample the route and judge it against `weights` (versions with weight 0 must get nothing), failing a
    correct split with probability <= `alpha` (default: the profile's, for a check that judges one split)."""
    alpha = canary.alpha if alpha is None else alpha
    started = time.monotonic()
    live = {version: weight for version, weight in weights.items() if weight > 0}
    sample = SplitSample(dict(live), passed=False, criterion="")
    if len(live) == 1:
        (only,) = live
        n = exact_leak_n(delta, canary.power)
        sample.plan = {"test": "exact: every response from the one version", "n": n, "delta": delta,
                       "power": canary.power}
        _take(mesh, source, request, n, canary, sample)
        strays = {v: c for v, c in sample.counts.items() if v != only}
        sample.passed = not strays and not sample.lost
        sample.criterion = (f"all {n} responses from {only} (a leak of {delta:.0%} would show with probability "
                            f">= {canary.power}); saw {dict(sample.counts)}")
    elif len(live) == 2:
        tested = min(live, key=lambda v: (live[v], v))  # the smaller share: its count is the binomial one
        p0 = live[tested] / 100
        plan = plan_sequential(p0, delta=delta, alpha=alpha, power=canary.power, looks=canary.looks)
        sample.plan = {"test": f"group-sequential exact binomial on {tested}'s share", "n": plan.n, **asdict(plan)}
        test, taken = SequentialBinomialTest(plan), 0
        for look in plan.looks:
            _take(mesh, source, request, look - taken, canary, sample)
            taken = look
            check.progress(f"sampled {taken}/{plan.n}")
            if sample.lost or sum(sample.counts.values()) != taken:
                sample.criterion = f"requests were lost or answered by versions outside the split: {dict(sample.lost)}"
                break
            verdict = test.update(sample.counts[tested], taken)
            if verdict is not None:
                outside = sorted(set(sample.counts) - set(live))
                sample.passed = verdict.passed and not outside
                p_value = binomial_p_value(sample.counts[tested], taken, p0)
                sample.criterion = f"{verdict.criterion}; exact two-sided p = {p_value:.3g}" + (
                    f"; responses from versions outside the split: {outside}" if outside else "")
                break
    else:
        chi_plan = plan_chi_square({v: w / 100 for v, w in live.items()}, delta=delta, alpha=alpha,
                                   power=canary.power)
        sample.plan = {"test": "chi-square goodness of fit", **asdict(chi_plan)}
        for start in range(0, chi_plan.n, chi_plan.n // 4 + 1):
            _take(mesh, source, request, min(chi_plan.n - start, chi_plan.n // 4 + 1), canary, sample)
            check.progress(f"sampled {sample.n}/{chi_plan.n}")
        if sample.lost:
            sample.criterion = f"requests were lost: {dict(sample.lost)}"
        else:
            judged = judge_split(sample.counts, live, chi_plan)
            sample.passed, sample.criterion = judged.passed, judged.criterion
    sample.seconds = time.monotonic() - started
    return sample
