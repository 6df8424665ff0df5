"""`meshproof run` for Istio and Linkerd on a machine without Docker (this one): one line naming what is
missing and how to get it, exit 2, nothing left behind; bad cluster options are one line each; `meshproof
doctor` lists every prerequisite of every cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from meshproof.backends.kube.prerequisites import tool_status
from meshproof.runs import processes_of
from tests.helpers import one_error_line, run_meshproof

NO_DOCKER = not tool_status("docker")[0]


def _assert_nothing_left(state: Path) -> None:
    assert processes_of(state) == [] and list(state.glob("run-*")) == []


@pytest.mark.skipif(not NO_DOCKER, reason="a Docker engine answers here: kind's prerequisites are met")
@pytest.mark.parametrize(("mesh", "cli"), [("istio", "istioctl"), ("linkerd", "linkerd")])
def test_a_run_on_kind_without_docker_is_one_line_naming_each_missing_tool_and_how_to_get_it(
        tmp_path: Path, mesh: str, cli: str) -> None:
    done = run_meshproof("run", "--mesh", mesh, "--cluster", "kind", state_dir=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith(f"meshproof: error: --mesh {mesh} --cluster kind needs docker (")
    assert "get it: install Docker Engine and start it" in line
    assert "kind (not found on PATH; get it: go install sigs.k8s.io/kind@v0.33.0" in line
    assert f"{cli} (not found on PATH; get it: " in line
    assert line.endswith("(meshproof doctor lists every prerequisite)")
    _assert_nothing_left(tmp_path)


@pytest.mark.parametrize(("args", "expected"), [
    (["--mesh", "istio", "--cluster", "mars"], "--cluster 'mars': choose one of local, kind, existing"),
    (["--mesh", "linkerd", "--cluster", "local"], "--cluster local: --mesh linkerd runs on kind or existing"),
    (["--mesh", "istio", "--cluster", "kind", "--kube-context", "prod"],
     "--kube-context: an option of --cluster existing, not --cluster kind"),
    (["--mesh", "istio", "--cluster", "existing", "--keep-cluster"],
     "--keep-cluster: an option of --cluster kind, not --cluster existing"),
    (["--mesh", "linkerd", "--k8s-version", "1.29"], "--k8s-version '1.29': kind v0.33.0 has node images for 1.37"),
    (["--mesh", "local", "--echo-image", "registry.example/echo:1"],
     "--echo-image: not an option of --mesh local (it works with --mesh istio, linkerd)"),
])
def test_a_cluster_option_that_does_not_fit_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    done = run_meshproof("run", *args, state_dir=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in one_error_line(done.stderr)
    _assert_nothing_left(tmp_path)


def test_an_existing_cluster_must_be_named_by_a_context_of_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                          "contexts": [{"name": "ci", "context": {"cluster": "ci", "user": "ci"}}]}))
    env = {"KUBECONFIG": str(kubeconfig)}
    done = run_meshproof("run", "--mesh", "istio", "--cluster", "existing", state_dir=tmp_path, env=env)
    assert done.returncode == 2
    assert f"--cluster existing needs --kube-context NAME, the context of {kubeconfig} to use (it has: ci)" in (
        one_error_line(done.stderr))
    done = run_meshproof("run", "--mesh", "linkerd", "--cluster", "existing", "--kube-context", "prod",
                         state_dir=tmp_path, env=env)
    assert f"--kube-context prod: no such context in {kubeconfig} (it has: ci)" in one_error_line(done.stderr)
    _assert_nothing_left(tmp_path)


def test_doctor_lists_what_each_cluster_mesh_needs_on_each_cluster_and_how_to_get_it(tmp_path: Path) -> None:
    done = run_meshproof("doctor", "--mesh", "istio", state_dir=tmp_path, env={"KUBECONFIG": str(tmp_path / "none")})
    lines = done.stdout.splitlines()
    assert lines[0].startswith("istio: real istiod and Envoy: on this host against a local API server")
    named = [line.split(":")[0].split(None, 1)[1] for line in lines[1:] if line.startswith(("  ok", "  MISSING"))]
    assert [name for name in named if "--cluster local" not in name][:4] == [
        "docker (--cluster kind)", "kind (--cluster kind)", "kube context (--cluster existing)",
        "istioctl (--cluster kind or existing)"]
    assert f"MISSING  kube context (--cluster existing): no context in {tmp_path / 'none'}" in done.stdout
    gets = [line.strip() for line in lines if line.strip().startswith("get it:")]
    assert any("ISTIO_VERSION=1.30.3" in line for line in gets) and any("kind@v0.33.0" in line for line in gets)
    # ready on a cluster where everything is present: here --cluster local, when it can run (root, Go or builds)
    local_ready = all(line.startswith("  ok") for line in lines[1:] if "(--cluster local):" in line)
    if NO_DOCKER:  # and no kube context: only --cluster local can be ready
        assert done.returncode == (0 if local_ready else 2), done.stdout
    linkerd = run_meshproof("doctor", "--mesh", "linkerd", state_dir=tmp_path)
    assert linkerd.returncode == 2  # no cluster of Linkerd's has everything here
    assert "linkerd (--cluster kind or existing): not found on PATH" in linkerd.stdout
    assert "https://run.linkerd.io/install-edge" in linkerd.stdout


@pytest.mark.skipif(not NO_DOCKER, reason="a Docker engine answers here: kind's prerequisites are met")
def test_meshproof_up_takes_the_cluster_options_and_fails_in_one_line_without_docker(tmp_path: Path) -> None:
    done = run_meshproof("up", "--mesh", "linkerd", "--cluster", "kind", "--k8s-version", "1.36", state_dir=tmp_path)
    assert done.returncode == 2
    assert one_error_line(done.stderr).startswith("meshproof: error: the linkerd mesh did not come up: --mesh "
                                                  "linkerd --cluster kind needs docker (")
    assert processes_of(tmp_path) == [] and list(tmp_path.glob("run-*")) == []
