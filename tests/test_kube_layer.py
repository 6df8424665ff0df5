"""The shared Kubernetes layer against a real API server: meshproof's namespaces only, strict server-side
apply of any kind, read-back that notices a changed field, waits on status conditions, delete, and cleanup
after a failing test and after a killed run. (With MESHPROOF_TEST_KUBECONFIG these run against that cluster.)"""

from __future__ import annotations

import base64
import copy
import http.server
import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshproof.backends.kube import objects
from meshproof.backends.kube.api import Json
from meshproof.backends.kube.cluster import MANAGED_BY, NAMESPACE_RESOURCE, RUN_ANNOTATION, Cluster
from meshproof.backends.kube.controlplane import serving_pki
from meshproof.backends.kube.objects import Refused
from meshproof.errors import UserError
from meshproof.processes import wait_until
from meshproof.runs import RunDir
from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR
from tests.helpers import run_meshproof

pytest_plugins = ["pytester"]


def _service(namespace: str, **spec: Any) -> Json:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": namespace},
            "spec": {"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                     **spec}}


def _virtual_service(namespace: str) -> Json:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "echo", "namespace": namespace},
            "spec": {"hosts": ["echo"], "http": [{"route": [{"destination": {"host": "echo"}}], "timeout": "2s"}]}}


def _namespace(name: str) -> Json:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture
def visitor(kube_cluster: Cluster) -> Iterator[Cluster]:
    """The same server seen as a cluster meshproof did not create, recording what it creates."""
    run = RunDir.create("visitor")
    view = Cluster.existing(kube_cluster.kubeconfig, context=kube_cluster.context, run=run)
    yield view
    view.api.close()
    run.remove()


def test_namespaces_are_created_labelled_with_their_run_and_recorded_on_a_foreign_cluster(
        visitor: Cluster, kube_cluster: Cluster) -> None:
    created = visitor.create_namespace("visited-ns", labels={"purpose": "test"})
    try:
        assert created["metadata"]["labels"] == {"purpose": "test", **MANAGED_BY,
                                                 "kubernetes.io/metadata.name": "visited-ns"}  # the server's
        assert visitor.run is not None
        assert created["metadata"]["annotations"][RUN_ANNOTATION] == visitor.run.path.name
        assert visitor.create_namespace("visited-ns")["metadata"]["uid"] == created["metadata"]["uid"]
        assert visitor.run.resources() == [{"kind": NAMESPACE_RESOURCE, "name": "visited-ns",
                                            "kubeconfig": str(kube_cluster.kubeconfig),
                                            "context": kube_cluster.context}]
    finally:
        visitor.delete_namespace("visited-ns")


@pytest.mark.parametrize("namespace", ["default", "kube-system"])
def test_a_namespace_meshproof_did_not_create_is_never_touched(visitor: Cluster, namespace: str) -> None:
    for attempt in (lambda: visitor.create_namespace(namespace), lambda: visitor.apply(_service(namespace)),
                    lambda: visitor.delete_namespace(namespace)):
        with pytest.raises(UserError, match=f"namespace {namespace} on .* was not created by meshproof"):
            attempt()
    assert objects.get(visitor.api, _service(namespace)) is None


def test_cluster_scoped_objects_other_than_crds_are_refused_on_a_foreign_cluster(visitor: Cluster) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "mp"}}
    with pytest.raises(UserError, match="applies no cluster-scoped object to a cluster it did not create"):
        visitor.apply(role)


def test_strict_apply_refuses_an_unknown_field_and_names_it(kube_cluster: Cluster, kube_namespace: str) -> None:
    typo = _service(kube_namespace)
    typo["spec"]["ports"][0]["nodeport"] = 30080
    with pytest.raises(Refused, match=r"Service .*/echo .*\.spec\.ports\[port=80,protocol=\"TCP\"\]\.nodeport: "
                                      r"field not declared in schema"):
        kube_cluster.apply(typo)
    assert objects.get(kube_cluster.api, typo) is None


def test_apply_is_server_side_owned_by_meshproof_and_dry_run_stores_nothing(
        kube_cluster: Cluster, kube_namespace: str) -> None:
    service = _service(kube_namespace)
    assert kube_cluster.apply(service, dry_run=True)["metadata"]["name"] == "echo"
    assert objects.get(kube_cluster.api, service) is None
    stored = kube_cluster.apply(service)
    managers = {(entry["manager"], entry["operation"]) for entry in stored["metadata"]["managedFields"]}
    assert managers == {("meshproof", "Apply")}
    assert objects.differences(service, stored) == []
    assert stored["spec"]["type"] == "ClusterIP"  # a default the server added: allowed


def test_the_servers_warnings_are_kept(kube_cluster: Cluster, kube_crds: list[Json], kube_namespace: str) -> None:
    server = {"apiVersion": "policy.linkerd.io/v1beta1", "kind": "Server",
              "metadata": {"name": "echo", "namespace": kube_namespace},
              "spec": {"podSelector": {"matchLabels": {"app": "echo"}}, "port": "http"}}
    kube_cluster.api.warnings.clear()
    kube_cluster.apply(server)
    assert kube_cluster.api.warnings == [
        '299 - "policy.linkerd.io/v1beta1 Server is deprecated; use policy.linkerd.io/v1beta3 Server"']


def test_a_field_another_manager_owns_is_a_conflict_not_taken_over(kube_cluster: Cluster, kube_namespace: str) -> None:
    service = _service(kube_namespace)
    kube_cluster.apply(service)
    other = copy.deepcopy(service)
    other["spec"]["selector"] = {"app": "other"}
    kube_cluster.api.request("PATCH", kube_cluster.api.path_of(other), body=other,
                             query=[("fieldManager", "someone-else"), ("force", "true")],
                             content_type=objects.APPLY_CONTENT_TYPE)
    with pytest.raises(Refused, match=r"409 Conflict.*conflict with \"someone-else\".*\.spec\.selector"):
        kube_cluster.apply(service)
    stored = objects.get(kube_cluster.api, service)
    assert stored is not None and stored["spec"]["selector"] == {"app": "other"}


def test_read_back_notices_a_field_the_server_changed(kube_cluster: Cluster, kube_namespace: str) -> None:
    """An empty clusterIP is replaced by an allocated address: the comparison must say so."""
    service = _service(kube_namespace, clusterIP="")
    stored = kube_cluster.apply(service)
    found = objects.differences(service, stored)
    assert found == [f"spec.clusterIP: sent '', stored {stored['spec']['clusterIP']!r}"]


def test_differences_compares_sent_fields_only_and_exactly() -> None:
    sent = {"spec": {"a": 1, "list": [{"x": True}], "flag": True}}
    assert objects.differences(sent, {"spec": {"a": 1, "list": [{"x": True, "y": 2}], "flag": True, "z": 0}}) == []
    assert objects.differences(sent, {"spec": {"a": 2, "list": [], "flag": 1}}) == [
        "spec.a: sent 1, stored 2", "spec.list: sent [{'x': True}], stored []", "spec.flag: sent True, stored 1"]
    assert objects.differences(sent, {}) == ["spec: sent {'a': 1, 'list': [{'x': True}], 'flag': True}, not stored"]


def _set_status(cluster: Cluster, manifest: Json, condition: Json) -> None:
    """What a controller does: write the status subresource."""
    cluster.api.request("PATCH", cluster.api.path_of(manifest) + "/status",
                        body={"status": {"conditions": [condition]}},
                        query=[("fieldValidation", "Strict")], content_type="application/merge-patch+json")


def test_waits_end_when_the_status_subresource_reports_the_condition_for_the_current_generation(
        kube_cluster: Cluster, kube_crds: list[Json], kube_namespace: str) -> None:
    route = _virtual_service(kube_namespace)
    stored = kube_cluster.apply(route)
    generation = stored["metadata"]["generation"]
    with pytest.raises(UserError, match=r"VirtualService .*/echo not Reconciled=True within 0.3 s "
                                        r"\(last seen: conditions none\)"):
        objects.wait_for_condition(kube_cluster.api, route, "Reconciled", timeout=0.3)
    _set_status(kube_cluster, route, {"type": "Reconciled", "status": "True", "observedGeneration": generation - 1})
    with pytest.raises(UserError, match=r"last seen: conditions Reconciled=True"):
        objects.wait_for_condition(kube_cluster.api, route, "Reconciled", timeout=0.3)  # about an older spec
    later = threading.Timer(0.5, _set_status, (kube_cluster, route, {
        "type": "Reconciled", "status": "True", "observedGeneration": generation}))
    started = time.monotonic()
    later.start()
    try:
        seen = objects.wait_for_condition(kube_cluster.api, route, "Reconciled", timeout=10)
    finally:
        later.cancel()
    assert 0.5 <= time.monotonic() - started < 5  # polls every 0.1 s; 5 s is a loaded machine's margin
    assert objects.condition(seen, "Reconciled") == {"type": "Reconciled", "status": "True",
                                                     "observedGeneration": generation}


def test_delete_waits_until_the_object_is_gone(kube_cluster: Cluster, kube_crds: list[Json],
                                               kube_namespace: str) -> None:
    route = _virtual_service(kube_namespace)
    kube_cluster.apply(route)
    objects.delete(kube_cluster.api, route, wait=10)
    assert objects.get(kube_cluster.api, route) is None
    objects.delete(kube_cluster.api, route)  # absent is fine


FAILING_TEST = """
    def test_fails_inside_a_namespace(kube_cluster, kube_namespace):
        with open({record!r}, "w") as handle:
            handle.write(kube_namespace)
        assert False, "this test fails on purpose"
"""


def test_a_failing_test_still_deletes_its_namespace(pytester: pytest.Pytester, kube_cluster: Cluster,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "namespace"
    pytester.makepyfile(textwrap.dedent(FAILING_TEST.format(record=str(record))))
    environment = {"MESHPROOF_TEST_KUBECONFIG": str(kube_cluster.kubeconfig),
                   "MESHPROOF_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(PROJECT_DIR)}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    outcome = pytester.runpytest_subprocess("-p", "meshproof.fixtures.kube", "-p", "no:cacheprovider")
    outcome.assert_outcomes(failed=1)
    namespace = record.read_text()
    stored = objects.get(kube_cluster.api, _namespace(namespace))
    assert stored is None or "deletionTimestamp" in stored["metadata"]  # Terminating without a namespace controller
    assert list((tmp_path / "state").glob("run-*")) == []


KILLED_RUN = """
import os, signal
from pathlib import Path
from meshproof.backends.kube.cluster import Cluster
from meshproof.runs import RunDir
from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR
cluster = Cluster.existing(Path({kubeconfig!r}), run=RunDir.create("killed"))
cluster.create_namespace({namespace!r})
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_cleanup_deletes_the_namespaces_a_killed_run_created(kube_cluster: Cluster, tmp_path: Path) -> None:
    namespace = f"killed-{os.getpid()}"
    script = KILLED_RUN.format(kubeconfig=str(kube_cluster.kubeconfig), namespace=namespace)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "MESHPROOF_STATE_DIR": str(tmp_path)},
                          check=False)
    assert done.returncode == -9
    assert objects.get(kube_cluster.api, _namespace(namespace)) is not None
    cleaned = run_meshproof("cleanup", state_dir=tmp_path)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"namespace {namespace} deleted" in cleaned.stdout and "1 resource(s) removed" in cleaned.stdout
    assert wait_until(lambda: (stored := objects.get(kube_cluster.api, _namespace(namespace))) is None
                      or "deletionTimestamp" in stored["metadata"], timeout=10)
    assert list(tmp_path.glob("run-*")) == []


class _DenyLabelled(http.server.BaseHTTPRequestHandler):
    """A validating admission webhook: denies objects labelled `deny`, with a message saying why."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        labels = review["request"]["object"]["metadata"].get("labels") or {}
        response = {"uid": review["request"]["uid"], "allowed": "deny" not in labels}
        if not response["allowed"]:
            response["status"] = {"code": 403, "message": f"denied by the test webhook: {labels['deny']}"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook(kube_cluster: Cluster, kube_namespace: str, tmp_path: Path) -> Iterator[Json]:
    """A ValidatingWebhookConfiguration for Services in the test's namespace, served on loopback."""
    if not kube_cluster.created_by_meshproof:
        pytest.skip("registers a cluster-wide webhook, which meshproof does only on a cluster it created")
    ca, cert, key = serving_pki(tmp_path / "webhook-pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DenyLabelled)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": f"deny-labelled-{kube_namespace}"},
        "webhooks": [{
            "name": "deny-labelled.meshproof.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5,
            "clientConfig": {"url": f"https://127.0.0.1:{server.server_address[1]}/validate",
                             "caBundle": base64.b64encode(ca.read_bytes()).decode()},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": kube_namespace}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                       "resources": ["services"]}]}],
    }
    try:
        yield kube_cluster.apply(configuration)
    finally:
        objects.delete(kube_cluster.api, configuration)
        server.shutdown()
        server.server_close()


def test_apply_goes_through_validating_webhooks_and_reports_their_denial(
        kube_cluster: Cluster, kube_namespace: str, webhook: Json) -> None:
    denied = _service(kube_namespace)
    denied["metadata"]["labels"] = {"deny": "no-echo-here"}
    # the API server starts calling a new webhook within about a second (its informer): retry until then
    assert wait_until(lambda: _refused_by_webhook(kube_cluster, denied), timeout=10, interval=0.2)
    with pytest.raises(Refused, match=r'admission webhook "deny-labelled.meshproof.dev" denied the request: '
                                      r"denied by the test webhook: no-echo-here"):
        kube_cluster.apply(denied, dry_run=True)
    assert objects.get(kube_cluster.api, denied) is None
    assert kube_cluster.apply(_service(kube_namespace))["metadata"]["name"] == "echo"


def _refused_by_webhook(cluster: Cluster, manifest: Json) -> bool:
    try:
        cluster.apply(manifest, dry_run=True)
    except Refused as refused:
        return "admission webhook" in refused.message
    return False

