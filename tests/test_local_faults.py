"""Every fault of the local mesh does exactly what meshproof.faults says, and its undo restores the state before it.

One real mesh for the module; each test pins order-service to v2 (one instance) without retries, so one
call shows what the fault did to that instance, injects, observes, undoes and observes the mesh as it was.
Latency bounds here are lower bounds from the fault itself (a frozen app answers no sooner than it is
thawed), and upper bounds only a whole second past them, which no busy machine gets near.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from meshproof import runs, scenario
from meshproof.backend import Request, Response
from meshproof.backends.host.disruption import connect_outcome
from meshproof.backends.local.mesh import LocalMesh
from meshproof.chaos import actions
from meshproof.chaos.target import bound
from meshproof.errors import UserError
from meshproof.faults import (
    AppCrash,
    AppDelay,
    AppError,
    AppFreeze,
    HttpFault,
    PortBlackholed,
    PortRefused,
    ProxyCrash,
)
from meshproof.intent import Retry, Route, RouteRule
from meshproof.profile import Profile

V2 = "order-service-v2-0"
CALLER = "api-gateway"
ROUTE_TIMEOUT = 2.0  # s: bounds a call to a blackholed endpoint (its connect timeout is Istio's 10 s)
DELAY = 1.0  # s: the delay faults' (shorter than the route timeout; a call within it after the undo shows it gone)
# Envoy arms its fault-delay timer from libevent's cached loop time, taken before the request's
# headers were read, so the held request can come back up to one loop iteration early (298.9 ms of 300 in CI).
ENVOY_TIMER_SLACK = 0.02  # s
PINNED = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, timeout=ROUTE_TIMEOUT, retries=Retry(0)),))


@pytest.fixture(scope="module")
def local_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runs.STATE_VARIABLE, str(state))
        mesh = LocalMesh(Profile())
        try:
            mesh.up(scenario.WORKLOADS, scenario.BASELINE)
            yield mesh
        finally:
            mesh.down()
        assert runs.processes_of(Path(state)) == []


@pytest.fixture
def mesh(local_mesh: LocalMesh) -> LocalMesh:
    local_mesh.reset()
    local_mesh.apply([*scenario.BASELINE, PINNED])
    return local_mesh


def _call(mesh: LocalMesh) -> Response:
    return mesh.call(CALLER, Request(scenario.ORDER_SERVICE, "/api/v1/orders/1"))


def _inbound_port(mesh: LocalMesh) -> int:
    return mesh.topology.instance(V2).inbound_port


def _healthy(mesh: LocalMesh) -> None:
    response = _call(mesh)
    assert response.status == 200 and response.served_by == V2, response.describe()


def test_a_crashed_app_is_refused_by_its_proxy_and_restarted_on_undo(mesh: LocalMesh) -> None:
    pid = mesh.apps[V2].child.popen.pid
    injected = mesh.inject(AppCrash(), V2)
    assert mesh.apps[V2].child.exited() is not None
    response = _call(mesh)
    assert response.status == 503 and response.served_by is None, response.describe()
    assert mesh.sidecars[V2].ready(), "the proxy must stay up"
    injected.undo()
    _healthy(mesh)
    assert mesh.apps[V2].child.popen.pid != pid


def test_a_crashed_app_comes_back_with_the_app_fault_it_had(mesh: LocalMesh) -> None:
    error = mesh.inject(AppError(500), V2)
    mesh.inject(AppCrash(), V2).undo()
    assert _call(mesh).status == 500
    error.undo()
    _healthy(mesh)


def test_a_frozen_app_answers_only_once_it_is_continued(mesh: LocalMesh) -> None:
    seconds = 0.4
    mesh.inject(AppFreeze(seconds), V2)
    response = _call(mesh)  # sent at once, held until the timer continues the app
    assert response.status == 200 and response.elapsed >= seconds * 0.9, response.describe()
    assert not mesh.app_faults.freezes[V2].stopped
    _healthy(mesh)


def test_undo_continues_a_frozen_app_before_its_time(mesh: LocalMesh) -> None:
    injected = mesh.inject(AppFreeze(60.0), V2)
    assert mesh.app_faults.freezes[V2].stopped
    injected.undo()
    assert V2 not in mesh.app_faults.freezes
    response = _call(mesh)
    assert response.status == 200 and response.elapsed < 10, response.describe()


def test_a_delayed_app_answers_every_request_late_until_undone(mesh: LocalMesh) -> None:
    injected = mesh.inject(AppDelay(DELAY), V2)
    assert all(response.status == 200 and response.elapsed >= DELAY for response in (_call(mesh), _call(mesh)))
    injected.undo()
    assert _call(mesh).elapsed < DELAY


def test_an_http_abort_at_the_callers_proxy_answers_with_its_status_and_goes_with_undo(mesh: LocalMesh) -> None:
    caller = mesh.instances(CALLER)[0]
    injected = mesh.inject(HttpFault(scenario.ORDER_SERVICE, abort_percent=100, abort_status=418), caller)
    response = _call(mesh)
    assert response.status == 418 and response.served_by is None, response.describe()
    assert mesh.call(CALLER, Request(scenario.PAYMENT_SERVICE, "/")).status == 200, "only order-service is faulted"
    injected.undo()
    _healthy(mesh)


def test_an_http_delay_at_the_callers_proxy_holds_the_request_and_goes_with_undo(mesh: LocalMesh) -> None:
    caller = mesh.instances(CALLER)[0]
    injected = mesh.inject(HttpFault(scenario.ORDER_SERVICE, delay_percent=100, delay=DELAY), caller)
    response = _call(mesh)
    assert response.status == 200 and response.elapsed >= DELAY - ENVOY_TIMER_SLACK, response.describe()
    injected.undo()
    assert _call(mesh).elapsed < DELAY


def test_a_refused_port_fails_connections_while_proxy_and_app_run(mesh: LocalMesh) -> None:
    injected = mesh.inject(PortRefused(), V2)
    assert connect_outcome(_inbound_port(mesh), 1.0) == "refused"
    response = _call(mesh)
    assert response.status == 503, response.describe()  # connect failure; a timeout would be the route's 504
    assert mesh.sidecars[V2].ready() and mesh.apps[V2].healthy()
    injected.undo()
    assert connect_outcome(_inbound_port(mesh), 1.0) == "accepted"
    _healthy(mesh)


def test_a_blackholed_port_lets_connections_time_out_until_undone(mesh: LocalMesh) -> None:
    injected = mesh.inject(PortBlackholed(), V2)
    assert connect_outcome(_inbound_port(mesh), 0.3) == "timeout"
    response = _call(mesh)
    assert response.status == 504 and response.elapsed >= ROUTE_TIMEOUT * 0.9, response.describe()
    injected.undo()
    assert connect_outcome(_inbound_port(mesh), 1.0) == "accepted"
    _healthy(mesh)


def test_a_crashed_proxy_comes_back_with_its_port_still_refused(mesh: LocalMesh) -> None:
    refused = mesh.inject(PortRefused(), V2)
    mesh.inject(ProxyCrash(), V2).undo()
    assert connect_outcome(_inbound_port(mesh), 1.0) == "refused"
    refused.undo()
    _healthy(mesh)


def test_a_policy_applied_while_a_port_is_refused_is_served_when_it_reopens(mesh: LocalMesh) -> None:
    refused = mesh.inject(PortRefused(), V2)
    mesh.apply([*scenario.BASELINE, PINNED, scenario.seed_authorization_policy()])  # an inbound route change
    refused.undo()
    assert mesh.call(scenario.GUEST, Request(scenario.ORDER_SERVICE, "/api/v1/orders/1")).status == 403
    _healthy(mesh)


def test_reset_undoes_every_fault_in_force(mesh: LocalMesh) -> None:
    caller = mesh.instances(CALLER)[0]
    mesh.inject(AppFreeze(60.0), V2)
    mesh.inject(PortBlackholed(), mesh.instances(scenario.ORDER_SERVICE, version="v1")[0])
    mesh.inject(HttpFault(scenario.ORDER_SERVICE, abort_percent=100), caller)
    mesh.reset()
    assert mesh.app_faults is not None
    assert not (mesh.app_faults.freezes or mesh.blackholes or mesh.inbound_closed or any(mesh.http_faults.values()))
    mesh.apply([*scenario.BASELINE, PINNED])
    _healthy(mesh)


@pytest.mark.parametrize(("first", "second"), [
    (AppError(503), AppDelay(0.1)),
    (AppCrash(), AppFreeze(1.0)),
    (PortRefused(), PortBlackholed()),
], ids=["two-app-faults", "crash-then-freeze", "two-port-faults"])
def test_a_second_fault_on_the_same_mechanism_is_refused_in_one_line(mesh: LocalMesh, first: object,
                                                                     second: object) -> None:
    mesh.inject(first, V2)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="undo"):
        mesh.inject(second, V2)  # type: ignore[arg-type]


def test_an_undo_twice_does_nothing_the_second_time(mesh: LocalMesh) -> None:
    injected = mesh.inject(AppCrash(), V2)
    injected.undo()
    pid = mesh.apps[V2].child.popen.pid
    injected.undo()
    assert mesh.apps[V2].child.popen.pid == pid
    _healthy(mesh)


# --- the same faults through the Chaos Toolkit actions, bound to this mesh -------------------------------

ACTION_ARGUMENTS = {
    "kill_app": {"instance": V2},
    "freeze_app": {"instance": V2, "seconds": 30.0},
    "crash_proxy": {"instance": V2},
    "inject_http_fault": {"caller": CALLER, "service": scenario.ORDER_SERVICE, "abort_percent": 100.0},
    "refuse_connections": {"instance": V2},
    "blackhole_connections": {"instance": V2},
    "slow_version": {"service": scenario.ORDER_SERVICE, "version": "v2", "delay_s": DELAY},
}


@pytest.mark.parametrize("fault", sorted(actions.UNDO))
def test_each_chaos_action_is_undone_by_its_undo_and_a_second_undo_finds_nothing(mesh: LocalMesh, fault: str) -> None:
    arguments = ACTION_ARGUMENTS[fault]
    with bound(mesh, Profile()):
        injected = getattr(actions, fault)(**arguments)
        disturbed = _call(mesh)
        assert disturbed.status != 200 or disturbed.elapsed >= DELAY - ENVOY_TIMER_SLACK, f"{fault} did not disturb v2"
        undo = getattr(actions, actions.UNDO[fault])
        assert undo(**arguments)["undone"] == injected["instances"]
        assert undo(**arguments)["undone"] == []
    json.dumps(injected)  # what the journal keeps
    _healthy(mesh)


def test_apply_intents_and_restore_baseline_set_and_remove_the_resilience_intents(mesh: LocalMesh) -> None:
    with bound(mesh, Profile()):
        applied = actions.apply_intents(v1=90, v2=10, resilience="true")  # as `chaos run --var` passes it
        assert {intent["type"] for intent in applied["intents"]} == {"Route", "OutlierPolicy"}
        assert actions.apply_intents(v1=100, resilience=False)["intents"][0]["fields"]["rules"][0]["fields"][
            "retries"] is None
        with pytest.raises(ActivityFailed, match="resilience must be true or false"):
            actions.apply_intents(resilience="maybe")
        actions.restore_baseline()
    assert mesh.intents == scenario.BASELINE


def test_an_activity_without_a_mesh_fails_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(runs.STATE_VARIABLE, str(tmp_path))
    with pytest.raises(ActivityFailed, match=r"^no mesh is up: start one with meshproof up$"):
        actions.kill_app()
