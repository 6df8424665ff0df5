"""The mesh a Chaos Toolkit activity acts on, and the profile its limits come from.

In `chaos run` (its own process) that is the mesh `meshproof up` started, through
meshproof.attach.remote.connect(), with the profile the mesh was brought up with. A suite that runs an
experiment inside its own pytest process binds its session's backend instead (`bound()`), so the
activities act on exactly the mesh the check gets and restarts happen on pytest's main thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chaoslib.exceptions import ActivityFailed

from meshproof.attach.remote import connect
from meshproof.backend import Backend, FaultInjection, LoadTargets, Telemetry
from meshproof.errors import UserError
from meshproof.profile import Profile, load_profile


@dataclass(frozen=True)
class Attached:
    backend: Backend
    profile: Profile

    @property
    def faults(self) -> FaultInjection:
        if not isinstance(self.backend, FaultInjection):
            raise UserError(_lacks(self.backend, FaultInjection))
        return self.backend

    @property
    def load_targets(self) -> LoadTargets:
        if not isinstance(self.backend, LoadTargets):
            raise UserError(_lacks(self.backend, LoadTargets))
        return self.backend

    @property
    def telemetry(self) -> Telemetry:
        if not isinstance(self.backend, Telemetry):
            raise UserError(_lacks(self.backend, Telemetry))
        return self.backend


def _lacks(backend: Backend, interface: type) -> str:
    return f"the {backend.name} backend has no {interface.__name__} (meshproof.backend)"


_bound: Attached | None = None


@contextmanager
def bound(backend: Backend, profile: Profile) -> Iterator[None]:
    """Activities run while this is open act on `backend` (a suite's own) instead of `meshproof up`'s."""
    global _bound
    previous, _bound = _bound, Attached(backend, profile)
    try:
        yield
    finally:
        _bound = previous


@contextmanager
def attached() -> Iterator[Attached]:
    """The mesh for one activity; a meshproof error inside becomes the activity's failure, in one line."""
    try:
        if _bound is not None:
            yield _bound
            return
        remote = connect()
        try:
            spec = remote.state.profile
            yield Attached(remote, load_profile(None if spec == "default" else spec))
        finally:
            remote.down()  # closes this process's connection; the mesh stays up
    except UserError as exc:
        raise ActivityFailed(str(exc)) from None
