"""Shared helpers of meshproof's own tests (not fixtures of the suites)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR

MESHPROOF = [sys.executable, "-m", "meshproof"]


def run_meshproof(*args: str, state_dir: Path, timeout: float = 300, env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    """`meshproof ARGS` in a subprocess with its own state directory, as a user would run it."""
    environment = {**os.environ, "MESHPROOF_STATE_DIR": str(state_dir), **(env or {})}
    environment.pop("CI", None)
    return subprocess.run([*MESHPROOF, *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR,
                          env=environment)


def one_error_line(stderr: str) -> str:
    """The single error line a failed run prints; fails the test if there is a traceback or more."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("meshproof: error: "), lines[0]
    return lines[0]
