"""A cluster as meshproof may touch it: its namespaces and nothing else, whoever made the cluster.

meshproof changes only namespaces it created. On a cluster it made itself (the local control plane,
a kind cluster of its own) that is every namespace. On an existing cluster it is those carrying the
label `app.kubernetes.io/managed-by=meshproof`, which `create_namespace` sets (with the run that
made it in an annotation); any other namespace, `default` included, is refused before a request
is sent. Namespaces created on a cluster that outlives the run are recorded in the run directory
(`kube-namespace`, with the kubeconfig and context), so `meshproof cleanup` deletes them after a
killed run; a run that ends normally deletes them itself.

The local control plane has no controller manager, so a deleted namespace there stays Terminating
(no namespace controller empties and finalises it); it disappears with the whole cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshproof.backends.kube import objects
from meshproof.backends.kube.api import ApiError, Json, KubeApi, describe
from meshproof.backends.kube.conventions import MANAGED_BY
from meshproof.errors import UserError
from meshproof.runs import RunDir

RUN_ANNOTATION = "meshproof.dev/run"
NAMESPACE_RESOURCE = "kube-namespace"  # the RunDir resource kind `meshproof cleanup` removes


@dataclass
class Cluster:
    """An API server and what meshproof may do there. `run`: where created namespaces are recorded."""

    api: KubeApi
    created_by_meshproof: bool
    kubeconfig: Path
    context: str | None = None
    run: RunDir | None = None
    _ours: set[str] = field(default_factory=set)

    @classmethod
    def existing(cls, kubeconfig: Path, *, context: str | None = None, run: RunDir | None = None) -> Cluster:
        return cls(KubeApi.from_kubeconfig(kubeconfig, context=context), False, kubeconfig, context, run)

    # --- namespaces -----------------------------------------------------------------------------------
    def create_namespace(self, name: str, *, labels: dict[str, str] | None = None) -> Json:
        """Create namespace `name` labelled as meshproof's; an existing one only if it is meshproof's."""
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": {**(labels or {}), **MANAGED_BY}, "annotations": {
                    RUN_ANNOTATION: self.run.path.name if self.run else "none"}}}
        try:
            created = self.api.request("POST", "/api/v1/namespaces", body=body)
        except ApiError as exc:
            if exc.status != 409:  # 409: it exists already
                raise
            self.check_ours(name)
            existing = objects.get(self.api, body)
            if existing is None:  # deleted in between
                raise
            return existing
        if self.run is not None and not self.created_by_meshproof:
            self.run.record_resource(NAMESPACE_RESOURCE, name, kubeconfig=str(self.kubeconfig),
                                     context=self.context or "")
        self._ours.add(name)
        return created

    def check_ours(self, namespace: str) -> None:
        """UserError unless meshproof may change `namespace` (see the module doc)."""
        if self.created_by_meshproof or namespace in self._ours:
            return
        stored = objects.get(self.api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        labels = (stored or {}).get("metadata", {}).get("labels") or {}
        if stored is None:
            raise UserError(f"namespace {namespace} does not exist on {self.api.description}: meshproof creates "
                            f"its namespaces itself (create_namespace) and touches no other")
        if not MANAGED_BY.items() <= labels.items():
            label = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
            raise UserError(f"namespace {namespace} on {self.api.description} was not created by meshproof "
                            f"(no label {label}); meshproof changes no namespace it did not create: "
                            f"use another namespace")
        self._ours.add(namespace)

    def delete_namespace(self, name: str, *, wait: float | None = None) -> None:
        """Delete a namespace of meshproof's and everything in it (with `wait`: until it is gone); one
        that is gone already is fine."""
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if objects.get(self.api, namespace) is not None:
            self.check_ours(name)
            objects.delete(self.api, namespace, wait=wait)
        self._ours.discard(name)

    # --- objects --------------------------------------------------------------------------------------
    def apply(self, manifest: Json, *, dry_run: bool = False) -> Json:
        """objects.apply, after checking that the object's namespace is meshproof's."""
        namespace = manifest.get("metadata", {}).get("namespace")
        if namespace:
            self.check_ours(namespace)
        elif manifest.get("kind") == "Namespace":
            self.check_ours(manifest["metadata"]["name"])
        elif not self.created_by_meshproof and manifest.get("kind") != "CustomResourceDefinition":
            raise UserError(f"{describe(manifest)}: meshproof applies no cluster-scoped object to a cluster "
                            f"it did not create, except CustomResourceDefinitions")
        return objects.apply(self.api, manifest, dry_run=dry_run)

    def install_crds(self, paths: Iterable[Path], *, timeout: float = 60.0) -> list[Json]:
        """Apply every CustomResourceDefinition in the YAML files; return once each is Established."""
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crds: list[Json] = []
        for path in paths:
            with path.open() as stream:
                crds += [doc for doc in yaml.load_all(stream, Loader=loader)
                         if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]
        stored = [self.apply(crd) for crd in crds]
        return [objects.wait_for_condition(self.api, crd, "Established", timeout=timeout, current=False)
                for crd in stored]


def remove_recorded(resource: dict[str, Any]) -> str:
    """Delete a namespace a killed run recorded (`meshproof cleanup`); what was done, in a few words."""
    try:
        cluster = Cluster.existing(Path(resource["kubeconfig"]), context=resource.get("context") or None)
        try:
            cluster.delete_namespace(resource["name"])
        finally:
            cluster.api.close()
    except UserError as exc:
        return f"namespace {resource['name']} not deleted: {exc}"
    return f"namespace {resource['name']} deleted"
