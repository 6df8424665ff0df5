"""Running a check against a mutant of the local mesh and reading its verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_meshproof


def run_mutant(tmp_path: Path, mutant: str, only: str, select: str, *, profile: str = "",
               hook: str = "--envoy-config-hook", hooks: str = "tests.mutants", mesh: tuple[str, ...] = (),
               timeout: float = 300) -> dict[str, Any]:
    """`meshproof run [MESH...] --only ONLY [--profile P] HOOK HOOKS:MUTANT -- -k SELECT`; its results.json.
    `profile` is YAML text for a profile written beside the run."""
    out = tmp_path / "out"
    extra = []
    if profile:
        (tmp_path / "profile.yaml").write_text(profile)
        extra = ["--profile", str(tmp_path / "profile.yaml")]
    done = run_meshproof("run", *mesh, "--only", only, "--out", str(out), hook, f"{hooks}:{mutant}",
                         *extra, "--", "-k", select, state_dir=tmp_path, timeout=timeout)
    assert done.returncode in (0, 1), f"the run itself broke (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    assert results["checks"], f"-k {select} selected no check:\n{done.stdout}"
    return results


def assert_red(results: dict[str, Any], check_id: str, *words: str) -> str:
    """The check (id prefix) failed, and its message names the broken property (all `words`)."""
    matching = [c for c in results["checks"] if c["id"].startswith(check_id)]
    assert matching, f"no check {check_id} ran: {[c['id'] for c in results['checks']]}"
    failed = [c for c in matching if c["status"] == "failed"]
    assert failed, f"{check_id} stayed green against its mutant: {[(c['id'], c['status']) for c in matching]}"
    message: str = failed[0]["message"]
    for word in words:
        assert word.lower() in message.lower(), f"{check_id} failed, but its message does not name {word!r}: {message}"
    return message
