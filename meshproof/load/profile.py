"""Load profiles (loadprofiles/*.yaml): the rates, durations, request shape and verdict thresholds of a load run.

`Profile.load.profile` names one: a file in loadprofiles/ by stem (`default`, `published-grid`) or a path.
Loading is as strict as the main profile's (meshproof.profile.load_yaml_as): an unknown key, a wrong type
or an inconsistent value is one line naming the file and the key. The defaults of `LoadProfile` *are*
loadprofiles/default.yaml. This module only describes and validates; it starts nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from meshproof.profile import Duration, load_named
from meshproof.shipped import shipped

LOADPROFILES_DIR = shipped("loadprofiles")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
"""The overhead quantiles reported in results.json, by their names there."""
ARRIVALS = ("constant", "poisson")
MIN_REQUESTS_PER_BLOCK = 10
"""Every block needs some requests of its own: the bootstrap resamples whole blocks, and an empty one has no
quantiles. Ten is a floor against typos (a rate in req/min), not a recommendation."""


@dataclass(frozen=True)
class LoadProfile:
    """One load run per rate; each measures the baseline and the mesh path in interleaved time blocks.

    `duration` is measured time *per path* at each rate, cut into `blocks` blocks per path; the paths
    alternate block by block (baseline, mesh, mesh, baseline, ...) after `warmup` on each path, so one
    rate takes 2 x (warmup + duration). `payload_bytes` go both ways, as with fortio's echo in Istio's
    benchmark (1 kB): the request body of a POST, and the size of the app's reply (0: GETs with the
    app's default reply). `connections` is the client's connection pool: 16 is Istio's benchmark
    setting; a request finding all of them busy waits, and that wait counts as latency.
    """

    name: str = "default"
    description: str = "200 and 1000 req/s, 10 s per path each: what a 2-core machine sustains with a margin"
    rates: list[float] = field(default_factory=lambda: [200.0, 1000.0])
    duration: Duration = 10.0
    blocks: int = 10
    warmup: Duration = 1.0
    arrival: str = "constant"  # or "poisson": exponential gaps with the same mean, seeded by `seed`
    connections: int = 16
    payload_bytes: int = 1024
    paths: list[str] = field(default_factory=lambda: ["/api/v1/orders/1"])
    workers: int = 0  # 0: Locust's local runner in one process; N >= 1: a Locust master and N worker processes
    request_timeout: Duration = 10.0
    startup_timeout: Duration = 60.0  # for the generator to import Locust, connect its workers and spawn its users
    workers_timeout: Duration = 30.0  # a Locust master waits this long for its workers to connect
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    # Validity: a run whose generator fell behind says so instead of reporting numbers.
    min_achieved: float = 0.98  # achieved / offered rate
    max_median_generator_lag: Duration = 0.001  # the generator's own lateness (meshproof.load.schedule.account)
    max_generator_cpu: float = 0.9  # of one core, per generator process: Locust's own CPU warning threshold
    # The verdict: overhead quantile -> limit; breached when its whole confidence interval lies above the limit.
    # Derived from a correct local mesh on a 2-core machine (everything on the same two cores): p50 overhead
    # 0.8-0.9 ms (interval ends <= 1.03 ms) at 200 and 1000 req/s, 1.35 ms [1.20, 1.46] at 200 req/s with a
    # whole `pytest -n auto` beside it: 3 ms is over twice the worst. p99 2.1 ms [1.4, 3.2] at 200 and 4.4 ms
    # [2.8, 6.3] at 1000 req/s (the tail is CPU contention between the generator, two proxies and the app):
    # 10 ms is over 3.5 times the interval's lower end, which the verdict compares. Defaults that catch a
    # gross regression here; to test a published claim on a real cluster, set your own.
    slo: dict[str, Duration] = field(default_factory=lambda: {"p50": 0.003, "p99": 0.010})

    def validate(self) -> None:
        if not self.rates or any(not (math.isfinite(rate) and rate > 0) for rate in self.rates):
            raise ValueError(f"rates must be positive requests per second, got {self.rates}")
        if self.duration <= 0 or self.blocks < 2:
            raise ValueError("duration must be positive and blocks >= 2 (the bootstrap resamples blocks)")
        per_block = min(self.rates) * self.duration / self.blocks
        if per_block < MIN_REQUESTS_PER_BLOCK:
            raise ValueError(f"at {min(self.rates):g} req/s a block of {self.duration / self.blocks:g}s holds "
                             f"{per_block:.1f} requests; give each block at least {MIN_REQUESTS_PER_BLOCK} "
                             "(a longer duration or fewer blocks)")
        if self.arrival not in ARRIVALS:
            raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, got {self.arrival!r}")
        if self.connections < 1 or self.payload_bytes < 0 or self.workers < 0 or self.request_timeout <= 0:
            raise ValueError("connections >= 1, payload_bytes >= 0, workers >= 0 and request_timeout > 0 are required")
        if self.workers > self.connections:
            raise ValueError(f"{self.workers} workers share {self.connections} connections (one Locust user each): "
                             "every worker sends its share of the schedule and needs at least one")
        if not self.paths or any(not path.startswith("/") for path in self.paths):
            raise ValueError(f"paths must be absolute request paths like /api/v1/orders/1, got {self.paths}")
        if not 0 < self.confidence < 1 or self.resamples < 100:
            raise ValueError("confidence lies strictly between 0 and 1, and resamples must be >= 100")
        if not 0 < self.min_achieved <= 1 or self.max_median_generator_lag <= 0 or not 0 < self.max_generator_cpu <= 1:
            raise ValueError("min_achieved and max_generator_cpu are fractions in (0, 1]; max_median_generator_lag > 0")
        unknown = sorted(set(self.slo) - set(QUANTILES))
        if unknown or any(limit <= 0 for limit in self.slo.values()):
            raise ValueError(f"slo maps overhead quantiles ({', '.join(QUANTILES)}) to positive durations, "
                             f"got {self.slo}")

    def block_length(self) -> float:
        return self.duration / self.blocks


def load_load_profile(spec: str) -> LoadProfile:
    """The load profile `spec` names (`Profile.load.profile`); a UserError naming the file and key otherwise."""
    return load_named(LoadProfile, spec, LOADPROFILES_DIR, what="load profile")
