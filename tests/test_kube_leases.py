"""Where a cluster mesh runs and what it leaves: an existing cluster (the local API server standing in for one)
gets prefixed, labelled namespaces that the run records and deletes; a kind cluster is recorded before kind
starts, so `meshproof cleanup` deletes it after a killed run. kind cannot run here: where its command line is
what is checked, a recording stand-in on PATH takes kind's place and says so in its name."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshproof.backends.kube import kind
from meshproof.backends.kube.cluster import NAMESPACE_RESOURCE, Cluster
from meshproof.backends.kube.clusters import ExistingLease, KindLease
from meshproof.backends.kube.commands import Runner
from meshproof.backends.kube.conventions import MANAGED_BY
from meshproof.backends.kube.deploy import service_account
from meshproof.errors import PrerequisiteError, UserError
from meshproof.processes import Supervisor
from meshproof.runs import RunDir
from tests.helpers import run_meshproof


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunDir]:
    monkeypatch.setenv("MESHPROOF_STATE_DIR", str(tmp_path / "state"))
    made = RunDir.create("lease-test")
    try:
        yield made
    finally:
        made.remove()


def _tools(run: RunDir) -> Runner:
    return Runner(Supervisor(run), run.path / "logs")


def test_an_existing_cluster_gets_prefixed_labelled_recorded_namespaces_and_loses_them_at_the_end(
        kube_cluster: Cluster, run: RunDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kube_cluster.kubeconfig))
    context = yaml.safe_load(kube_cluster.kubeconfig.read_text())["current-context"]
    lease = ExistingLease(context=context)
    cluster = lease.open(run, _tools(run), timeout=10)
    assert not cluster.created_by_meshproof and lease.facts["kubernetes"].startswith("v1.")
    name = lease.create_namespace("default", {"istio-injection": "enabled"})
    assert name == f"{lease.names.prefix}default" and name != "default"
    labels = cluster.api.request("GET", f"/api/v1/namespaces/{name}")["metadata"]["labels"]
    assert {**MANAGED_BY, "istio-injection": "enabled"}.items() <= labels.items()
    assert {"kind": NAMESPACE_RESOURCE, "name": name, "kubeconfig": str(kube_cluster.kubeconfig),
            "context": context} in run.resources()
    with pytest.raises(UserError, match=r"namespace default .* was not created by meshproof"):
        cluster.apply(service_account("intruder", "default"))
    cluster.apply(service_account("order-service", name))
    note = lease.close(_tools(run))
    assert note == f"deleted meshproof's namespaces {name} on context {context}"
    gone = kube_cluster.api.request("GET", f"/api/v1/namespaces/{name}")  # no namespace controller: Terminating
    assert gone["metadata"].get("deletionTimestamp")


def test_an_existing_cluster_is_never_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({"contexts": [{"name": "prod", "context": {}},
                                                       {"name": "staging", "context": {}}]}))
    monkeypatch.setenv("KUBECONFIG", f"{kubeconfig}{os.pathsep}{tmp_path / 'other'}")
    with pytest.raises(UserError, match=rf"--cluster existing needs --kube-context NAME, the context of {kubeconfig} "
                                        r"to use \(it has: prod, staging\)"):
        ExistingLease(context=None)
    with pytest.raises(UserError, match=r"--kube-context dev: no such context .* \(it has: prod, staging\)"):
        ExistingLease(context="dev")


def test_on_a_kind_cluster_default_gets_the_labels_and_other_namespaces_are_created(kube_cluster: Cluster) -> None:
    lease = KindLease(k8s_version=None, keep=False)
    lease.cluster = kube_cluster  # the local API server, a cluster meshproof owns as it owns a kind cluster
    name = f"t{secrets.token_hex(3)}"
    try:
        assert lease.create_namespace("default", {"istio-injection": "enabled"}) == "default"
        assert lease.create_namespace(name, {"istio-injection": "enabled"}) == name
        for namespace in ("default", name):
            labels = kube_cluster.api.request("GET", f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]
            assert labels["istio-injection"] == "enabled"
    finally:
        kube_cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {}}})
        kube_cluster.delete_namespace(name)


def _kind_stand_in(directory: Path) -> Path:
    """A `kind` on PATH that records its arguments and succeeds: what meshproof would have run."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "kind"
    script.write_text(f'#!/bin/sh\necho "$@" >> {directory / "kind-calls.txt"}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory / "kind-calls.txt"


def test_a_kind_cluster_is_recorded_before_kind_runs_and_cleanup_deletes_it(
        run: RunDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    lease = KindLease(k8s_version="1.36", keep=False)
    with pytest.raises(PrerequisiteError, match=rf"cannot create the kind cluster {lease.name} \(v1.36.4\): kind is "
                                                "not on PATH"):
        lease.open(run, _tools(run), timeout=60)
    recorded = {"kind": kind.RESOURCE_KIND, "name": lease.name, "kubeconfig": str(run.path / "kubeconfig")}
    assert run.resources() == [recorded]
    assert yaml.safe_load((run.path / "kind.yaml").read_text()) == kind.config()
    state = tmp_path / "state"
    done = run_meshproof("cleanup", "--all", state_dir=state, env={"PATH": "/usr/bin:/bin"})
    assert f"kind cluster {lease.name} not deleted: kind is not on PATH (delete it with kind delete cluster " \
           f"--name {lease.name})" in done.stdout, done.stdout + done.stderr
    again = RunDir.create("lease-test")
    again.record_resource(kind.RESOURCE_KIND, lease.name, kubeconfig=str(again.path / "kubeconfig"))
    (again.path / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    calls = _kind_stand_in(tmp_path / "bin")
    done = run_meshproof("cleanup", "--all", state_dir=state, env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert f"kind cluster {lease.name} deleted" in done.stdout, done.stdout + done.stderr
    assert calls.read_text() == f"delete cluster --name {lease.name} --kubeconfig {again.path / 'kubeconfig'}\n"
    assert list(state.glob("run-*")) == []


def test_a_kept_kind_cluster_is_left_running_and_the_run_says_how_to_reach_and_delete_it(
        run: RunDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _kind_stand_in(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    lease = KindLease(k8s_version=None, keep=True)
    note = lease.close(_tools(run))
    assert note == (f"kept the kind cluster {lease.name} (--keep-cluster): kind export kubeconfig --name {lease.name}; "
                    f"delete it with kind delete cluster --name {lease.name}")
    assert not calls.exists()
    KindLease(k8s_version=None, keep=False).close(_tools(run))
    assert calls.read_text().startswith("delete cluster --name meshproof-")
