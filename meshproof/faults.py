"""The faults a backend can inject into one workload instance, as typed values.

Each says exactly what it does; `FaultInjection.inject()` (meshproof.backend) returns a handle whose
`undo()` restores the state before the fault, and a backend's `reset()` undoes whatever is left. The
feature each fault exercises is how a check declares that it needs it. A new fault is a dataclass here
plus its implementation in each backend that can inject it.
"""

from __future__ import annotations

from dataclasses import dataclass
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


Fault = ProxyCrash | AppError | ControlPlaneDown
ALL: tuple[type[Fault], ...] = (ProxyCrash, AppError, ControlPlaneDown)
