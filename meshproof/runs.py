"""Run directories: where a run keeps its keys, configs and logs, and how leftovers are found.

Every run owns one directory under the state root (`$MESHPROOF_STATE_DIR`, default
`<tmp>/meshproof`), mode 0700. It records its owner process and every process and external resource
the run starts, so that `meshproof cleanup` can remove what a killed run (SIGKILL, a crashed
interpreter) left behind. A process is identified by pid *and* start time, so a recycled pid is
never killed by mistake.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

STATE_VARIABLE = "MESHPROOF_STATE_DIR"
RUN_DIR_VARIABLE = "MESHPROOF_RUN_DIR"  # set in every child's environment: whose run it belongs to


def state_root() -> Path:
    return Path(os.environ.get(STATE_VARIABLE) or Path(tempfile.gettempdir()) / "meshproof")


def _atomic_write_json(path: Path, payload: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=1))
    os.replace(temporary, path)


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    create_time: float

    def alive(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) < 0.05 and process.status() != psutil.STATUS_ZOMBIE:
                return process
        except psutil.Error:
            pass
        return None


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, label: str) -> RunDir:
        root = state_root()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"run-{time.strftime('%Y%m%d-%H%M%S')}-{label}-", dir=root))
        run = cls(path)
        me = psutil.Process()
        _atomic_write_json(path / "owner.json", {"pid": me.pid, "create_time": me.create_time(), "label": label})
        _atomic_write_json(path / "processes.json", [])
        _atomic_write_json(path / "resources.json", [])
        return run

    def owner(self) -> ProcessRecord | None:
        try:
            data = json.loads((self.path / "owner.json").read_text())
        except (OSError, ValueError):
            return None
        return ProcessRecord("owner", data["pid"], data["create_time"])

    def processes(self) -> list[ProcessRecord]:
        try:
            return [ProcessRecord(**item) for item in json.loads((self.path / "processes.json").read_text())]
        except (OSError, ValueError, TypeError):
            return []

    def record_process(self, name: str, process: psutil.Process) -> None:
        records = [vars(record) for record in self.processes()]
        records.append({"name": name, "pid": process.pid, "create_time": process.create_time()})
        _atomic_write_json(self.path / "processes.json", records)

    def resources(self) -> list[dict[str, str]]:
        try:
            return list(json.loads((self.path / "resources.json").read_text()))
        except (OSError, ValueError):
            return []

    def record_resource(self, kind: str, name: str, **where: str) -> None:
        """An external thing this run created (a kind cluster, a namespace) for cleanup to remove;
        `where`: how to reach it (a namespace's kubeconfig and context)."""
        entry = {"kind": kind, "name": name, **where}
        _atomic_write_json(self.path / "resources.json", [*self.resources(), entry])

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def leftover_runs(*, include_live: bool = False) -> list[RunDir]:
    """Run directories whose owner is gone (or all of them, with include_live)."""
    root = state_root()
    if not root.is_dir():
        return []
    runs = [RunDir(path) for path in sorted(root.glob("run-*")) if path.is_dir()]
    if include_live:
        return runs
    return [run for run in runs if (owner := run.owner()) is None or owner.alive() is None]


def processes_of(root: Path) -> list[psutil.Process]:
    """Live processes started by any run under `root`, found by the run-dir tag in their environment."""
    found = []
    for process in psutil.process_iter():
        try:
            tag = process.environ().get(RUN_DIR_VARIABLE)
        except psutil.Error:
            continue
        if tag and Path(tag).is_relative_to(root) and process.status() != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def kill_processes(records: list[ProcessRecord], *, grace: float = 2.0) -> list[str]:
    """SIGTERM each live process's group, then SIGKILL what is left after `grace` s. Returns names killed."""
    live = [(record, process) for record in records if (process := record.alive()) is not None]
    for _, process in live:
        _signal_group(process, signal.SIGTERM)
    _, still_alive = psutil.wait_procs([process for _, process in live], timeout=grace)
    for process in still_alive:
        _signal_group(process, signal.SIGKILL)
    psutil.wait_procs(still_alive, timeout=grace)
    return [record.name for record, _ in live]


def _signal_group(process: psutil.Process, signum: int) -> None:
    """Children run in their own process group (so Ctrl-C reaches only the runner): signal the group."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
    except (ProcessLookupError, psutil.Error):
        pass
