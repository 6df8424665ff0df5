"""A fault injected while the mesh ignores the resilience intents turns the matching chaos check red.

`meshproof run --only chaos --envoy-config-hook tests.chaos_mutants:resilience_ignored -- -k CHECK`: the
experiment applies retries and outlier detection as always, the mutant drops them from every config,
so killing a v1 app costs about half the requests and the check must say the fault was not absorbed.
`solo`: the experiment runs under load.
"""

import json
from pathlib import Path

import pytest

from tests.helpers import run_meshproof
from tests.mutation import assert_red

CHECK = "a_dead_or_refusing_v1_endpoint_is_absorbed_by_retries_and_outlier_detection[kill-v1-app]"


@pytest.mark.solo
def test_killing_a_v1_app_goes_red_when_the_mesh_ignores_the_resilience_intents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_meshproof("run", "--only", "chaos", "--out", str(out), "--envoy-config-hook",
                         "tests.chaos_mutants:resilience_ignored", "--", "-k", CHECK, state_dir=tmp_path)
    assert done.returncode == 1, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
    results = json.loads((out / "results.json").read_text())
    assert_red(results, f"chaos.{CHECK}", "kill-v1-app", "not absorbed", "HTTP 503")
    (entry,) = results["chaos"]
    assert entry["check"] == f"chaos.{CHECK}" and Path(entry["journal"]).is_file()
    assert entry["metrics"]["error_rate_during_fault"]["value"] > 0.25  # about half go to the dead endpoint
