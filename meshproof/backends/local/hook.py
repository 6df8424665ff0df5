"""`--envoy-config-hook module:function`: a user function sees every config before a sidecar runs it.

The function is called as `function(workload_name, config) -> config` on the Envoy v3 JSON shape:
once with the bootstrap, and each time with a DiscoveryResponse body `{"resources": [...]}` about to
be served over xDS (listeners, clusters, or one of the route configurations). It returns the config
to use; it gets a deep copy, so it may change the dict in place and return it. Users try custom
Envoy extensions with it; meshproof's own tests break the mesh with it on purpose.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshproof.errors import UserError

ConfigHook = Callable[[str, dict[str, Any]], dict[str, Any]]
OPTION = "--envoy-config-hook"


def load_hook(spec: str) -> ConfigHook:
    """Import `module:function` (a dotted module, or a path to a .py file)."""
    module_name, sep, function_name = spec.rpartition(":")
    if not sep or not module_name or not function_name:
        raise UserError(f"{OPTION} {spec!r}: expected MODULE:FUNCTION, e.g. mypkg.hooks:add_lua_filter")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"{OPTION} {spec!r}: no file {path}")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: hooks beside the user's files
            module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"{OPTION} {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc} "
            "(is it on PYTHONPATH, or give a path to a .py file)"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"{OPTION} {spec!r}: {module_name} has no function {function_name!r}")
    hook: ConfigHook = function
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
