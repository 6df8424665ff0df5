"""Where each workload instance lives on this host: its app's ports and its proxy's."""

from __future__ import annotations

from dataclasses import dataclass

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
