"""What a cluster mesh (Istio, Linkerd) adds to the shared Kubernetes layer: the contract between
meshproof.backends.kube.mesh, which does everything meshes have in common, and each mesh's own module
(meshproof.backends.istio.cluster, meshproof.backends.linkerd.cluster).

A mesh says how to install itself with its CLI on a cluster meshproof owns (and how to find the
installed version on one it does not), when its control plane and injector serve, when a change has
reached its proxies by its own signal, how its servers name the caller, and what its proxies' metrics
say. Everything else (clusters, namespaces, workloads, calls, waits, cleanup) is shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

from meshproof.backend import ObservedIdentity, RequestCounts
from meshproof.backends.kube.api import Json
from meshproof.backends.kube.calls import PodInstance
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.commands import Runner
from meshproof.backends.kube.deploy import MeshFlavour
from meshproof.backends.kube.metrics import Sample
from meshproof.backends.kube.namespaces import NamespaceMap
from meshproof.backends.kube.pods import PodProxy
from meshproof.errors import PrerequisiteError
from meshproof.intent import Intent, Workload
from meshproof.profile import ClusterSettings

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def object_key(manifest: Json) -> ObjectKey:
    metadata = manifest["metadata"]
    return manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"]


def check_version(cli: str, wanted: str | None, found: str, how_to_get: str) -> str:
    """`found` when it is the `--mesh-version` asked for (or none was); PrerequisiteError otherwise."""
    if wanted and wanted.removeprefix("v") != found.removeprefix("v"):
        raise PrerequisiteError(f"--mesh-version {wanted}: the {cli} on PATH is {found}; put {cli} {wanted} first on "
                                f"PATH ({how_to_get})")
    return found


class MeshIntegration(ABC):
    """The hooks meshproof.backends.kube.mesh.ClusterMesh leaves to each mesh (a subclass implements them)."""

    cli: ClassVar[str]  # its command-line tool, a key of meshproof.backends.kube.prerequisites.TOOLS
    flavour: ClassVar[MeshFlavour]
    kind_order: ClassVar[Sequence[str]]  # the renderer's apply order

    @abstractmethod
    def render(self, intents: Sequence[Intent], workloads: Sequence[Workload]) -> list[Json]:
        """The mesh's objects for `intents` (already in the cluster's namespaces)."""

    @abstractmethod
    def cli_version(self, tools: Runner) -> str:
        """The version of the mesh's CLI on PATH (the release it installs)."""

    @abstractmethod
    def install(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        """Install the mesh with its CLI (a cluster meshproof owns)."""

    @abstractmethod
    def installed_version(self, cluster: Cluster) -> str:
        """The version of the control plane found on the cluster; UserError when there is none."""

    @abstractmethod
    def wait_ready(self, cluster: Cluster, tools: Runner, settings: ClusterSettings) -> None:
        """Until the control plane serves and its injector webhook can be called."""

    @abstractmethod
    def control_plane(self) -> list[Json]:
        """The control plane's Deployments (what ControlPlaneDown scales to zero)."""

    def support_manifests(self, names: NamespaceMap) -> list[Json]:
        """Objects the mesh's signal needs beside the workloads (applied with them); none by default."""
        return []

    @abstractmethod
    def wait_served(self, cluster: Cluster, proxy: PodProxy, applied: Mapping[ObjectKey, Json | None],
                    pods: Sequence[PodInstance], names: NamespaceMap, timeout: float) -> dict[str, object]:
        """Until the mesh's own signal says `applied` (key -> stored object, None for deleted) is served to
        `pods`; ConfigRejected when a proxy refused it. Returns what the signal showed, for evidence."""

    @staticmethod
    @abstractmethod
    def peer_identity(headers: Mapping[str, str]) -> ObservedIdentity:
        """The caller identity a serving app was handed (in the cluster's namespaces)."""

    @staticmethod
    @abstractmethod
    def proxy_request_counts(samples: Sequence[Sample]) -> RequestCounts:
        """Requests one server pod's proxy answered, from its metrics."""

    @staticmethod
    @abstractmethod
    def proxy_outlier_stats(samples: Sequence[Sample], service: str, namespace: str) -> dict[str, int]:
        """A caller pod's proxy's view of `service`'s endpoints (ejections), from its metrics."""

    def mesh_ca(self, cluster: Cluster) -> tuple[bytes, bytes, bytes] | None:
        """The mesh CA's (certificate PEM, private key PEM, chain PEM to append to what it signs), read from
        the cluster, so meshproof can give a client outside the mesh a certificate of the mesh (the refusal
        checks' positive control); None when meshproof cannot (the mesh declares
        mtls.outside_certificate unsupported)."""
        return None

    def control_plane_diagnostics(self, cluster: Cluster, proxy: PodProxy) -> dict[str, object]:
        """What a failing check attaches about the control plane; nothing by default."""
        return {}
