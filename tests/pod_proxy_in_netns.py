"""Run by tests/test_kube_pod_proxy.py inside a network namespace of its own (`unshare --net`): the cluster
backends' calls through a real kube-apiserver's pod proxy to real echo apps.

The API server proxies only to pod IPs that are not loopback (its IsProxyableIP), so the apps listen on
10.244.0.x addresses put on the namespace's own `lo`: traffic stays inside the namespace the run made.
Pods are objects whose status this script sets (no kubelet runs); the app playing a meshed caller sends its
onward calls straight to the server app (ECHO_OUTBOUND), where a mesh would capture them. Exits 0 when
every check holds; an assertion's traceback otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from meshproof.backend import Request, Transport
from meshproof.backends.kube import deploy, readiness
from meshproof.backends.kube.calls import PodCalls, PodInstance
from meshproof.backends.kube.controlplane import LocalControlPlane
from meshproof.backends.kube.namespaces import OUTSIDE, NamespaceMap
from meshproof.backends.kube.pods import PodProxy, PodRef
from meshproof.errors import UserError
from meshproof.faults import AppDelay, AppError
from meshproof.intent import Workload
from meshproof.processes import Supervisor, wait_until
from meshproof.profile import Profile
from meshproof.runs import RunDir
from meshproof.workloads.directives import Echo

APPS = {  # pod -> (workload, IP, where its onward calls go)
    "api-gateway-0": (Workload("api-gateway", "api-gateway"), "10.244.0.10", "10.244.0.11:8080"),
    "order-service-v1-0": (Workload("order-service-v1", "order-service", "v1"), "10.244.0.11", None),
    "outside-0": (deploy.OUTSIDE_WORKLOAD, "10.244.0.12", None),
}


class Calls(PodCalls):
    """The calls mixin as a cluster backend carries it, with the pods of this script."""

    def __init__(self, proxy: PodProxy, pods: dict[str, PodInstance]) -> None:
        self.name = "test"
        self.profile = Profile()
        self.names = NamespaceMap()
        self.pod_proxy = proxy
        self.outside = pods.pop("outside-0")
        self.pods = pods
        self.foreign_client = None
        self.mesh_client = None


def network() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for _, ip, _ in APPS.values():
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)


def start_apps(supervisor: Supervisor, run: RunDir) -> None:
    for pod, (workload, ip, outbound) in APPS.items():
        env = {"ECHO_SERVICE": workload.service, "ECHO_VERSION": workload.version, "ECHO_INSTANCE": pod,
               "ECHO_NAMESPACE": workload.namespace, "ECHO_HOST": ip, "PATH": "/usr/bin:/bin",
               **({"ECHO_OUTBOUND": outbound} if outbound else {})}
        supervisor.start(pod, [sys.executable, "-m", "meshproof.workloads.echo"], log=run.path / f"{pod}.log",
                         env={**env, "PYTHONPATH": ":".join(sys.path)})


def pods(plane: LocalControlPlane) -> dict[str, PodInstance]:
    cluster = plane.cluster()
    cluster.create_namespace(OUTSIDE)
    found = {}
    for pod, (workload, ip, _) in APPS.items():
        cluster.apply(deploy.service_account(workload.service_account, workload.namespace))
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": workload.namespace},
                    "spec": {"serviceAccountName": workload.service_account, "automountServiceAccountToken": False,
                             "containers": [{"name": "app", "image": "meshproof-echo:x"}]}}
        stored = cluster.apply(manifest)
        cluster.api.request("PATCH", cluster.api.path_of(stored) + "/status", body={"status": {
            "phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}},
            content_type="application/merge-patch+json")
        assert readiness.pod_problem(cluster.api.request("GET", cluster.api.path_of(stored)), None) is None
        found[pod] = PodInstance(PodRef(workload.namespace, pod), workload, ip)
    return found


def checks(calls: Calls, proxy: PodProxy) -> dict[str, object]:
    gateway = calls.pods["api-gateway-0"]
    assert wait_until(lambda: _healthy(proxy, calls), timeout=20), "the echo apps never answered through the proxy"
    echo = Echo(key="k-1", status=503, first=1)
    first = calls.call("api-gateway", Request("order-service", "/api/v1/orders/7", headers=echo.headers()))
    second = calls.call("api-gateway", Request("order-service", "/api/v1/orders/7", headers=echo.headers()))
    assert (first.status, second.status, second.served_by) == (503, 200, "order-service-v1-0"), (first, second)
    assert second.echo is not None and second.echo["headers"]["host"] == "order-service.default"
    assert calls.attempts("order-service", "k-1") == {"order-service-v1-0": 2}
    tally = calls.call_batch("api-gateway", Request("order-service", "/"), count=50, concurrency=4)
    assert tally.sent == 50 and tally.statuses == {"200": 50} and tally.instances == {"order-service-v1-0": 50}
    fault = calls.app_fault(AppError(500), "order-service-v1-0")
    assert calls.call("api-gateway", Request("order-service", "/")).status == 500
    fault.undo()
    assert calls.call("api-gateway", Request("order-service", "/")).status == 200
    slow = calls.app_fault(AppDelay(0.3), "order-service-v1-0")
    late = calls.call("api-gateway", Request("order-service", "/"))
    slow.undo()
    prompt = calls.call("api-gateway", Request("order-service", "/"))
    assert late.status == 200 and late.elapsed >= 0.3 and prompt.elapsed < 0.3, (late, prompt)
    plain = calls.call_unmeshed("order-service", Request("order-service", "/"), Transport.PLAINTEXT)
    assert (plain.outcome, plain.status) == ("http", 200), plain
    tls = calls.call_unmeshed("order-service", Request("order-service", "/", timeout=1.0),
                              Transport.TLS_NO_CLIENT_CERT)
    assert not tls.got_http_response, tls  # the app speaks plaintext: the TLS client sees no HTTP response
    calls.reset_apps()
    assert calls.attempts("order-service", "k-1") == {"order-service-v1-0": 0}
    try:
        proxy.json("GET", gateway.ref, deploy.CONTROL_PORT, "/no-such-endpoint")
        raise AssertionError("a 404 from the app was not reported")
    except UserError as exc:
        assert "HTTP 404: {\"error\": \"no control endpoint GET /no-such-endpoint\"}" in str(exc), exc
    try:
        proxy.json("GET", PodRef("default", "missing"), deploy.CONTROL_PORT, "/health")
        raise AssertionError("a missing pod was not reported")
    except UserError as exc:
        assert 'HTTP 404: pods "missing" not found' in str(exc), exc
    return {"first": first.status, "batch": tally.sent, "plain": plain.outcome, "tls": tls.outcome}


def _healthy(proxy: PodProxy, calls: Calls) -> bool:
    try:
        for pod in [*calls.pods.values(), calls.outside]:
            assert pod is not None
            proxy.json("GET", pod.ref, deploy.CONTROL_PORT, "/health")
    except UserError:
        time.sleep(0.1)
        return False
    return True


def main() -> None:
    network()
    run = RunDir.create("pod-proxy-test")
    supervisor = Supervisor(run)
    try:
        start_apps(supervisor, run)
        with LocalControlPlane.start() as plane:
            proxy = PodProxy(plane.api(), timeout=30)
            print(json.dumps(checks(Calls(proxy, pods(plane)), proxy)))
    finally:
        supervisor.stop_all()
        run.remove()


if __name__ == "__main__":
    main()
