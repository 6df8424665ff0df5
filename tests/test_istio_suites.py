"""Every suite runs on real Istio: unmodified istiod from its Go module (built on first use) watching a
local kube-apiserver, pilot-agent and Envoy per instance, the manifests meshproof renders for a cluster
applied unchanged.

One `meshproof run --mesh istio --cluster local` over every capability but load (tests/test_istio_load.py),
chaos included (its experiments under load, with the faults this mesh has), as a user would run it. Every
check must pass, except those Istio cannot express or this mesh cannot inject, which must be reported
not_supported with the declared reason. It runs alone (`solo`): its timing windows are measured on an
idle mesh, and the canary's seed route (1 s timeout, 0.3 s per try) lost ~0.1% of its requests to 504s
when three meshes shared the two cores.
"""

import json
from pathlib import Path

import pytest

from meshproof.backends.istio.local.mesh import LocalIstio
from meshproof.capabilities import CAPABILITIES
from meshproof.runs import processes_of
from tests.helpers import run_meshproof
from tests.istio_local import require_local_istio

SELECTED = [capability for capability in CAPABILITIES if capability != "load"]


@pytest.mark.solo
def test_every_suite_passes_on_real_istio(tmp_path: Path) -> None:
    require_local_istio()
    out = tmp_path / "out"
    done = run_meshproof("run", "--mesh", "istio", "--cluster", "local", "--only", ",".join(SELECTED),
                         "--out", str(out), state_dir=tmp_path / "state", timeout=3000)
    results = json.loads((out / "results.json").read_text())
    run = results["run"]
    assert run["backend"] == "istio-local" and run["cluster"] == "local"
    assert run["istiod"]["version"] == "1.31-dev" and run["istiod"]["status"] == "Clean"
    assert run["istio_module"] == "v0.0.0-20260827124520-eed52ebb66ad"
    failed = [(c["id"], c["status"], c["message"]) for c in results["checks"] if c["status"] not in ("passed",
                                                                                                     "not_supported")]
    assert not failed, f"checks failed on real Istio (exit {done.returncode}):\n" + "\n".join(map(str, failed))
    assert done.returncode == 0, done.stderr
    reasons = {c["message"] for c in results["checks"] if c["status"] == "not_supported"}
    assert all(any(reason in message for reason in LocalIstio.unsupported.values()) for message in reasons), reasons
    assert {c["capability"] for c in results["checks"]} == set(SELECTED)
    assert processes_of(tmp_path / "state") == []
    assert list((tmp_path / "state").glob("run-*")) == []
    assert (out / "logs" / "istiod.log").is_file()
