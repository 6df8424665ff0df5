"""The Kubernetes conventions every mesh renderer and the deploy layer share, so they agree: the pod labels
(`app`, `version`), the name of the app's container port (`http`), Service manifests, the metadata every
rendered object carries (so a backend can find and prune what meshproof applied), and the final
dedupe-and-sort in apply order. No I/O; it renders no Deployment or Namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meshproof.intent import Workload

Json = dict[str, Any]

APP_LABEL = "app"
VERSION_LABEL = "version"
#: The name of the app's container port on every pod, which Services and Linkerd Servers refer to.
APP_PORT_NAME = "http"
#: Every rendered object carries this label, so a backend can find (and prune) what meshproof applied.
MANAGED_BY = {"app.kubernetes.io/managed-by": "meshproof"}
#: An annotation saying which part of an intent the object could not express, and why: the rest of the
#: intent is rendered (a route keeps its matches, split and timeout when a retry condition is missing).
NOT_EXPRESSED = "meshproof.io/not-expressed"


def manifest(api_version: str, kind: str, name: str, namespace: str, spec: Json | None = None, *,
             annotations: Mapping[str, str] | None = None) -> Json:
    """A namespaced object with meshproof's metadata."""
    metadata: Json = {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    result: Json = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if spec is not None:
        result["spec"] = spec
    return result


def service(name: str, namespace: str, port: int, selector: Mapping[str, str], *,
            annotations: Mapping[str, str] | None = None) -> Json:
    """A ClusterIP Service forwarding `port` to the pods' `http` container port."""
    ports = [{"name": APP_PORT_NAME, "port": port, "targetPort": APP_PORT_NAME}]
    spec = {"selector": dict(selector), "ports": ports}
    return manifest("v1", "Service", name, namespace, spec, annotations=annotations)


def service_port(workloads: Iterable[Workload], service_name: str, namespace: str) -> int:
    """The port the Service of `service_name` listens on; its workloads must agree on it."""
    ports = {w.port for w in workloads if w.service == service_name and w.namespace == namespace}
    if len(ports) != 1:
        problem = "no workload" if not ports else f"workloads disagree on the port ({sorted(ports)})"
        raise ValueError(f"service {service_name}.{namespace}: {problem}")
    return ports.pop()


def version_service_name(service_name: str, version: str) -> str:
    return f"{service_name}-{version}"


def finish(manifests: Iterable[Json], kind_order: Sequence[str]) -> list[Json]:
    """`manifests` without repeats, sorted by kind (in `kind_order`, the order to apply them in), namespace
    and name. Two different objects with one identity are an error, not a silent overwrite."""
    unique: dict[tuple[str, str, str, str], Json] = {}
    for item in manifests:
        key = (item["apiVersion"], item["kind"], item["metadata"]["namespace"], item["metadata"]["name"])
        if key in unique and unique[key] != item:
            raise ValueError(f"two different {key[1]} objects named {key[2]}/{key[3]} (conflicting intents)")
        unique[key] = item
    return sorted(unique.values(), key=lambda m: (kind_order.index(m["kind"]), m["apiVersion"],
                                                  m["metadata"]["namespace"], m["metadata"]["name"]))
