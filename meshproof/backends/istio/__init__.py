"""The Istio backend: intents rendered as Istio resources (render.py) and applied to a real istiod: on the local
control plane (`--cluster local`, local/: istiod, pilot-agent and Envoy on this host), or on a kind cluster or
an existing one (cluster.py: Istio installed with istioctl). This package never imports another mesh's."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from meshproof.backend import Backend
from meshproof.backends.istio.render import DECLARED, UNSUPPORTED, render
from meshproof.backends.kube.cluster_choice import choose_cluster
from meshproof.backends.kube.descriptor import check_cluster_options, cluster_descriptor
from meshproof.descriptor import Descriptor, Options, Prerequisite
from meshproof.profile import Profile

if TYPE_CHECKING:
    from meshproof.backends.kube.mesh import ClusterMesh

CLUSTERS = ("local", "kind", "existing")


def _on_cluster() -> type[ClusterMesh]:
    from meshproof.backends.istio.cluster import IstioOnCluster

    return IstioOnCluster


_ON_CLUSTER = cluster_descriptor(
    "istio", "Istio's control plane and sidecars on a Kubernetes cluster", render, DECLARED, cli="istioctl",
    backend=_on_cluster,
)


def _create(profile: Profile, options: Options) -> Backend:
    if choose_cluster(options.cluster, mesh="istio", supported=CLUSTERS) != "local":
        return _ON_CLUSTER.create(profile, options)
    from meshproof import builds
    from meshproof.backends.istio.local import releases
    from meshproof.backends.istio.local.mesh import LocalIstio
    from meshproof.backends.kube.manifest_hook import load_manifest_hook

    hook = load_manifest_hook(options.manifest_hook) if options.manifest_hook else None
    return LocalIstio(profile, release=releases.release(options.mesh_version), manifest_hook=hook,
                      artifacts_dir=options.artifacts_dir, progress=builds.BuildProgress())


def _validate(options: Options) -> None:
    if choose_cluster(options.cluster, mesh="istio", supported=CLUSTERS) != "local":
        _ON_CLUSTER.validate(options)
        return
    from meshproof.backends.istio.local import releases
    from meshproof.backends.kube.manifest_hook import load_manifest_hook

    check_cluster_options(options, "local")
    releases.release(options.mesh_version)
    if options.manifest_hook:
        load_manifest_hook(options.manifest_hook)


def _prerequisites() -> list[Prerequisite]:
    """What each cluster needs: the local control plane's programs, or the cluster tools."""
    from meshproof.backends.istio.local.doctor import local_prerequisites

    local = [dataclasses.replace(item, clusters=("local",)) for item in local_prerequisites()]
    return local + _ON_CLUSTER.prerequisites()


DESCRIPTOR = Descriptor(
    name="istio",
    summary="real istiod and Envoy: on this host against a local API server (--cluster local), or installed with "
            "istioctl on a kind cluster or an existing one",
    create=_create,
    prerequisites=_prerequisites,
    render=_ON_CLUSTER.render,
    unsupported=DECLARED,
    options=_ON_CLUSTER.options,
    validate=_validate,
)

__all__ = ["DESCRIPTOR", "UNSUPPORTED", "render"]
