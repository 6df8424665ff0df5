"""The plan of one load run at one rate, and the arithmetic of open-model timing.

A `Plan` says which path each time block loads (baseline and mesh alternate, ABBA, after a warm-up on
each), when every request is due (constant or Poisson arrivals, seeded, so every generator process
computes the same global schedule and takes its own share of it), and what each request looks like.
The meshproof side builds it and writes it as JSON; the Locust side (meshproof.load.generator) reads it.

`account()` is the whole latency definition of a request; see its docstring. This module sends nothing
and imports no Locust.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

BASELINE = "baseline"
MESH = "mesh"


@dataclass(frozen=True)
class Target:
    url: str  # scheme://host:port, without a path
    host: str  # the Host header


@dataclass(frozen=True)
class Block:
    """A time slice [start, end) s after the run's t0 in which every due request goes to `target`."""

    index: int
    target: str
    start: float
    end: float
    pair: int | None  # measured blocks: which (baseline, mesh) pair they belong to; None during warm-up

    @property
    def measured(self) -> bool:
        return self.pair is not None


@dataclass(frozen=True)
class Plan:
    rate: float
    arrival: str
    seed: int
    blocks: tuple[Block, ...]
    targets: Mapping[str, Target]
    paths: tuple[str, ...]
    method: str
    headers: Mapping[str, str]
    body_bytes: int
    connections: int
    workers: int
    request_timeout: float
    workers_timeout: float  # a master waits this long for its workers to connect
    startup_timeout: float  # the generator imports Locust, connects its workers and spawns its users within this

    @property
    def length(self) -> float:
        return self.blocks[-1].end

    @property
    def pairs(self) -> int:
        return sum(block.target == BASELINE for block in self.blocks if block.measured)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        return cls(**{
            **data,
            "blocks": tuple(Block(**block) for block in data["blocks"]),
            "targets": {name: Target(**target) for name, target in data["targets"].items()},
            "paths": tuple(data["paths"]),
        })

    def arrivals(self) -> npt.NDArray[np.float64]:
        """Every request's due time, s after t0, in order: the global schedule all processes share."""
        return arrivals(self.rate, self.length, self.arrival, self.seed)

    def block_of(self, due: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        starts = np.array([block.start for block in self.blocks])
        return np.asarray(np.searchsorted(starts, due, side="right") - 1, dtype=np.int64)


def layout(*, warmup: float, block_length: float, pairs: int) -> tuple[Block, ...]:
    """`warmup` s on each path, then `pairs` pairs of blocks; pair i runs baseline first when i is even and
    mesh first when odd (ABBA), so a drift that is linear in time weighs on both paths equally."""
    blocks: list[Block] = []
    clock = 0.0

    def add(target: str, length: float, pair: int | None) -> None:
        nonlocal clock
        blocks.append(Block(len(blocks), target, clock, clock + length, pair))
        clock += length

    if warmup > 0:
        add(BASELINE, warmup, None)
        add(MESH, warmup, None)
    for pair in range(pairs):
        for target in ((BASELINE, MESH) if pair % 2 == 0 else (MESH, BASELINE)):
            add(target, block_length, pair)
    return tuple(blocks)


def series(target: str, *, block_length: float, until: float) -> tuple[Block, ...]:
    """Back-to-back blocks of `block_length` on one path until `until`: a time series rather than a comparison
    (a chaos experiment's load; no block belongs to a baseline/mesh pair)."""
    count = math.ceil(until / block_length)
    return tuple(Block(index, target, index * block_length, (index + 1) * block_length, None) for index in range(count))


def arrivals(rate: float, until: float, arrival: str, seed: int) -> npt.NDArray[np.float64]:
    """Due times in [0, until): every 1/rate s, or a Poisson process of that rate (exponential gaps)."""
    if arrival == "constant":
        return np.arange(math.ceil(until * rate), dtype=np.float64) / rate  # i / rate: no accumulated rounding
    if arrival != "poisson":
        raise ValueError(f"unknown arrival process {arrival!r}")
    rng = np.random.default_rng(seed)
    expected = until * rate
    gaps = rng.exponential(1 / rate, size=math.ceil(expected + 10 * math.sqrt(expected) + 10))
    due = np.cumsum(gaps)
    while due[-1] < until:  # a draw more than 10 standard deviations short: extend, still seeded
        due = np.concatenate([due, due[-1] + np.cumsum(rng.exponential(1 / rate, size=due.size))])
    return due[due < until]


def share(count: int, worker: int, workers: int) -> npt.NDArray[np.int64]:
    """The request indices generator process `worker` of `workers` sends: every workers-th, from its own."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker index {worker} out of range for {workers} workers")
    return np.arange(worker, count, workers, dtype=np.int64)


def account(*, due: float, released: float, ready: float, response_time: float) -> tuple[float, float]:
    """(latency, scheduling lag) of one request, in seconds on one monotonic clock.

    `due`: its scheduled time; `released`: when the generator's clock released it (never before `due`);
    `ready`: when a connection (a Locust user) became free to take it; `response_time`: from sending it
    to the end of its response (Locust's own measure).

    - Queueing = max(0, ready - due): the request was due but every connection was still busy with an
      earlier, slow request. That is the system's doing and *is* latency: it is what a closed-loop
      generator omits (coordinated omission), and why a stall shows in the tail here.
    - Latency = queueing + response_time. The time between max(due, ready) and the send is the
      generator's own (its timer, its greenlet switches) and is not latency.
    - Scheduling lag = released - due: how late the generator's clock was. It is reported, and a run
      whose median lag is large is invalid: a generator that cannot keep up releases ever later.
    """
    return max(0.0, ready - due) + response_time, released - due
