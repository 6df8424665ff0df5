"""The echo apps of this host's workload instances: starting one, and its control API.

The control port is how the test runner acts *as* the workload (`/forward` sends a request from the
app through its proxy), reads what it counted (`/attempts`, `/state`) and sets its behaviour
(`/fault`, `/reset`). See meshproof.workloads.echo for the app itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from meshproof.backends.host.topology import Instance
from meshproof.errors import UserError
from meshproof.processes import Child, Supervisor


class EchoApp:
    def __init__(self, instance: Instance, child: Child, timeout: float) -> None:
        self.instance = instance
        self.child = child
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{instance.control_port}", timeout=timeout)

    @classmethod
    def start(cls, supervisor: Supervisor, instance: Instance, *, outbound: str, logs: Path,
              timeout: float) -> EchoApp:
        """Start the instance's echo app, whose own calls go to `outbound` (its proxy's outbound address)."""
        argv = [sys.executable, "-m", "meshproof.workloads.echo", "--service", instance.service,
                "--version", instance.version, "--instance", instance.name, "--namespace", instance.namespace,
                "--port", str(instance.app_port), "--control-port", str(instance.control_port),
                "--outbound", outbound]
        child = supervisor.start(f"app-{instance.name}", argv, log=logs / f"app-{instance.name}.log")
        return cls(instance, child, timeout)

    def healthy(self) -> bool:
        if self.child.exited() is not None:
            raise UserError(f"echo app {self.instance.name} exited: {self.child.log_tail(3)}")
        try:
            return self.control.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.control.close()
