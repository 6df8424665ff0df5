"""Real load runs, short: Locust in its own processes against the local mesh, against nothing, and interrupted.

Structure and accounting only: no timing number is asserted (these run under `pytest -n auto` with
everything else; benchmarks/load_benchmarks.py is where performance is measured).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshproof import runs, scenario
from meshproof.backend import LoadSetup, LoadTarget
from meshproof.backends.local.mesh import LocalMesh
from meshproof.intent import Retry, Route, RouteRule
from meshproof.load.driver import LoadGeneratorError, build_plan, measure_rate, run_plan
from meshproof.load.profile import LoadProfile
from meshproof.load.schedule import BASELINE, MESH, Plan
from meshproof.profile import Profile
from tests.test_load_analysis import ENTRY_KEYS

SHORT = LoadProfile(name="test", rates=[100.0], duration=2.0, blocks=2, warmup=0.5, connections=4,
                    request_timeout=2.0, resamples=200)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run directories (and so every process a run starts) under tmp_path; none may survive the test."""
    monkeypatch.setenv(runs.STATE_VARIABLE, str(tmp_path))
    yield tmp_path
    assert runs.processes_of(tmp_path) == []
    assert not list(tmp_path.glob("run-*-load-*"))


def _nowhere() -> LoadSetup:
    """Both paths on a port nothing listens on: every request is refused at once."""
    target = LoadTarget("http://127.0.0.1:9", "order-service.default")
    return LoadSetup(baseline=target, mesh=target, proxies={})


@pytest.mark.usefixtures("state_dir")
def test_a_master_and_a_worker_load_the_local_mesh_and_report_every_request() -> None:
    mesh = LocalMesh(Profile())
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        mesh.apply([*scenario.BASELINE, Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100},
                                                                                 retries=Retry(0)),))])
        setup = mesh.load_setup(scenario.API_GATEWAY, scenario.ORDER_SERVICE, "v2")
        shown: list[str] = []
        result = measure_rate(setup, LoadProfile(**{**vars(SHORT), "workers": 1}), 100.0, progress=shown.append)
    finally:
        mesh.down()
    entry = result.entry
    assert set(entry) == ENTRY_KEYS
    assert (entry["target_rps"], entry["duration_s"]) == (100.0, 2.0)
    expected = int(100 * SHORT.duration)
    assert result.evidence["requests"] == {BASELINE: expected, MESH: expected}
    assert result.evidence["ok"] == {BASELINE: expected, MESH: expected}, result.errors
    assert set(result.evidence["generator_cpu_of_a_core"]) == {"locust-master", "locust-worker-0"}
    assert set(entry["proxy"]) == set(setup.proxies)
    assert set(entry["overhead_us"]) == {"p50", "p90", "p99", "p999"}
    assert all(proxy["rss_mib"]["steady"] > 0 for proxy in entry["proxy"].values())
    assert "baseline block 1/2 at 100 req/s" in shown and "mesh block 2/2 at 100 req/s" in shown


@pytest.mark.usefixtures("state_dir")
def test_refused_requests_are_counted_as_errors_and_the_run_still_ends() -> None:
    result = measure_rate(_nowhere(), SHORT, 50.0)
    assert result.evidence["ok"] == {BASELINE: 0, MESH: 0}
    assert result.errors[BASELINE] == result.errors[MESH] == {"ConnectionRefusedError": 100}
    assert result.entry["overhead_us"] == {} and not result.valid


def test_an_interrupted_run_stops_every_process_it_started(state_dir: Path) -> None:
    def interrupt(text: str) -> None:
        assert runs.processes_of(state_dir), "the generator should be running"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_rate(_nowhere(), SHORT, 50.0, progress=interrupt)


@pytest.mark.usefixtures("state_dir")
def test_an_internal_error_in_the_generator_ends_the_run_at_once_with_its_log() -> None:
    plan = build_plan(SHORT, 50.0, _nowhere(), {})
    broken = Plan.from_json(plan.to_json().replace('"paths": ["/api/v1/orders/1"]', '"paths": []'))
    with pytest.raises(LoadGeneratorError, match=r"(?s)before it finished \(exit codes: locust-local 70\).*ZeroDiv"):
        run_plan(broken, {})
