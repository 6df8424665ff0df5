"""The command-line tools a cluster run drives (kind, docker, istioctl, linkerd): each call an argv value
built in one place, and one way to run it.

A `Command` is the argv, what it is for (in words, for messages) and how long it may take. `run()`
starts it under the run's Supervisor (its own process group, killed with the runner even on SIGKILL,
recorded for `meshproof cleanup`), writes its stderr to `logs/<name>.log` and its stdout to a file
beside it, and returns the stdout. A tool that fails or overruns is one UserError line: what meshproof
was doing, the exit code, the last line the tool printed that says something, and where its log is.
Tests check the argv values themselves; nothing here runs a tool that is not on PATH.
"""

from __future__ import annotations

import itertools
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from meshproof.errors import PrerequisiteError, UserError
from meshproof.processes import Supervisor

_SERIAL = itertools.count(1)


@dataclass(frozen=True)
class Command:
    name: str  # names the log files: logs/<name>.log (stderr) and logs/<name>.out (stdout)
    argv: tuple[str, ...]
    purpose: str  # "create the kind cluster meshproof-3f2a1c", for the error message
    timeout: float

    def line(self) -> str:
        """The command as a person would type it."""
        return " ".join(part if part and " " not in part else repr(part) for part in self.argv)


def run(command: Command, supervisor: Supervisor, logs: Path) -> str:
    """Run `command` to completion; its stdout. UserError when it fails or takes longer than its timeout."""
    if shutil.which(command.argv[0]) is None:
        raise PrerequisiteError(f"cannot {command.purpose}: {command.argv[0]} is not on PATH "
                                "(meshproof doctor says how to get it)")
    stem = f"{command.name}-{next(_SERIAL)}"
    log, out = logs / f"{stem}.log", logs / f"{stem}.out"
    child = supervisor.start(stem, command.argv, log=log, stdout=out)
    deadline = time.monotonic() + command.timeout
    while (code := child.exited()) is None:
        if time.monotonic() > deadline:
            supervisor.stop(stem)
            raise UserError(f"cannot {command.purpose}: `{command.line()}` did not finish within "
                            f"{command.timeout:g} s (its log: {log})")
        time.sleep(0.1)
    supervisor.children.pop(stem, None)
    if code != 0:
        raise UserError(f"cannot {command.purpose}: `{command.argv[0]}` exited {code}: {last_said(log)} "
                        f"(its log: {log})")
    return out.read_text(errors="replace")


def last_said(log: Path) -> str:
    """The last line of a tool's output with words in it (not a progress spinner or a blank)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "no output"
    said = [line for line in lines if any(char.isalpha() for char in line)]
    return said[-1][:300] if said else "no output"


@dataclass(frozen=True)
class Runner:
    """`run()` bound to one run's Supervisor and log directory: what every lifecycle step calls."""

    supervisor: Supervisor
    logs: Path

    def __call__(self, command: Command) -> str:
        return run(command, self.supervisor, self.logs)
