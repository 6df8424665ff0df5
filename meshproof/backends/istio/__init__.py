"""The Istio backend: intents rendered as Istio resources (render.py). The cluster lifecycle (kind,
install, deploy) is not wired in yet; when it is, it only calls the renderer. This package never
imports another mesh's."""

from meshproof.backends.istio.render import UNSUPPORTED, render

__all__ = ["UNSUPPORTED", "render"]
