"""Where each workload instance of the local mesh lives: its ports and its sidecar's files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshproof.intent import Identity, Workload


@dataclass(frozen=True)
class Instance:
    """One replica: an echo app (app + control port) and its Envoy (inbound, outbound, admin)."""

    name: str
    workload: Workload
    app_port: int
    control_port: int
    inbound_port: int
    outbound_port: int
    admin_port: int

    @property
    def service(self) -> str:
        return self.workload.service

    @property
    def version(self) -> str:
        return self.workload.version

    @property
    def namespace(self) -> str:
        return self.workload.namespace

    @property
    def identity(self) -> Identity:
        return self.workload.identity


@dataclass(frozen=True)
class SidecarFiles:
    """The files one sidecar reads: its SVID, the trust bundle, and one watched directory per xDS kind."""

    cert: Path
    key: Path
    trust_bundle: Path
    xds_dir: Path

    def xds_file(self, kind: str) -> Path:
        return self.xds_dir / kind / f"{kind}.json"


@dataclass(frozen=True)
class Topology:
    instances: tuple[Instance, ...]

    def of_service(self, service: str, namespace: str, version: str | None = None) -> list[Instance]:
        return [
            instance
            for instance in self.instances
            if instance.service == service
            and instance.namespace == namespace
            and (version is None or instance.version == version)
        ]

    def services(self) -> list[tuple[str, str, int]]:
        """(namespace, service, port) of every service, in a stable order."""
        return sorted({(i.namespace, i.service, i.workload.port) for i in self.instances})

    def versions(self, service: str, namespace: str) -> list[str]:
        return sorted({i.version for i in self.of_service(service, namespace)})

    def instance(self, name: str) -> Instance:
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(f"no instance named {name!r}; known: {', '.join(i.name for i in self.instances)}")
