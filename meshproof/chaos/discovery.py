"""`chaos discover meshproof`: the activities of meshproof.chaos, and the mesh `meshproof up` runs, if any."""

from __future__ import annotations

from typing import Any

from chaoslib.discovery import discover_actions, discover_probes, initialize_discovery_result

import meshproof
from meshproof.attach.state import read_state
from meshproof.errors import UserError


def discover(discover_system: bool = True) -> dict[str, Any]:
    discovery: dict[str, Any] = initialize_discovery_result("meshproof", meshproof.__version__, "mesh")
    discovery["activities"].extend(discover_actions("meshproof.chaos.actions"))
    discovery["activities"].extend(discover_probes("meshproof.chaos.probes"))
    if discover_system:
        discovery["system"] = _system()
    return discovery


def _system() -> dict[str, Any] | None:
    """The running mesh as `meshproof status` shows it; None when none is up."""
    try:
        state = read_state()
    except UserError:
        return None
    if state is None or not state.alive():
        return None
    return {"mesh": state.mesh, "profile": state.profile, "run": state.run, "instances": sorted(state.addresses)}
