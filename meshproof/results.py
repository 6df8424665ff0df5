"""results.json: the source of truth of a run (schema `meshproof/results/v2`, published as the JSON Schema
meshproof/results.schema.json).

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
from meshproof.errors import UserError

SCHEMA = "meshproof/results/v2"
#: not_supported: the mesh cannot express a feature the check exercises (the message says which and why);
#: skipped: the check did not run for another reason (e.g. a solo check beside other checks)
STATUSES = ("passed", "failed", "skipped", "not_supported", "error")
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


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
    features: list[str] = field(default_factory=list)  # what the check exercises (meshproof.features)


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
            "unsupported_features": {},
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
    """A results file, checked against the published schema; UserError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read it: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc}): was the run's file truncated? Give the results.json of a "
                        "meshproof run") from None
    if isinstance(data, dict) and data.get("schema") == SCHEMA_V1:
        data = upgrade_v1(data)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise UserError(f"{path} is not a meshproof results file of schema {SCHEMA} (schema {found!r})")
    problems = schema_errors(data)
    if problems:
        raise UserError(f"{path} does not match {SCHEMA}: {problems[0]}")
    return data


SCHEMA_V1 = "meshproof/results/v1"


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """An archived v1 file in the v2 shape, so reports and compare read old runs: a check skipped because the
    mesh could not express it (v1's `unsupported: true`) is `not_supported`; v1 recorded no features."""
    checks = []
    for check in data.get("checks", []):
        upgraded = {key: value for key, value in check.items() if key != "unsupported"}
        if check.get("unsupported") and check.get("status") == "skipped":
            upgraded["status"] = "not_supported"
        upgraded.setdefault("features", [])
        checks.append(upgraded)
    run = {"unsupported_features": {}, **data.get("run", {})}
    return {**data, "schema": SCHEMA, "run": run, "checks": checks}


def schema_errors(data: Any) -> list[str]:
    """What in `data` breaks the published JSON Schema (empty when it is a valid results file)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]
