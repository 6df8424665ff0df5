"""The load suite on real Istio: the latency the local Istio mesh's proxies add over the app alone, under
the default load profile, with the proxies' CPU and memory. Solo, as the load check itself."""

import json
from pathlib import Path

import pytest

from tests.helpers import run_meshproof
from tests.istio_local import require_local_istio


@pytest.mark.solo
def test_the_load_check_passes_on_real_istio_and_records_the_overhead(tmp_path: Path) -> None:
    require_local_istio()
    out = tmp_path / "out"
    done = run_meshproof("run", "--mesh", "istio", "--cluster", "local", "--only", "load", "--out", str(out),
                         state_dir=tmp_path / "state", timeout=1800)
    results = json.loads((out / "results.json").read_text())
    [check] = results["checks"]
    assert check["status"] == "passed", check["message"]
    assert done.returncode == 0, done.stderr
    assert results["run"]["backend"] == "istio-local"
    for entry in results["load"]:
        assert entry["valid"] and set(entry["overhead_us"]) >= {"p50", "p99"}
        assert len(entry["proxy"]) == 2  # the caller's and the server's Envoy, started by pilot-agent
