"""Per-block HDR histograms: exact below 2 ms, merged across generator processes as if one had sent everything."""

import numpy as np
import pytest

from meshproof.load.blocks import (
    HIGHEST_US,
    BlockCollector,
    BlockRecord,
    encode,
    merge,
    merge_histograms,
    new_histogram,
    record,
    samples_us,
)


def _histogram(values_us: list[int]) -> str:
    histogram = new_histogram()
    for value in values_us:
        record(histogram, value / 1e6)
    return encode(histogram)


def test_values_below_2048_us_come_back_exactly_and_larger_ones_within_a_tenth_of_a_percent() -> None:
    values = [1, 7, 150, 150, 2047, 5000, 123456]
    back = samples_us(merge_histograms([_histogram(values)]))
    assert list(back[:5]) == [1, 7, 150, 150, 2047]
    assert back[5:] == pytest.approx([5000, 123456], rel=1e-3)


def test_durations_outside_the_range_are_clamped_not_lost() -> None:
    histogram = new_histogram()
    record(histogram, -0.001)
    record(histogram, 3600.0)
    assert histogram.get_total_count() == 2
    assert samples_us(histogram)[0] == 0 and samples_us(histogram)[1] >= HIGHEST_US


def test_an_empty_histogram_has_no_samples() -> None:
    assert samples_us(new_histogram()).size == 0
    assert samples_us(BlockRecord(0).latency_histogram()).size == 0


def test_a_block_is_handed_over_when_its_last_request_finished() -> None:
    collector = BlockCollector({0: 3, 1: 0})
    assert [record.index for record in collector.empty()] == [1]
    assert collector.finished(0, latency=0.0005, lag=0.0001, queued=False, error=None, done=0.2) is None
    assert collector.finished(0, latency=0.9, lag=0.0, queued=True, error="HTTP 503", done=0.9) is None
    block = collector.finished(0, latency=0.0007, lag=0.0002, queued=False, error=None, done=0.4)
    assert block is not None
    assert (block.requests, block.ok, block.errors, block.queued, block.last_done) == (3, 2, {"HTTP 503": 1}, 1, 0.9)
    assert list(samples_us(block.latency_histogram())) == [500, 700]  # failed requests have no latency
    assert list(samples_us(merge_histograms([block.lag]))) == [0, 100, 200]  # but every request has a lag


def test_merging_parts_equals_recording_everything_in_one_process() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(50, 50_000, size=3000)
    parts = [BlockRecord(4, requests=len(chunk), ok=len(chunk), errors={"HTTP 503": i}, queued=i, last_done=1.0 + i,
                         latency=_histogram(list(chunk)), lag=_histogram([1] * len(chunk)))
             for i, chunk in enumerate(np.array_split(values, 3))]
    merged = merge(parts)
    assert (merged.index, merged.requests, merged.ok, merged.errors, merged.queued, merged.last_done) == (
        4, 3000, 3000, {"HTTP 503": 3}, 3, 3.0)
    assert np.array_equal(samples_us(merged.latency_histogram()),
                          samples_us(merge_histograms([_histogram(list(values))])))
    assert merge_histograms([merged.lag]).get_total_count() == 3000


def test_parts_of_different_blocks_do_not_merge() -> None:
    with pytest.raises(ValueError, match=r"parts of one block, got blocks \[1, 2\]"):
        merge([BlockRecord(1), BlockRecord(2)])


def test_a_record_survives_its_json_form() -> None:
    block = BlockRecord(3, requests=2, ok=1, errors={"ConnectionRefusedError": 1}, latency=_histogram([10]))
    assert BlockRecord.from_json(block.to_json()) == block
