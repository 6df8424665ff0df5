"""load: under open-model load, the mesh adds less latency than the load profile's SLO, measured validly.

Reference: the seed's claims (Linkerd adds ~1 ms, Istio ~2-3 ms) and Istio's benchmark method: a
client in the calling workload sends at a constant rate either straight to the server app (baseline)
or through its own proxy, mTLS and the server's proxy (mesh); overhead = mesh - baseline at p50, p90,
p99 and p99.9. Here Locust stands in for api-gateway and loads order-service v2 (one replica, pinned
by a route without retries), baseline and mesh blocks interleaved in one run (meshproof.load).
Latency counts from each request's due time, so a stall or a backlog shows instead of being omitted.

One check loops over the profile's rates rather than one check per rate: the rates must never run at
the same time (under `pytest -n auto` xdist may hand parametrised checks to different workers, each
with its own mesh, and two load runs on one 2-core machine corrupt each other's numbers), and the
profile naming the rates is then read when the check runs, not when pytest collects. Every rate is
measured and recorded (results.json's `load` list) before the verdict, which names each failing rate.
"""

from collections.abc import Mapping

import pytest

from meshproof import scenario
from meshproof.backend import Backend, LoadTargets
from meshproof.checks import Check
from meshproof.intent import Retry, Route, RouteRule
from meshproof.load.analysis import RateResult
from meshproof.load.driver import measure_rate
from meshproof.load.profile import LoadProfile, load_load_profile
from meshproof.profile import Profile

# solo: the measurement needs the machine to itself; the test command runs it after the parallel part
pytestmark = [pytest.mark.capability("load"), pytest.mark.solo]

CALLER = scenario.API_GATEWAY
VERSION = "v2"
PINNED = Route(scenario.ORDER_SERVICE, (RouteRule(splits={VERSION: 100}, retries=Retry(0)),))


@pytest.fixture(scope="session")
def load_profile(profile: Profile) -> LoadProfile:
    """The load profile the run's profile names (`load.profile`: loadprofiles/<name>.yaml or a path); read
    before the mesh comes up (first in the check's arguments), so a bad one fails the check at once."""
    return load_load_profile(profile.load.profile)


def _criterion(load: LoadProfile) -> str:
    slo = ", ".join(f"{quantile} < {limit * 1000:g} ms" for quantile, limit in load.slo.items())
    return (f"load profile {load.name}: at each of {', '.join(f'{r:g}' for r in load.rates)} req/s "
            f"({load.arrival} arrivals, {load.connections} connections, {load.payload_bytes} B payload), "
            f"{load.duration:g}s per path in {load.blocks} interleaved block pairs after {load.warmup:g}s of warm-up: "
            f"the run is valid (achieved >= {load.min_achieved:.0%} of the offered rate, median generator lag <= "
            f"{load.max_median_generator_lag * 1000:g} ms, no generator process above {load.max_generator_cpu:.0%} "
            f"of a core), every request succeeds, and the SLO holds: {slo}, breached when the "
            f"{load.confidence:.0%} paired block-bootstrap interval of the overhead (mesh - baseline latency) "
            f"lies wholly above the limit (a mesh at the limit fails at most {(1 - load.confidence) / 2:.1%} of runs)")


def _measure(check: Check, rate: float, result: RateResult, slo: Mapping[str, float]) -> None:
    entry = result.entry
    at = f"at_{rate:g}rps"
    check.measure(f"achieved_{at}", entry["achieved_rps"], "req/s", target=rate, valid=entry["valid"])
    lag = entry["generator_lag_us"]
    check.measure(f"generator_lag_p50_{at}", lag["p50"], "us", p99=lag["p99"], max=lag["max"])
    judged = sorted(entry["overhead_us"], key=lambda quantile: quantile in slo)  # the verdict's values last
    for quantile in judged:
        overhead = entry["overhead_us"][quantile]
        check.measure(f"overhead_{quantile}_{at}", overhead["value"], "us", ci=overhead["ci"],
                      baseline=entry["baseline_us"][quantile], mesh=entry["mesh_us"][quantile])


def _errors(rate: float, result: RateResult) -> str | None:
    failed = {path: sum(kinds.values()) for path, kinds in result.errors.items()}
    if not any(failed.values()):
        return None
    sent = result.evidence["requests"]
    return f"at {rate:g} req/s " + ", ".join(
        f"the {path} path failed {failed[path]} of {sent[path]} requests ({dict(result.errors[path])})"
        for path in result.errors if failed[path])


def test_the_mesh_adds_less_latency_than_the_slo_under_open_model_load(
    load_profile: LoadProfile, mesh: Backend, load_targets: LoadTargets, check: Check
) -> None:
    """At each rate of the load profile the run is valid and the mesh's latency overhead is below the SLO."""
    mesh.apply([*scenario.BASELINE, PINNED])
    setup = load_targets.load_setup(CALLER, scenario.ORDER_SERVICE, VERSION)
    check.criterion(_criterion(load_profile))
    results = {}
    for rate in load_profile.rates:
        result = measure_rate(setup, load_profile, rate, progress=check.progress)
        check.record_load(result.entry)
        check.evidence({"rate": rate, "invalid": list(result.invalid), **result.evidence})
        _measure(check, rate, result, load_profile.slo)
        results[rate] = result
    errors = [text for rate, result in results.items() if (text := _errors(rate, result))]
    check.expect(not errors, f"load: requests failed under load: {'; '.join(errors)}")
    invalid = [f"at {rate:g} req/s: {'; '.join(result.invalid)}" for rate, result in results.items() if result.invalid]
    check.expect(not invalid, f"load: the measurement is invalid, its numbers are not to be believed: "
                              f"{' | '.join(invalid)}")
    confidence = f"{load_profile.confidence:.0%} CI"
    breaches = [f"at {rate:g} req/s the mesh adds {v.quantile} {v.estimate.value:.0f} us ({confidence} "
                f"[{v.estimate.lo:.0f}, {v.estimate.hi:.0f}] us), wholly above the SLO of {v.limit_us:.0f} us"
                for rate, result in results.items() for v in result.slo(load_profile.slo) if v.breached]
    check.expect(not breaches, f"load SLO: {'; '.join(breaches)}")
