"""The load schedule: block layout, arrivals, shares between generator processes, and open-model accounting."""

import itertools

import numpy as np
import pytest

from meshproof.load.schedule import BASELINE, MESH, Plan, Target, account, arrivals, layout, share


def test_blocks_follow_a_warm_up_on_each_path_then_alternate_abba() -> None:
    blocks = layout(warmup=1.0, block_length=0.5, pairs=4)
    assert [(b.target, b.pair) for b in blocks] == [
        (BASELINE, None), (MESH, None),
        (BASELINE, 0), (MESH, 0), (MESH, 1), (BASELINE, 1), (BASELINE, 2), (MESH, 2), (MESH, 3), (BASELINE, 3),
    ]  # fmt: skip
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert all(a.end == b.start for a, b in itertools.pairwise(blocks))
    assert blocks[0].start == 0 and blocks[-1].end == pytest.approx(2 * 1.0 + 8 * 0.5)
    assert not any(b.measured for b in blocks[:2]) and all(b.measured for b in blocks[2:])


def test_without_warm_up_the_first_block_is_measured() -> None:
    blocks = layout(warmup=0.0, block_length=1.0, pairs=2)
    assert [(b.target, b.pair, b.start) for b in blocks] == [(BASELINE, 0, 0.0), (MESH, 0, 1.0), (MESH, 1, 2.0),
                                                            (BASELINE, 1, 3.0)]


def test_constant_arrivals_are_exactly_one_interval_apart() -> None:
    due = arrivals(1000.0, 2.0, "constant", seed=0)
    assert due.size == 2000
    assert due[0] == 0.0 and due[999] == 0.999 and due[-1] == 1.999  # i / rate, no accumulated rounding
    assert np.allclose(np.diff(due), 0.001)


def test_poisson_arrivals_are_seeded_and_have_the_asked_rate() -> None:
    due = arrivals(500.0, 20.0, "poisson", seed=7)
    assert np.array_equal(due, arrivals(500.0, 20.0, "poisson", seed=7))
    assert not np.array_equal(due, arrivals(500.0, 20.0, "poisson", seed=8))
    assert (np.diff(due) > 0).all() and due[-1] < 20.0
    # 10000 expected arrivals: the count is Poisson, within 6 standard deviations (100) of 10000
    assert abs(due.size - 10000) < 600


def test_an_unknown_arrival_process_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown arrival process 'bursty'"):
        arrivals(10.0, 1.0, "bursty", seed=0)


def test_generator_processes_share_the_schedule_without_overlap() -> None:
    shares = [share(10, worker, 3) for worker in range(3)]
    assert [list(s) for s in shares] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError, match="worker index 3 out of range for 3 workers"):
        share(10, 3, 3)


def _plan() -> Plan:
    return Plan(rate=100.0, arrival="constant", seed=0, blocks=layout(warmup=0.5, block_length=1.0, pairs=2),
                targets={BASELINE: Target("http://127.0.0.1:1", "svc"), MESH: Target("http://127.0.0.1:2", "svc")},
                paths=("/a", "/b"), method="GET", headers={"x-echo-body-size": "10"}, body_bytes=0, connections=4,
                workers=0, request_timeout=5.0, workers_timeout=30.0, startup_timeout=60.0)


def test_a_plan_survives_its_json_form() -> None:
    plan = _plan()
    assert Plan.from_json(plan.to_json()) == plan
    assert plan.length == 5.0 and plan.pairs == 2


def test_each_due_time_falls_in_the_block_that_contains_it() -> None:
    plan = _plan()
    assert list(plan.block_of(np.array([0.0, 0.49, 0.5, 1.0, 1.99, 2.0, 4.99]))) == [0, 0, 1, 2, 2, 3, 5]


def test_a_request_on_a_free_connection_has_its_response_time_as_latency() -> None:
    latency, lag = account(due=10.0, released=10.0, ready=9.0, response_time=0.002)
    assert latency == pytest.approx(0.002) and lag == 0.0


def test_a_late_generator_is_reported_as_lag_and_not_counted_as_latency() -> None:
    latency, lag = account(due=10.0, released=10.003, ready=9.0, response_time=0.002)
    assert latency == pytest.approx(0.002) and lag == pytest.approx(0.003)


def test_waiting_for_a_busy_connection_counts_as_latency() -> None:
    latency, lag = account(due=10.0, released=10.0001, ready=10.5, response_time=0.002)
    assert latency == pytest.approx(0.502) and lag == pytest.approx(0.0001)


def _one_connection(service: list[float], interval: float) -> tuple[list[float], list[float]]:
    """A constant-rate schedule over one connection: (open-model latencies, closed-loop response times)."""
    free_at, latencies = 0.0, []
    for number, took in enumerate(service):
        due = number * interval
        latency, _ = account(due=due, released=due, ready=free_at, response_time=took)
        latencies.append(latency)
        free_at = max(due, free_at) + took  # sent when due, or as soon as the connection is free
    return latencies, service


def test_a_stall_shows_in_every_request_it_held_up_not_only_in_the_stalled_one() -> None:
    service = [0.001] * 10 + [1.0] + [0.001] * 189  # one 1 s stall in 2 s at 100 req/s
    latencies, closed_loop = _one_connection(service, interval=0.01)
    held_up = [latency for latency in latencies[11:] if latency > 0.01]
    assert len(held_up) >= 98  # the ~100 requests due during the stall waited for it
    assert max(latencies[11:]) == pytest.approx(1.0 - 0.01 + 0.001)
    assert np.quantile(latencies, 0.9) > 0.5  # open model: the stall holds up half the run
    assert np.quantile(closed_loop, 0.99) == pytest.approx(0.001)  # closed loop: one slow request, invisible at p99
