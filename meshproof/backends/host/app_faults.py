"""The faults that act on a host echo app's own process, whatever configures its proxy: the app answers
an error status or late (AppError, AppDelay: its `/fault` control), is SIGKILLed (AppCrash) or stopped
for a while (AppFreeze). The local mesh and the local Istio mesh both run their apps on this host, so
both inject these through one `AppFaults`.

At most one of each kind per app: an AppError or AppDelay at a time (the echo app holds one instance-wide
fault), and a crashed or frozen app must be brought back before it is crashed or frozen again. A crashed
app comes back, on undo, on the same ports with the AppError or AppDelay it had, and with its counters
at zero, as a restarted pod's are.
"""

from __future__ import annotations

from collections.abc import Callable

from meshproof.backends.host.apps import EchoApp
from meshproof.backends.host.disruption import Freeze
from meshproof.backends.host.topology import Instance
from meshproof.errors import UserError
from meshproof.faults import AppCrash, AppDelay, AppError, AppFreeze
from meshproof.processes import Supervisor, wait_until

AppFault = AppError | AppDelay | AppCrash | AppFreeze
APP_FAULTS = frozenset({AppError, AppDelay, AppCrash, AppFreeze})


class AppFaults:
    def __init__(self, apps: dict[str, EchoApp], supervisor: Supervisor, start: Callable[[Instance], EchoApp],
                 *, startup_timeout: float) -> None:
        """`apps`: the backend's apps by instance name (a restarted app replaces its entry); `start`: how the
        backend starts an instance's app."""
        self.apps = apps
        self.supervisor = supervisor
        self.start = start
        self.startup_timeout = startup_timeout
        self.statuses: dict[str, AppError | AppDelay] = {}
        self.crashed: set[str] = set()
        self.freezes: dict[str, Freeze] = {}

    def inject(self, fault: AppFault, instance: str) -> Callable[[], None]:
        """Put `fault` on the instance's app; returns its undo."""
        match fault:
            case AppError() | AppDelay():
                return self._set_status(fault, instance)
            case AppCrash():
                return self._crash(instance)
            case AppFreeze():
                return self._freeze(fault, instance)

    def thaw_all(self) -> None:
        """Continue every frozen app: a stopped process would sit out SIGTERM until SIGKILL."""
        for freeze in self.freezes.values():
            freeze.thaw()
        self.freezes.clear()

    def _set_status(self, fault: AppError | AppDelay, instance: str) -> Callable[[], None]:
        if instance in self.statuses:
            raise UserError(f"{instance}'s app already has {self.statuses[instance]} in force: undo it first")
        self._post(instance, fault)
        self.statuses[instance] = fault

        def heal() -> None:
            self.statuses.pop(instance, None)
            if instance not in self.crashed:  # a crashed app comes back without it
                self._post(instance, None)

        return heal

    def _post(self, instance: str, fault: AppError | AppDelay | None) -> None:
        """The echo app's instance-wide fault (meshproof.workloads.echo `/fault`)."""
        payload = {} if fault is None else {"status": fault.status} if isinstance(fault, AppError) else {
            "delay": fault.seconds}
        self.apps[instance].control.post("/fault", json=payload).raise_for_status()

    def _untouched(self, instance: str) -> None:
        if instance in self.crashed or (instance in self.freezes and self.freezes[instance].stopped):
            raise UserError(f"{instance}'s app is already crashed or frozen: undo that fault first")

    def _crash(self, instance: str) -> Callable[[], None]:
        self._untouched(instance)
        self.supervisor.kill(self.apps[instance].child.name)  # SIGKILL: its sockets close, nothing answers
        self.crashed.add(instance)
        return lambda: self._restart(instance)

    def _restart(self, instance: str) -> None:
        """The app again on its ports, with the AppError or AppDelay it had, once it answers."""
        old = self.apps[instance]
        old.close()
        app = self.apps[instance] = self.start(old.instance)
        if not wait_until(app.healthy, timeout=self.startup_timeout):
            raise UserError(f"the app of {instance} did not come back within {self.startup_timeout:.0f}s")
        self.crashed.discard(instance)
        if instance in self.statuses:
            self._post(instance, self.statuses[instance])

    def _freeze(self, fault: AppFreeze, instance: str) -> Callable[[], None]:
        self._untouched(instance)
        freeze = self.freezes[instance] = Freeze(self.apps[instance].child.popen.pid, fault.seconds)

        def thaw() -> None:
            freeze.thaw()
            if self.freezes.get(instance) is freeze:
                del self.freezes[instance]

        return thaw
