"""Whatever happens to a run, nothing it started survives it: a failed start, Ctrl-C, SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meshproof import scenario
from meshproof.backends.host.ports import BLOCK_SIZE, PortBlock
from meshproof.backends.local.hook import load_hook
from meshproof.backends.local.mesh import LocalMesh
from meshproof.errors import ConfigRejected
from meshproof.processes import wait_until
from meshproof.profile import Profile
from meshproof.runs import RunDir, leftover_runs, processes_of
from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR
from tests.helpers import MESHPROOF, run_meshproof


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESHPROOF_STATE_DIR", str(tmp_path))
    return tmp_path


def test_a_failing_start_stops_what_it_started(state_dir: Path) -> None:
    mesh = LocalMesh(Profile(), hook=load_hook("tests.hooks:broken_bootstrap"))
    with pytest.raises(ConfigRejected, match=r"the Envoy of api-gateway-0 exited with code 1: .*not-a-port"):
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
    assert processes_of(state_dir) == []
    assert list(state_dir.glob("run-*")) == []  # keys and configs are gone too


@contextmanager
def _stalled_run(state_dir: Path, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `meshproof run` that stalls in its first check; killed whatever the test does with it."""
    env = {**os.environ, "MESHPROOF_STATE_DIR": str(state_dir)}
    env.pop("CI", None)
    out.mkdir()
    with open(out.parent / "runner.log", "wb") as log:
        runner = subprocess.Popen(
            [*MESHPROOF, "run", "--only", "mtls", "--out", str(out),
             "--envoy-config-hook", "tests.hooks:stall_after_startup"],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        yield runner
    finally:
        if runner.poll() is None:  # the test failed before it stopped the runner: do not leave it behind
            runner.kill()
            runner.wait()


def _wait_for_mesh(state_dir: Path, runner: subprocess.Popen[bytes], log: Path) -> None:
    expected = sum(w.replicas for w in scenario.WORKLOADS) * 2
    assert wait_until(lambda: len(processes_of(state_dir)) >= expected or runner.poll() is not None, timeout=60)
    assert runner.poll() is None, log.read_text()
    time.sleep(1.0)  # into the first check's reset, where the hook stalls


def test_ctrl_c_stops_every_process_and_writes_the_partial_results(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with _stalled_run(state_dir, out) as runner:
        _wait_for_mesh(state_dir, runner, tmp_path / "runner.log")
        interrupted_at = time.monotonic()
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 130, (tmp_path / "runner.log").read_text()
    assert time.monotonic() - interrupted_at < 10
    assert processes_of(state_dir) == []
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["interrupted"] is True
    assert results["checks"][0]["status"] == "error"
    assert results["checks"][0]["message"] == "interrupted before the check finished"
    assert list(state_dir.glob("run-*")) == []


def test_sigkill_of_the_runner_kills_its_children_and_cleanup_removes_the_rest(state_dir: Path, tmp_path: Path) -> None:
    with _stalled_run(state_dir, tmp_path / "out") as runner:
        _wait_for_mesh(state_dir, runner, tmp_path / "runner.log")
        runner.kill()
        runner.wait()
    assert wait_until(lambda: processes_of(state_dir) == [], timeout=10)  # the kernel's parent-death signal
    assert len(leftover_runs()) == 1  # its keys and configs are still on disk
    done = run_meshproof("cleanup", state_dir=state_dir)
    assert done.returncode == 0 and "removed run-" in done.stdout
    assert list(state_dir.glob("run-*")) == []
    assert "nothing to clean up" in run_meshproof("cleanup", state_dir=state_dir).stdout


def test_cleanup_stops_processes_of_a_dead_run(state_dir: Path) -> None:
    run = RunDir.create("test")
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    import psutil

    run.record_process("orphan", psutil.Process(orphan.pid))
    owner = json.loads((run.path / "owner.json").read_text())
    (run.path / "owner.json").write_text(json.dumps({**owner, "pid": 999999999}))
    done = run_meshproof("cleanup", state_dir=state_dir)
    assert "1 process(es) stopped" in done.stdout
    assert orphan.wait(timeout=10) == -signal.SIGTERM


def test_concurrent_runs_get_disjoint_port_blocks(tmp_path: Path) -> None:
    mine = PortBlock.reserve(tmp_path)
    try:
        code = f"from pathlib import Path; from meshproof.backends.host.ports import PortBlock; " \
               f"print(PortBlock.reserve(Path({str(tmp_path)!r})).start)"
        for _ in range(5):
            other = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
            assert abs(other - mine.start) >= BLOCK_SIZE
    finally:
        mine.release()
