"""Chaos Toolkit actions: the faults of meshproof.faults on the running mesh, each next to its undo, and the
scenario's intents an experiment runs with.

Every fault action returns what it injected (`{"fault": ..., "instances": [...], "lasts_s": ...}`) and
every undo takes the same arguments as its action and returns `{"undone": [...]}`, the instances it
restored (empty when there was nothing to undo, so a rollback after an undo in the method is harmless).
An experiment's rollbacks list the undo of each action it takes. Instances are named as `meshproof up`
prints them (`order-service-v1-0`); a caller or service by its name (`api-gateway`).

(No `from __future__ import annotations` here: chaoslib's discovery reads the annotations as types.)
"""

from typing import Any

from meshproof import scenario
from meshproof.attach import wire
from meshproof.chaos.target import Attached, attached
from meshproof.errors import UserError
from meshproof.faults import (
    AppCrash,
    AppDelay,
    AppFreeze,
    Fault,
    HttpFault,
    PortBlackholed,
    PortRefused,
    ProxyCrash,
)
from meshproof.intent import Intent, Route, RouteRule

__all__ = [
    "apply_intents",
    "blackhole_connections",
    "crash_proxy",
    "freeze_app",
    "inject_http_fault",
    "kill_app",
    "refuse_connections",
    "remove_blackhole_connections",
    "remove_http_fault",
    "remove_refuse_connections",
    "remove_slow_version",
    "restart_app",
    "restart_proxy",
    "restore_baseline",
    "slow_version",
    "thaw_app",
]

#: each fault action -> its undo (meshproof.chaos.analysis reads a fault's window from the journal by these)
UNDO = {
    "kill_app": "restart_app",
    "freeze_app": "thaw_app",
    "crash_proxy": "restart_proxy",
    "inject_http_fault": "remove_http_fault",
    "refuse_connections": "remove_refuse_connections",
    "blackhole_connections": "remove_blackhole_connections",
    "slow_version": "remove_slow_version",
}
#: the action that sets an experiment up -> the one that restores the mesh
SETUP = {"apply_intents": "restore_baseline"}


def _flag(value: object, name: str) -> bool:
    """A boolean argument, also when it came from `chaos run --var name=false` (a string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise UserError(f"{name} must be true or false, got {value!r}")


def _inject(mesh: Attached, fault: Fault, instances: list[str], lasts_s: float | None = None) -> dict[str, Any]:
    if not instances:
        raise UserError(f"no instance to inject {type(fault).__name__} into")
    done: list[str] = []
    try:
        for instance in instances:
            mesh.faults.inject(fault, instance)
            done.append(instance)
    except BaseException:
        for instance in done:  # all or nothing: a half-injected fault would be measured as the whole
            _undo(mesh, fault, [instance])
        raise
    return {"fault": wire.encode(fault), "instances": instances, "lasts_s": lasts_s}


def _undo(mesh: Attached, fault: Fault, instances: list[str]) -> dict[str, Any]:
    undone = [instance for instance in instances if mesh.faults.undo(fault, instance)]
    return {"fault": wire.encode(fault), "undone": undone}


def _version(mesh: Attached, service: str, version: str) -> list[str]:
    instances = mesh.backend.instances(service, version=version)
    if not instances:
        raise UserError(f"no instance of {service} {version} in the mesh")
    return instances


# --- setup ----------------------------------------------------------------------------------------------


def apply_intents(v1: int = 100, v2: int = 0, v3: int = 0, resilience: bool = True) -> dict[str, Any]:
    """Put the scenario's order-service route in force: the split v1/v2/v3 (percent, adding up to 100) and,
    with `resilience`, the seed's resilience intents with the profile's numbers: route timeout, retries
    (attempts, perTryTimeout, retryOn 5xx,reset,connect-failure) and outlier detection (consecutive 5xx,
    interval, base ejection time, max ejection percent). Without it, the same split and nothing else.
    Strict mTLS (the baseline) stays. Undo: restore_baseline."""
    with attached() as mesh:
        retries = mesh.profile.retries
        weights = {version: weight for version, weight in (("v1", v1), ("v2", v2), ("v3", v3)) if weight}
        if _flag(resilience, "resilience"):
            rule = RouteRule(splits=weights, timeout=retries.timeout, retries=retries.retry())
            intents: list[Intent] = [Route(scenario.ORDER_SERVICE, (rule,)),
                                     mesh.profile.outlier.policy(scenario.ORDER_SERVICE)]
        else:
            intents = [Route(scenario.ORDER_SERVICE, (RouteRule(splits=weights),))]
        mesh.backend.apply([*scenario.BASELINE, *intents])
        return {"intents": [wire.encode(intent) for intent in intents]}


def restore_baseline() -> dict[str, Any]:
    """Put the mesh back to its baseline (strict mTLS, no other policy), where `meshproof up` leaves it."""
    with attached() as mesh:
        mesh.backend.apply(list(scenario.BASELINE))
        return {"intents": [wire.encode(intent) for intent in scenario.BASELINE]}


# --- faults, each with its undo -------------------------------------------------------------------------


def kill_app(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """SIGKILL the instance's app; its proxy stays up and answers 503 for it (connection refused). Undo: restart_app."""
    with attached() as mesh:
        return _inject(mesh, AppCrash(), [instance])


def restart_app(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Start a killed app again on its ports and wait until it answers (undo of kill_app)."""
    with attached() as mesh:
        return _undo(mesh, AppCrash(), [instance])


def freeze_app(instance: str = "order-service-v1-0", seconds: float = 2.0) -> dict[str, Any]:
    """SIGSTOP the instance's app for `seconds`, then SIGCONT it (by itself, in the background): requests to it
    pile up unanswered meanwhile. Returns at once. Undo: thaw_app (continues it early)."""
    with attached() as mesh:
        return _inject(mesh, AppFreeze(float(seconds)), [instance], lasts_s=float(seconds))


def thaw_app(instance: str = "order-service-v1-0", seconds: float = 2.0) -> dict[str, Any]:
    """SIGCONT a frozen app now (undo of freeze_app, with the same arguments)."""
    with attached() as mesh:
        return _undo(mesh, AppFreeze(float(seconds)), [instance])


def crash_proxy(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """SIGKILL the instance's sidecar proxy: open connections reset, new ones refused. Undo: restart_proxy."""
    with attached() as mesh:
        return _inject(mesh, ProxyCrash(), [instance])


def restart_proxy(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Start a crashed sidecar again with the configuration it had; wait until it serves it (undo of crash_proxy)."""
    with attached() as mesh:
        return _undo(mesh, ProxyCrash(), [instance])


def _http_fault(service: str, abort_percent: float, abort_status: int, delay_percent: float,
                delay_s: float) -> HttpFault:
    return HttpFault(service, abort_percent=float(abort_percent), abort_status=int(abort_status),
                     delay_percent=float(delay_percent), delay=float(delay_s))


def inject_http_fault(caller: str = "api-gateway", service: str = "order-service", abort_percent: float = 0.0,
                      abort_status: int = 503, delay_percent: float = 0.0, delay_s: float = 0.0) -> dict[str, Any]:
    """Envoy's HTTP fault filter in every proxy of `caller`, on its routes to `service`, as Istio's VirtualService
    `fault` renders it: abort `abort_percent`% of requests with `abort_status`, delay `delay_percent`% by
    `delay_s` seconds. Aborted requests are answered by the caller's proxy and never retried.
    Undo: remove_http_fault (same arguments)."""
    with attached() as mesh:
        fault = _http_fault(service, abort_percent, abort_status, delay_percent, delay_s)
        return _inject(mesh, fault, mesh.backend.instances(caller))


def remove_http_fault(caller: str = "api-gateway", service: str = "order-service", abort_percent: float = 0.0,
                      abort_status: int = 503, delay_percent: float = 0.0, delay_s: float = 0.0) -> dict[str, Any]:
    """Remove the HTTP fault inject_http_fault put on `caller`'s routes to `service` (same arguments)."""
    with attached() as mesh:
        fault = _http_fault(service, abort_percent, abort_status, delay_percent, delay_s)
        return _undo(mesh, fault, mesh.backend.instances(caller))


def refuse_connections(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Close the instance's inbound (mTLS) port, its proxy and app still running: callers get connect failures.
    Undo: remove_refuse_connections."""
    with attached() as mesh:
        return _inject(mesh, PortRefused(), [instance])


def remove_refuse_connections(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Open the instance's inbound port again (undo of refuse_connections)."""
    with attached() as mesh:
        return _undo(mesh, PortRefused(), [instance])


def blackhole_connections(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Make connection attempts to the instance's inbound port go unanswered (SYNs dropped, on loopback):
    callers wait for their connect timeout. Undo: remove_blackhole_connections."""
    with attached() as mesh:
        return _inject(mesh, PortBlackholed(), [instance])


def remove_blackhole_connections(instance: str = "order-service-v1-0") -> dict[str, Any]:
    """Serve the instance's inbound port again (undo of blackhole_connections)."""
    with attached() as mesh:
        return _undo(mesh, PortBlackholed(), [instance])


def slow_version(service: str = "order-service", version: str = "v2", delay_s: float = 0.5) -> dict[str, Any]:
    """Every instance of `version` delays every response by `delay_s` seconds at its app (a bad canary).
    Undo: remove_slow_version (same arguments)."""
    with attached() as mesh:
        return _inject(mesh, AppDelay(float(delay_s)), _version(mesh, service, version))


def remove_slow_version(service: str = "order-service", version: str = "v2", delay_s: float = 0.5) -> dict[str, Any]:
    """Make `version` answer at once again (undo of slow_version)."""
    with attached() as mesh:
        return _undo(mesh, AppDelay(float(delay_s)), _version(mesh, service, version))
