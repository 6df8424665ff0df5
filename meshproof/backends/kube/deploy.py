"""The scenario's workloads as Kubernetes objects: a ServiceAccount per identity, a Service per service, a
Deployment per workload (the echo app), and one unmeshed Deployment outside the mesh.

Every pod runs the echo app with two ports: `http` (8080), the port Services and mesh policies name,
and `control` (8081), the test runner's, which the mesh is told to leave alone (each mesh's flavour
says how), so the runner reaches it through the API server's pod proxy whatever the policy in force,
and the kubelet's readiness probe on it never meets the mesh's authorization. Pods share their
process namespace, so a chaos action can freeze the app or its proxy with a signal from the app's
container. Which proxy a mesh injects, and how it is asked to, is the mesh's `MeshFlavour`.

Pure: manifests only (applied by meshproof.backends.kube.mesh).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from meshproof.backends.kube.conventions import APP_LABEL, APP_PORT_NAME, MANAGED_BY, VERSION_LABEL, Json, service
from meshproof.backends.kube.namespaces import OUTSIDE, NamespaceMap
from meshproof.intent import Workload

APP_PORT = 8080
CONTROL_PORT = 8081
CONTROL_PORT_NAME = "control"
APP_CONTAINER = "app"
OUTSIDE_WORKLOAD = Workload("outside", "outside", namespace=OUTSIDE)


@dataclass(frozen=True)
class MeshFlavour:
    """What a mesh needs of the pods meshproof deploys, and where its proxy reports."""

    proxy_container: str  # the injected proxy's container (among containers or native-sidecar initContainers)
    meshed_namespace_labels: Mapping[str, str] = field(default_factory=dict)
    unmeshed_namespace_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)  # on every meshed pod
    metrics_port: int = 0  # where the proxy serves Prometheus metrics, outside the app's traffic
    metrics_path: str = "/metrics"


def namespaces(workloads: Iterable[Workload]) -> list[str]:
    """The scenario namespaces of `workloads`, sorted."""
    return sorted({workload.namespace for workload in workloads})


def _echo_container(image: str, workload: Workload, namespace: str) -> Json:
    env = [{"name": "ECHO_SERVICE", "value": workload.service}, {"name": "ECHO_VERSION", "value": workload.version},
           {"name": "ECHO_NAMESPACE", "value": namespace},
           {"name": "ECHO_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "ECHO_HOST", "value": "0.0.0.0"}, {"name": "ECHO_PORT", "value": str(APP_PORT)},
           {"name": "ECHO_CONTROL_PORT", "value": str(CONTROL_PORT)}]
    return {
        "name": APP_CONTAINER, "image": image, "imagePullPolicy": "IfNotPresent", "env": env,
        "ports": [{"name": APP_PORT_NAME, "containerPort": APP_PORT, "protocol": "TCP"},
                  {"name": CONTROL_PORT_NAME, "containerPort": CONTROL_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": CONTROL_PORT_NAME}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
    }


def deployment(workload: Workload, namespace: str, image: str, annotations: Mapping[str, str]) -> Json:
    labels = {APP_LABEL: workload.service, VERSION_LABEL: workload.version}
    template_metadata: Json = {"labels": {**labels, **MANAGED_BY}}
    if annotations:
        template_metadata["annotations"] = dict(annotations)
    spec = {
        "replicas": workload.replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": template_metadata, "spec": {
            "serviceAccountName": workload.service_account,
            "shareProcessNamespace": True,
            "terminationGracePeriodSeconds": 5,
            "containers": [_echo_container(image, workload, namespace)],
        }},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": workload.name, "namespace": namespace, "labels": dict(MANAGED_BY)}, "spec": spec}


def service_account(name: str, namespace: str) -> Json:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}}


def manifests(workloads: Sequence[Workload], names: NamespaceMap, flavour: MeshFlavour, image: str) -> list[Json]:
    """ServiceAccounts, Services and Deployments for the meshed `workloads` and the outside caller, in
    apply order, in the cluster's namespaces."""
    meshed = [(workload, flavour.pod_annotations) for workload in workloads]
    everyone = [*meshed, (OUTSIDE_WORKLOAD, {})]
    accounts = {(names.cluster(w.namespace), w.service_account) for w, _ in everyone}
    services = {(names.cluster(w.namespace), w.service): w.port for w, _ in everyone}
    result = [service_account(name, namespace) for namespace, name in sorted(accounts)]
    result += [service(name, namespace, port, {APP_LABEL: name})
               for (namespace, name), port in sorted(services.items())]
    result += [deployment(w, names.cluster(w.namespace), image, notes) for w, notes in everyone]
    return result


def pod_selector(workload: Workload) -> str:
    """The label selector of a workload's pods."""
    return f"{APP_LABEL}={workload.service},{VERSION_LABEL}={workload.version}"
