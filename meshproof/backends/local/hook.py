"""`--envoy-config-hook module:function`: a user function sees every config before a sidecar runs it.

The function is called as `function(workload_name, config) -> config` on the Envoy v3 JSON shape:
once with the bootstrap, and each time with a DiscoveryResponse body `{"resources": [...]}` about to
be served over xDS (listeners, clusters, or one of the route configurations). It returns the config
to use; it gets a deep copy, so it may change the dict in place and return it. Users try custom
Envoy extensions with it; meshproof's own tests break the mesh with it on purpose.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from meshproof.errors import UserError
from meshproof.user_code import load_function

ConfigHook = Callable[[str, dict[str, Any]], dict[str, Any]]
OPTION = "--envoy-config-hook"


def load_hook(spec: str) -> ConfigHook:
    """Import `module:function` (a dotted module, or a path to a .py file)."""
    hook: ConfigHook = load_function(spec, option=OPTION, example="mypkg.hooks:add_lua_filter")
    return hook


def resources(config: dict[str, Any], type_name: str) -> list[dict[str, Any]]:
    """The resources of one type in an xDS config a hook receives, e.g. resources(config, "Listener")."""
    return [r for r in config.get("resources", []) if str(r.get("@type", "")).endswith(f".{type_name}")]


def run_hook(hook: ConfigHook | None, workload: str, config: dict[str, Any], what: str) -> dict[str, Any]:
    """Apply the hook to a deep copy; a hook that raises or returns a non-dict is a user error."""
    if hook is None:
        return config
    name = getattr(hook, "__qualname__", repr(hook))
    try:
        result = hook(workload, copy.deepcopy(config))
    except Exception as exc:
        raise UserError(f"{OPTION} {name} raised {type(exc).__name__}: {exc} (on the {what} of {workload})") from None
    if not isinstance(result, dict):
        raise UserError(f"{OPTION} {name} returned {type(result).__name__}, not a dict (on the {what} of {workload})")
    return result
