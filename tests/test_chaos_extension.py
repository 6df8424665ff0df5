"""The Chaos Toolkit extension as Chaos Toolkit sees it: `chaos discover`, `chaos validate`, the experiments."""

import inspect
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshproof.chaos import actions, probes
from meshproof.shipped import shipped
from tests.helpers import PROJECT_DIR

CHAOS = str(Path(__import__("sys").executable).with_name("chaos"))
EXPERIMENTS = sorted(shipped("chaos").glob("*.json"))


def _chaos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHAOS, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_chaos_discover_lists_every_action_and_probe_with_its_arguments_and_docstring(tmp_path: Path) -> None:
    done = _chaos("discover", "--no-install", "--no-system-info", "--discovery-path", str(tmp_path / "d.json"),
                  "meshproof", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = {(a["type"], a["name"]): a for a in json.loads((tmp_path / "d.json").read_text())["activities"]}
    expected = {("action", name) for name in actions.__all__} | {("probe", name) for name in probes.__all__}
    assert set(found) == expected
    for (kind, name), activity in found.items():
        function = getattr(actions if kind == "action" else probes, name)
        parameters = inspect.signature(function).parameters.values()
        assert activity["doc"] and activity["doc"] == inspect.getdoc(function)
        assert [argument["name"] for argument in activity["arguments"]] == [p.name for p in parameters]
        assert all("default" in argument for argument in activity["arguments"]), f"{name}: an argument lacks a default"


def test_every_fault_action_has_its_undo_with_the_same_parameters() -> None:
    assert set(actions.UNDO) | set(actions.UNDO.values()) | set(actions.SETUP) | set(actions.SETUP.values()) == set(
        actions.__all__)
    for fault, undo in actions.UNDO.items():
        assert inspect.signature(getattr(actions, fault)) == inspect.signature(getattr(actions, undo)), fault


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[path.stem for path in EXPERIMENTS])
def test_each_experiment_passes_chaos_validate(path: Path, tmp_path: Path) -> None:
    done = _chaos("validate", str(path), cwd=tmp_path)
    assert done.returncode == 0 and "look valid" in done.stderr + done.stdout, done.stdout + done.stderr


def _calls(activities: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(a["provider"]["func"], a["provider"].get("arguments", {})) for a in activities
            if a["provider"].get("module") == "meshproof.chaos.actions"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[path.stem for path in EXPERIMENTS])
def test_each_experiment_is_measured_sets_up_and_rolls_back_every_action_it_takes(path: Path) -> None:
    experiment = json.loads(path.read_text())
    (control,) = experiment["controls"]
    assert control["provider"]["module"] == "meshproof.chaos.control"
    assert control["provider"]["arguments"]["name"] == path.stem
    method, rollbacks = _calls(experiment["method"]), _calls(experiment["rollbacks"])
    assert method[0][0] in actions.SETUP, "the scenario's intents come first"
    faults = [(func, args) for func, args in method if func in actions.UNDO]
    assert len(faults) == 1, "one fault per experiment: its window is what the measurement is about"
    (fault, arguments), = faults
    assert (actions.UNDO[fault], arguments) in method, "the fault is lifted within the method"
    assert rollbacks == [(actions.UNDO[fault], arguments), (actions.SETUP[method[0][0]], {})]
    probes_used = {p["provider"]["func"] for p in experiment["steady-state-hypothesis"]["probes"]}
    assert probes_used == {"error_rate", "latency"}


def test_the_experiments_are_the_ones_the_readme_lists() -> None:
    readme = (PROJECT_DIR / "chaos" / "README.md").read_text()
    assert len(EXPERIMENTS) >= 6
    assert all(f"`{path.name}`" in readme for path in EXPERIMENTS)
