"""The local Istio mesh's parts: where instances are placed and how they are registered, its private
network, its options, and that an interrupted run on real Istio leaves nothing behind."""

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meshproof import scenario
from meshproof.backend import Request
from meshproof.backends.host.topology import Instance
from meshproof.backends.istio.local import registration, releases
from meshproof.backends.istio.local.mesh import LocalIstio
from meshproof.backends.istio.local.netns import PrivateNetwork
from meshproof.backends.kube.cluster_choice import choose_cluster
from meshproof.backends.kube.manifest_hook import run_manifest_hook
from meshproof.errors import ConfigRejected, UserError
from meshproof.faults import AppCrash, ControlPlaneDown
from meshproof.intent import Intent, Route, RouteRule
from meshproof.processes import wait_until
from meshproof.profile import Profile
from meshproof.runs import STATE_VARIABLE, processes_of
from meshproof.shipped import CHECKOUT_DIR
from tests import hooks
from tests.helpers import MESHPROOF, one_error_line, run_meshproof
from tests.istio_local import require_local_istio


def _placements() -> list[registration.Placement]:
    placements, port = [], 30000
    for workload in scenario.WORKLOADS:
        for name in workload.instance_names():
            address, outbound = registration.addresses(len(placements))
            instance = Instance(name, workload, port, port + 1, workload.port, workload.port, port + 2)
            placements.append(registration.Placement(instance, address, outbound, port + 3, port + 4, port + 5))
            port += 6
    return placements


def test_instances_get_their_own_addresses_never_127_0_0_1() -> None:
    assert registration.addresses(0) == ("127.0.0.11", "127.1.0.11")
    assert registration.addresses(243) == ("127.0.0.254", "127.1.0.254")
    with pytest.raises(ValueError, match="at most 244 instances"):
        registration.addresses(244)


def test_each_instance_is_a_workload_entry_with_a_sidecar_of_its_own() -> None:
    placements = _placements()
    objects = registration.registration(placements)
    kinds = [o["kind"] for o in objects]
    services = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Service"}
    assert services == {(w.namespace, w.service) for w in scenario.WORKLOADS} | {("istio-system", "meshproof-sync")}
    assert kinds.count("WorkloadEntry") == kinds.count("Sidecar") == len(placements) == 8
    entries = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "WorkloadEntry"}
    sidecars = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "Sidecar"}
    for placement in placements:
        entry, sidecar = entries[placement.name], sidecars[placement.name]
        assert entry["address"] == placement.address != "127.0.0.1"
        assert entry["serviceAccount"] == placement.workload.service_account
        assert entry["labels"][registration.INSTANCE_LABEL] == placement.name
        assert sidecar["workloadSelector"]["labels"] == {registration.INSTANCE_LABEL: placement.name}
        assert sidecar["ingress"][0]["bind"] == placement.address
        assert sidecar["ingress"][0]["defaultEndpoint"] == f"127.0.0.1:{placement.instance.app_port}"
        assert sidecar["egress"][0]["bind"] == placement.outbound_address
    marker = registration.sync_marker("7")["spec"]["http"][0]["headers"]["request"]["set"]
    assert marker == {registration.SYNC_HEADER: "7"}


def test_the_private_network_has_only_loopback_and_keeps_its_listeners_inside() -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    network = PrivateNetwork()
    network.enter()
    try:
        interfaces = [name for _, name in socket.if_nameindex()]  # of this thread's namespace
        listener = socket.create_server(("0.0.0.0", 0))  # a wildcard bind, as pilot-agent's status server
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.42", port), timeout=2):
            pass
    finally:
        network.leave()
    try:
        assert interfaces == ["lo"]
        with pytest.raises(OSError):  # from the host's network, the listener does not exist
            socket.create_connection(("127.0.0.42", port), timeout=2).close()
    finally:
        listener.close()


@pytest.mark.parametrize(("options", "says"), [
    (["--mesh-version", "1.0"], "--mesh-version '1.0': no such istiod build; choose one of 2026-08, 2026-04"),
    (["--cluster", "moon"], "--cluster 'moon': choose one of local, kind, existing"),
    (["--manifest-hook", "tests.hooks:nope"], "--manifest-hook 'tests.hooks:nope': tests.hooks has no function"),
    (["--manifest-hook", "no-colon"], "--manifest-hook 'no-colon': expected MODULE:FUNCTION"),
])
def test_bad_istio_options_are_one_line_before_anything_starts(tmp_path: Path, options: list[str], says: str) -> None:
    done = run_meshproof("run", "--mesh", "istio", *options, "--out", str(tmp_path / "out"), state_dir=tmp_path)
    assert done.returncode == 2
    assert says in one_error_line(done.stderr)
    assert list(tmp_path.glob("run-*")) == []


def test_a_manifest_hook_option_is_refused_by_the_local_mesh(tmp_path: Path) -> None:
    done = run_meshproof("run", "--manifest-hook", "tests.hooks:drop_every_manifest", state_dir=tmp_path)
    assert done.returncode == 2
    assert "--manifest-hook: not an option of --mesh local (it works with --mesh istio, linkerd)" in (
        one_error_line(done.stderr))


def test_a_manifest_hook_must_return_manifests() -> None:
    with pytest.raises(UserError, match="returned dict, not a list of manifests"):
        run_manifest_hook(lambda manifests: {"kind": "VirtualService"}, [])  # type: ignore[arg-type,return-value]
    with pytest.raises(UserError, match=r"every manifest needs apiVersion, kind and metadata\.name"):
        run_manifest_hook(lambda manifests: [{"kind": "VirtualService"}], [])


def test_without_cluster_docker_decides_and_a_kube_context_is_never_guessed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: somewhere\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker on PATH
    supported = ("local", "kind", "existing")
    assert choose_cluster(None, mesh="istio", supported=supported) == "local"
    assert choose_cluster("existing", mesh="istio", supported=supported) == "existing"
    assert choose_cluster(None, mesh="linkerd", supported=("kind", "existing")) == "kind"


def _mesh_described(out: Path) -> bool:
    try:
        return "backend" in json.loads((out / "results.json").read_text())["run"]
    except (OSError, ValueError):
        return False


@contextmanager
def _stalled_istio_run(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `meshproof run --mesh istio` hanging in its first check (after the mesh is up and described);
    killed whatever the test does with it."""
    require_local_istio()
    state, out = tmp_path / "state", tmp_path / "out"
    env = {**os.environ, "MESHPROOF_STATE_DIR": str(state)}
    env.pop("CI", None)
    with open(tmp_path / "runner.log", "wb") as log:
        runner = subprocess.Popen([*MESHPROOF, "run", "--mesh", "istio", "--cluster", "local", "--only", "mtls",
                                   "--out", str(out), "--manifest-hook", "tests.hooks:stall_manifests_after_startup"],
                                  cwd=CHECKOUT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # etcd, kube-apiserver, istiod, and an app and an agent (with its Envoy) per instance
        expected = 3 + 3 * sum(w.replicas for w in scenario.WORKLOADS)
        assert wait_until(lambda: len(processes_of(state)) >= expected or runner.poll() is not None, timeout=1800)
        assert runner.poll() is None, (tmp_path / "runner.log").read_text()
        assert wait_until(lambda: _mesh_described(out), timeout=120)  # up, and into the first check
        time.sleep(1.0)
        yield runner
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_sigterm_mid_check_on_real_istio_stops_every_process(tmp_path: Path) -> None:
    with _stalled_istio_run(tmp_path) as runner:
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 130, (tmp_path / "runner.log").read_text()
    assert processes_of(tmp_path / "state") == []
    assert list((tmp_path / "state").glob("run-*")) == []  # etcd's data, the keys, the kubeconfig: gone
    assert json.loads((tmp_path / "out" / "results.json").read_text())["run"]["interrupted"] is True


def test_sigkill_of_the_runner_on_real_istio_takes_every_process_with_it(tmp_path: Path) -> None:
    """Envoys included: pilot-agent gives them no parent-death signal, meshproof's wrapper does."""
    state = tmp_path / "state"
    with _stalled_istio_run(tmp_path) as runner:
        runner.kill()
        runner.wait()
    assert wait_until(lambda: processes_of(state) == [], timeout=15), [p.name() for p in processes_of(state)]
    done = run_meshproof("cleanup", state_dir=state)
    assert done.returncode == 0 and "removed run-" in done.stdout
    assert list(state.glob("run-*")) == []


@pytest.fixture(scope="module")
def local_istio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIstio]:
    """One local Istio mesh for the tests below; its manifest hook breaks any rate limit (see the hook)."""
    require_local_istio()
    state = tmp_path_factory.mktemp("state")
    previous = os.environ.get(STATE_VARIABLE)
    os.environ[STATE_VARIABLE] = str(state)
    mesh = LocalIstio(Profile(), release=releases.release(None), manifest_hook=hooks.unparsable_rate_limit)
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        yield mesh
    finally:
        mesh.down()
        if previous is None:
            del os.environ[STATE_VARIABLE]
        else:
            os.environ[STATE_VARIABLE] = previous
    assert processes_of(state) == []
    assert list(state.glob("run-*")) == []


ORDERS = Request(scenario.ORDER_SERVICE, "/api/v1/orders/1")


def _pinned(version: str) -> list[Intent]:
    return [*scenario.BASELINE, Route(scenario.ORDER_SERVICE, (RouteRule(splits={version: 100}),)),
            scenario.seed_authorization_policy()]


def test_with_istiod_down_the_proxies_keep_serving_what_they_were_given(local_istio: LocalIstio) -> None:
    local_istio.reset()
    local_istio.apply(_pinned("v2"))
    down = local_istio.inject(ControlPlaneDown(), "")
    assert local_istio.istiod is None
    tally = local_istio.call_batch(scenario.API_GATEWAY, ORDERS, count=200)
    assert dict(tally.versions) == {"v2": 200}, tally  # the route it was given, without istiod
    assert local_istio.call(scenario.GUEST, ORDERS).status == 403  # and the policy
    with pytest.raises(UserError, match="istiod is down"):
        local_istio.apply(_pinned("v1"))
    down.undo()
    local_istio.apply(_pinned("v1"))
    assert dict(local_istio.call_batch(scenario.API_GATEWAY, ORDERS, count=200).versions) == {"v1": 200}


def test_a_config_envoy_refuses_fails_apply_with_envoys_reason(local_istio: LocalIstio) -> None:
    local_istio.reset()
    with pytest.raises(ConfigRejected, match=r"api-gateway-0 refused istiod.s config: .*max_tokens.*invalid\s+number"):
        local_istio.apply([*scenario.BASELINE, Profile().ratelimit.limit()])
    local_istio.reset()  # the baseline is accepted again, the refusal forgotten
    assert local_istio.call(scenario.API_GATEWAY, ORDERS).status == 200


def test_a_killed_app_is_a_503_from_its_sidecar_until_undo_starts_it_again(local_istio: LocalIstio) -> None:
    """The host layer's app faults on real Istio: the app dies behind a live sidecar, then comes back."""
    local_istio.reset()
    local_istio.apply(_pinned("v2"))
    (target,) = local_istio.instances(scenario.ORDER_SERVICE, version="v2")
    killed = local_istio.inject(AppCrash(), target)
    dead = local_istio.call(scenario.API_GATEWAY, ORDERS)
    assert dead.status == 503 and dead.served_by is None, dead.describe()
    assert local_istio.agents[target].envoy_pid() is not None  # the sidecar stayed up
    killed.undo()
    back = local_istio.call(scenario.API_GATEWAY, ORDERS)
    assert back.status == 200 and back.served_by == target, back.describe()
