"""The Linkerd backend: intents rendered as Linkerd resources and annotations (render.py). The cluster lifecycle (kind,
install, deploy) is not wired in yet; when it is, it applies what the renderer gives. This package never
imports another mesh's."""

from meshproof.backends.kube.descriptor import cluster_descriptor
from meshproof.backends.linkerd.render import BEHAVIOUR, UNSUPPORTED, render

DESCRIPTOR = cluster_descriptor(
    "linkerd", "Linkerd's control plane and proxies on a Kubernetes cluster", render, {**UNSUPPORTED, **BEHAVIOUR},
    tools=("docker", "kind", "kubectl", "linkerd"),
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
