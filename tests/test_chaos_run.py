"""Stock `chaos run chaos/<each>.json` against `meshproof up`: every experiment runs on its own, measures itself into
its journal, and leaves the mesh as it found it (the baseline's intents, every instance answering, no fault in force).

`solo`: each experiment puts 200 req/s of load on the machine for ~15 s.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshproof.runs import processes_of
from meshproof.shipped import shipped
from tests.helpers import run_meshproof

pytestmark = pytest.mark.solo

CHAOS = str(Path(sys.executable).with_name("chaos"))
EXPERIMENTS = sorted(shipped("chaos").glob("*.json"))

MESH_STATE = """
import json
from meshproof.attach.remote import connect
from meshproof.backend import Request
mesh = connect()
tally = mesh.call_batch("api-gateway", Request("order-service", "/api/v1/orders/1"), count=80, concurrency=4)
print(json.dumps({"intents": mesh.diagnostics()["intents"], "statuses": dict(tally.statuses),
                  "instances": sorted(tally.instances)}))
"""


def _mesh_state(state_dir: Path) -> dict[str, Any]:
    """The intents in force and who answers 80 requests to order-service (all four instances, round robin)."""
    done = subprocess.run([sys.executable, "-c", MESH_STATE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MESHPROOF_STATE_DIR": str(state_dir)})
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@pytest.fixture(scope="module")
def mesh_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("state")
    done = run_meshproof("up", state_dir=state_dir, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield state_dir
    finally:
        run_meshproof("down", state_dir=state_dir)
        assert processes_of(state_dir) == []


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[path.stem for path in EXPERIMENTS])
def test_chaos_run_measures_the_experiment_and_leaves_the_mesh_as_it_found_it(mesh_up: Path, path: Path,
                                                                               tmp_path: Path) -> None:
    found = _mesh_state(mesh_up)
    assert found["statuses"] == {"200": 80} and len(found["instances"]) == 4, found
    journal_path = tmp_path / "journal.json"
    done = subprocess.run([CHAOS, "run", "--journal-path", str(journal_path), str(path)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env={**os.environ, "MESHPROOF_STATE_DIR": str(mesh_up)})
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "completed", done.stdout + done.stderr
    (extension,) = [e for e in journal.get("extensions", []) if e["name"] == "meshproof"]
    entry = extension["chaos"]
    assert entry["experiment"] == path.stem and entry["timeline"]["rows"]
    assert "meshproof: " in done.stderr + done.stdout  # the measurement's gist in chaos's own log
    if entry["steady_states"]["before"]["met"]:  # a machine too busy for the steady state never injects the fault
        assert entry["fault"] is not None and entry["phases"]["during"]["requests"] > 0
        assert all(run["status"] == "succeeded" for run in journal["run"] + journal["rollbacks"]), journal["run"]
    assert _mesh_state(mesh_up) == found
