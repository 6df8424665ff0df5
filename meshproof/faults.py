"""The faults a backend can inject into one workload instance, as typed values.

Each says exactly what it does, to which process or configuration; `FaultInjection.inject()`
(meshproof.backend) returns a handle whose `undo()` restores the state before the fault, and a
backend's `reset()` undoes whatever is left. The feature each fault exercises is how a check declares
that it needs it. A new fault is a dataclass here plus its implementation in each backend that can
inject it (and its name in meshproof.attach.wire, so an attached process can send it).

The instance is always the one whose process or proxy the fault changes: the serving endpoint for
the app and port faults, the *calling* workload's proxy for `HttpFault` (where Istio's VirtualService
`fault` acts: in every caller's sidecar, before its retries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from meshproof import features
from meshproof.features import Feature


@dataclass(frozen=True)
class ProxyCrash:
    """The instance's proxy is SIGKILLed (no drain): its open connections reset, new ones are refused.
    Undo starts it again with the configuration it had and waits until it serves it."""

    feature: ClassVar[Feature] = features.FAULT_PROXY_CRASH


@dataclass(frozen=True)
class AppError:
    """The instance's app answers every request with `status` until undone (its proxy is untouched)."""

    status: int = 503
    feature: ClassVar[Feature] = features.FAULT_APP_ERROR

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"AppError status must be an HTTP status, got {self.status}")


@dataclass(frozen=True)
class ControlPlaneDown:
    """The mesh's control plane is killed (SIGKILL); the proxies keep serving the config they have, and a
    change applied meanwhile cannot reach them. The instance names nothing here (the control plane serves
    them all): pass "". Undo starts it again and waits until every proxy is connected and in sync."""

    feature: ClassVar[Feature] = features.FAULT_CONTROL_PLANE_DOWN


@dataclass(frozen=True)
class AppCrash:
    """The instance's app process is SIGKILLed: its proxy stays up, and every request it forwards to the app
    finds the port closed (the proxy answers 503, connection refused). Undo starts the app again on the same
    ports and waits until it answers; its counters start from zero, as a restarted pod's do."""

    feature: ClassVar[Feature] = features.FAULT_APP_CRASH


@dataclass(frozen=True)
class AppFreeze:
    """The instance's app process is stopped with SIGSTOP for `seconds`, then continued with SIGCONT: the
    kernel still accepts connections into its backlog, nothing answers, so requests pile up and wait (a
    stop-the-world GC pause, a stuck node). Undo continues it at once if it is still stopped."""

    seconds: float = 2.0
    feature: ClassVar[Feature] = features.FAULT_APP_FREEZE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"AppFreeze seconds must be a positive duration, got {self.seconds}")


@dataclass(frozen=True)
class AppDelay:
    """The instance's app delays every response by `seconds` (a slow release: apply it to every instance of a
    version for a bad canary); its proxy is untouched. Undo makes it answer at once again."""

    seconds: float = 0.5
    feature: ClassVar[Feature] = features.FAULT_APP_DELAY

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"AppDelay seconds must be a positive duration, got {self.seconds}")


@dataclass(frozen=True)
class HttpFault:
    """The instance's proxy injects Envoy's HTTP fault filter on its outbound routes to `service`, exactly as
    Istio renders a VirtualService `fault`: `abort_percent` % of requests are answered `abort_status` by the
    proxy itself, `delay_percent` % wait `delay` seconds before they are forwarded. The filter acts before
    the router, so an aborted request is never retried and a delay does not count against the route timeout.
    Undo removes the route's fault configuration (the next request after the update is served without it)."""

    service: str
    namespace: str = "default"
    abort_percent: float = 0.0
    abort_status: int = 503
    delay_percent: float = 0.0
    delay: float = 0.0
    feature: ClassVar[Feature] = features.FAULT_HTTP

    def __post_init__(self) -> None:
        for name in ("abort_percent", "delay_percent"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"HttpFault {name} is a percentage from 0 to 100, got {getattr(self, name)}")
        if not 200 <= self.abort_status <= 599:
            raise ValueError(f"HttpFault abort_status must be an HTTP status from 200 to 599, got {self.abort_status}")
        if not (math.isfinite(self.delay) and self.delay >= 0) or (self.delay_percent > 0) != (self.delay > 0):
            raise ValueError("HttpFault delay must be a duration > 0 exactly when delay_percent > 0, got "
                             f"delay {self.delay} at {self.delay_percent}%")
        if not self.abort_percent and not self.delay_percent:
            raise ValueError("HttpFault needs abort_percent or delay_percent above 0")


@dataclass(frozen=True)
class PortRefused:
    """Connections to the instance's inbound (mTLS) port are refused: its proxy stops listening there (the
    listener is removed over xDS; open connections drain), while the proxy and the app keep running. Callers
    see connect failures (TCP RST). Undo serves the listener again and waits until it accepts."""

    feature: ClassVar[Feature] = features.FAULT_PORT_REFUSED


@dataclass(frozen=True)
class PortBlackholed:
    """Connections to the instance's inbound port time out: its proxy stops listening there (as PortRefused),
    and the port is held by a socket that listens with a full accept queue and never accepts, so the kernel
    drops every new SYN and callers wait for their connect timeout (a partitioned node, a dropping firewall),
    all on loopback. Undo closes that socket and serves the proxy's listener again."""

    feature: ClassVar[Feature] = features.FAULT_PORT_BLACKHOLED

class ImpostorCertificate(StrEnum):
    """What an impostor presents to the callers that reach it."""

    FOREIGN_CA = "the destination's own identity, signed by a CA the mesh does not trust"
    OTHER_IDENTITY = "a valid mesh certificate of another workload identity"


@dataclass(frozen=True)
class Impostor:
    """An impostor takes the instance's place: its proxy is SIGKILLed and a TLS server listens at the address
    callers reach the instance on, presenting `certificate`. A caller's proxy that verifies who answers must
    fail the handshake before sending a request. The injected handle's `observed()` says what the impostor
    saw: `connections` accepted, `handshakes` completed, `requests` (HTTP request heads) received. Undo stops
    it and starts the proxy again with the configuration it had."""

    certificate: ImpostorCertificate
    feature: ClassVar[Feature] = features.FAULT_IMPOSTOR


Fault = (ProxyCrash | AppError | ControlPlaneDown | AppCrash | AppFreeze | AppDelay | HttpFault | PortRefused
         | PortBlackholed | Impostor)
ALL: tuple[type[Fault], ...] = (ProxyCrash, AppError, ControlPlaneDown, AppCrash, AppFreeze, AppDelay, HttpFault,
                                PortRefused, PortBlackholed, Impostor)
