"""Bad input is one line on stderr and exit 2, with nothing left running."""

import json
import socket
from pathlib import Path

import pytest

from meshproof import scenario
from meshproof.runs import processes_of
from tests.helpers import one_error_line, run_meshproof


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--mesh", "consul"], "--mesh 'consul': unknown mesh; choose one of local, istio, linkerd"),
        (["--only", "mtls,teleport"], "--only 'mtls,teleport': unknown capability teleport"),
        (["--profile", "no-such-profile"], "profile 'no-such-profile': cannot read"),
        (["--envoy-config-hook", "no_such_module:f"], "cannot import no_such_module: ModuleNotFoundError"),
        (["--envoy-config-hook", "tests.hooks:no_such_function"], "tests.hooks has no function 'no_such_function'"),
        (["--envoy-config-hook", "tests.hooks"], "expected MODULE:FUNCTION"),
        (["--out", "/proc/meshproof"], "--out /proc/meshproof: cannot create it"),
        (["--mesh", "istio", "--cluster", "kind"], "--mesh istio --cluster kind needs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    done = run_meshproof("run", *args, state_dir=tmp_path)
    assert done.returncode == 2, done.stderr
    assert expected in one_error_line(done.stderr)


def test_a_malformed_profile_names_the_key(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("canary:\n  weights: {v1: 80, v2: 10}\n")
    done = run_meshproof("run", "--profile", str(profile), state_dir=tmp_path)
    assert done.returncode == 2
    assert "canary: route weights must add up to 100, got 90" in one_error_line(done.stderr)


def test_a_config_envoy_rejects_is_reported_and_nothing_is_left(tmp_path: Path) -> None:
    done = run_meshproof("run", "--only", "mtls", "--out", str(tmp_path / "out"),
                         "--envoy-config-hook", "tests.hooks:unknown_listener_field", state_dir=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done.stderr)
    assert "rejected its lds config" in line and "bogus_field" in line
    assert processes_of(tmp_path) == []


def test_a_config_envoy_cannot_even_load_fails_the_check_at_once_with_its_reason(tmp_path: Path) -> None:
    """Not the apply timeout (raised to 120 s here, so a timeout could not pass for the report)."""
    profile = tmp_path / "patient.yaml"
    profile.write_text("timeouts:\n  apply: 120s\n")
    out = tmp_path / "out"
    done = run_meshproof("run", "--only", "retries", "--profile", str(profile), "--out", str(out),
                         "--envoy-config-hook", "tests.hooks:out_of_range_integer", "--", "-k", "always_fails",
                         state_dir=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (record,) = json.loads((out / "results.json").read_text())["checks"]
    assert record["status"] == "failed"
    assert "could not load its rds_outbound config" in record["message"], record["message"]
    assert "integer out of range" in record["message"] and "sidecar of " in record["message"]
    assert processes_of(tmp_path) == []


def test_a_hook_that_raises_is_reported_with_its_name(tmp_path: Path) -> None:
    done = run_meshproof("run", "--only", "mtls", "--envoy-config-hook", "tests.hooks:raises", state_dir=tmp_path)
    assert done.returncode == 2
    assert "raises raised RuntimeError: this hook is broken (on the" in one_error_line(done.stderr)
    assert processes_of(tmp_path) == []


def test_no_free_ports_is_reported_with_the_range_to_change(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        holder.listen()
        low = port - 10
        done = run_meshproof("run", "--only", "mtls", state_dir=tmp_path,
                             env={"MESHPROOF_PORT_RANGE": f"{low}-{low + 64}"})
    assert done.returncode == 2
    assert f"no free block of 64 loopback ports in {low}-{low + 64}" in one_error_line(done.stderr)


def test_doctor_reports_envoy_and_what_the_cluster_meshes_miss(tmp_path: Path) -> None:
    done = run_meshproof("doctor", state_dir=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "ok       envoy: 1.40" in done.stdout
    assert "MISSING  linkerd (--cluster kind or existing): not found on PATH" in done.stdout
    assert "ok       network namespace (--cluster local)" in done.stdout  # istio runs here without a cluster
    assert run_meshproof("doctor", "--mesh", "linkerd", state_dir=tmp_path).returncode == 2


def test_render_prints_schema_valid_istio_resources_for_the_seed(tmp_path: Path) -> None:
    done = run_meshproof("render", "--mesh", "istio", "--profile", "seed", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    kinds = [line.split(": ")[1] for line in done.stdout.splitlines() if line.startswith("kind: ")]
    assert kinds == ["PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "VirtualService", "EnvoyFilter"]
    assert "perTryTimeout: 3s" in done.stdout and "consecutive5xxErrors: 5" in done.stdout


def test_render_lists_what_linkerd_cannot_express(tmp_path: Path) -> None:
    done = run_meshproof("render", "--mesh", "linkerd", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "# not rendered: ConnectionPool (connpool): Linkerd has no connection-pool" in done.stdout
    assert "kind: Server" in done.stdout


def test_render_shows_each_local_sidecars_envoy_config(tmp_path: Path) -> None:
    done = run_meshproof("render", "--mesh", "local", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    sidecars = sum(workload.replicas for workload in scenario.WORKLOADS)
    assert done.stdout.count("sidecar: ") == sidecars and "envoy.filters.http.local_ratelimit" in done.stdout
