"""One Envoy sidecar of the local mesh: its process, its xDS files, and the wait until it serves them.

Configuration is delivered the way a control plane does it, as xDS, but from files: each kind
(clusters, listeners, inbound routes, outbound routes) is a DiscoveryResponse in its own watched
directory, replaced atomically (write, then rename). Envoy hot-reloads it. A push is *served* when
the sidecar's own stats report its version (`<kind>.version_text`), and *refused* as soon as one of the
kind's counters `update_rejected` (the config parsed but Envoy refused it: an unknown field, a value out
of its range) or `update_failure` (the file could not be read as the proto at all: an integer that does
not fit, a malformed value) moves instead; the reason is taken from the Envoy log. A listener change is
served only once the old filter chains have drained (measured: until then an open connection is
still handled by the old chain).

Why hot reload and not restart: restarts would cut every open connection and reset outlier and
rate-limit state on *all* settings changes, which no real mesh does; xDS updates are what
Istio users see, propagation delay included.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshproof.backends.host.envoy import EnvoyAdmin
from meshproof.backends.host.topology import Instance
from meshproof.backends.local.render import XDS_KINDS, SidecarFiles
from meshproof.errors import ConfigRejected
from meshproof.processes import Child, Supervisor

_STATS = {
    "cds": "cluster_manager.cds",
    "lds": "listener_manager.lds",
    "rds_inbound": "http.inbound.rds.inbound",
    "rds_outbound": "http.outbound.rds.outbound",
}
_DRAINING = ("listener_manager.total_listeners_draining", "listener_manager.total_filter_chains_draining")


def version_of(response: dict[str, Any]) -> str:
    """A content hash: pushing the same config twice is a no-op, and reverting restores the old version."""
    payload = json.dumps(response, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


#: The counters by which a config subscription says it refused an update, and how to say so.
_REFUSALS = {"update_rejected": "rejected", "update_failure": "could not load"}


@dataclass
class Pending:
    """A version written for one kind; `refused_before`: the refusal counters before it (a process that
    has just started has refused nothing yet)."""

    kind: str
    version: str
    refused_before: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_REFUSALS, 0))


class Sidecar:
    def __init__(self, instance: Instance, files: SidecarFiles, *, envoy: Path, concurrency: int,
                 drain_time_s: int, admin_timeout: float) -> None:
        self.instance = instance
        self.files = files
        self.envoy = envoy
        self.concurrency = concurrency
        self.drain_time_s = drain_time_s
        self.versions: dict[str, str] = {}
        self.admin = EnvoyAdmin(instance.name, instance.admin_port, timeout=admin_timeout)
        for kind in XDS_KINDS:
            files.xds_file(kind).parent.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        return f"envoy-{self.instance.name}"

    def start(self, supervisor: Supervisor, bootstrap: dict[str, Any], log: Path) -> None:
        path = self.files.xds_dir / "bootstrap.json"
        path.write_text(json.dumps(bootstrap, indent=1))
        argv = [
            str(self.envoy), "-c", str(path),
            "--disable-hot-restart",  # many Envoys on one host; no shared memory between them
            "--concurrency", str(self.concurrency),
            "--drain-time-s", str(self.drain_time_s),
            "--drain-strategy", "immediate",
            "--reject-unknown-dynamic-fields",  # a typo in a hook must fail, not be ignored
            "--log-level", "warning",
        ]
        self.admin.child = supervisor.start(self.name, argv, log=log)

    # --- config ---------------------------------------------------------------------------------------
    def write(self, kind: str, response: dict[str, Any]) -> Pending | None:
        """Write a DiscoveryResponse unless the sidecar already has it; returns what to wait for."""
        version = version_of(response)
        if self.versions.get(kind) == version:
            return None
        pending = Pending(kind, version)
        if self.admin.answering():  # counted before the write, so a refusal of this version shows as a rise
            pending.refused_before = self._refusals(kind)
        path = self.files.xds_file(kind)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps({"version_info": version, **response}, indent=1))
        os.replace(temporary, path)
        self.versions[kind] = version
        return pending

    def served(self, pending: Pending) -> bool:
        """True when the version is served; raises ConfigRejected, with Envoy's reason, as soon as Envoy
        refused it (rejected it, or could not load it at all)."""
        self.check_alive()
        stats = self.stats(_STATS[pending.kind], *_DRAINING)
        prefix = _STATS[pending.kind]
        if stats.get(f"{prefix}.version_text") == pending.version:
            return pending.kind != "lds" or all(stats.get(name) == "0" for name in _DRAINING)
        for counter, verb in _REFUSALS.items():
            if int(stats.get(f"{prefix}.{counter}", "0")) > pending.refused_before[counter]:
                self.versions.pop(pending.kind, None)
                raise ConfigRejected(
                    f"sidecar of {self.instance.name} {verb} its {pending.kind} config: {self.rejection_reason()}"
                )
        return False

    def _refusals(self, kind: str) -> dict[str, int]:
        stats = self.stats(_STATS[kind])
        return {counter: int(stats.get(f"{_STATS[kind]}.{counter}", "0")) for counter in _REFUSALS}

    # --- admin ----------------------------------------------------------------------------------------
    def stats(self, *prefixes: str) -> dict[str, str]:
        return self.admin.stats(*prefixes)

    def ready(self) -> bool:
        return self.admin.ready()

    def check_alive(self) -> None:
        self.admin.check_alive()

    def rejection_reason(self) -> str:
        return self.admin.rejection_reason()

    def close(self) -> None:
        self.admin.close()

    @property
    def child(self) -> Child | None:
        return self.admin.child
