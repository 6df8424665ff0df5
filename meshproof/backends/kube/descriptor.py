"""The descriptor every cluster mesh shares: its renderer's manifests for `meshproof render`, what it needs
on this machine for `meshproof doctor` (per cluster), the options it takes (--cluster, --kube-context,
--mesh-version, --k8s-version, --keep-cluster, --echo-image, --manifest-hook) checked before anything
starts, and its backend.

Importing this is cheap: the backend (and the kubernetes client) is imported by `create` only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING

from meshproof.backends.kube.cluster_choice import choose_cluster
from meshproof.backends.kube.manifests import Renderer, rendered
from meshproof.backends.kube.prerequisites import cluster_tools, kube_contexts
from meshproof.descriptor import Descriptor, Options, Prerequisite, flag
from meshproof.errors import UserError
from meshproof.profile import Profile

if TYPE_CHECKING:
    from meshproof.backends.kube.mesh import ClusterMesh

#: Where cluster meshes run in this version.
CLUSTERS = ("kind", "existing")
#: What no cluster mesh does here, whatever the mesh (each backend adds its renderer's table).
CLUSTER_UNSUPPORTED = {
    "mesh.fault.proxy_crash": "on a cluster the kubelet restarts a killed proxy container within seconds and the "
    "pod leaves the endpoints meanwhile, so a proxy cannot be held down until undo as the fault promises "
    "(a cluster's faults are AppError, AppDelay and ControlPlaneDown)",
    "mesh.fault.impostor": "an impostor must answer at the destination pod's own IP, which on a cluster belongs "
    "to that pod's network namespace; this version has no cluster form of it",
    "mesh.load_targets": "the load suite drives Locust from the runner and samples the proxies' CPU by host "
    "pid; on a cluster the generator must run as pods beside the caller, which this version does not wire "
    "into the load suite",
    **dict.fromkeys(
        ("mesh.fault.app_crash", "mesh.fault.app_freeze", "mesh.fault.http",
         "mesh.fault.port_refused", "mesh.fault.port_blackholed"),
        "the local mesh's process and listener faults have no cluster form in this version (the kubelet restarts "
        "a killed container and probes a frozen one, which these faults' undo semantics do not allow for); a "
        "cluster's faults are AppError, AppDelay and ControlPlaneDown"),
}
#: options that only make sense on some clusters
_ONLY_ON = {"kube_context": ("existing",), "k8s_version": ("kind",), "keep_cluster": ("kind",),
            "echo_image": ("kind", "existing")}
#: the Options every cluster mesh takes
OPTIONS = frozenset({"manifest_hook", "cluster", "mesh_version", *_ONLY_ON})


def check_cluster_options(options: Options, cluster: str) -> None:
    """UserError for an option set that `cluster` has no use for."""
    for option, only in _ONLY_ON.items():
        if getattr(options, option) not in (None, False) and cluster not in only:
            raise UserError(f"{flag(option)}: an option of --cluster {' or '.join(only)}, not --cluster {cluster}")


def _validate(name: str, options: Options) -> None:
    from meshproof.backends.kube.kind import node_image
    from meshproof.backends.kube.manifest_hook import load_manifest_hook

    cluster = choose_cluster(options.cluster, mesh=name, supported=CLUSTERS)
    check_cluster_options(options, cluster)
    if cluster == "kind":
        node_image(options.k8s_version)
    if options.manifest_hook:
        load_manifest_hook(options.manifest_hook)


def _create(name: str, backend: Callable[[], type[ClusterMesh]], profile: Profile, options: Options) -> ClusterMesh:
    return backend()(profile, options, cluster=choose_cluster(options.cluster, mesh=name, supported=CLUSTERS))


def _prerequisites(cli: str) -> list[Prerequisite]:
    """A kind cluster needs Docker and kind, an existing one a context; both the mesh's CLI."""
    found = [dataclasses.replace(tool, clusters=("kind",)) for tool in cluster_tools(("docker", "kind"))]
    found.append(kube_contexts())
    found += [dataclasses.replace(tool, clusters=CLUSTERS) for tool in cluster_tools((cli,))]
    return found


def cluster_descriptor(name: str, summary: str, render: Renderer, unsupported: Mapping[str, str], *, cli: str,
                       backend: Callable[[], type[ClusterMesh]]) -> Descriptor:
    return Descriptor(
        name=name,
        summary=summary,
        create=partial(_create, name, backend),
        prerequisites=partial(_prerequisites, cli),
        render=partial(rendered, render),
        unsupported={**unsupported, **CLUSTER_UNSUPPORTED},
        options=OPTIONS,
        validate=partial(_validate, name),
    )
