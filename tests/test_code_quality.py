"""The house rules that tools can check: ruff, mypy --strict and the import-linter layer contracts."""

import subprocess
import sys
from pathlib import Path

import pytest

from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["mypy"],
        ["lint-imports"],
    ],
    ids=["ruff", "mypy", "import-linter"],
)
def test_the_code_passes(command: list[str]) -> None:
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
