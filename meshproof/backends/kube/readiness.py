"""When what meshproof deployed or installed is ready, judged from the objects' status as the API server holds it.

A Deployment is rolled out when its controller has seen the latest spec (status.observedGeneration)
and every replica is updated, ready and available, as `kubectl rollout status` judges it. A pod counts
only when it is Running, Ready, not being deleted, and, if a mesh proxy is expected, carries that
proxy's container (among its containers, or its initContainers for a native sidecar): a pod that is
ready *without* its proxy means injection did not happen, which is an error, not a wait. A webhook
configuration serves only once every webhook has a CA bundle (the mesh's controller patches it in
after start-up; until then the API server cannot call it).

Each wait polls and, at its deadline, raises one UserError listing what was still not ready and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from meshproof.backends.kube import objects
from meshproof.backends.kube.api import Json, KubeApi, describe
from meshproof.errors import UserError


def deployment_problem(stored: Json | None) -> str | None:
    """Why a Deployment is not rolled out yet; None when it is."""
    if stored is None:
        return "not found"
    want = stored.get("spec", {}).get("replicas", 1)
    status = stored.get("status") or {}
    if status.get("observedGeneration", 0) < stored["metadata"].get("generation", 1):
        return "its controller has not seen the latest spec yet"
    for field in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if status.get(field, 0) < want:
            return f"{status.get(field, 0)} of {want} replicas {field.removesuffix('Replicas')}"
    if status.get("replicas", 0) > want:
        return f"{status['replicas'] - want} old replicas still terminating"
    return None


def _containers(pod: Json) -> list[str]:
    spec = pod.get("spec", {})
    return [c["name"] for c in (*spec.get("initContainers", ()), *spec.get("containers", ()))]


class NotInjected(UserError):
    """A pod runs without the mesh's proxy: the mesh's injector did not act on it."""


def pod_problem(pod: Json, proxy_container: str | None) -> str | None:
    """Why a pod does not count as a ready instance; None when it does. NotInjected when it lacks the
    proxy it should have."""
    if proxy_container and proxy_container not in _containers(pod):
        raise NotInjected(f"pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has no {proxy_container} "
                          f"container: the mesh did not inject its proxy (containers: {', '.join(_containers(pod))})")
    if pod["metadata"].get("deletionTimestamp"):
        return "being deleted"
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return f"phase {status.get('phase', 'unknown')}"
    ready = objects.condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        waiting = [f"{c['name']}: {next(iter(c['state']))}" for c in status.get("containerStatuses", ())
                   if not c.get("ready") and c.get("state")]
        return "not Ready" + (f" ({', '.join(waiting)})" if waiting else "")
    return None


def webhook_problem(stored: Json | None) -> str | None:
    """Why a Mutating/ValidatingWebhookConfiguration cannot be called yet; None when it can."""
    if stored is None:
        return "not found"
    webhooks = stored.get("webhooks") or []
    if not webhooks:
        return "has no webhooks"
    missing = [hook.get("name", "?") for hook in webhooks if not (hook.get("clientConfig") or {}).get("caBundle")]
    return f"no CA bundle yet for {', '.join(missing)}" if missing else None


def list_pods(api: KubeApi, namespace: str, selector: str) -> list[Json]:
    listing = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query=[("labelSelector", selector)])
    return sorted(listing.get("items", ()), key=lambda pod: pod["metadata"]["name"])


def wait_until_none(problems: Callable[[], Sequence[str]], *, timeout: float, what: str,
                    interval: float = 0.5) -> None:
    """Poll `problems()` until it is empty; UserError listing the last ones after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = problems()
        if not found:
            return
        if time.monotonic() >= deadline:
            raise UserError(f"{what} not ready within {timeout:g} s: {'; '.join(found)[:800]}")
        time.sleep(interval)


def wait_rolled_out(api: KubeApi, deployments: Sequence[Json], *, timeout: float, what: str) -> None:
    def problems() -> list[str]:
        return [f"{describe(item)}: {problem}" for item in deployments
                if (problem := deployment_problem(objects.get(api, item))) is not None]

    wait_until_none(problems, timeout=timeout, what=what)


def ready_pods(api: KubeApi, namespace: str, selector: str, *, expected: int, proxy_container: str | None,
               timeout: float) -> list[Json]:
    """The `expected` ready pods `selector` picks in `namespace` (and no others: a rollout in progress waits)."""
    found: list[Json] = []

    def problems() -> list[str]:
        pods = list_pods(api, namespace, selector)
        waiting = [f"{p['metadata']['name']}: {problem}" for p in pods
                   if (problem := pod_problem(p, proxy_container)) is not None]
        found[:] = [p for p in pods if pod_problem(p, proxy_container) is None]
        if len(found) != expected and not waiting:
            waiting.append(f"{len(found)} ready pods, expected {expected}")
        return waiting

    wait_until_none(problems, timeout=timeout, what=f"pods {selector} in {namespace}")
    return found


def wait_webhooks(api: KubeApi, configurations: Sequence[Json], *, timeout: float, what: str) -> None:
    def problems() -> list[str]:
        return [f"{describe(item)}: {problem}" for item in configurations
                if (problem := webhook_problem(objects.get(api, item))) is not None]

    wait_until_none(problems, timeout=timeout, what=what)
