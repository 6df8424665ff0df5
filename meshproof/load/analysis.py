"""From a load run's blocks and usage samples to results.json's `load` entry, its validity and its SLO verdict.

- Latency quantiles of each path pool its measured blocks; a quantile is the smallest sample with at
  least ceil(q N) samples at or below it (numpy's "inverted_cdf"), the same statistic
  meshproof.stats.block_bootstrap_quantile_diff uses, so overhead = mesh - baseline exactly.
- Overhead confidence intervals come from that paired block bootstrap: baseline block i and mesh block i
  of pair i ran next to each other, and pairs are resampled whole (consecutive requests are correlated).
- Validity (`invalid` lists the reasons; a run with any is not to be believed): the achieved rate is at
  least `min_achieved` of the offered rate, where achieved = requests / sum over blocks of (block start
  to its end or its last response, whichever is later), so a backlog shows; the generator's own lag
  (meshproof.load.schedule.account) has a median <= `max_median_generator_lag`; no generator process used
  more than `max_generator_cpu` of a core during the measured blocks (Locust's own warning threshold). The
  median, not the tail: a generator that cannot keep up is late for most requests, and its lag grows;
  a busy machine preempting it now and then makes a tail of a few ms (measured here under a concurrent
  `pytest -n auto`: p99 2.7-4.8 ms at a median of 0.1-0.2 ms), which widens the intervals instead.
- The SLO (quantile -> limit) is breached when the quantile's whole confidence interval lies above it.
- `latency_blocks` keeps each measured block's latencies (encoded HDR histograms, a few kB per block) in the
  entry, so two runs can be compared on their raw data rather than on their summaries.
- Proxy cost per proxy during the mesh blocks: CPU seconds, vCPU and vCPU per 1000 req/s (Istio's unit);
  RSS idle (before the run), steady (median over the mesh blocks) and peak. RSS is not divided by the
  rate: an Envoy's ~65 MiB is mostly fixed, so MiB per 1000 req/s would depend on the rate chosen.

No I/O: meshproof.load.driver produces the `LoadRun`; suites and benchmarks read the `RateResult`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from meshproof.load.blocks import BlockRecord, merge_histograms, samples_us
from meshproof.load.profile import QUANTILES, LoadProfile
from meshproof.load.schedule import BASELINE, MESH, Block, Plan
from meshproof.stats import Estimate, block_bootstrap_quantile_diff

MIB = 2**20
BLOCK_ENCODING = "HdrHistogram V2 compressed, base64; microseconds, 3 significant digits; baseline[i] pairs mesh[i]"
Samples = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Usage:
    """One process at one instant: cumulative CPU seconds (user + system) and RSS in bytes."""

    at: float  # CLOCK_MONOTONIC, the clock of the run's t0
    cpu_s: float
    rss: int


@dataclass(frozen=True)
class LoadRun:
    """What one plan produced: the merged blocks (by index) and the processes' usage samples."""

    plan: Plan
    t0: float
    blocks: tuple[BlockRecord, ...]
    proxies: Mapping[str, tuple[Usage, ...]]
    generator: Mapping[str, tuple[Usage, ...]]
    locust_stats: Mapping[str, Any]
    wall_s: float


@dataclass(frozen=True)
class SloVerdict:
    quantile: str  # "p99"
    limit_us: float
    estimate: Estimate

    @property
    def breached(self) -> bool:
        """Breached when the whole confidence interval lies above the limit: evidence of a breach, as the split
        checks fail on evidence. A mesh whose true overhead equals the limit is failed in at most (1 - confidence)
        / 2 of runs (2.5% at 95%), one well below it practically never; a noisy run widens the interval instead
        of failing a correct mesh. The point estimate and interval are recorded either way."""
        return self.estimate.lo > self.limit_us


@dataclass(frozen=True)
class RateResult:
    entry: dict[str, Any]  # results.json's load entry
    overhead: Mapping[str, Estimate]  # empty when a measured block had no successful request
    invalid: tuple[str, ...]
    errors: Mapping[str, Mapping[str, int]]  # path -> error kind -> count
    evidence: dict[str, Any]

    @property
    def valid(self) -> bool:
        return not self.invalid

    def slo(self, limits: Mapping[str, float]) -> list[SloVerdict]:
        """The overhead quantiles against `limits` (quantile name -> seconds)."""
        return [SloVerdict(name, limit * 1e6, self.overhead[name]) for name, limit in limits.items()
                if name in self.overhead]


def quantiles_us(samples: Samples) -> dict[str, float | None]:
    if samples.size == 0:
        return dict.fromkeys(QUANTILES)
    values = np.quantile(samples, list(QUANTILES.values()), method="inverted_cdf")
    return {name: float(value) for name, value in zip(QUANTILES, values, strict=True)}


def cpu_seconds(samples: Sequence[Usage], start: float, end: float) -> float:
    """CPU time used in [start, end], interpolated linearly between samples."""
    if len(samples) < 2:
        return 0.0
    at = np.array([s.at for s in samples])
    cpu = np.array([s.cpu_s for s in samples])
    return float(np.interp(end, at, cpu) - np.interp(start, at, cpu))


def _span(block: Block, record: BlockRecord) -> float:
    return max(block.end, record.last_done) - block.start


def _proxy_cost(samples: Sequence[Usage], t0: float, windows: list[tuple[float, float]],
                requests: int) -> dict[str, Any]:
    seconds = sum(end - start for start, end in windows)
    cpu = sum(cpu_seconds(samples, t0 + start, t0 + end) for start, end in windows)
    rps = requests / seconds
    before = [s.rss for s in samples if s.at < t0] or [s.rss for s in samples[:1]]
    during = [s.rss for s in samples if any(t0 + start <= s.at < t0 + end for start, end in windows)]
    loaded = [s.rss for s in samples if s.at >= t0]
    return {
        "cpu_s": round(cpu, 3),
        "vcpu": round(cpu / seconds, 4),
        "vcpu_per_1000rps": round(cpu / seconds / (rps / 1000), 4),
        "rss_mib": {"idle": _mib(np.median(before)) if before else None,
                    "steady": _mib(np.median(during)) if during else None,
                    "peak": _mib(max(loaded)) if loaded else None},
    }


def _mib(value: float) -> float:
    return round(float(value) / MIB, 1)


def _validity(profile: LoadProfile, *, offered: float, achieved: float, median_lag_us: float | None,
              generator_cpu: Mapping[str, float], empty: list[int]) -> list[str]:
    """Why the run is not to be believed; empty when it is valid."""
    invalid = []
    if achieved < profile.min_achieved * offered:
        invalid.append(f"achieved {achieved:.1f} req/s, below {profile.min_achieved:.0%} of the {offered:.1f} req/s "
                       "offered: the generator or the system fell behind the schedule")
    if median_lag_us is not None and median_lag_us > profile.max_median_generator_lag * 1e6:
        invalid.append(f"the generator's own median lag {median_lag_us:.0f} us exceeds "
                       f"{profile.max_median_generator_lag * 1e6:.0f} us: it could not keep to the schedule")
    invalid += [f"generator process {name} used {share:.0%} of a core during the measured blocks (more than "
                f"{profile.max_generator_cpu:.0%}): the generator was the bottleneck"
                for name, share in generator_cpu.items() if share > profile.max_generator_cpu]
    if empty:
        invalid.append(f"measured blocks {empty} have no successful request, so no latency")
    return invalid


def _overhead(latency: Mapping[str, list[Samples]], profile: LoadProfile) -> dict[str, Estimate]:
    estimates = block_bootstrap_quantile_diff(latency[BASELINE], latency[MESH], list(QUANTILES.values()),
                                              confidence=profile.confidence, resamples=profile.resamples,
                                              seed=profile.seed)
    return dict(zip(QUANTILES, estimates.values(), strict=True))


def analyse(run: LoadRun, profile: LoadProfile) -> RateResult:
    plan = run.plan
    records = {record.index: record for record in run.blocks}
    measured = [block for block in plan.blocks if block.measured]
    paths: dict[str, list[Block]] = {target: sorted((b for b in measured if b.target == target),
                                                    key=lambda b: b.pair or 0) for target in (BASELINE, MESH)}
    latency = {target: [samples_us(records[b.index].latency_histogram()) for b in blocks]
               for target, blocks in paths.items()}
    errors = {target: dict(sum((Counter(records[b.index].errors) for b in blocks), Counter()))
              for target, blocks in paths.items()}
    requests = {target: sum(records[b.index].requests for b in blocks) for target, blocks in paths.items()}

    seconds = sum(block.end - block.start for block in measured)
    total = sum(requests.values())
    offered, achieved = total / seconds, total / sum(_span(b, records[b.index]) for b in measured)
    lag = samples_us(merge_histograms(records[b.index].lag for b in measured))
    lag_us = {**quantiles_us(lag), "max": float(lag.max()) if lag.size else None}
    window = (run.t0 + measured[0].start, run.t0 + measured[-1].end)
    generator_cpu = {name: cpu_seconds(samples, *window) / (window[1] - window[0])
                     for name, samples in run.generator.items()}
    empty = [b.index for b in measured if records[b.index].ok == 0]
    invalid = _validity(profile, offered=offered, achieved=achieved, median_lag_us=lag_us["p50"],
                        generator_cpu=generator_cpu, empty=empty)
    overhead = {} if empty else _overhead(latency, profile)
    mesh_windows = [(b.start, b.end) for b in paths[MESH]]
    entry = {
        "profile": profile.name,
        "target_rps": plan.rate,
        "achieved_rps": round(achieved, 1),
        "duration_s": round(seconds / 2, 3),  # per path
        "baseline_us": quantiles_us(np.concatenate(latency[BASELINE])),
        "mesh_us": quantiles_us(np.concatenate(latency[MESH])),
        "overhead_us": {name: {"value": round(e.value, 1), "ci": [round(e.lo, 1), round(e.hi, 1)]}
                        for name, e in overhead.items()},
        "generator_lag_us": lag_us,
        "proxy": {name: _proxy_cost(samples, run.t0, mesh_windows, requests[MESH])
                  for name, samples in run.proxies.items()},
        "valid": not invalid,
        # The raw data behind the quantiles, so that `meshproof compare` can test a change between two runs
        # on it (meshproof.stats.two_run_overhead_change): per path, block pair i's successful latencies.
        "latency_blocks": {"encoding": BLOCK_ENCODING,
                           **{target: [records[b.index].latency for b in blocks] for target, blocks in paths.items()}},
    }
    evidence = {
        "offered_rps": round(offered, 1),
        "requests": requests,
        "ok": {target: sum(records[b.index].ok for b in blocks) for target, blocks in paths.items()},
        "errors": errors,
        "queued_for_a_connection": {target: sum(records[b.index].queued for b in blocks)
                                    for target, blocks in paths.items()},
        "generator_cpu_of_a_core": {name: round(share, 3) for name, share in generator_cpu.items()},
        "blocks": [[b.index, b.target, records[b.index].requests, *_block_quantiles(samples)]
                   for target, blocks in paths.items() for b, samples in zip(blocks, latency[target], strict=True)],
        "blocks_columns": ["block", "path", "requests", "p50_us", "p99_us"],
        "locust_own_stats": dict(run.locust_stats),
        "confidence": profile.confidence,
        "resamples": profile.resamples,
        "wall_s": round(run.wall_s, 1),
    }
    return RateResult(entry, overhead, tuple(invalid), errors, evidence)


def _block_quantiles(samples: Samples) -> list[float | None]:
    if samples.size == 0:
        return [None, None]
    return [float(v) for v in np.quantile(samples, [0.5, 0.99], method="inverted_cdf")]
