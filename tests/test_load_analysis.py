"""From blocks to the results entry: overhead with intervals, validity rules, proxy cost, the SLO verdict."""

from typing import Any

import numpy as np
import pytest

from meshproof.load.analysis import MIB, LoadRun, RateResult, SloVerdict, Usage, analyse, quantiles_us
from meshproof.load.blocks import BlockRecord, encode, merge_histograms, new_histogram, record, samples_us
from meshproof.load.profile import LoadProfile
from meshproof.load.schedule import BASELINE, MESH, Plan, Target, layout
from meshproof.stats import Estimate

RATE = 200.0
T0 = 1000.0
PROFILE = LoadProfile(name="unit", rates=[RATE], duration=4.0, blocks=4, warmup=0.0, resamples=500)
ENTRY_KEYS = {"profile", "target_rps", "achieved_rps", "duration_s", "baseline_us", "mesh_us", "overhead_us",
              "generator_lag_us", "proxy", "valid", "latency_blocks"}


def _encoded(values_us: Any) -> str:
    histogram = new_histogram()
    for value in values_us:
        record(histogram, float(value) / 1e6)
    return encode(histogram)


def _usage(cpu_per_s: float, rss_mib: float, *, peak_mib: float | None = None) -> tuple[Usage, ...]:
    """Samples every 50 ms from 1 s before t0 to the end: CPU growing steadily; RSS idle before t0."""
    samples = []
    for at in np.arange(T0 - 1, T0 + PROFILE.duration * 2 + 0.5, 0.05):
        rss = (rss_mib - 2) if at < T0 else rss_mib
        samples.append(Usage(float(at), cpu_per_s * (at - T0 + 1), int(rss * MIB)))
    if peak_mib is not None:
        samples[len(samples) // 2] = Usage(samples[len(samples) // 2].at, samples[len(samples) // 2].cpu_s,
                                           int(peak_mib * MIB))
    return tuple(samples)


def _run(shift_us: float = 250.0, *, late_s: float = 0.0, lag_us: int = 150, generator_cpu: float = 0.3,
         mesh_errors: int = 0, empty_block: int | None = None, seed: int = 3) -> LoadRun:
    """A run at RATE whose mesh blocks are the baseline blocks shifted by `shift_us` (plus noise per block)."""
    plan = Plan(rate=RATE, arrival="constant", seed=0,
                blocks=layout(warmup=0.0, block_length=PROFILE.block_length(), pairs=PROFILE.blocks),
                targets={BASELINE: Target("http://127.0.0.1:1", "svc"), MESH: Target("http://127.0.0.1:2", "svc")},
                paths=("/",), method="GET", headers={}, body_bytes=0, connections=16, workers=0, request_timeout=5.0,
                workers_timeout=30.0, startup_timeout=60.0)
    rng = np.random.default_rng(seed)
    per_block = int(RATE * PROFILE.block_length())
    pair_base = {pair: rng.integers(300, 900, size=per_block) for pair in range(PROFILE.blocks)}
    blocks = []
    for block in plan.blocks:
        assert block.pair is not None
        latency = pair_base[block.pair] + (shift_us if block.target == MESH else 0)
        errors = mesh_errors if block.target == MESH else 0
        ok = 0 if block.index == empty_block else per_block - errors
        blocks.append(BlockRecord(block.index, requests=per_block, ok=ok, errors={"HTTP 503": errors} if errors else {},
                                  last_done=block.end - 0.002 + late_s, latency=_encoded(latency[:ok]),
                                  lag=_encoded([lag_us] * per_block)))
    proxies = {"envoy-client": _usage(0.04, 66.0, peak_mib=70.0), "envoy-server": _usage(0.04, 65.0)}
    return LoadRun(plan, T0, tuple(blocks), proxies, {"locust-local": _usage(generator_cpu, 80.0)},
                   {"requests": 1600}, 9.0)


def test_the_entry_has_exactly_the_documented_shape_and_overhead_is_mesh_minus_baseline() -> None:
    result = analyse(_run(), PROFILE)
    entry = result.entry
    assert set(entry) == ENTRY_KEYS
    assert (entry["profile"], entry["target_rps"], entry["achieved_rps"], entry["duration_s"]) == ("unit", RATE,
                                                                                                     RATE, 4.0)
    for quantile in ("p50", "p90", "p99", "p999"):
        overhead = entry["overhead_us"][quantile]
        assert overhead["value"] == entry["mesh_us"][quantile] - entry["baseline_us"][quantile]
        assert overhead["ci"][0] <= overhead["value"] <= overhead["ci"][1]
    assert set(entry["generator_lag_us"]) == {"p50", "p90", "p99", "p999", "max"}
    assert entry["valid"] is True and result.valid and result.invalid == ()
    blocks = entry["latency_blocks"]  # the raw data behind the quantiles, block pair by block pair
    assert len(blocks["baseline"]) == len(blocks["mesh"]) == PROFILE.blocks
    pooled = np.concatenate([samples_us(merge_histograms([text])) for text in blocks["mesh"]])
    assert quantiles_us(pooled) == entry["mesh_us"]


def test_a_constant_shift_is_measured_exactly_with_a_degenerate_interval() -> None:
    result = analyse(_run(shift_us=250.0), PROFILE)
    for estimate in result.overhead.values():
        assert (estimate.value, estimate.lo, estimate.hi) == (250.0, 250.0, 250.0)


def test_a_backlog_makes_the_run_invalid_because_the_achieved_rate_falls_short() -> None:
    result = analyse(_run(late_s=0.05), PROFILE)  # every block's last response 50 ms after its end: 95%
    assert not result.valid and result.entry["valid"] is False
    assert result.entry["achieved_rps"] == pytest.approx(RATE / 1.048, abs=0.1)
    assert any("below 98% of the 200.0 req/s offered" in reason for reason in result.invalid)


def test_a_late_generator_makes_the_run_invalid() -> None:
    result = analyse(_run(lag_us=5000), PROFILE)  # 5000 us is in HDR's 4 us bucket [5000, 5003]: reads 5003
    assert result.invalid == ("the generator's own median lag 5003 us exceeds 1000 us: it could not keep to the "
                              "schedule",)


def test_a_saturated_generator_process_makes_the_run_invalid() -> None:
    result = analyse(_run(generator_cpu=0.95), PROFILE)
    assert len(result.invalid) == 1 and "locust-local used 95% of a core" in result.invalid[0]


def test_errors_are_counted_per_path_and_kept_out_of_the_latencies() -> None:
    result = analyse(_run(mesh_errors=3), PROFILE)
    assert result.errors == {BASELINE: {}, MESH: {"HTTP 503": 12}}
    assert result.evidence["ok"] == {BASELINE: 800, MESH: 788}
    assert result.valid  # failed requests are the mesh's failure, judged by the check, not a measuring fault


def test_a_block_without_any_successful_request_leaves_no_overhead_and_an_invalid_run() -> None:
    result = analyse(_run(empty_block=3), PROFILE)
    assert result.overhead == {} and result.entry["overhead_us"] == {}
    assert any("measured blocks [3] have no successful request" in reason for reason in result.invalid)


def test_proxy_cost_is_attributed_to_the_mesh_blocks_and_normalised_per_1000_requests_per_second() -> None:
    proxy = analyse(_run(), PROFILE).entry["proxy"]
    assert set(proxy) == {"envoy-client", "envoy-server"}
    client = proxy["envoy-client"]
    assert client["cpu_s"] == pytest.approx(0.04 * 4.0, abs=1e-3)  # 4 s of mesh blocks at 0.04 vCPU
    assert client["vcpu"] == pytest.approx(0.04, abs=1e-4)
    assert client["vcpu_per_1000rps"] == pytest.approx(0.04 / (RATE / 1000), abs=1e-3)
    assert client["rss_mib"] == {"idle": 64.0, "steady": 66.0, "peak": 70.0}


def test_the_slo_is_breached_only_when_the_whole_interval_lies_above_the_limit() -> None:
    estimate = Estimate(value=3000.0, lo=2500.0, hi=3500.0)
    assert SloVerdict("p99", 2000.0, estimate).breached
    assert not SloVerdict("p99", 2500.0, estimate).breached
    assert not SloVerdict("p99", 3200.0, estimate).breached
    result = RateResult({}, {"p99": estimate}, (), {}, {})
    assert [(v.quantile, v.limit_us, v.breached) for v in result.slo({"p99": 0.002})] == [("p99", 2000.0, True)]
