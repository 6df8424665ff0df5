"""The local control plane: a real kube-apiserver on etcd, with RBAC, service-account tokens and a
kubeconfig any client reads; stopped without a trace on stop, Ctrl-C and SIGKILL; a port taken or a
server that never gets ready is one line with nothing left running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from meshproof.backends.host.ports import PortBlock
from meshproof.backends.kube import controlplane
from meshproof.backends.kube.api import ApiError, KubeApi
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.controlplane import ControlPlaneTimeouts, LocalControlPlane
from meshproof.errors import UserError
from meshproof.processes import wait_until
from meshproof.runs import processes_of
from tests.helpers import run_meshproof

START_SCRIPT = """
import sys, time
from meshproof.backends.kube.controlplane import LocalControlPlane
with LocalControlPlane.start() as plane:
    print(plane.server, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESHPROOF_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_the_api_server_reports_its_pinned_version(kube_cluster: Cluster) -> None:
    version = kube_cluster.api.request("GET", "/version")
    assert (version["gitVersion"], version["major"], version["minor"]) == ("v1.37.2", "1", "37")


def test_the_kubeconfig_works_with_the_kubernetes_client(kube_control_plane: LocalControlPlane) -> None:
    assert kube_control_plane.kubeconfig.stat().st_mode & 0o777 == 0o600  # it holds the admin token
    api_client = config.new_client_from_config(config_file=str(kube_control_plane.kubeconfig))
    try:
        names = [item.metadata.name for item in client.CoreV1Api(api_client).list_namespace().items]
    finally:
        api_client.close()
    assert {"default", "kube-system"} <= set(names)


def test_kubectl_reads_the_kubeconfig_and_parses_the_version(kube_control_plane: LocalControlPlane) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH (the kubernetes client's check above covers the kubeconfig)")
    done = subprocess.run(["kubectl", "--kubeconfig", str(kube_control_plane.kubeconfig), "version", "-o", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    server = json.loads(done.stdout)["serverVersion"]
    assert (server["gitVersion"], server["gitTreeState"]) == ("v1.37.2", "archive")


def test_rbac_judges_service_account_tokens_the_server_signed(kube_cluster: Cluster, kube_namespace: str) -> None:
    """A token from the TokenRequest API authenticates (the signing key works) and RBAC denies what no
    binding grants, then allows it once bound."""
    api = kube_cluster.api
    api.request("POST", f"/api/v1/namespaces/{kube_namespace}/serviceaccounts",
                body={"metadata": {"name": "reader"}})
    issued = api.request("POST", f"/api/v1/namespaces/{kube_namespace}/serviceaccounts/reader/token",
                         body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": 600}})
    configuration = client.Configuration(host=api.client.configuration.host,
                                         api_key={"BearerToken": issued["status"]["token"]},
                                         api_key_prefix={"BearerToken": "Bearer"})
    configuration.ssl_ca_cert = api.client.configuration.ssl_ca_cert
    reader = KubeApi(client.ApiClient(configuration), description="reader")
    services = f"/api/v1/namespaces/{kube_namespace}/services"
    try:
        with pytest.raises(ApiError) as denied:
            reader.request("GET", services)
        assert denied.value.status == 403
        assert f"system:serviceaccount:{kube_namespace}:reader" in denied.value.message
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{kube_namespace}"
        # a Role of our own: the aggregated ClusterRoles (view, edit) stay empty without a controller manager
        api.request("POST", f"{rbac}/roles", body={"metadata": {"name": "services-reader"}, "rules": [
            {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]}]})
        api.request("POST", f"{rbac}/rolebindings", body={
            "metadata": {"name": "reader-reads-services"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "services-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": kube_namespace}]})
        assert wait_until(lambda: _allowed(reader, services), timeout=10)  # the authorizer's cache
    finally:
        reader.close()


def _allowed(api: KubeApi, path: str) -> bool:
    try:
        api.request("GET", path)
    except ApiError:
        return False
    return True


def test_stop_removes_processes_ports_data_and_keys(state_dir: Path) -> None:
    plane = LocalControlPlane.start()
    assert plane.run is not None and plane.ports is not None
    run_path, first_port = plane.run.path, plane.ports.start
    assert {child.name() for child in processes_of(state_dir)} == {"etcd", "kube-apiserver"}
    plane.stop()
    plane.stop()  # twice is fine
    assert processes_of(state_dir) == []
    assert not run_path.exists()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", first_port + 2))  # the API server's port is free again


@pytest.fixture
def started(state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that started a control plane and waits; killed at the end whatever happened."""
    with subprocess.Popen([sys.executable, "-c", START_SCRIPT], stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "MESHPROOF_STATE_DIR": str(state_dir)}) as process:
        assert process.stdout is not None
        try:
            assert process.stdout.readline().startswith("https://127.0.0.1:")
            yield process
        finally:
            process.kill()


def test_ctrl_c_stops_the_control_plane(started: subprocess.Popen[str], state_dir: Path) -> None:
    assert len(processes_of(state_dir)) == 2
    started.send_signal(signal.SIGINT)
    started.wait(timeout=30)
    assert processes_of(state_dir) == []
    assert list(state_dir.glob("run-*")) == []


def test_after_sigkill_the_programs_die_and_cleanup_removes_the_directory(started: subprocess.Popen[str],
                                                                          state_dir: Path) -> None:
    started.kill()
    started.wait()
    assert wait_until(lambda: processes_of(state_dir) == [], timeout=10)  # parent-death signal
    assert len(list(state_dir.glob("run-*"))) == 1
    done = run_meshproof("cleanup", state_dir=state_dir)
    assert done.returncode == 0 and "removed run-" in done.stdout
    assert list(state_dir.glob("run-*")) == []


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert "\n" not in message
    return message


def test_a_port_taken_after_the_reservation_is_one_line_and_nothing_is_left(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()
    reserve = PortBlock.reserve

    def reserve_then_lose_the_api_servers_port(lock_dir: Path) -> PortBlock:
        block = reserve(lock_dir)
        squatter.bind(("127.0.0.1", block.start + 2))  # the third port taken: the API server's
        squatter.listen()
        return block

    monkeypatch.setattr(controlplane.PortBlock, "reserve", reserve_then_lose_the_api_servers_port)
    with squatter, pytest.raises(UserError) as failed:
        LocalControlPlane.start()
    message = _one_line(failed.value)
    assert "kube-apiserver at https://127.0.0.1:" in message and "exited during start-up (exit 1)" in message
    assert "address already in use" in message
    assert processes_of(state_dir) == []
    assert list(state_dir.glob("run-*")) == []


def test_no_free_ports_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        low = holder.getsockname()[1] - 10
        done = run_meshproof("controlplane", "check", state_dir=tmp_path,
                             env={"MESHPROOF_PORT_RANGE": f"{low}-{low + 64}"})
    assert done.returncode == 2
    assert done.stderr.startswith(f"meshproof: error: no free block of 64 loopback ports in {low}-{low + 64}")
    assert done.stderr.count("\n") == 1 and processes_of(tmp_path) == []


def test_an_api_server_that_never_gets_ready_is_one_line_and_nothing_is_left(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """etcd is frozen (SIGSTOP) right after its first healthy answer: the API server cannot get ready."""
    healthy = controlplane._etcd_healthy

    def healthy_then_frozen(url: str) -> bool:
        if not healthy(url):
            return False
        for process in processes_of(state_dir):
            if process.name() == "etcd":
                process.send_signal(signal.SIGSTOP)
        return True

    monkeypatch.setattr(controlplane, "_etcd_healthy", healthy_then_frozen)
    started = time.monotonic()
    with pytest.raises(UserError) as failed:
        LocalControlPlane.start(timeouts=ControlPlaneTimeouts(apiserver_ready=4, stop_grace=1))
    message = _one_line(failed.value)
    assert "kube-apiserver at https://127.0.0.1:" in message and "not ready after 4 s (/readyz: " in message
    assert time.monotonic() - started < 30
    assert processes_of(state_dir) == []
    assert list(state_dir.glob("run-*")) == []
