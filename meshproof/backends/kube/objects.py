"""Objects on an API server: server-side apply, read back, wait for conditions, delete.

Apply is server-side apply with field manager `meshproof` and `fieldValidation=Strict`: the server
rejects an unknown or duplicated field instead of pruning it in silence (what `kubectl apply
--server-side` does with its default validation), and the request passes the server's whole
admission chain, validating webhooks included, so a mesh's webhook judges it the same way once
registered. `dry_run=True` runs all of that and stores nothing. Without `force`, a field another
manager owns is a conflict, reported, never taken over. An unknown field comes back as *500*
Internal Server Error, "failed to create typed patch object ... field not declared in schema"
(kubernetes/kubernetes#139253, still so in 1.37.2): a refusal like any other, not a fault to retry.

`differences(sent, stored)` says where what the server stored differs from what was sent: every
field sent must come back equal (lists element by element); fields the server added (defaults,
metadata, status) are allowed. This module knows nothing of namespaces' ownership: see cluster.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from meshproof.backends.kube.api import ApiError, Json, KubeApi, describe
from meshproof.errors import UserError

FIELD_MANAGER = "meshproof"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"  # a JSON body is YAML too


class Refused(UserError):
    """The API server refused an object (validation, admission, a conflict); `status` is its HTTP status."""

    def __init__(self, manifest: Json, error: ApiError) -> None:
        self.status = error.status
        self.message = error.message
        super().__init__(f"the API server refused {describe(manifest)} ({error.status} {error.reason}): "
                         f"{error.message}")


def apply(api: KubeApi, manifest: Json, *, dry_run: bool = False, force: bool = False) -> Json:
    """Server-side apply `manifest`; what the server stored (or would store, with dry_run)."""
    query = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
    if force:
        query.append(("force", "true"))
    if dry_run:
        query.append(("dryRun", "All"))
    try:
        return api.request("PATCH", api.path_of(manifest), query=query, body=manifest,
                           content_type=APPLY_CONTENT_TYPE)
    except ApiError as exc:
        raise Refused(manifest, exc) from None


def get(api: KubeApi, manifest: Json) -> Json | None:
    """The stored object `manifest` names (its apiVersion, kind, name and namespace); None if absent."""
    try:
        return api.request("GET", api.path_of(manifest))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def delete(api: KubeApi, manifest: Json, *, wait: float | None = None) -> None:
    """Delete the object (absent is fine); with `wait`, return only once it is gone."""
    try:
        api.request("DELETE", api.path_of(manifest), query=[("propagationPolicy", "Background")])
    except ApiError as exc:
        if exc.status != 404:
            raise
    if wait is not None:
        wait_for(api, manifest, lambda stored: stored is None, what="deleted", timeout=wait)


def wait_for(api: KubeApi, manifest: Json, predicate: Callable[[Json | None], bool], *, what: str,
             timeout: float, interval: float = 0.1) -> Json | None:
    """Poll the object until `predicate(stored or None)` holds; UserError saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        stored = get(api, manifest)
        if predicate(stored):
            return stored
        if time.monotonic() >= deadline:
            seen = "absent" if stored is None else f"conditions {conditions_summary(stored)}"
            raise UserError(f"{describe(manifest)} not {what} within {timeout:g} s (last seen: {seen})")
        time.sleep(interval)


def condition(stored: Json | None, kind: str) -> Json | None:
    """The status condition of type `kind`, if the object reports it."""
    for item in ((stored or {}).get("status") or {}).get("conditions") or ():
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return None


def conditions_summary(stored: Json) -> str:
    items = (stored.get("status") or {}).get("conditions") or []
    return ", ".join(f"{c.get('type')}={c.get('status')}" + (f" ({c['message']})" if c.get("message") else "")
                     for c in items if isinstance(c, dict)) or "none"


def wait_for_condition(api: KubeApi, manifest: Json, kind: str, *, status: str = "True", timeout: float,
                       current: bool = True) -> Json:
    """Wait until the object reports condition `kind` with `status`. With `current`, the condition must
    also be about the latest spec (its observedGeneration, when it has one, is the object's generation)."""

    def holds(stored: Json | None) -> bool:
        found = condition(stored, kind)
        if found is None or stored is None or found.get("status") != status:
            return False
        observed = found.get("observedGeneration")
        return not current or observed is None or observed == stored["metadata"].get("generation")

    stored = wait_for(api, manifest, holds, what=f"{kind}={status}", timeout=timeout)
    assert stored is not None
    return stored


def differences(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Where `stored` does not contain `sent`: each `path: sent X, stored Y`; [] when it does."""
    where = path or "(root)"
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [f"{where}: sent an object, stored {stored!r}"]
        found = []
        for key, value in sent.items():
            inner = f"{path}.{key}" if path else str(key)
            if key not in stored:
                found.append(f"{inner}: sent {value!r}, not stored")
            else:
                found += differences(value, stored[key], inner)
        return found
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [f"{where}: sent {sent!r}, stored {stored!r}"]
        return [line for index, (a, b) in enumerate(zip(sent, stored, strict=True))
                for line in differences(a, b, f"{path}[{index}]")]
    if sent != stored or isinstance(sent, bool) != isinstance(stored, bool):  # True == 1 in Python
        return [f"{where}: sent {sent!r}, stored {stored!r}"]
    return []
