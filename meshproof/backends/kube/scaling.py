"""Scaling Deployments through their `scale` subresource: how the ControlPlaneDown fault stops a mesh's control
plane on a cluster (its Deployments to zero replicas) and how its undo brings back exactly the replicas there
were. The proxies keep the config they were given; nothing can change it meanwhile.

Down means gone: the controller has scaled the Deployment to zero and its last pod has left
(`status.replicas` 0), not merely that zero was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshproof.backends.kube import objects, readiness
from meshproof.backends.kube.api import Json, KubeApi, describe


def scale(api: KubeApi, deployment: Json, replicas: int) -> int:
    """Set the Deployment's replicas; the number it had before."""
    path = api.path_of(deployment) + "/scale"
    before = int(api.request("GET", path).get("spec", {}).get("replicas", 0))
    api.request("PATCH", path, body={"spec": {"replicas": replicas}}, content_type="application/merge-patch+json")
    return before


def scale_to_zero(api: KubeApi, deployments: Sequence[Json], *, timeout: float, what: str) -> dict[str, int]:
    """Every Deployment to zero, then wait until each has no pod left; name -> the replicas it had."""
    before = {deployment["metadata"]["name"]: scale(api, deployment, 0) for deployment in deployments}

    def problems() -> list[str]:
        return [f"{describe(d)}: {replicas} pods left" for d in deployments
                if (replicas := ((objects.get(api, d) or {}).get("status") or {}).get("replicas", 0))]

    readiness.wait_until_none(problems, timeout=timeout, what=f"{what} scaled to zero")
    return before


def restore(api: KubeApi, deployments: Sequence[Json], replicas: Mapping[str, int], *, timeout: float,
            what: str) -> None:
    """Each Deployment back to the replicas it had, rolled out again."""
    for deployment in deployments:
        scale(api, deployment, replicas[deployment["metadata"]["name"]])
    readiness.wait_rolled_out(api, deployments, timeout=timeout, what=what)
