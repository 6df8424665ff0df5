"""What a load generator reports per time block: counts and HDR histograms, and how parts are merged.

Latencies and scheduling lags are recorded in HDR histograms (the `hdrhistogram` package) in whole
microseconds with 3 significant digits: exact to 1 us below 2.048 ms, within 0.1% above, up to 10 min.
Each generator process reports its part of a block (`BlockRecord`, JSON with the histograms encoded);
the parts of all processes merge into one record per block. The analysis expands a block's histogram
back into its (microsecond) samples, since the block bootstrap works on raw values.

Not here: sending requests (meshproof.load.generator) or judging them (meshproof.load.analysis).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(histogram: HdrHistogram, seconds: float) -> None:
    """Record a duration in whole microseconds, clamped into the histogram's range."""
    histogram.record_value(min(max(round(seconds * 1e6), 0), HIGHEST_US))


def samples_us(histogram: HdrHistogram) -> npt.NDArray[np.float64]:
    """The recorded values, each repeated by its count, ascending (each bucket's highest equivalent value,
    as the histogram's recorded iterator gives them). Reads the counts array directly: the package's
    iterator is pure Python and took ~0.2 s per 10,000-sample block, which `meshproof compare` pays per block."""
    counts = np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len]
    used = np.flatnonzero(counts)
    values = [histogram.get_highest_equivalent_value(histogram.get_value_from_index(int(i))) for i in used]
    return np.repeat(np.array(values, dtype=np.float64), counts[used].astype(np.int64))


@dataclass
class BlockRecord:
    """One block's results from one generator process, or merged over all of them.

    `requests` counts every request due in the block that finished (all of them, once the block is
    reported), `ok` those with a 2xx answer; `errors` the others by kind ("HTTP 503", "ConnectionResetError");
    `queued` those that had to wait for a free connection. `last_done` is when the block's last response
    ended, s after t0. `latency` (successful requests) and `lag` (all) are encoded HDR histograms.
    """

    index: int
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    last_done: float = 0.0
    latency: str = ""
    lag: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BlockRecord:
        return cls(**data)

    def latency_histogram(self) -> HdrHistogram:
        return merge_histograms([self.latency])


def merge_histograms(encoded: Iterable[str]) -> HdrHistogram:
    merged = new_histogram()
    for text in encoded:
        if text:
            merged.decode_and_add(text)
    return merged


def merge(parts: Iterable[BlockRecord]) -> BlockRecord:
    """One block's parts from several generator processes, as if one process had sent them all."""
    parts = list(parts)
    if not parts or len({part.index for part in parts}) != 1:
        raise ValueError(f"merge needs parts of one block, got blocks {sorted({part.index for part in parts})}")
    errors: Counter[str] = Counter()
    for part in parts:
        errors.update(part.errors)
    return BlockRecord(
        index=parts[0].index,
        requests=sum(part.requests for part in parts),
        ok=sum(part.ok for part in parts),
        errors=dict(errors),
        queued=sum(part.queued for part in parts),
        last_done=max(part.last_done for part in parts),
        latency=encode(merge_histograms(part.latency for part in parts)),
        lag=encode(merge_histograms(part.lag for part in parts)),
    )


def encode(histogram: HdrHistogram) -> str:
    return str(histogram.encode().decode("ascii"))


class BlockCollector:
    """One generator process's share of every block, accumulated request by request.

    `expected` maps each block index to the number of requests this process sends in it. `finished()`
    returns the block's record once its last request has finished (in any order), else None. Blocks
    without any request of this process are reported at once by `empty()`, so a merger never waits for them.
    """

    def __init__(self, expected: Mapping[int, int]) -> None:
        self._expected = dict(expected)
        self._records = {index: BlockRecord(index) for index in self._expected}
        # created on a block's first request and dropped once it is reported: an HDR histogram over 1 us..10 min
        # at 3 digits holds 21,504 counters (172 kB), so only the blocks in flight may have one (a chaos run has
        # hundreds of short blocks)
        self._latency: dict[int, HdrHistogram] = {}
        self._lag: dict[int, HdrHistogram] = {}

    def empty(self) -> list[BlockRecord]:
        return [self._records[index] for index, count in self._expected.items() if count == 0]

    def finished(self, block: int, *, latency: float, lag: float, queued: bool, error: str | None,
                 done: float) -> BlockRecord | None:
        """Account one finished request (seconds; `done` s after t0); `error` None for a 2xx answer."""
        entry = self._records[block]
        entry.requests += 1
        entry.queued += queued
        entry.last_done = max(entry.last_done, done)
        record(self._histogram(self._lag, block), lag)
        latency_histogram = self._histogram(self._latency, block)  # an all-error block reports an empty one
        if error is None:
            entry.ok += 1
            record(latency_histogram, latency)
        else:
            entry.errors[error] = entry.errors.get(error, 0) + 1
        if entry.requests < self._expected[block]:
            return None
        entry.latency, entry.lag = encode(self._latency.pop(block)), encode(self._lag.pop(block))
        return entry

    @staticmethod
    def _histogram(histograms: dict[int, HdrHistogram], block: int) -> HdrHistogram:
        if block not in histograms:
            histograms[block] = new_histogram()
        return histograms[block]
