"""The state file of the mesh that `meshproof up` started: one per state root (`$MESHPROOF_STATE_DIR`).

Written by the daemon (atomically, like every file of a run directory), read by `status`, `down` and
attaching processes. The daemon is identified by pid *and* start time, so a recycled pid is never
mistaken for it; a file whose daemon is gone is *stale*, and every reader says so in one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshproof.errors import UserError
from meshproof.runs import ProcessRecord, state_root


def state_file() -> Path:
    return state_root() / "up.json"


@dataclass
class UpState:
    pid: int
    create_time: float
    mesh: str
    profile: str
    log: str
    status: str = "starting"  # starting | ready | failed
    error: str = ""
    control_url: str = ""
    started: str = ""
    run: dict[str, Any] = field(default_factory=dict)  # the backend's describe()
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)  # instance -> what -> address
    unsupported: dict[str, str] = field(default_factory=dict)

    def daemon(self) -> ProcessRecord:
        return ProcessRecord("meshproof-up", self.pid, self.create_time)

    def alive(self) -> bool:
        return self.daemon().alive() is not None

    def write(self) -> None:
        path = state_file()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        os.replace(temporary, path)


def read_state() -> UpState | None:
    """The recorded mesh, live or stale; None when nothing was recorded."""
    try:
        data = json.loads(state_file().read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(f"{state_file()}: unreadable mesh state ({exc}); remove it, then meshproof cleanup") from None
    return UpState(**data)


def live_state() -> UpState:
    """The running mesh; UserError in one line when there is none, or only a stale record of one."""
    state = read_state()
    if state is None:
        raise UserError("no mesh is up: start one with meshproof up")
    if not state.alive():
        raise UserError(f"the mesh recorded in {state_file()} is not running (its daemon, pid {state.pid}, is gone): "
                        "meshproof down removes the record and its leftovers")
    if state.status != "ready":
        raise UserError(f"the mesh of pid {state.pid} is {state.status}{': ' + state.error if state.error else ''}")
    return state


def remove_state() -> None:
    state_file().unlink(missing_ok=True)

