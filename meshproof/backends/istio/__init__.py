"""The Istio backend: intents rendered as Istio resources (render.py). The cluster lifecycle (kind,
install, deploy) is not wired in yet; when it is, it applies what the renderer gives. This package never
imports another mesh's."""

from meshproof.backends.istio.render import BEHAVIOUR, UNSUPPORTED, render
from meshproof.backends.kube.descriptor import cluster_descriptor

DESCRIPTOR = cluster_descriptor(
    "istio", "Istio's control plane and sidecars on a Kubernetes cluster", render, {**UNSUPPORTED, **BEHAVIOUR},
    tools=("docker", "kind", "kubectl", "istioctl"),
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
