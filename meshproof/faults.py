"""The faults a backend can inject into one workload instance, as typed values.

Each says exactly what it does; `FaultInjection.inject()` (meshproof.backend) returns a handle whose
`undo()` restores the state before the fault, and a backend's `reset()` undoes whatever is left. The
feature each fault exercises is how a check declares that it needs it. A new fault is a dataclass here
plus its implementation in each backend that can inject it.
"""

from __future__ import annotations

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


Fault = ProxyCrash | AppError | Impostor
ALL: tuple[type[Fault], ...] = (ProxyCrash, AppError, Impostor)
