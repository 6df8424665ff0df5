"""The Chaos Toolkit control that puts an experiment under open-model load and measures it.

An experiment declares it once, at its top level:

    "controls": [{"name": "meshproof-load", "provider": {"type": "python", "module": "meshproof.chaos.control",
                  "arguments": {"name": "kill-v1-app", "recovery_from": "start"}}}]

Before the experiment (before its first steady-state probe) it starts the load (meshproof.chaos.traffic)
from `caller` to `service` at `path`, with the profile's chaos settings; after the
experiment (after the rollbacks) it stops the load, measures the experiment (meshproof.chaos.analysis)
and adds the result to the journal as `{"name": "meshproof", "chaos": ENTRY}` in its `extensions`,
where `meshproof run` reads it and a `chaos run` user finds it beside Chaos Toolkit's own record; the
gist is logged too. `recovery_from` is
"start" for a fault the mesh should absorb (recovery is counted from the fault's start) and "end"
otherwise. A load that cannot start interrupts the experiment before any fault is injected.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import ActivityFailed, InterruptExecution, InvalidActivity

from meshproof.chaos import traffic
from meshproof.chaos.analysis import RECOVERY_REFERENCES, analyse
from meshproof.chaos.target import attached
from meshproof.errors import UserError

logger = logging.getLogger("chaostoolkit")
EXTENSION = "meshproof"
ARGUMENTS = {"name", "caller", "service", "path", "recovery_from"}


def validate_control(control: dict[str, Any]) -> None:
    """`chaos validate`: the arguments are known and `recovery_from` is start or end."""
    arguments = (control.get("provider") or {}).get("arguments") or {}
    unknown = sorted(set(arguments) - ARGUMENTS)
    if unknown:
        raise InvalidActivity(f"control {control.get('name')}: unknown arguments {unknown}; known: {sorted(ARGUMENTS)}")
    if arguments.get("recovery_from", "end") not in RECOVERY_REFERENCES:
        raise InvalidActivity(f"control {control.get('name')}: recovery_from must be one of "
                              f"{', '.join(RECOVERY_REFERENCES)}, got {arguments['recovery_from']!r}")
    if not arguments.get("name"):
        raise InvalidActivity(f"control {control.get('name')}: give the experiment's name (its file's stem)")


def before_experiment_control(context: dict[str, Any], name: str = "", caller: str = "api-gateway",
                              service: str = "order-service", path: str = "/api/v1/orders/1",
                              recovery_from: str = "end", **_: Any) -> None:
    try:
        with attached() as mesh:
            target = mesh.load_targets.load_target(caller, service)
            started = traffic.start(target, path, mesh.profile.chaos)
    except (ActivityFailed, UserError, traffic.TrafficError) as exc:
        raise InterruptExecution(f"meshproof: the experiment's load did not start: {exc}") from None
    profile = started.profile
    logger.info(f"meshproof: load from {caller} to {service}{path} at {profile.rate:g} req/s over "
                f"{profile.connections} connections, in {profile.resolution:g}s blocks")


def after_experiment_control(context: dict[str, Any], state: dict[str, Any], name: str = "",
                             recovery_from: str = "end", **_: Any) -> None:
    try:
        profile = traffic.current().profile
    except traffic.TrafficError:
        return  # the load never started; the journal says why
    try:
        series = traffic.stop()
        assert series is not None
        entry = analyse(state, series, profile, name=name, recovery_from=recovery_from)
    except Exception as exc:  # chaoslib would swallow it: say it where the user looks
        logger.error(f"meshproof: the experiment could not be measured: {type(exc).__name__}: {exc}")
        raise
    state.setdefault("extensions", []).append({"name": EXTENSION, "chaos": entry})
    logger.info(f"meshproof: {summary(entry)}")


def cleanup_control() -> None:
    """The load never outlives the experiment, even one that ended before its after-control."""
    traffic.stop()


def measurement(journal: dict[str, Any]) -> dict[str, Any] | None:
    """The entry this control added to a journal, if any."""
    for extension in journal.get("extensions") or []:
        if extension.get("name") == EXTENSION:
            chaos: dict[str, Any] = extension["chaos"]
            return chaos
    return None


def summary(entry: dict[str, Any]) -> str:
    """One line: errors before/during/after, p99 during and its change, recovery."""
    fault, metrics = entry.get("fault"), entry.get("metrics") or {}
    if fault is None:
        return "no fault was injected, so nothing was measured around one"

    def rate(name: str) -> str:
        value = metrics[name]["value"]
        return "-" if value is None else f"{100 * value:.2f}%"

    recovery = entry["recovery"]
    recovered = ("not within the limits again before the horizon" if recovery["s"] is None else
                 f"back within limits {recovery['s']:g}s (+0/-{recovery['resolution_s']:g}s) after the fault's "
                 f"{recovery['from']}")
    latency, delta = metrics["p99_during_fault_ms"]["value"], metrics["p99_delta_ms"]["value"]
    p99 = "" if latency is None else f"; p99 during {latency:g} ms" + ("" if delta is None else f" ({delta:+g} ms)")
    return (f"{fault['kind']} {fault['target']}: errors {rate('error_rate_before')} before, "
            f"{rate('error_rate_during_fault')} during, {rate('error_rate_after')} after{p99}; {recovered}")
