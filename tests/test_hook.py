"""--envoy-config-hook: loaded strictly, called on every config a sidecar runs, its result used."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshproof import scenario
from meshproof.backend import Request
from meshproof.backends.local.hook import load_hook, run_hook
from meshproof.backends.local.mesh import LocalMesh
from meshproof.errors import UserError
from meshproof.profile import Profile

SEEN: list[tuple[str, str]] = []


def recording_hook(workload: str, config: dict[str, Any]) -> dict[str, Any]:
    kind = "bootstrap" if "admin" in config else config["resources"][0]["@type"].rsplit(".", 1)[-1]
    SEEN.append((workload, kind))
    return load_hook("tests.hooks:tag_inbound_responses")(workload, config)


def test_a_hook_is_found_by_module_or_by_file(tmp_path: Path) -> None:
    assert load_hook("tests.hooks:raises").__name__ == "raises"
    path = tmp_path / "my_hooks.py"
    path.write_text("def keep(workload, config):\n    return config\n")
    assert load_hook(f"{path}:keep")("w", {"a": 1}) == {"a": 1}


def test_a_hook_gets_a_copy_and_must_return_a_dict() -> None:
    original = {"resources": []}

    def mutate(workload: str, config: dict[str, Any]) -> dict[str, Any]:
        config["resources"].append(1)
        return config

    assert run_hook(mutate, "w", original, "cds config") == {"resources": [1]}
    assert original == {"resources": []}
    with pytest.raises(UserError, match=r"returned NoneType, not a dict \(on the cds config of w\)"):
        run_hook(lambda workload, config: None, "w", original, "cds config")  # type: ignore[arg-type,return-value]


@pytest.fixture(scope="module")
def hooked_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = LocalMesh(Profile(), hook=recording_hook)
    mesh.up(scenario.WORKLOADS, scenario.BASELINE)
    yield mesh
    mesh.down()


def test_the_hook_sees_the_bootstrap_and_every_xds_kind_of_every_workload(hooked_mesh: LocalMesh) -> None:
    for workload in scenario.WORKLOADS:
        kinds = [kind for name, kind in SEEN if name == workload.name]
        assert {"bootstrap", "Listener", "Cluster", "RouteConfiguration"} <= set(kinds), (workload.name, kinds)


def test_what_the_hook_returns_is_what_the_sidecar_serves(hooked_mesh: LocalMesh) -> None:
    response = hooked_mesh.call(scenario.API_GATEWAY, Request(scenario.ORDER_SERVICE, "/"))
    assert response.status == 200
    assert response.headers["x-hooked-by"] in ("order-service-v1", "order-service-v2", "order-service-v3")
