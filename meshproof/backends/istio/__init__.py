"""The Istio backend: intents rendered as Istio resources (render.py) and, on a kind cluster or an existing
one, applied to a real Istio installed with istioctl (cluster.py). This package never imports another
mesh's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshproof.backends.istio.render import UNSUPPORTED, render
from meshproof.backends.kube.descriptor import cluster_descriptor

if TYPE_CHECKING:
    from meshproof.backends.kube.mesh import ClusterMesh


def _on_cluster() -> type[ClusterMesh]:
    from meshproof.backends.istio.cluster import IstioOnCluster

    return IstioOnCluster


DESCRIPTOR = cluster_descriptor(
    "istio", "Istio's control plane and sidecars on a Kubernetes cluster (kind, or an existing one)", render,
    UNSUPPORTED, cli="istioctl", backend=_on_cluster,
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
