"""Every registered feature is wired for Istio and Linkerd on a cluster or declared not supported there with the
mesh's own reason (meshproof/features.py is the registry every table is validated against)."""

from __future__ import annotations

import pytest

from meshproof.backend import FaultInjection, Telemetry, unsupported_reason
from meshproof.backends.istio.cluster import IstioOnCluster
from meshproof.backends.kube.descriptor import CLUSTER_UNSUPPORTED
from meshproof.backends.kube.mesh import ClusterMesh
from meshproof.backends.linkerd.cluster import LinkerdOnCluster
from meshproof.faults import AppDelay, AppError, ControlPlaneDown
from meshproof.features import REGISTRY, check_table


@pytest.mark.parametrize("backend", [IstioOnCluster, LinkerdOnCluster], ids=["istio", "linkerd"])
def test_every_feature_is_wired_or_declared_not_supported_with_the_mesh_s_reason(backend: type[ClusterMesh]) -> None:
    check_table(backend.unsupported, owner=backend.__name__)
    instance = object.__new__(backend)  # unsupported_reason reads the class's declarations only
    gaps = {}
    for name, feature in REGISTRY.items():
        reason = unsupported_reason(instance, name)
        if reason is not None:
            assert reason in (backend.unsupported.get(name), backend.unsupported.get(feature.capability)), name
            gaps[name] = reason
    assert CLUSTER_UNSUPPORTED.keys() <= gaps.keys()  # proxy crash and load targets, for the reasons given
    assert isinstance(instance, Telemetry) and isinstance(instance, FaultInjection)
    assert backend.fault_types == {AppError, AppDelay, ControlPlaneDown}
    wired = sorted(name for name in REGISTRY if name not in gaps)
    assert {"mtls", "authz", "retries", "timeouts", "outlier", "ratelimit", "canary", "mesh.telemetry",
            "mesh.fault.app_error", "mesh.fault.app_delay", "mesh.fault.control_plane_down"} <= set(wired)


def test_linkerd_declares_what_its_renderer_cannot_express_and_istio_what_istio_cannot() -> None:
    assert "authz.deny" in LinkerdOnCluster.unsupported and "connpool" in LinkerdOnCluster.unsupported
    assert "authz.deny" not in IstioOnCluster.unsupported
    assert "connpool.max_retries_zero" in IstioOnCluster.unsupported
