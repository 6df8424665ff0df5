"""Running a check against a mutant of the local mesh and reading its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.helpers import PROJECT_DIR, run_meshproof


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


def assert_red(results: dict[str, Any], check_id: str, *words: str,
               measured: Mapping[str, Any] | None = None) -> None:
    """The check failed (every param of it, for an id without [param]), its message names the broken property
    (all `words`), and it measured what the break implies (`measured`: a value, or a predicate on the measured
    entry, which holds the value and its context, such as the window it was judged against)."""
    matching = [c for c in results["checks"] if c["id"] == check_id or c["id"].startswith(f"{check_id}[")]
    assert matching, f"no check {check_id} ran: {[c['id'] for c in results['checks']]}"
    green = [(c["id"], c["status"]) for c in matching if c["status"] != "failed"]
    assert not green, f"{check_id} was not red against its mutant: {green}"
    for record in matching:
        message: str = record["message"]
        for word in words:
            assert word.lower() in message.lower(), (f"{record['id']} failed, but its message does not name "
                                                     f"{word!r}: {message}")
        for name, expected in (measured or {}).items():
            assert name in record["measured"], f"{record['id']} did not measure {name}: {record['measured']}"
            entry = record["measured"][name]
            value = entry["value"]
            holds = expected(entry) if callable(expected) else value == expected
            wanted = getattr(expected, "__qualname__", repr(expected))
            assert holds, f"{record['id']} measured {name} = {value!r}, expected {wanted} ({message})"


def suite_check_ids() -> list[str]:
    """Every check id in suites/, as the plugin names them (`capability.name[param]`), from pytest's collection."""
    done = subprocess.run([sys.executable, "-m", "pytest", "suites", "--collect-only", "-q", "-p", "no:xdist"],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    ids = []
    for line in done.stdout.splitlines():
        path, sep, name = line.partition("::test_")
        if sep:
            ids.append(f"{Path(path).stem.removeprefix('test_')}.{name}")
    return ids
