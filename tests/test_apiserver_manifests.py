"""Manifests judged by the real thing: every manifest `meshproof render` produces for each cluster mesh and
profile is accepted by kube-apiserver under strict server-side apply and read back as sent; and meshproof's
own schema validator reaches the server's verdict on every case its tests hold it to."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshproof.backends.kube import acceptance, objects
from meshproof.backends.kube.api import Json
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.schema import CrdCatalog
from meshproof.runs import processes_of
from tests.helpers import run_meshproof
from tests.test_crd_schema import VALIDATOR_CASES, WIDGET, WIDGET_CASES, WIDGET_CRD

#: The validator refuses these on purpose, before any server: without a namespace a manifest lands in
#: whatever namespace kubectl's context names; meshproof's client refuses them too (the URL needs one).
NO_NAMESPACE = "metadata.namespace: required"


@pytest.fixture(scope="module")
def owned(kube_cluster: Cluster, kube_crds: list[Json]) -> Cluster:
    if not kube_cluster.created_by_meshproof:
        pytest.skip("the rendered manifests name the namespaces default and monitoring, which meshproof changes "
                    "only on a cluster it created (the local control plane, its own kind cluster)")
    return kube_cluster


@pytest.mark.parametrize("profile", [None, "seed"], ids=["default-profile", "seed-profile"])
@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_every_rendered_manifest_is_accepted_strictly_and_stored_as_sent(owned: Cluster, mesh: str,
                                                                         profile: str | None) -> None:
    items = acceptance.rendered(mesh, profile)
    assert items
    for namespace in acceptance.namespaces_of(items):
        owned.create_namespace(namespace)
    owned.api.warnings.clear()
    try:
        verdicts = acceptance.judge(owned, items)
        assert [verdict.line() for verdict in verdicts if not verdict.accepted_as_sent] == []
        assert owned.api.warnings == []  # e.g. no deprecated API version
        assert all(verdict.validator_agrees for verdict in verdicts)
        for item in items:
            assert objects.get(owned.api, item) is not None
    finally:
        for item in items:
            objects.delete(owned.api, item)


@pytest.fixture(scope="module")
def widgets(owned: Cluster) -> Iterator[CrdCatalog]:
    """The validator tests' own CRD, without its CEL rule (which the validator never evaluates)."""
    crd = copy.deepcopy(WIDGET_CRD)
    del crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    owned.apply(crd)
    objects.wait_for_condition(owned.api, crd, "Established", timeout=30, current=False)
    yield CrdCatalog([crd])
    objects.delete(owned.api, crd)


@pytest.mark.parametrize(("manifest", "error"), VALIDATOR_CASES)
def test_the_api_server_reaches_the_validators_verdict(owned: Cluster, manifest: dict[str, Any],
                                                        error: str | None) -> None:
    (verdict,) = acceptance.judge(owned, [manifest], dry_run=True)
    assert verdict.validator_agrees, verdict.line()
    if error == NO_NAMESPACE:
        assert verdict.refused is not None and "must name its metadata.namespace" in verdict.refused


@pytest.mark.parametrize(("spec", "error"), WIDGET_CASES)
def test_the_api_server_reaches_the_validators_verdict_on_list_types_and_formats(
        owned: Cluster, widgets: CrdCatalog, spec: dict[str, Any], error: str | None) -> None:
    manifest = {**WIDGET, "spec": spec}
    (verdict,) = acceptance.judge(owned, [manifest], dry_run=True)
    assert (verdict.refused is None) == (widgets.validate(manifest) == []), verdict.line()


def test_controlplane_check_judges_the_rendered_manifests_on_a_server_of_its_own(tmp_path: Path) -> None:
    done = run_meshproof("controlplane", "check", "--mesh", "linkerd", "--profile", "seed", state_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CRDs installed in" in done.stdout and "linkerd: ok       Service monitoring/prometheus" in done.stdout
    assert re.search(r"^meshproof: (\d+) of \1 manifests accepted and stored as sent$", done.stdout, re.MULTILINE)
    assert processes_of(tmp_path) == [] and list(tmp_path.glob("run-*")) == []
