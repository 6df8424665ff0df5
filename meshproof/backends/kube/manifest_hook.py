"""`--manifest-hook module:function`: a user function sees the rendered manifests before they are applied.

The function is called as `function(manifests) -> manifests` with the list of Kubernetes objects the
mesh's renderer made for the intents in force (dicts, as `meshproof render` prints them), on every
apply; what it returns is applied instead, and what it leaves out is deleted like any object the
intents no longer name. It gets a deep copy, so it may edit in place and return the same list. Where
`--envoy-config-hook` edits the local mesh's Envoy configs, this one reaches a real control plane's
input: meshproof's own tests break Istio's config with it on purpose (weights 88/12, a misspelt
principal, two retries instead of three) and show that the matching check goes red.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from meshproof.errors import UserError
from meshproof.user_code import load_function

Json = dict[str, Any]
ManifestHook = Callable[[list[Json]], list[Json]]
OPTION = "--manifest-hook"


def load_manifest_hook(spec: str) -> ManifestHook:
    hook: ManifestHook = load_function(spec, option=OPTION, example="mypkg.hooks:tweak_weights")
    return hook


def run_manifest_hook(hook: ManifestHook, manifests: list[Json]) -> list[Json]:
    """The hook's manifests for a deep copy of `manifests`; anything but a list of objects is a user error."""
    name = getattr(hook, "__qualname__", repr(hook))
    try:
        result = hook(copy.deepcopy(manifests))
    except Exception as exc:
        raise UserError(f"{OPTION} {name} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(result, list):
        raise UserError(f"{OPTION} {name} returned {type(result).__name__}, not a list of manifests")
    for item in result:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if not (isinstance(metadata, dict) and item.get("kind") and item.get("apiVersion") and metadata.get("name")):
            raise UserError(f"{OPTION} {name} returned {str(item)[:120]!r}: every manifest needs apiVersion, "
                            "kind and metadata.name")
    return result
