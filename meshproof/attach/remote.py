"""`connect()`: the running mesh of `meshproof up`, as a Backend any process can use (a Chaos Toolkit
activity, a script, a second pytest session).

Every call goes to the daemon's control API and comes back through meshproof.attach.wire, so what an
attached process gets is what the owner's backend returned. The mesh's lifetime is the daemon's: `up`
and `down` here refuse, `meshproof down` stops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from meshproof.attach import wire
from meshproof.attach.state import UpState, live_state
from meshproof.backend import (
    Backend,
    FaultInjection,
    Injected,
    LoadSetup,
    LoadTarget,
    LoadTargets,
    ObservedIdentity,
    RawOutcome,
    Request,
    RequestCounts,
    Response,
    Tally,
    Telemetry,
    Transport,
)
from meshproof.errors import UserError
from meshproof.faults import ALL, Fault
from meshproof.intent import Intent, Workload


class RemoteMesh(Backend, FaultInjection, Telemetry, LoadTargets):
    fault_types = frozenset(ALL)

    def __init__(self, state: UpState, *, timeout: float) -> None:
        self.state = state
        self.name = state.mesh
        self.unsupported = state.unsupported  # type: ignore[misc]  # the owner's, per instance
        self._client = httpx.Client(base_url=state.control_url, timeout=timeout)

    def _rpc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            reply = self._client.post("/rpc", json={"method": method, "args": [wire.encode(a) for a in args],
                                                    "kwargs": {k: wire.encode(v) for k, v in kwargs.items()}})
        except httpx.HTTPError as exc:
            raise UserError(f"the mesh of pid {self.state.pid} did not answer {method}() at "
                            f"{self.state.control_url}: {exc}") from None
        data = reply.json()
        if "error" in data:
            raise UserError(f"the mesh of pid {self.state.pid}: {method}(): {data['error']}")
        return wire.decode(data["ok"])

    # --- the lifetime is the daemon's -----------------------------------------------------------------
    def up(self, workloads: Sequence[Workload], baseline: Sequence[Intent]) -> None:
        raise UserError("an attached mesh is already up; meshproof up starts one")

    def down(self) -> None:
        self._client.close()

    # --- the contract, forwarded ----------------------------------------------------------------------
    def apply(self, intents: Sequence[Intent]) -> None:
        self._rpc("apply", list(intents))

    def reset(self) -> None:
        self._rpc("reset")

    def call(self, source: str, request: Request) -> Response:
        result: Response = self._rpc("call", source, request)
        return result

    def call_batch(self, source: str, request: Request, *, count: int, rate: float = 0.0,
                   concurrency: int = 8, capture: tuple[str, ...] | None = None) -> Tally:
        result: Tally = self._rpc("call_batch", source, request, count=count, rate=rate, concurrency=concurrency,
                                  capture=capture)
        return result

    def call_unmeshed(self, target: str, request: Request, transport: Transport) -> RawOutcome:
        result: RawOutcome = self._rpc("call_unmeshed", target, request, transport)
        return result

    def observed_identity(self, response: Response) -> ObservedIdentity:
        result: ObservedIdentity = self._rpc("observed_identity", response)
        return result

    def instances(self, service: str, namespace: str = "default", version: str | None = None) -> list[str]:
        return list(self._rpc("instances", service, namespace, version))

    def attempts(self, service: str, key: str, namespace: str = "default") -> dict[str, int]:
        return dict(self._rpc("attempts", service, key, namespace))

    def describe(self) -> dict[str, Any]:
        return dict(self._rpc("describe"))

    def diagnostics(self) -> dict[str, Any]:
        return dict(self._rpc("diagnostics"))

    def addresses(self) -> dict[str, dict[str, str]]:
        return dict(self._rpc("addresses"))

    def inject(self, fault: Fault, instance: str) -> Injected:
        self._rpc("inject", fault, instance)

        def undo() -> None:
            self.undo(fault, instance)

        def observed() -> dict[str, int]:
            return dict(self._rpc("observed", fault, instance))

        return Injected(fault, instance, undo, _observe=observed)

    def undo(self, fault: Fault, instance: str) -> bool:
        """Undo the latest `fault` in force on `instance` (whoever injected it); False when there is none."""
        return bool(self._rpc("undo", fault, instance))

    def request_counts(self, service: str, version: str, namespace: str = "default") -> RequestCounts:
        result: RequestCounts = self._rpc("request_counts", service, version, namespace)
        return result

    def outlier_stats(self, source: str, service: str, namespace: str = "default") -> dict[str, int]:
        return dict(self._rpc("outlier_stats", source, service, namespace))

    def load_setup(self, source: str, service: str, version: str, namespace: str = "default") -> LoadSetup:
        result: LoadSetup = self._rpc("load_setup", source, service, version, namespace)
        return result

    def load_target(self, source: str, service: str, namespace: str = "default") -> LoadTarget:
        result: LoadTarget = self._rpc("load_target", source, service, namespace)
        return result


def connect(*, timeout: float = 120.0) -> RemoteMesh:
    """The mesh `meshproof up` started under this state root (`$MESHPROOF_STATE_DIR`); UserError if none.

    `timeout` bounds one call to it, batches included."""
    return RemoteMesh(live_state(), timeout=timeout)
