"""The open-model load a chaos experiment runs under: started before its first probe, stopped after its rollbacks.

Locust (meshproof.load's generator, in its own processes) stands in for the experiment's caller and sends
to the caller's proxy at a constant rate, so the routes, retries and outlier detection in force, and any
injected fault, act on every request; each latency counts from the request's due time (a stall shows in
every request it held up). The schedule is one series of equal blocks (`ChaosProfile.resolution`); a
block is reported once its last request finished, with its counts and an HDR histogram of the successful
requests' latencies.

One experiment's traffic at a time per process: the control starts it (`start`), probes read windows of
it (`current().window(...)`), the control stops it (`stop`) and hands the series to the analysis.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from meshproof.backend import LoadTarget
from meshproof.load.blocks import BlockRecord, merge_histograms, samples_us
from meshproof.load.driver import LoadGeneratorError, RunningPlan
from meshproof.load.schedule import Block, Plan, Target, series
from meshproof.profile import ChaosProfile

PATH = "mesh"  # the plan's one target
POLL_INTERVAL = 0.05  # s between reads of the generator's events while a probe waits


class TrafficError(RuntimeError):
    """The load is not running, or it failed; the message says which (with the generator's log tail)."""


@dataclass(frozen=True)
class Window:
    """Requests due in [start_s, end_s) (s after the traffic's t0), aggregated over whole blocks."""

    start_s: float
    end_s: float
    requests: int
    errors: dict[str, int]
    latency_us: dict[str, float | None]  # p50, p99 of the successful requests

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None


def aggregate(blocks: list[tuple[Block, BlockRecord]]) -> Window:
    errors: Counter[str] = Counter()
    for _, record in blocks:
        errors.update(record.errors)
    samples = samples_us(merge_histograms(record.latency for _, record in blocks))
    latency: dict[str, float | None] = {"p50": None, "p99": None}
    if samples.size:
        p50, p99 = np.quantile(samples, [0.5, 0.99], method="inverted_cdf")
        latency = {"p50": float(p50), "p99": float(p99)}
    start = min((block.start for block, _ in blocks), default=0.0)
    end = max((block.end for block, _ in blocks), default=0.0)
    return Window(start, end, sum(record.requests for _, record in blocks), dict(errors), latency)


@dataclass
class Series:
    """What one experiment's traffic produced: every reported block, on the clock of `t0_unix`."""

    plan: Plan
    t0_unix: float  # wall-clock time (s since the epoch) of the schedule's t0, to place journal timestamps
    records: dict[int, BlockRecord] = field(default_factory=dict)
    stopped_s: float = 0.0  # when the traffic was stopped, s after t0

    def reported(self, start_s: float = 0.0, end_s: float = float("inf")) -> list[tuple[Block, BlockRecord]]:
        """Reported blocks lying wholly in [start_s, end_s)."""
        return [(block, self.records[block.index]) for block in self.plan.blocks
                if block.index in self.records and block.start >= start_s - 1e-9 and block.end <= end_s + 1e-9]


class Traffic:
    def __init__(self, target: LoadTarget, path: str, profile: ChaosProfile) -> None:
        self.profile = profile
        plan = Plan(
            rate=profile.rate, arrival="constant", seed=0,
            blocks=series(PATH, block_length=profile.resolution, until=profile.traffic_limit),
            targets={PATH: Target(target.url, target.host)}, paths=(path,), method="GET", headers={},
            body_bytes=0, connections=profile.connections, workers=0, request_timeout=profile.request_timeout,
            workers_timeout=profile.startup_timeout, startup_timeout=profile.startup_timeout,
        )  # fmt: skip
        self.running = RunningPlan(plan)
        try:
            t0 = self._wait_for_start()
        except BaseException:
            self.running.stop()
            raise
        self.series = Series(plan, time.time() - (time.monotonic() - t0))
        self.t0 = t0

    def _wait_for_start(self) -> float:
        deadline = time.monotonic() + self.profile.startup_timeout
        while self.running.t0 is None:
            self._poll()
            if time.monotonic() > deadline:
                raise TrafficError(f"the load generator did not start within {self.profile.startup_timeout:g}s")
            time.sleep(POLL_INTERVAL)
        return self.running.t0

    def _poll(self) -> None:
        try:
            self.running.poll()
        except LoadGeneratorError as exc:
            raise TrafficError(str(exc)) from None

    def now_s(self) -> float:
        return time.monotonic() - self.t0

    def window(self, seconds: float) -> Window:
        """The last `seconds` of traffic (whole blocks), waiting first until that much has run after the warm-up
        (the first requests open the connections) and every block in it is reported: a request still in
        flight (a stalled one) can hold its block up to request_timeout."""
        while self.now_s() < self.profile.warmup + seconds:
            time.sleep(POLL_INTERVAL)
        end = self.now_s()
        if end > self.profile.traffic_limit:
            raise TrafficError(f"the experiment ran longer than chaos.traffic_limit ({self.profile.traffic_limit:g}s "
                               "of load); raise it in the profile")
        wanted = [block for block in self.series.plan.blocks if end - seconds <= block.start and block.end <= end]
        deadline = time.monotonic() + self.profile.request_timeout + self.profile.resolution
        while True:
            self.refresh()
            if all(block.index in self.series.records for block in wanted):
                return aggregate([(block, self.series.records[block.index]) for block in wanted])
            if time.monotonic() > deadline:
                missing = [block.index for block in wanted if block.index not in self.series.records]
                raise TrafficError(f"load blocks {missing[:5]} were not reported within "
                                   f"{self.profile.request_timeout:g}s of their end")
            time.sleep(POLL_INTERVAL)

    def refresh(self) -> None:
        self._poll()
        self.series.records.update((record.index, record) for record in self.running.blocks())

    def stop(self) -> Series:
        """Stop sending; the blocks reported by then (every block whose requests all finished) are kept."""
        try:
            self.refresh()
        finally:
            self.series.stopped_s = self.now_s()
            self.running.stop()
        return self.series


_current: Traffic | None = None


def start(target: LoadTarget, path: str, profile: ChaosProfile) -> Traffic:
    global _current
    if _current is not None:
        raise TrafficError("an experiment's load is already running in this process")
    _current = Traffic(target, path, profile)
    return _current


def current() -> Traffic:
    if _current is None:
        raise TrafficError("no load is running: the experiment needs the meshproof.chaos.control control, which "
                           "runs the load for the whole experiment (see chaos/README.md)")
    return _current


def stop() -> Series | None:
    """Stop the running traffic, if any, and return what it produced."""
    global _current
    traffic, _current = _current, None
    return None if traffic is None else traffic.stop()
