"""The nightly workflow users copy (.github/workflows/nightly.yml) is valid GitHub Actions, checked by actionlint
(built from its Go module through meshproof's builder, pinned in tools/controlplane/actionlint), and every
meshproof command it runs is one meshproof's own parser accepts. (It cannot run here: no Docker, no internet.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshproof import builds
from meshproof.cli import _parser
from meshproof.shipped import CHECKOUT_DIR

WORKFLOW = CHECKOUT_DIR / ".github" / "workflows" / "nightly.yml"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return builds.ensure_built(builds.component("actionlint"))


def lint(actionlint: Path, workflow: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes integrations off: not installed here, and the result must not depend on the machine
    return subprocess.run([str(actionlint), "-no-color", "-shellcheck=", "-pyflakes=", str(workflow)],
                          capture_output=True, text=True, timeout=120)


def test_actionlint_finds_nothing_wrong_with_the_nightly_workflow(actionlint: Path) -> None:
    done = lint(actionlint, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ("runs-on: ubuntu-24.04\n    timeout-minutes: 120", "runs-onn: ubuntu-24.04\n    timeout-minutes: 120",
     'unexpected key "runs-onn"'),
    ("name: results-${{ matrix.run }}", "name: results-${{ matrix.runs }}", 'property "runs" is not defined'),
    ("needs: suite", "needs: suites", 'job "gate" needs job "suites" which does not exist'),
])
def test_actionlint_would_catch_a_broken_copy(actionlint: Path, tmp_path: Path, old: str, new: str,
                                              complaint: str) -> None:
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github" / "workflows" / "nightly.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    done = lint(actionlint, broken)
    assert done.returncode == 1 and complaint in done.stdout, done.stdout + done.stderr


def _steps(workflow: dict[str, Any], job: str) -> dict[str, Any]:
    return {step.get("name", step.get("uses")): step for step in workflow["jobs"][job]["steps"]}


def _meshproof_commands(script: str) -> list[list[str]]:
    """Every `.venv/bin/meshproof ...` command of a step, placeholders filled, as argv after `meshproof`."""
    filled = re.sub(r"\$\{\{[^}]*\}\}", "X", script.replace("\\\n", " "))
    filled = re.sub(r'"\$\{?[A-Z0-9_]+\}?"|\$[A-Z0-9_]+', "X", filled)
    commands = []
    for line in filled.splitlines():
        if ".venv/bin/meshproof " in line:
            words = shlex.split(line.split(".venv/bin/meshproof ", 1)[1].split(">")[0].split("||")[0].split("|")[0])
            commands.append(words)
    return commands


def test_the_matrix_runs_both_istio_versions_and_linkerd_on_kind_and_the_gate_compares_them() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runs = [(entry["run"], entry["mesh"]) for entry in workflow["jobs"]["suite"]["strategy"]["matrix"]["include"]]
    assert runs == [("istio-current", "istio"), ("istio-candidate", "istio"), ("linkerd", "linkerd")]
    suite = _steps(workflow, "suite")
    (run,) = _meshproof_commands(suite["The suites on kind"]["run"])
    assert run[:5] == ["run", "--mesh", "X", "--cluster", "kind"] and "--mesh-version" in run
    assert suite["Results"]["if"] == "always()" and suite["Whatever a killed run left (kind clusters included)"]
    gate = _steps(workflow, "gate")
    gate_commands = [c for step in gate.values() if "run" in step for c in _meshproof_commands(step["run"])]
    assert ["compare", "reports/results-istio-current", "reports/results-istio-candidate", "--format", "markdown",
            "--fail-on-regression"] in gate_commands
    assert "GITHUB_STEP_SUMMARY" in gate["Istio vs Linkerd (the job summary)"]["run"]


def test_every_meshproof_command_of_the_workflow_is_one_meshproof_parses() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    commands = [command for job in workflow["jobs"] for step in workflow["jobs"][job]["steps"] if "run" in step
                for command in _meshproof_commands(step["run"])]
    assert {command[0] for command in commands} == {"doctor", "run", "cleanup", "compare"}
    for command in commands:
        _parser().parse_args(command)  # argparse exits (SystemExit) on a flag meshproof does not have
