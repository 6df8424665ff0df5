"""results.json: the source of truth of a run (schema `meshproof/results/v1`).

One file per run: run metadata, then one record per check with what it measured (values with units
and uncertainty), the criterion it was judged by, and its evidence. It is rewritten atomically after
every check, so a run that fails or is interrupted still leaves a valid, partial file. JUnit, the
terminal summary and any other report are rendered *from* this file.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import meshproof

SCHEMA = "meshproof/results/v1"
STATUSES = ("passed", "failed", "skipped", "error")


@dataclass
class CheckRecord:
    id: str
    capability: str
    title: str
    status: str = "error"
    message: str | None = None
    measured: dict[str, Any] = field(default_factory=dict)
    criterion: str = ""
    evidence: list[Any] = field(default_factory=list)
    duration_s: float = 0.0
    unsupported: bool = False  # skipped because the mesh cannot express what the check needs
    features: list[str] = field(default_factory=list)  # needed beyond the capability: extended, not core


@dataclass
class Results:
    path: Path | None
    run: dict[str, Any]
    checks: list[CheckRecord] = field(default_factory=list)
    load: list[dict[str, Any]] = field(default_factory=list)
    chaos: list[dict[str, Any]] = field(default_factory=list)
    _started_monotonic: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, path: Path | None, *, mesh: str, profile: str) -> Results:
        run = {
            "mesh": mesh,
            "mesh_version": None,
            "backend": None,
            "profile": profile,
            "meshproof_version": meshproof.__version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": 0.0,
            "host": {"name": socket.gethostname(), "cpus": os.cpu_count(), "python": platform.python_version(),
                     "platform": platform.platform()},
            "interrupted": False,
        }
        return cls(path, run)

    def to_json(self) -> dict[str, Any]:
        self.run["duration_s"] = round(time.monotonic() - self._started_monotonic, 3)
        return {
            "schema": SCHEMA,
            "run": self.run,
            "checks": [asdict(check) for check in self.checks],
            "load": self.load,
            "chaos": self.chaos,
        }

    def write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2, default=_jsonable))
        os.replace(temporary, self.path)

    def counts(self) -> dict[str, int]:
        return {status: sum(check.status == status for check in self.checks) for status in STATUSES}


def _jsonable(value: Any) -> Any:
    """Evidence may hold enums, paths, sets and dataclasses; store them readably instead of failing."""
    if hasattr(value, "value") and not isinstance(value, type):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def load_results(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a meshproof results file (schema {data.get('schema')!r})")
    return data
