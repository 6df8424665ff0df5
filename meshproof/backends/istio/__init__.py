"""The Istio backend: intents rendered as Istio resources (render.py) and applied to a real istiod. On the
local control plane (`--cluster local`, local/) istiod, pilot-agent and Envoy run on this host; on kind or
an existing cluster the lifecycle (install, deploy) is not wired in yet. This package never imports
another mesh's."""

from __future__ import annotations

from meshproof.backend import Backend
from meshproof.backends.istio.render import UNSUPPORTED, render
from meshproof.backends.kube.descriptor import cluster_descriptor
from meshproof.descriptor import Descriptor, Options, Prerequisite
from meshproof.profile import Profile

_ON_KIND = cluster_descriptor(
    "istio", "Istio's control plane and sidecars on a Kubernetes cluster", render, UNSUPPORTED,
    tools=("docker", "kind", "kubectl", "istioctl"),
)


def _create(profile: Profile, options: Options) -> Backend:
    from meshproof.backends.kube.cluster_choice import choose_cluster

    if choose_cluster(options.cluster) != "local":
        return _ON_KIND.create(profile, options)
    from meshproof import builds
    from meshproof.backends.istio.local import releases
    from meshproof.backends.istio.local.mesh import LocalIstio
    from meshproof.backends.kube.manifest_hook import load_manifest_hook

    hook = load_manifest_hook(options.manifest_hook) if options.manifest_hook else None
    return LocalIstio(profile, release=releases.release(options.mesh_version), manifest_hook=hook,
                      artifacts_dir=options.artifacts_dir, progress=builds.BuildProgress())


def _validate(options: Options) -> None:
    from meshproof.backends.istio.local import releases
    from meshproof.backends.kube.cluster_choice import choose_cluster
    from meshproof.backends.kube.manifest_hook import load_manifest_hook

    choose_cluster(options.cluster)
    releases.release(options.mesh_version)
    if options.manifest_hook:
        load_manifest_hook(options.manifest_hook)


def _prerequisites() -> list[Prerequisite]:
    """What a run with no --cluster needs here: the local control plane's, or the cluster tools."""
    from meshproof.backends.istio.local.doctor import local_prerequisites
    from meshproof.backends.kube.cluster_choice import choose_cluster

    return local_prerequisites() if choose_cluster(None) == "local" else _ON_KIND.prerequisites()


DESCRIPTOR = Descriptor(
    name="istio",
    summary="real istiod, pilot-agent and Envoy: on this host against a local API server (--cluster local), "
            "or on a Kubernetes cluster",
    create=_create,
    prerequisites=_prerequisites,
    render=_ON_KIND.render,
    unsupported=UNSUPPORTED,
    options=frozenset({"manifest_hook", "cluster", "mesh_version"}),
    validate=_validate,
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
