"""`meshproof compare A B [C ...]`: later runs against the first, check by check and metric by metric.

Every later run is compared with the reference run A: each check's status and key measured value side
by side; each load metric (overhead p50/p90/p99/p99.9 per rate, proxy vCPU per 1000 req/s and memory)
and chaos metric with the difference and whether it is significant; and the regressions the profile's
`regression` section defines (meshproof.profile.RegressionProfile), each as one line: that list is the
upgrade gate's verdict (`--fail-on-regression`).

How significance is decided, per metric (the method is recorded with every change):
- overhead quantiles: a two-run paired block bootstrap on the raw per-block latencies both runs keep in
  `latency_blocks` (meshproof.stats.two_run_overhead_change): the overhead is a difference of quantiles
  of correlated samples, for which no textbook test holds, and the bootstrap reproduces exactly the
  statistic and resampling the run itself used for its own interval. Significant when the interval of
  the change excludes 0. Files without raw blocks fall back to the two runs' intervals not overlapping,
  which is conservative (two non-overlapping 95% intervals mean p < 0.01 under normality).
- chaos metrics: intervals not overlapping when both runs give one; otherwise none (one number a run).
- proxy CPU and memory: one number per run, no interval: shown, not tested.

Not here: rendering (meshproof.report.compare_render) or reading files (meshproof.report.view.read_run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshproof.load.blocks import merge_histograms, samples_us
from meshproof.load.profile import QUANTILES
from meshproof.profile import RegressionProfile
from meshproof.report.tables import proxy_cost
from meshproof.report.view import PROBLEMS, key_measurement, run_label, status_of
from meshproof.stats import two_run_overhead_change

BOOTSTRAP = "two-run paired block bootstrap on raw latencies"
NO_OVERLAP = "intervals do not overlap"
NO_TEST = "no interval (one value per run)"


@dataclass(frozen=True)
class Run:
    name: str  # how the user named it (the path given)
    results: Mapping[str, Any]

    @property
    def label(self) -> str:
        return run_label(self.results)


@dataclass(frozen=True)
class Change:
    """One metric of a later run against the reference run."""

    metric: str  # "overhead p99 at 1000 req/s"
    unit: str
    before: float | None
    after: float | None
    before_ci: tuple[float, float] | None = None
    after_ci: tuple[float, float] | None = None
    difference_ci: tuple[float, float] | None = None
    significant: bool | None = None  # None: not tested
    method: str = NO_TEST
    lower_is_better: bool = True
    regression: str | None = None  # the one-line reason, when the gate counts it
    invalid: bool = False  # a run's measurement was invalid: shown, never judged

    @property
    def difference(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    @property
    def relative(self) -> float | None:
        difference = self.difference
        return None if difference is None or not self.before else difference / abs(self.before)

    @property
    def worse(self) -> bool:
        difference = self.difference
        return difference is not None and (difference > 0 if self.lower_is_better else difference < 0)


@dataclass(frozen=True)
class CheckRow:
    id: str
    capability: str
    statuses: tuple[str | None, ...]  # per run; None: the run has no such check
    measured: tuple[str, ...]


@dataclass
class Comparison:
    runs: Sequence[Run]
    checks: list[CheckRow] = field(default_factory=list)
    changes: list[list[Change]] = field(default_factory=list)  # [later run index - 1] -> its changes
    regressions: list[str] = field(default_factory=list)
    confidence: float = 0.95


def _check_rows(runs: Sequence[Run]) -> list[CheckRow]:
    by_run = [{record["id"]: record for record in run.results["checks"]} for run in runs]
    ids = list(dict.fromkeys(record_id for records in by_run for record_id in records))
    rows = []
    for check_id in ids:
        records = [records.get(check_id) for records in by_run]
        capability = next(str(r["capability"]) for r in records if r is not None)
        rows.append(CheckRow(check_id, capability, tuple(status_of(r) if r else None for r in records),
                             tuple(key_measurement(r.get("measured") or {}, 60) if r else "" for r in records)))
    return rows


def _check_regressions(rows: Sequence[CheckRow], runs: Sequence[Run], later: int) -> list[str]:
    reasons = []
    for row in rows:
        if row.statuses[0] == "passed" and row.statuses[later] in PROBLEMS:
            record = next(r for r in runs[later].results["checks"] if r["id"] == row.id)
            message = ((record.get("message") or "").strip().splitlines() or ["no message"])[0]
            reasons.append(f"{runs[later].name}: check {row.id} passed in {runs[0].name} but "
                           f"{row.statuses[later]} here: {message}")
    return reasons


def _blocks(entry: Mapping[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    blocks = entry.get("latency_blocks") or {}
    baseline, mesh = blocks.get("baseline") or [], blocks.get("mesh") or []
    if len(baseline) < 2 or len(baseline) != len(mesh):
        return None
    decoded = tuple([samples_us(merge_histograms([text])) for text in path] for path in (baseline, mesh))
    if any(block.size == 0 for path in decoded for block in path):
        return None
    return decoded[0], decoded[1]


def _interval(estimate: Mapping[str, Any] | None) -> tuple[float, float] | None:
    ci = (estimate or {}).get("ci")
    return (float(ci[0]), float(ci[1])) if ci else None


def _overlap_test(before: tuple[float, float] | None, after: tuple[float, float] | None) -> bool | None:
    if before is None or after is None:
        return None
    return after[0] > before[1] or after[1] < before[0]


def _overhead_changes(before: Mapping[str, Any], after: Mapping[str, Any], rate: str,
                      gate: RegressionProfile) -> list[Change]:
    raw = (_blocks(before), _blocks(after))
    tested = {}
    if raw[0] is not None and raw[1] is not None:
        estimates = two_run_overhead_change(raw[0], raw[1], list(QUANTILES.values()), confidence=gate.confidence,
                                            resamples=gate.resamples)
        tested = dict(zip(QUANTILES, estimates.values(), strict=True))
    changes = []
    for quantile in QUANTILES:
        old, new = (entry.get("overhead_us", {}).get(quantile) for entry in (before, after))
        if not old or not new:
            continue
        estimate = tested.get(quantile)
        change = Change(
            f"overhead {quantile} at {rate}", "us", float(old["value"]), float(new["value"]),
            _interval(old), _interval(new),
            difference_ci=(estimate.lo, estimate.hi) if estimate else None,
            significant=(estimate.lo > 0 or estimate.hi < 0) if estimate else _overlap_test(_interval(old),
                                                                                            _interval(new)),
            method=BOOTSTRAP if estimate else NO_OVERLAP if _interval(old) and _interval(new) else NO_TEST,
            invalid=not (before.get("valid", True) and after.get("valid", True)))
        changes.append(_judge_overhead(change, quantile, gate))
    return changes


def _judge_overhead(change: Change, quantile: str, gate: RegressionProfile) -> Change:
    threshold = gate.overhead.get(quantile)
    difference, relative = change.difference, change.relative
    if threshold is None or change.invalid or difference is None or not change.significant or not change.worse:
        return change
    floor_us = gate.overhead_floor * 1e6
    base = max(abs(change.before or 0.0), floor_us)
    if difference <= floor_us or difference / base <= threshold:
        return change
    shown = f"{relative:+.0%}" if relative is not None else f"+{difference:.0f} us"
    interval = f", {change.method} interval of the change [{change.difference_ci[0]:.0f}, " \
               f"{change.difference_ci[1]:.0f}] us" if change.difference_ci else f" ({change.method})"
    return _with_reason(change, f"{change.metric}: {change.before:.0f} -> {change.after:.0f} us ({shown}, threshold "
                                f"+{threshold:.0%}){interval}")


def _with_reason(change: Change, reason: str) -> Change:
    return dataclasses.replace(change, regression=reason)


def _proxy_changes(before: Mapping[str, Any], after: Mapping[str, Any], rate: str,
                   gate: RegressionProfile) -> list[Change]:
    (cpu_a, rss_a), (cpu_b, rss_b) = proxy_cost(before), proxy_cost(after)
    cpu = Change(f"proxy vCPU per 1000 req/s at {rate}", "vCPU", cpu_a, cpu_b)
    if gate.proxy_cpu is not None and cpu.relative is not None and cpu.relative > gate.proxy_cpu:
        cpu = _with_reason(cpu, f"{cpu.metric}: {cpu_a:.3g} -> {cpu_b:.3g} ({cpu.relative:+.0%}, threshold "
                                f"+{gate.proxy_cpu:.0%}; one value per run, no interval)")
    return [cpu, Change(f"proxy RSS at {rate}", "MiB", rss_a, rss_b)]


def _load_changes(before: Run, after: Run, gate: RegressionProfile) -> list[Change]:
    def key(entry: Mapping[str, Any]) -> tuple[str, float]:
        return str(entry.get("check", "")), float(entry["target_rps"])

    reference = {key(entry): entry for entry in before.results.get("load") or []}
    changes = []
    for entry in after.results.get("load") or []:
        old = reference.get(key(entry))
        if old is not None:
            rate = f"{entry['target_rps']:g} req/s"
            changes += _overhead_changes(old, entry, rate, gate) + _proxy_changes(old, entry, rate, gate)
    return changes


def _chaos_changes(before: Run, after: Run, gate: RegressionProfile) -> list[Change]:
    def key(entry: Mapping[str, Any]) -> tuple[str, str]:
        return str(entry.get("check", "")), str(entry.get("experiment", ""))

    reference = {key(entry): entry for entry in before.results.get("chaos") or []}
    changes = []
    for entry in after.results.get("chaos") or []:
        old_metrics = (reference.get(key(entry)) or {}).get("metrics") or {}
        for name, metric in (entry.get("metrics") or {}).items():
            old = old_metrics.get(name)
            if not old or old.get("value") is None or metric.get("value") is None:
                continue
            intervals = _interval(old), _interval(metric)
            significant = _overlap_test(*intervals)
            change = Change(f"{entry.get('experiment') or entry.get('check')}: {name}", str(metric.get("unit", "")),
                            float(old["value"]), float(metric["value"]), *intervals, significant=significant,
                            method=NO_OVERLAP if significant is not None else NO_TEST,
                            lower_is_better=metric.get("better", "lower") == "lower")
            threshold = gate.chaos.get(name)
            relative = change.relative
            if (threshold is not None and change.worse and significant is not False and relative is not None
                    and abs(relative) > threshold):
                change = _with_reason(change, f"{change.metric}: {change.before:.4g} -> {change.after:.4g} "
                                              f"{change.unit} ({relative:+.0%}, threshold {threshold:.0%} worse; "
                                              f"{change.method})")
            changes.append(change)
    return changes


def compare(runs: Sequence[Run], gate: RegressionProfile) -> Comparison:
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    comparison = Comparison(runs, _check_rows(runs), confidence=gate.confidence)
    for later in range(1, len(runs)):
        changes = _load_changes(runs[0], runs[later], gate) + _chaos_changes(runs[0], runs[later], gate)
        comparison.changes.append(changes)
        comparison.regressions += _check_regressions(comparison.checks, runs, later)
        comparison.regressions += [f"{runs[later].name}: {c.regression}" for c in changes if c.regression]
    return comparison

