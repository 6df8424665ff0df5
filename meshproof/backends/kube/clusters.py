"""Where a cluster mesh runs: a kind cluster meshproof creates (and deletes), or an existing cluster it borrows.

`KindLease` creates `meshproof-<hex>` from the pinned node image of `--k8s-version`, its kubeconfig in
the run's directory. The cluster is recorded in the run directory *before* kind starts, so a run
killed even mid-create leaves `meshproof cleanup` a cluster to delete; the run deletes it itself at the
end unless `--keep-cluster`. The cluster is meshproof's: the mesh is installed into it, the scenario's
namespaces keep their names, and the echo image is loaded onto its node.

`ExistingLease` uses one context of the user's kubeconfig (`--kube-context`, required: meshproof does
not guess which cluster to change). There it touches only namespaces it creates, labelled
`app.kubernetes.io/managed-by=meshproof` (meshproof.backends.kube.cluster refuses any other), named
with a per-run prefix (namespaces.py), and deletes them at the end; the mesh must be installed already
(meshproof never installs or removes a control plane it does not own), and the echo image must be one
the cluster can pull (`--echo-image`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import yaml

from meshproof.backends.kube import kind, objects
from meshproof.backends.kube.api import KubeApi
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.commands import Runner
from meshproof.backends.kube.namespaces import NamespaceMap
from meshproof.backends.kube.prerequisites import contexts, user_kubeconfig
from meshproof.errors import UserError
from meshproof.runs import RunDir


class ClusterLease(ABC):
    kind: str  # the --cluster value
    owns_mesh: bool  # meshproof installs the mesh here (and removes it with the cluster)
    names: NamespaceMap

    def __init__(self) -> None:
        self.cluster: Cluster | None = None
        self.facts: dict[str, Any] = {}

    @abstractmethod
    def open(self, run: RunDir, tools: Runner, *, timeout: float) -> Cluster: ...

    @abstractmethod
    def close(self, tools: Runner) -> str:
        """Give the cluster back (delete it, or what meshproof made on it); what was done, in a few words."""

    @abstractmethod
    def create_namespace(self, scenario_name: str, labels: dict[str, str]) -> str:
        """The scenario namespace on the cluster, with `labels` (a mesh's injection label); its cluster name."""

    def _connect(self, kubeconfig: Path, context: str | None, *, created: bool, run: RunDir) -> Cluster:
        api = KubeApi.from_kubeconfig(kubeconfig, context=context)
        self.cluster = Cluster(api, created, kubeconfig, context, None if created else run)
        self.facts["kubernetes"] = str(api.request("GET", "/version").get("gitVersion"))
        return self.cluster

    def _disconnect(self) -> None:
        if self.cluster is not None:
            self.cluster.api.close()


class KindLease(ClusterLease):
    kind = "kind"
    owns_mesh = True

    def __init__(self, *, k8s_version: str | None, keep: bool) -> None:
        super().__init__()
        self.image = kind.node_image(k8s_version)
        self.keep = keep
        self.name = kind.new_name()
        self.kubeconfig: Path | None = None
        self.names = NamespaceMap()
        self.facts.update(cluster="kind", kind=kind.KIND_VERSION, cluster_name=self.name, node_image=self.image)

    def open(self, run: RunDir, tools: Runner, *, timeout: float) -> Cluster:
        self.kubeconfig = run.path / "kubeconfig"
        config_file = run.path / "kind.yaml"
        config_file.write_text(yaml.safe_dump(kind.config()))
        run.record_resource(kind.RESOURCE_KIND, self.name, kubeconfig=str(self.kubeconfig))
        tools(kind.create(self.name, self.image, config_file, self.kubeconfig, timeout=timeout))
        return self._connect(self.kubeconfig, None, created=True, run=run)

    def create_namespace(self, scenario_name: str, labels: dict[str, str]) -> str:
        """`default` exists on a new cluster: it gets the labels; any other namespace is created."""
        assert self.cluster is not None
        name = self.names.cluster(scenario_name)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if objects.get(self.cluster.api, namespace) is None:
            self.cluster.create_namespace(name, labels=labels)
        else:
            self.cluster.apply({**namespace, "metadata": {"name": name, "labels": labels}})
        return name

    def load_image(self, image: str, tools: Runner) -> None:
        tools(kind.load_image(self.name, image))

    def close(self, tools: Runner) -> str:
        self._disconnect()
        if self.keep:
            return (f"kept the kind cluster {self.name} (--keep-cluster): kind export kubeconfig --name {self.name}; "
                    f"delete it with kind delete cluster --name {self.name}")
        tools(kind.delete(self.name, self.kubeconfig))
        return f"deleted the kind cluster {self.name}"


class ExistingLease(ClusterLease):
    kind = "existing"
    owns_mesh = False

    def __init__(self, *, context: str | None) -> None:
        super().__init__()
        self.kubeconfig = user_kubeconfig()
        known = contexts(self.kubeconfig)
        if not context:
            raise UserError(f"--cluster existing needs --kube-context NAME, the context of {self.kubeconfig} to use "
                            f"(it has: {', '.join(known) or 'none'})")
        if context not in known:
            raise UserError(f"--kube-context {context}: no such context in {self.kubeconfig} "
                            f"(it has: {', '.join(known) or 'none'})")
        self.context = context
        self.names = NamespaceMap.borrowed()
        self.created: list[str] = []
        self.facts.update(cluster="existing", context=context, namespace_prefix=self.names.prefix)

    def open(self, run: RunDir, tools: Runner, *, timeout: float) -> Cluster:
        return self._connect(self.kubeconfig, self.context, created=False, run=run)

    def create_namespace(self, scenario_name: str, labels: dict[str, str]) -> str:
        """A new namespace `<prefix><name>`, labelled as meshproof's, recorded for cleanup, deleted by close()."""
        assert self.cluster is not None
        name = self.names.cluster(scenario_name)
        self.cluster.create_namespace(name, labels=labels)
        self.created.append(name)
        return name

    def close(self, tools: Runner) -> str:
        if self.cluster is None:
            return "nothing to give back"
        try:
            for namespace in reversed(self.created):
                self.cluster.delete_namespace(namespace)
        finally:
            self._disconnect()
        return f"deleted meshproof's namespaces {', '.join(self.created) or '(none)'} on context {self.context}"
