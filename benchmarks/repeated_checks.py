"""Running suite checks many times outside pytest, on one local mesh, for the benchmarks that count how they
end (false failures of a correct mesh, and catches of a mesh broken by a proportional mutant).

A check is the suite's own test function, called with the fixtures it names (`mesh`, `faults`,
`telemetry` are the mesh itself; `check` a fresh recorder; `profile`) after a reset, exactly as the plugin
would. Its outcome: passed, failed (CheckFailed or an assertion), invalid (CheckInvalid: too noisy or
inconclusive), skipped. The mesh's config hook is a slot that a benchmark may point at a mutant between
runs: the next apply() renders through it, no restart needed.
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from meshproof import scenario
from meshproof.backends.local.mesh import LocalMesh
from meshproof.checks import Check, CheckInvalid
from meshproof.profile import Profile
from meshproof.results import CheckRecord
from meshproof.stats import clopper_pearson

Hook = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class HookSlot:
    """The mesh's --envoy-config-hook, switchable: None leaves every config as rendered."""

    current: Hook | None = None

    def __call__(self, workload: str, config: dict[str, Any]) -> dict[str, Any]:
        return config if self.current is None else self.current(workload, config)


@dataclass(frozen=True)
class SuiteCheck:
    """One check: its id as results.json names it, and how to call it."""

    id: str
    function: Callable[..., None]
    params: dict[str, Any] = field(default_factory=dict)


def suite_check(check_id: str) -> SuiteCheck:
    """`timeouts.an_upstream_...[param]` -> the function in meshproof.suites.test_timeouts and its param value."""
    capability, _, rest = check_id.partition(".")
    name, _, param = rest.partition("[")
    function = getattr(importlib.import_module(f"meshproof.suites.test_{capability}"), f"test_{name}")
    params: dict[str, Any] = {}
    if param:
        for marker in getattr(function, "pytestmark", []):
            if marker.name == "parametrize":
                argname, values = marker.args[0], marker.args[1]
                for value in values:
                    real = value.values[0] if hasattr(value, "values") else value
                    shown = value.id if getattr(value, "id", None) else str(real)
                    if shown == param.rstrip("]"):
                        params[argname] = real
        if not params:
            raise SystemExit(f"{check_id}: no parameter value {param.rstrip(']')!r}")
    return SuiteCheck(check_id, function, params)


def run_once(mesh: LocalMesh, profile: Profile, check: SuiteCheck) -> tuple[str, CheckRecord]:
    """One run of the check on a freshly reset mesh: ('passed'|'failed'|'invalid'|'skipped', its record)."""
    mesh.reset()
    record = CheckRecord(check.id, check.id.split(".", 1)[0], check.id)
    available = {"mesh": mesh, "faults": mesh, "telemetry": mesh, "check": Check(record), "profile": profile,
                 **check.params}
    arguments = {name: available[name] for name in inspect.signature(check.function).parameters}
    try:
        check.function(**arguments)
    except CheckInvalid as exc:
        record.message = str(exc)
        return "invalid", record
    except AssertionError as exc:
        record.message = str(exc)
        return "failed", record
    except pytest.fail.Exception as exc:
        record.message = str(exc)
        return "failed", record
    except pytest.skip.Exception as exc:
        record.message = str(exc)
        return "skipped", record
    return "passed", record


@contextmanager
def local_mesh(profile: Profile, slot: HookSlot | None = None) -> Iterator[LocalMesh]:
    mesh = LocalMesh(profile, hook=slot)
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        yield mesh
    finally:
        mesh.down()


@contextmanager
def other_core_busy(busy: bool) -> Iterator[None]:
    """A process spinning on the other core meanwhile, as under `pytest -n auto`."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        yield
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def rate_line(outcomes: Counter[str], what: str = "failed") -> str:
    """'3/300 failed (1.0%, 95% CI 0.2%..2.9%)' and how many were invalid or skipped."""
    runs = sum(outcomes.values())
    k = outcomes[what]
    low, high = clopper_pearson(k, runs, 0.95) if runs else (0.0, 1.0)
    rest = ", ".join(f"{n} {kind}" for kind, n in sorted(outcomes.items()) if kind not in (what, "passed") and n)
    return (f"{k}/{runs} {what} ({k / runs if runs else 0:.1%}, 95% CI {low:.1%}..{high:.1%})"
            + (f"; {rest}" if rest else ""))
