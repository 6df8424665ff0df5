"""Child processes a run starts (Envoy, echo apps), and the guarantee that they all stop.

Three layers, as pytest-xprocess does it: `Supervisor.stop_all()` from fixture teardown (SIGTERM,
then SIGKILL after a grace period); the kernel's parent-death signal, so children die with the runner
even when it is SIGKILLed; and the run directory's process registry for `meshproof cleanup`.

Children get their own process group: Ctrl-C in a terminal then reaches only the runner, which tears
the mesh down in order and still writes its partial results.

PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so processes must be started
from a thread that lives as long as the run (the main thread, in practice); never from a pool.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from meshproof.runs import RUN_DIR_VARIABLE, ProcessRecord, RunDir, kill_processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    record: ProcessRecord

    def exited(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    run: RunDir
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None,
              stdout: Path | None = None, cwd: Path | None = None) -> Child:
        """Start a child in its own process group, tagged with RUN_DIR_VARIABLE in its environment; its
        output goes to `log`, or only its stderr when `stdout` names a file of its own (a CLI's YAML); `cwd`
        for programs that find their files relative to it (pilot-agent's ./etc/certs)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        environment = {**(os.environ if env is None else env), RUN_DIR_VARIABLE: str(self.run.path)}
        with open(log, "ab") as log_file, open(stdout or os.devnull, "wb") as out_file:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file if stdout is None else out_file,
                stderr=subprocess.STDOUT if stdout is None else log_file,
                env=environment,
                cwd=cwd,
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        process = psutil.Process(popen.pid)
        record = ProcessRecord(name, popen.pid, process.create_time())
        self.run.record_process(name, process)
        child = Child(name, popen, log, record)
        self.children[name] = child
        return child

    def stop(self, name: str, *, grace: float = 2.0) -> None:
        child = self.children.pop(name, None)
        if child is not None:
            kill_processes([child.record], grace=grace)
            child.popen.wait()

    def kill(self, name: str) -> None:
        """SIGKILL at once, as a crash would; the child is forgotten."""
        child = self.children.pop(name, None)
        if child is not None:
            child.popen.kill()
            child.popen.wait()

    def stop_all(self, *, grace: float = 2.0) -> None:
        children = list(self.children.values())
        self.children.clear()
        kill_processes([child.record for child in children], grace=grace)
        for child in children:
            child.popen.wait()


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate()` until true or `timeout` s pass; True when it came true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
