"""`meshproof up`, `status`, `down`, and a second process attached to the running mesh."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshproof.runs import processes_of
from tests.helpers import one_error_line, run_meshproof

ATTACHED = """
import json
from meshproof.attach.remote import connect
from meshproof.backend import Request
from meshproof.faults import AppError, ProxyCrash
from meshproof.intent import MtlsMode, MtlsPolicy, Route, RouteRule

mesh = connect()
seen = {}
response = mesh.call("api-gateway", Request("order-service", "/api/v1/orders/1"))
seen["status"], seen["identity"] = response.status, str(mesh.observed_identity(response).identity)
v2 = mesh.instances("order-service", version="v2")[0]
broken = mesh.inject(AppError(503), v2)
seen["faulted"] = dict(mesh.call_batch("api-gateway", Request("order-service", "/"), count=40).version_statuses)
broken.undo()
seen["healed"] = dict(mesh.call_batch("api-gateway", Request("order-service", "/"), count=40).version_statuses)
mesh.inject(ProxyCrash(), v2)
mesh.apply([MtlsPolicy(MtlsMode.STRICT), Route("order-service", (RouteRule(splits={"v2": 100}),))])
seen["crashed"] = mesh.call("api-gateway", Request("order-service", "/")).status
seen["undone"] = mesh.undo(ProxyCrash(), v2)
seen["restarted"] = mesh.call("api-gateway", Request("order-service", "/")).status
seen["undone_twice"] = mesh.undo(ProxyCrash(), v2)
mesh.reset()
print(json.dumps(seen))
"""


@pytest.fixture
def mesh_up(tmp_path: Path) -> Iterator[Path]:
    done = run_meshproof("up", state_dir=tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        yield tmp_path
    finally:
        run_meshproof("down", state_dir=tmp_path)
        assert processes_of(tmp_path) == []


def test_a_second_process_calls_faults_and_heals_the_running_mesh(mesh_up: Path) -> None:
    status = run_meshproof("status", state_dir=mesh_up)
    assert status.returncode == 0 and "order-service-v2-0" in status.stdout and "proxy admin" in status.stdout
    attached = subprocess.run([sys.executable, "-c", ATTACHED], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "MESHPROOF_STATE_DIR": str(mesh_up)})
    assert attached.returncode == 0, attached.stderr
    seen = json.loads(attached.stdout)
    assert seen["status"] == 200 and seen["identity"] == "cluster.local/ns/default/sa/api-gateway"
    assert seen["faulted"].get("v2 503", 0) > 0 and "v2 200" not in seen["faulted"]
    assert seen["healed"].get("v2 200", 0) > 0 and "v2 503" not in seen["healed"]
    assert seen["crashed"] == 503  # every request pinned to v2, whose proxy is down
    assert seen["undone"] is True and seen["restarted"] == 200 and seen["undone_twice"] is False


def test_up_twice_is_one_line(mesh_up: Path) -> None:
    again = run_meshproof("up", state_dir=mesh_up)
    assert again.returncode == 2
    assert "a local mesh is already up" in one_error_line(again.stderr)


def test_down_stops_everything(mesh_up: Path) -> None:
    assert processes_of(mesh_up) != []
    done = run_meshproof("down", state_dir=mesh_up)
    assert done.returncode == 0 and "local mesh down" in done.stdout
    assert processes_of(mesh_up) == [] and not (mesh_up / "up.json").exists()


@pytest.mark.parametrize("command", ["down", "status"])
def test_nothing_up_is_one_line(tmp_path: Path, command: str) -> None:
    done = run_meshproof(command, state_dir=tmp_path)
    assert done.returncode == 2
    assert "no mesh is up" in one_error_line(done.stderr)


def test_a_stale_record_is_named_and_down_removes_it(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "up.json").write_text(json.dumps({"pid": gone.pid, "create_time": 1.0, "mesh": "local",
                                                  "profile": "default", "log": "", "status": "ready"}))
    for command in ("status", "up"):
        done = run_meshproof(command, state_dir=tmp_path)
        assert done.returncode == 2
        assert "no longer running" in one_error_line(done.stderr) or "is gone" in done.stderr
    done = run_meshproof("down", state_dir=tmp_path)
    assert done.returncode == 0 and "was no longer running; removed its record" in done.stdout
    assert not (tmp_path / "up.json").exists()


def test_a_mesh_that_cannot_start_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    done = run_meshproof("up", "--envoy-config-hook", "tests.hooks:broken_bootstrap", state_dir=tmp_path,
                         timeout=180)
    assert done.returncode == 2
    assert "did not come up" in one_error_line(done.stderr) and "not-a-port" in done.stderr
    assert processes_of(tmp_path) == [] and not (tmp_path / "up.json").exists()
