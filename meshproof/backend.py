"""The contract between mesh-neutral checks and a mesh: what a Backend must do, and the values it returns.

The core (`Backend`), which every mesh has: bring the mesh up with the scenario's workloads, apply the
*whole* set of intents in force and return only when the data plane serves them, make requests from
inside the mesh as a given workload (`call`, `call_batch`) and from outside it (`call_unmeshed`), read
the attempts the apps counted, and reset. Optional parts, which a backend has by also implementing
their interface: `FaultInjection` (typed faults from meshproof.faults, each with its undo),
`Telemetry` (the proxies' own counters) and `LoadTargets` (addresses for a load generator and the
proxies whose cost it measures). A backend declares what it cannot express in `unsupported`
(registered feature -> reason); a check exercising such a feature, or an optional part the backend
lacks, ends `not_supported` with the reason. Everything a backend starts, `down()` stops.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar

from meshproof import faults, features
from meshproof.faults import Fault
from meshproof.intent import Identity, Intent, Workload


@dataclass(frozen=True)
class Request:
    """A request to a service, by name: what a workload's code would send."""

    service: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    port: int = 80
    namespace: str = "default"
    timeout: float | None = None  # the client-side bound; None: the profile's timeouts.call

    def host(self) -> str:
        """Always namespace-qualified: a short name resolves in the *caller's* namespace, as in Kubernetes."""
        return f"{self.service}.{self.namespace}"

    def describe(self) -> str:
        return f"{self.method} {self.host()}{self.path}"


@dataclass(frozen=True)
class Response:
    """What the calling workload saw: an HTTP response, or `error` (refused, reset, timeout...)."""

    status: int | None
    headers: Mapping[str, str]
    body: str
    elapsed: float
    error: str | None = None
    detail: str = ""

    @property
    def echo(self) -> dict[str, Any] | None:
        """The echo app's JSON reply, when the response came from an echo app (not from a proxy)."""
        if self.status is None or not self.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) and "instance" in parsed else None

    @property
    def served_by(self) -> str | None:
        echo = self.echo
        return None if echo is None else str(echo["instance"])

    def describe(self) -> str:
        if self.status is None:
            return f"no HTTP response ({self.error}: {self.detail})"
        first_line = self.body.strip().splitlines()[0][:80] if self.body.strip() else ""
        source = f" from {self.served_by}" if self.served_by else (f" {first_line!r}" if first_line else "")
        return f"HTTP {self.status}{source} after {self.elapsed * 1000:.1f} ms"

    def evidence(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "detail": self.detail or None,
                "elapsed_ms": round(self.elapsed * 1000, 3), "served_by": self.served_by,
                "body": None if self.echo else self.body[:200]}


@dataclass(frozen=True)
class Tally:
    """A batch of identical requests, counted: by version, instance, status, version+status, error."""

    sent: int
    elapsed: float
    versions: Mapping[str, int]
    instances: Mapping[str, int]
    statuses: Mapping[str, int]
    version_statuses: Mapping[str, int]
    errors: Mapping[str, int]
    latency: Mapping[str, float | None]
    trace: tuple[TraceRow, ...] = ()
    started_at: float = 0.0  # wall-clock time (s since the epoch) at the calling workload when it began

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        return cls(
            sent=data["sent"], elapsed=data["elapsed_s"], versions=data["versions"],
            instances=data["instances"], statuses=data["statuses"],
            version_statuses=data["version_statuses"], errors=data["errors"], latency=data["latency_s"],
            trace=tuple(TraceRow(*row) for row in data.get("trace") or ()),
            started_at=data.get("started_at", 0.0),
        )


@dataclass(frozen=True)
class TraceRow:
    """One request of a traced batch, in send order."""

    sent_at: float  # seconds since the batch started, at the calling workload
    latency: float
    instance: str | None  # the echo instance that answered; None when a proxy answered or it failed
    outcome: int | str  # HTTP status, or the failure kind
    headers: Mapping[str, str]


@dataclass(frozen=True)
class LoadTarget:
    """Where a load generator standing in for a workload sends requests, and with which Host header."""

    url: str
    host: str


@dataclass(frozen=True)
class LoadSetup:
    """The two paths a latency-overhead measurement compares, to the same serving instance.

    `baseline`: straight to the app, no proxy; `mesh`: into the calling workload's proxy, across
    mTLS to the serving instance's proxy, to the same app. `proxies` are the OS pids of those two
    proxies (name -> pid), for their CPU and memory cost.
    """

    baseline: LoadTarget
    mesh: LoadTarget
    proxies: Mapping[str, int]


@dataclass(frozen=True)
class RequestCounts:
    """Requests a version's proxies answered, as the mesh's own telemetry counts them (destination side,
    like Istio's istio_requests_total{reporter="destination"}); cumulative, so callers take differences."""

    total: int
    server_errors: int  # 5xx

    def __sub__(self, earlier: RequestCounts) -> RequestCounts:
        return RequestCounts(self.total - earlier.total, self.server_errors - earlier.server_errors)

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.total if self.total else 0.0


class Transport(StrEnum):
    """How an unmeshed client talks to a workload's inbound port."""

    PLAINTEXT = "plaintext HTTP"
    TLS_NO_CLIENT_CERT = "TLS without a client certificate"
    TLS_FOREIGN_CA = "TLS with a client certificate from a foreign CA"
    TLS_MESH_CERT = "TLS with a valid mesh certificate"  # the positive control of every refusal


@dataclass(frozen=True)
class RawOutcome:
    """What a client outside the mesh saw, exactly: an HTTP status, or how the connection ended."""

    transport: Transport
    outcome: str  # "http", "closed_without_bytes", "reset", "tls_alert", "tls_handshake_failed", "timeout",
    #               "refused"
    status: int | None = None
    detail: str = ""

    @property
    def got_http_response(self) -> bool:
        return self.outcome == "http"

    def describe(self) -> str:
        if self.got_http_response:
            return f"HTTP {self.status} over {self.transport.value}"
        return f"{self.outcome.replace('_', ' ')} over {self.transport.value} ({self.detail})"


@dataclass(frozen=True)
class ObservedIdentity:
    """The caller identity the server side saw, and where that was read from."""

    identity: Identity | None
    source: str
    raw: str


class Backend(ABC):
    name: str
    #: registered feature name -> why this mesh cannot express it; a capability's gap covers its details
    unsupported: ClassVar[Mapping[str, str]] = MappingProxyType({})

    @abstractmethod
    def up(self, workloads: Sequence[Workload], baseline: Sequence[Intent]) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    @abstractmethod
    def apply(self, intents: Sequence[Intent]) -> None:
        """Make `intents` the complete policy of the mesh; return when every affected proxy serves it."""

    @abstractmethod
    def reset(self) -> None:
        """Back to the baseline between checks: intents, workload counters and faults."""

    @abstractmethod
    def call(self, source: str, request: Request) -> Response:
        """A request made from inside the mesh by workload `source`."""

    @abstractmethod
    def call_batch(self, source: str, request: Request, *, count: int, rate: float = 0.0,
                   concurrency: int = 8, capture: tuple[str, ...] | None = None) -> Tally:
        """`count` requests over `concurrency` connections at `rate` req/s (0: as fast as they go).
        With `capture`, the tally carries a per-request trace keeping those response headers."""

    @abstractmethod
    def call_unmeshed(self, target: str, request: Request, transport: Transport) -> RawOutcome:
        """A client outside the mesh connecting straight to a workload instance's inbound address."""

    @abstractmethod
    def observed_identity(self, response: Response) -> ObservedIdentity:
        """The caller identity the serving workload received with the request, per the mesh's convention."""

    @abstractmethod
    def instances(self, service: str, namespace: str = "default", version: str | None = None) -> list[str]: ...

    @abstractmethod
    def attempts(self, service: str, key: str, namespace: str = "default") -> dict[str, int]:
        """Requests each instance of `service` received for `key` since the last reset."""

    #: A response header (name, value) by which the mesh flags a circuit-breaker overflow, if it has one.
    overflow_marker: ClassVar[tuple[str, str] | None] = None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Run metadata: mesh version, backend details, for results.json."""

    @abstractmethod
    def addresses(self) -> dict[str, dict[str, str]]:
        """How a person reaches each instance (instance -> what -> address), as `meshproof up` prints it."""

    @abstractmethod
    def diagnostics(self) -> dict[str, Any]:
        """What a failing check attaches: the policy in force and what the proxies complained about."""


# --- optional parts of the contract ----------------------------------------------------------------------


@dataclass
class Injected:
    """A fault in force on one instance; `undo()` restores the state before it (once; later calls do nothing);
    `observed()` is what the fault itself saw so far, where its type says it reports something (an Impostor)."""

    fault: Fault
    instance: str
    _undo: Callable[[], None]
    undone: bool = False
    _observe: Callable[[], Mapping[str, int]] | None = None

    def undo(self) -> None:
        if not self.undone:
            self.undone = True
            self._undo()

    def observed(self) -> dict[str, int]:
        return dict(self._observe()) if self._observe is not None else {}


class FaultInjection(ABC):
    #: the fault types (meshproof.faults) this backend can inject
    fault_types: ClassVar[frozenset[type[Fault]]] = frozenset()

    @abstractmethod
    def inject(self, fault: Fault, instance: str) -> Injected:
        """Put `fault` on one instance until its undo() or the next reset()."""

    #: the faults in force, in the order they were injected (a backend appends what inject() returns)
    injected: list[Injected]

    def undo_all(self) -> None:
        """Undo every fault in force, the latest first (a reset's first step)."""
        while self.injected:
            self.injected.pop().undo()

    def _latest(self, fault: Fault, instance: str) -> Injected | None:
        for injected in reversed(self.injected):
            if injected.fault == fault and injected.instance == instance and not injected.undone:
                return injected
        return None

    def undo(self, fault: Fault, instance: str) -> bool:
        """Undo the latest fault equal to `fault` still in force on `instance`, whoever injected it (a process
        that only knows the fault's value, such as a Chaos Toolkit rollback); False when there is none."""
        injected = self._latest(fault, instance)
        if injected is None:
            return False
        self.injected.remove(injected)
        injected.undo()
        return True

    def observed(self, fault: Fault, instance: str) -> dict[str, int]:
        """What the latest such fault in force saw (an Impostor's counts); {} when there is none."""
        injected = self._latest(fault, instance)
        return {} if injected is None else injected.observed()


#: The counter of ejections a caller's proxy enforced, in outlier_stats (Envoy's name).
EJECTIONS_ENFORCED = "ejections_enforced_total"


class Telemetry(ABC):
    @abstractmethod
    def request_counts(self, service: str, version: str, namespace: str = "default") -> RequestCounts:
        """What the mesh's telemetry says the version's instances answered so far."""

    @abstractmethod
    def outlier_stats(self, source: str, service: str, namespace: str = "default") -> dict[str, int]:
        """The caller proxy's own outlier-ejection counters for a service, summed over its subsets, by Envoy's
        names; a mesh whose proxy is not Envoy maps its own counters onto `EJECTIONS_ENFORCED` at least."""

    def ejections_enforced(self, source: str, service: str, namespace: str = "default") -> int:
        """Ejections the caller's proxy has enforced for the service so far (cumulative: callers take differences)."""
        return self.outlier_stats(source, service, namespace).get(EJECTIONS_ENFORCED, 0)


class LoadTargets(ABC):
    @abstractmethod
    def load_setup(self, source: str, service: str, version: str, namespace: str = "default") -> LoadSetup:
        """Targets for load from `source` to the single instance of `service` at `version`. The caller
        applies a route pinning that version first, so the mesh path ends at the baseline's app."""

    @abstractmethod
    def load_target(self, source: str, service: str, namespace: str = "default") -> LoadTarget:
        """Where a generator standing in for `source` sends to reach `service` through the mesh: into that
        workload's proxy, as its app would, so the intents in force (routes, retries, outlier detection) and
        any injected fault act on every request."""


_INTERFACES: dict[features.Feature, type[Any]] = {features.TELEMETRY: Telemetry, features.LOAD_TARGETS: LoadTargets}
_FAULTS = {fault_type.feature: fault_type for fault_type in faults.ALL}


def unsupported_reason(backend: Backend, name: str | features.Feature) -> str | None:
    """None when `backend` supports the registered feature, else why not: an optional part of the contract it
    does not implement, or what it declares in `unsupported` (a capability's entry covers its details)."""
    feature = features.feature(name)
    declared = backend.unsupported.get(feature.name)
    if declared:  # the backend's own words say more than "it lacks the interface"
        return declared
    interface = _INTERFACES.get(feature)
    if interface is not None and not isinstance(backend, interface):
        return f"the {backend.name} backend has no {interface.__name__} (meshproof.backend)"
    fault_type = _FAULTS.get(feature)
    if fault_type is not None and not (isinstance(backend, FaultInjection) and fault_type in backend.fault_types):
        return f"the {backend.name} backend cannot inject {fault_type.__name__}"
    return backend.unsupported.get(feature.capability)
