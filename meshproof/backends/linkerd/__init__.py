"""The Linkerd backend: intents rendered as Linkerd resources and annotations (render.py) and, on a kind
cluster or an existing one, applied to a real Linkerd installed with its CLI (cluster.py). This package
never imports another mesh's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshproof.backends.kube.descriptor import cluster_descriptor
from meshproof.backends.linkerd.render import DECLARED, UNSUPPORTED, render

if TYPE_CHECKING:
    from meshproof.backends.kube.mesh import ClusterMesh


def _on_cluster() -> type[ClusterMesh]:
    from meshproof.backends.linkerd.cluster import LinkerdOnCluster

    return LinkerdOnCluster


DESCRIPTOR = cluster_descriptor(
    "linkerd", "Linkerd's control plane and proxies on a Kubernetes cluster (kind, or an existing one)", render,
    DECLARED, cli="linkerd", backend=_on_cluster,
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
