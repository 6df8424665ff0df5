"""The cluster backends' Kubernetes side against a real kube-apiserver (the local control plane): the workload
manifests accepted as sent under strict validation, and every readiness and propagation judgement made from
objects whose status the test sets, as a kubelet or a mesh's controller would (no controller runs here)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshproof import scenario
from meshproof.backends.host.ca import LocalCA
from meshproof.backends.istio import cluster as istio
from meshproof.backends.istio.cluster import IstioOnCluster
from meshproof.backends.istio.render import render as istio_render
from meshproof.backends.kube import acceptance, deploy, objects, readiness, scaling
from meshproof.backends.kube.api import Json, KubeApi
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.deploy import MeshFlavour
from meshproof.backends.kube.manifests import Renderer, cluster_manifests
from meshproof.backends.kube.namespaces import OUTSIDE, NamespaceMap
from meshproof.backends.kube.readiness import NotInjected
from meshproof.backends.linkerd import cluster as linkerd
from meshproof.backends.linkerd.cluster import LinkerdOnCluster
from meshproof.backends.linkerd.render import render as linkerd_render
from meshproof.errors import UserError
from meshproof.intent import Identity
from meshproof.profile import Profile

FLAVOURS = {"istio": IstioOnCluster.flavour, "linkerd": LinkerdOnCluster.flavour}
RENDERERS: dict[str, Renderer] = {"istio": istio_render, "linkerd": linkerd_render}


def set_status(api: KubeApi, manifest: Json, status: Json) -> Json:
    """What a controller does: write the object's status subresource."""
    return api.request("PATCH", api.path_of(manifest) + "/status", body={"status": status},
                       content_type="application/merge-patch+json")


@pytest.fixture
def names(kube_cluster: Cluster) -> Iterator[NamespaceMap]:
    """The scenario's namespaces under a prefix of this test's own, deleted afterwards."""
    mapped = NamespaceMap(f"t{secrets.token_hex(3)}-")
    try:
        yield mapped
    finally:
        for namespace in (*deploy.namespaces(scenario.WORKLOADS), OUTSIDE):
            kube_cluster.delete_namespace(mapped.cluster(namespace))


def _create_namespaces(cluster: Cluster, names: NamespaceMap, flavour: MeshFlavour) -> None:
    for namespace in deploy.namespaces(scenario.WORKLOADS):
        cluster.create_namespace(names.cluster(namespace), labels=dict(flavour.meshed_namespace_labels))
    cluster.create_namespace(names.cluster(OUTSIDE), labels=dict(flavour.unmeshed_namespace_labels))


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_the_workloads_and_the_rendered_seed_are_accepted_and_stored_as_sent(
        kube_cluster: Cluster, kube_crds: list[Json], names: NamespaceMap, mesh: str) -> None:
    flavour = FLAVOURS[mesh]
    _create_namespaces(kube_cluster, names, flavour)
    workloads = deploy.manifests(scenario.WORKLOADS, names, flavour, "meshproof-echo:0123456789ab")
    if mesh == "istio":
        workloads += [istio.marker_service(names), istio.marker_virtual_service(names, "1-42")]
    intents = names.intents(scenario.seed_intents(Profile()), deploy.namespaces(scenario.WORKLOADS))
    moved = [names.moved(w) for w in scenario.WORKLOADS]
    render = RENDERERS[mesh]
    rendered, _ = cluster_manifests(render, intents, moved)  # what `meshproof render` prints, moved
    verdicts = acceptance.judge(kube_cluster, [*workloads, *rendered])
    assert [v.line() for v in verdicts if not v.accepted_as_sent] == []
    kinds = [m["kind"] for m in workloads]
    assert kinds.count("Deployment") == len(scenario.WORKLOADS) + 1  # and the outside caller
    deployment = next(m for m in workloads if m["kind"] == "Deployment" and m["metadata"]["name"] == "order-service-v1")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == dict(flavour.pod_annotations)
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] == 2 and template["spec"]["serviceAccountName"] == "order-service"
    outside = next(m for m in workloads if m["kind"] == "Deployment" and m["metadata"]["name"] == "outside")
    assert outside["metadata"]["namespace"] == names.cluster(OUTSIDE)
    assert "annotations" not in outside["spec"]["template"]["metadata"]  # never meshed


def test_namespaces_carry_each_mesh_s_injection_labels(kube_cluster: Cluster, names: NamespaceMap) -> None:
    _create_namespaces(kube_cluster, names, FLAVOURS["istio"])
    stored = objects.get(kube_cluster.api, {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": names.cluster("default")}})
    outside = objects.get(kube_cluster.api, {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": names.cluster(OUTSIDE)}})
    assert stored is not None and stored["metadata"]["labels"]["istio-injection"] == "enabled"
    assert outside is not None and outside["metadata"]["labels"]["istio-injection"] == "disabled"


def _deployment(namespace: str) -> Json:
    workload = scenario.workload("order-service-v1")
    return deploy.deployment(workload, namespace, "meshproof-echo:x", {})


def test_a_deployment_is_rolled_out_only_when_its_controller_saw_the_spec_and_every_replica_is_available(
        kube_cluster: Cluster, kube_namespace: str) -> None:
    api = kube_cluster.api
    stored = kube_cluster.apply(_deployment(kube_namespace))
    assert readiness.deployment_problem(stored) == "its controller has not seen the latest spec yet"
    generation = stored["metadata"]["generation"]
    for status, problem in [
        ({"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1,
          "availableReplicas": 1}, "1 of 2 replicas ready"),
        ({"readyReplicas": 2, "availableReplicas": 2, "replicas": 3}, "1 old replicas still terminating"),
        ({"replicas": 2}, None),
    ]:
        assert readiness.deployment_problem(set_status(api, stored, status)) == problem
    readiness.wait_rolled_out(api, [stored], timeout=1, what="the workloads")
    set_status(api, stored, {"readyReplicas": 0, "availableReplicas": 0})
    with pytest.raises(UserError, match=rf"the workloads not ready within 0.3 s: Deployment {kube_namespace}/"
                                        r"order-service-v1: 0 of 2 replicas ready"):
        readiness.wait_rolled_out(api, [stored], timeout=0.3, what="the workloads")


def _pod(namespace: str, name: str, containers: list[str]) -> Json:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                           "labels": {"app": "order-service", "version": "v1"}},
            "spec": {"serviceAccountName": "order-service", "automountServiceAccountToken": False,
                     "containers": [{"name": c, "image": "meshproof-echo:x"} for c in containers]}}


def _running(api: KubeApi, pod: Json, ip: str, *, ready: bool = True) -> Json:
    return set_status(api, pod, {"phase": "Running", "podIP": ip,
                                 "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                                 "containerStatuses": [{"name": "app", "ready": ready, "restartCount": 0,
                                                        "image": "meshproof-echo:x", "imageID": "",
                                                        "state": {"running": {}} if ready else
                                                        {"waiting": {"reason": "CrashLoopBackOff"}}}]})


def test_pods_count_when_running_ready_and_carrying_their_proxy(kube_cluster: Cluster, kube_namespace: str) -> None:
    api = kube_cluster.api
    kube_cluster.apply(deploy.service_account("order-service", kube_namespace))
    first = kube_cluster.apply(_pod(kube_namespace, "order-service-v1-a", ["app", "istio-proxy"]))
    assert readiness.pod_problem(first, "istio-proxy") == "phase Pending"
    assert readiness.pod_problem(_running(api, first, "10.244.0.7", ready=False), "istio-proxy") == (
        "not Ready (app: waiting)")
    assert readiness.pod_problem(_running(api, first, "10.244.0.7"), "istio-proxy") is None
    second = kube_cluster.apply(_pod(kube_namespace, "order-service-v1-b", ["app", "istio-proxy"]))
    selector = deploy.pod_selector(scenario.workload("order-service-v1"))
    with pytest.raises(UserError, match="order-service-v1-b: phase Pending"):
        readiness.ready_pods(api, kube_namespace, selector, expected=2, proxy_container="istio-proxy", timeout=0.2)
    _running(api, second, "10.244.0.8")
    found = readiness.ready_pods(api, kube_namespace, selector, expected=2, proxy_container="istio-proxy", timeout=1)
    assert [p["status"]["podIP"] for p in found] == ["10.244.0.7", "10.244.0.8"]
    with pytest.raises(UserError, match="1 ready pods, expected 2"):
        objects.delete(api, second, wait=10)
        readiness.ready_pods(api, kube_namespace, selector, expected=2, proxy_container="istio-proxy", timeout=0.2)


def test_a_pod_without_the_mesh_s_proxy_is_an_injection_failure_not_a_wait(
        kube_cluster: Cluster, kube_namespace: str) -> None:
    kube_cluster.apply(deploy.service_account("order-service", kube_namespace))
    pod = _running(kube_cluster.api, kube_cluster.apply(_pod(kube_namespace, "bare", ["app"])), "10.244.0.9")
    with pytest.raises(NotInjected, match=rf"pod {kube_namespace}/bare has no linkerd-proxy container: the mesh did "
                                          r"not inject its proxy \(containers: app\)"):
        readiness.pod_problem(pod, "linkerd-proxy")
    native = {**pod, "spec": {**pod["spec"], "initContainers": [{"name": "linkerd-proxy", "image": "x"}]}}
    assert readiness.pod_problem(native, "linkerd-proxy") is None  # a native sidecar counts


def test_an_injector_webhook_serves_once_every_webhook_has_its_ca_bundle(kube_cluster: Cluster) -> None:
    name = f"test-injector-{secrets.token_hex(3)}"
    hook = {"name": "sidecar-injector.meshproof.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore", "clientConfig": {"url": "https://127.0.0.1:1/inject"},
            "namespaceSelector": {"matchLabels": {"meshproof-test-never": name}}}
    configuration = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                     "metadata": {"name": name}, "webhooks": [hook]}
    try:
        kube_cluster.apply(configuration)
        with pytest.raises(UserError, match=r"no CA bundle yet for sidecar-injector\.meshproof\.test"):
            readiness.wait_webhooks(kube_cluster.api, [configuration], timeout=0.2, what="the injector")
        hook["clientConfig"] = {**hook["clientConfig"], "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="}
        kube_cluster.apply(configuration)
        readiness.wait_webhooks(kube_cluster.api, [configuration], timeout=1, what="the injector")
    finally:
        objects.delete(kube_cluster.api, configuration)
    assert readiness.webhook_problem(None) == "not found"


def _route(namespace: str) -> Json:
    spec = {"parentRefs": [{"group": "", "kind": "Service", "name": "order-service", "port": 80}],
            "rules": [{"backendRefs": [{"name": "order-service", "port": 80}]}]}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "order-service", "namespace": namespace}, "spec": spec}


def _accepted(generation: int, status: str, message: str = "") -> Json:
    condition = {"type": "Accepted", "status": status, "reason": "Accepted" if status == "True" else "NoMatchingParent",
                 "message": message or "accepted", "observedGeneration": generation,
                 "lastTransitionTime": "2026-11-30T21:04:12Z"}
    return {"parents": [{"parentRef": {"group": "", "kind": "Service", "name": "order-service", "port": 80},
                         "controllerName": "linkerd.io/policy-controller", "conditions": [condition]}]}


def test_linkerd_s_signal_is_its_policy_controller_accepting_each_route_at_its_generation(
        kube_cluster: Cluster, kube_crds: list[Json], kube_namespace: str) -> None:
    api = kube_cluster.api
    stored = kube_cluster.apply(_route(kube_namespace))
    assert linkerd.route_problem(stored) == "no status for its parent Service order-service yet"
    with pytest.raises(UserError, match=r"Linkerd's routes not ready within 0.3 s: HTTPRoute .*/order-service: no "
                                        r"status for its parent"):
        linkerd.wait_routes_accepted(api, [stored], timeout=0.3)
    generation = stored["metadata"]["generation"]
    set_status(api, stored, _accepted(generation, "True"))
    linkerd.wait_routes_accepted(api, [stored], timeout=1)
    changed = _route(kube_namespace)
    changed["spec"]["rules"][0]["timeouts"] = {"request": "1s"}
    newer = kube_cluster.apply(changed)  # a new generation: the old acceptance no longer counts
    assert linkerd.route_problem(newer) == f"status for generation {generation}, the route is at {generation + 1}"
    set_status(api, newer, _accepted(generation + 1, "False", "parentRef order-service: no such Service"))
    with pytest.raises(UserError, match=r"did not accept HTTPRoute .*: NoMatchingParent: parentRef order-service"):
        linkerd.wait_routes_accepted(api, [newer], timeout=1)


def test_control_plane_down_scales_to_zero_waits_for_the_pods_to_leave_and_restores_the_replicas(
        kube_cluster: Cluster, kube_namespace: str) -> None:
    api = kube_cluster.api
    control_plane = kube_cluster.apply(_deployment(kube_namespace))  # 2 replicas, standing in for istiod
    set_status(api, control_plane, {"observedGeneration": control_plane["metadata"]["generation"], "replicas": 2,
                                    "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2})
    with pytest.raises(UserError, match=r"the control plane scaled to zero not ready within 0.3 s: "
                                        r"Deployment .*/order-service-v1: 2 pods left"):
        scaling.scale_to_zero(api, [control_plane], timeout=0.3, what="the control plane")
    assert objects.get(api, control_plane)["spec"]["replicas"] == 0  # type: ignore[index]
    scaling.scale(api, control_plane, 2)
    set_status(api, control_plane, {"replicas": 0, "updatedReplicas": 0, "readyReplicas": 0, "availableReplicas": 0})
    assert scaling.scale_to_zero(api, [control_plane], timeout=1, what="the control plane") == {"order-service-v1": 2}
    with pytest.raises(UserError, match="its controller has not seen the latest spec yet"):  # the scale is news
        scaling.restore(api, [control_plane], {"order-service-v1": 2}, timeout=0.3, what="the control plane")
    stored = objects.get(api, control_plane)
    assert stored is not None and stored["spec"]["replicas"] == 2


def _secret(name: str, data: dict[str, bytes]) -> Json:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": istio.ROOT_NAMESPACE},
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def test_istio_s_ca_is_read_from_its_secret_and_signs_an_outside_client_the_workloads_trust(
        kube_cluster: Cluster, tmp_path: Path) -> None:
    """The refusal checks' positive control on Istio: a certificate signed with istiod's own CA, read from
    the secret istiod keeps it in (a plugged-in `cacerts` first, with its chain)."""
    mesh = object.__new__(IstioOnCluster)
    kube_cluster.create_namespace(istio.ROOT_NAMESPACE)
    try:
        assert mesh.mesh_ca(kube_cluster) is None
        own = LocalCA(tmp_path / "istiod")
        key = (tmp_path / "istiod" / "ca.key")
        key.write_bytes(own._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        kube_cluster.apply(_secret("istio-ca-secret", {"ca-cert.pem": own.root.read_bytes(),
                                                       "ca-key.pem": key.read_bytes()}))
        found = mesh.mesh_ca(kube_cluster)
        assert found == (own.root.read_bytes(), key.read_bytes(), b"")
        svid = LocalCA(tmp_path / "signer", signer=found[:2]).issue(Identity("outside", "outside"),
                                                                    file_stem="client")
        leaf = x509.load_pem_x509_certificate(svid.cert.read_bytes())
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(own.root.read_bytes()))
        kube_cluster.apply(_secret("cacerts", {"ca-cert.pem": b"plugged", "ca-key.pem": b"key",
                                               "cert-chain.pem": b"chain"}))
        assert mesh.mesh_ca(kube_cluster) == (b"plugged", b"key", b"chain")
    finally:
        for name in ("istio-ca-secret", "cacerts"):
            objects.delete(kube_cluster.api, _secret(name, {}))
        kube_cluster.delete_namespace(istio.ROOT_NAMESPACE)  # gone once a namespace controller runs (none here)
