"""From an experiment's journal and the load it ran under to one item of results.json's `chaos` list.

The fault's window comes from the journal's actions (the functions of meshproof.chaos.actions.UNDO):
it opens when the fault's action starts (a kill acts within it, an xDS change at its end: the fault
may act any time in between) and closes when its undo returns (the app answering again, the listener
back) or the fault ends by itself (`lasts_s` after its action, a freeze), whichever is first. The fault
is surely in force from its action's end until its undo starts. Journal times (UTC) are placed on the
load's clock by the wall-clock time of its t0. Phases, in whole blocks of the load's series
(`ChaosProfile.resolution`), each request counted in the block it was due in:
- before: blocks from the end of the set-up action (the scenario's intents in force) whose every request
  had finished before the fault's action started, so none met the fault;
- during: blocks wholly in the time the fault was surely in force;
- after: blocks due from the fault's end to the start of the tear-down action (restore_baseline), or the
  load's end. Blocks in the transitions belong to no phase; the time series shows them all.
Each phase's error rate (failed / due requests) carries an exact Clopper-Pearson interval; latency
quantiles are over the successful requests, timed from their due time.

Recovery: the time from the reference instant (the opening of the fault's window for a fault the mesh
should absorb, its close otherwise) to the start of the first run of consecutive blocks, one probe
window long and ending before the horizon (the window's close, resp. the end of the after phase), in
which every block is within the steady state's limits: error rate <= max_error_rate and p99 <= max_p99.
That is the steady state holding again for as long as a steady-state probe looks, judged block by
block; a stall of the machine later on does not undo a recovery. Known to one block: the mesh came back
within (value - resolution, value]. 0 means within limits from the first block on; None, not back
before the horizon.

No I/O: meshproof.chaos.control calls it at the end of an experiment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from meshproof.chaos.actions import SETUP, UNDO
from meshproof.chaos.traffic import Series, Window, aggregate
from meshproof.load.blocks import BlockRecord, merge_histograms, samples_us
from meshproof.load.schedule import Block
from meshproof.profile import ChaosProfile
from meshproof.stats import clopper_pearson

ACTIONS_MODULE = "meshproof.chaos.actions"
RECOVERY_REFERENCES = ("start", "end")
COLUMNS = ["t_s", "requests", "errors", "p50_ms", "p99_ms"]


@dataclass(frozen=True)
class Step:
    """One meshproof action of the journal, on the load's clock (s after its t0)."""

    func: str
    start_s: float
    end_s: float
    output: Mapping[str, Any]


@dataclass(frozen=True)
class FaultWindow:
    kind: str  # the action, e.g. "kill_app"
    target: str
    start_s: float  # the window opens: the fault's action started
    in_force_s: float  # its action returned
    lifted_s: float | None  # its undo started (or it began to end by itself); None: never while the load ran
    end_s: float | None  # the window closes: its undo returned (or it ended by itself)
    ends_by: str  # "undo", "itself" or "never"


def _seconds(timestamp: str, t0_unix: float) -> float:
    return datetime.fromisoformat(timestamp).timestamp() - t0_unix


def steps(journal: Mapping[str, Any], t0_unix: float) -> list[Step]:
    """The succeeded meshproof actions of the method and the rollbacks, in order."""
    found = []
    for run in [*(journal.get("run") or []), *(journal.get("rollbacks") or [])]:
        provider = (run.get("activity") or {}).get("provider") or {}
        if provider.get("module") == ACTIONS_MODULE and run.get("status") == "succeeded" and run.get("end"):
            found.append(Step(provider.get("func", ""), _seconds(run["start"], t0_unix), _seconds(run["end"], t0_unix),
                              run.get("output") or {}))
    return found


def fault_window(found: Sequence[Step]) -> FaultWindow | None:
    inject = next((step for step in found if step.func in UNDO), None)
    if inject is None:
        return None
    target = ", ".join(inject.output.get("instances") or [])
    ends = []  # (window closes, lifted from, how)
    lasts = inject.output.get("lasts_s")
    if lasts is not None:
        ends.append((inject.end_s + float(lasts), inject.start_s + float(lasts), "itself"))
    undo = next((step for step in found if step.func == UNDO[inject.func] and step.start_s >= inject.start_s
                 and step.output.get("undone")), None)
    if undo is not None:
        ends.append((undo.end_s, undo.start_s, "undo"))
    if not ends:
        return FaultWindow(inject.func, target, inject.start_s, inject.end_s, None, None, "never")
    end, lifted, how = min(ends)
    return FaultWindow(inject.func, target, inject.start_s, inject.end_s, lifted, end, how)


def steady_states(journal: Mapping[str, Any]) -> dict[str, Any]:
    """Whether each steady-state hypothesis held, and the output of every probe that did not."""
    result: dict[str, Any] = {}
    for when, state in (journal.get("steady_states") or {}).items():
        if state is None or when == "during":
            continue
        unmet = [{"probe": run["activity"].get("name"), "output": run.get("output")}
                 for run in state.get("probes") or [] if not run.get("tolerance_met")]
        result[when] = {"met": bool(state.get("steady_state_met")), "unmet": unmet}
    return result


def _phase(window: Window, confidence: float) -> dict[str, Any]:
    rate = window.error_rate
    low, high = clopper_pearson(window.failed, window.requests, confidence) if window.requests else (None, None)
    return {
        "start_s": round(window.start_s, 3), "end_s": round(window.end_s, 3), "requests": window.requests,
        "errors": window.failed, "error_kinds": window.errors,
        "error_rate": None if rate is None else round(rate, 6),
        "ci": None if low is None else [round(low, 6), round(high or 0.0, 6)],
        "p50_ms": _ms(window.latency_us["p50"]), "p99_ms": _ms(window.latency_us["p99"]),
    }


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def _block_quantiles(record: BlockRecord) -> tuple[float | None, float | None]:
    samples = samples_us(record.latency_histogram())
    if not samples.size:
        return None, None
    p50, p99 = np.quantile(samples, [0.5, 0.99], method="inverted_cdf")
    return float(p50), float(p99)


def within_limits(record: BlockRecord, profile: ChaosProfile) -> bool:
    failed = sum(record.errors.values())
    p99 = _block_quantiles(record)[1]
    return (record.requests > 0 and failed <= profile.max_error_rate * record.requests
            and p99 is not None and p99 <= profile.max_p99 * 1e6)


def recovery(blocks: Sequence[tuple[Block, BlockRecord]], reference: float, horizon: float,
             profile: ChaosProfile) -> float | None:
    """Seconds from `reference` until a probe window of blocks is within limits (see the module doc)."""
    span = [(block, record) for block, record in blocks
            if block.end > reference + 1e-9 and block.end <= horizon + profile.resolution / 2]
    run = math.ceil(profile.probe_window / profile.resolution - 1e-9)
    clean = 0
    for index, (block, record) in enumerate(span):
        follows = index > 0 and abs(span[index - 1][0].end - block.start) < 1e-9  # an unreported block breaks a run
        clean = 0 if not within_limits(record, profile) else clean + 1 if follows else 1
        if clean == run:
            return round(max(0.0, span[index - run + 1][0].start - reference), 3)
    return None


def _metric(value: float | None, unit: str, ci: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    metric: dict[str, Any] = {"value": value, "unit": unit, "better": "lower", **extra}
    if ci is not None:
        metric["ci"] = ci
    return metric


def _delta(during: float | None, before: float | None) -> float | None:
    return None if during is None or before is None else round(during - before, 3)


def _load(series: Series, profile: ChaosProfile) -> dict[str, Any]:
    reported = series.reported()
    lag = samples_us(merge_histograms(record.lag for _, record in reported))
    median_lag = float(np.median(lag)) if lag.size else None
    span = sum(block.end - block.start for block, _ in reported)
    return {"rate": profile.rate, "connections": profile.connections, "resolution_s": profile.resolution,
            "requests": sum(record.requests for _, record in reported), "seconds": round(span, 3),
            "generator_lag_p50_us": median_lag,
            "valid": median_lag is not None and median_lag <= profile.max_median_generator_lag * 1e6}


def analyse(journal: Mapping[str, Any], series: Series, profile: ChaosProfile, *, name: str,
            recovery_from: str) -> dict[str, Any]:
    """The results entry of one experiment (shape: meshproof/results.schema.json, `chaos` items)."""
    if recovery_from not in RECOVERY_REFERENCES:
        raise ValueError(f"recovery_from must be one of {', '.join(RECOVERY_REFERENCES)}, got {recovery_from!r}")
    found = steps(journal, series.t0_unix)
    fault = fault_window(found)
    rows = []
    for block, record in series.reported():
        p50, p99 = _block_quantiles(record)
        rows.append([round(block.start, 3), record.requests, sum(record.errors.values()), _ms(p50), _ms(p99)])
    entry: dict[str, Any] = {
        "experiment": name,
        "title": (journal.get("experiment") or {}).get("title", ""),
        "status": journal.get("status"),
        "deviated": bool(journal.get("deviated")),
        "steady_states": steady_states(journal),
        "fault": None,
        "timeline": {"bucket_s": profile.resolution, "columns": COLUMNS, "rows": rows},
        "phases": {},
        "recovery": None,
        "metrics": {},
        "load": _load(series, profile),
    }
    if fault is None:
        return entry
    setup_end = max((step.end_s for step in found if step.func in SETUP and step.end_s <= fault.start_s), default=0.0)
    teardown = min((step.start_s for step in found if step.func in SETUP.values() and step.start_s >= fault.start_s),
                   default=series.stopped_s)
    fault_end = teardown if fault.end_s is None else min(fault.end_s, teardown)
    lifted = teardown if fault.lifted_s is None else min(fault.lifted_s, teardown)
    entry["fault"] = {"kind": fault.kind, "target": fault.target, "start_s": round(fault.start_s, 3),
                      "end_s": None if fault.end_s is None else round(fault.end_s, 3),
                      "in_force_s": [round(fault.in_force_s, 3), round(lifted, 3)], "ends_by": fault.ends_by}
    every = series.reported()
    windows = {
        "before": aggregate([(b, r) for b, r in series.reported(setup_end) if r.last_done <= fault.start_s]),
        "during": aggregate(series.reported(fault.in_force_s, lifted)),
        "after": aggregate(series.reported(fault_end, teardown)),
    }
    phases = {phase: _phase(window, profile.confidence) for phase, window in windows.items()}
    entry["phases"] = phases
    reference, horizon = (fault.start_s, fault_end) if recovery_from == "start" else (fault_end, teardown)
    recovered = recovery(every, reference, horizon, profile)
    entry["recovery"] = {
        "from": recovery_from, "s": recovered, "resolution_s": profile.resolution,
        "horizon_s": round(horizon - reference, 3),
        "criterion": f"from then on, {profile.probe_window:g}s of consecutive {profile.resolution:g}s blocks, all "
                     f"with an error rate <= {profile.max_error_rate:g} and a p99 <= {profile.max_p99 * 1000:g} ms, "
                     "ending before the horizon",
    }
    before, during, after = phases["before"], phases["during"], phases["after"]
    entry["metrics"] = {
        "error_rate_before": _metric(before["error_rate"], "ratio", before["ci"]),
        "error_rate_during_fault": _metric(during["error_rate"], "ratio", during["ci"]),
        "error_rate_after": _metric(after["error_rate"], "ratio", after["ci"]),
        "p50_during_fault_ms": _metric(during["p50_ms"], "ms"),
        "p99_during_fault_ms": _metric(during["p99_ms"], "ms"),
        "p50_delta_ms": _metric(_delta(during["p50_ms"], before["p50_ms"]), "ms"),
        "p99_delta_ms": _metric(_delta(during["p99_ms"], before["p99_ms"]), "ms"),
        "recovery_s": _metric(recovered, "s", resolution_s=profile.resolution, measured_from=recovery_from),
    }
    return entry
