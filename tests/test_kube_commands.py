"""The kind, docker, istioctl and linkerd command lines meshproof builds, checked as argv against the flags each
tool really parses (tests/data/cli_flags.yaml, recorded from their source and reference: none of these tools
runs here), and the runner that executes tools, checked with real processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshproof.backends.istio import cluster as istio
from meshproof.backends.kube import kind
from meshproof.backends.kube.cluster import Cluster
from meshproof.backends.kube.commands import Command, Runner
from meshproof.backends.linkerd import cluster as linkerd
from meshproof.errors import PrerequisiteError, UserError
from meshproof.processes import Supervisor
from meshproof.profile import ClusterSettings
from meshproof.runs import RunDir, processes_of

FLAGS = yaml.safe_load((Path(__file__).parent / "data" / "cli_flags.yaml").read_text())
SUBCOMMANDS = {"kind": ("create cluster", "delete cluster", "load docker-image"), "istioctl": ("install", "version"),
               "linkerd": ("install", "check", "version"), "docker": ("build",)}


def assert_known_flags(command: Command) -> None:
    """Every flag of `command` is one its tool's subcommand takes."""
    tool, *rest = command.argv
    subcommand = next(s for s in SUBCOMMANDS[tool] if rest[:len(s.split())] == s.split())
    known = set(FLAGS[tool]["global"]) | set(FLAGS[tool][subcommand])
    for part in rest:
        if part.startswith("-"):
            name = part.split("=", 1)[0]
            assert name in known, f"{tool} {subcommand} takes no {name} ({command.line()})"


def fake_cluster(tmp_path: Path, context: str | None = None) -> Cluster:
    return Cluster(api=None, created_by_meshproof=True, kubeconfig=tmp_path / "kubeconfig",  # type: ignore[arg-type]
                   context=context)


def test_every_kubernetes_minor_maps_to_the_digest_pinned_node_image_kind_was_released_with() -> None:
    assert kind.node_image(None) == kind.NODE_IMAGES[kind.DEFAULT_K8S_VERSION]
    for minor, image in kind.NODE_IMAGES.items():
        version = kind.image_version(image)
        assert version.startswith(f"v{minor}.") and "@sha256:" in image and len(image.split("@sha256:")[1]) == 64
        assert kind.node_image(minor) == kind.node_image(version) == kind.node_image(version.lstrip("v")) == image
    # kind v0.33.0's own default (pkg/apis/config/defaults/image.go) is the 1.37 image of the table
    assert kind.NODE_IMAGES["1.37"].endswith("a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5")


@pytest.mark.parametrize("version", ["1.20", "1.35.1", "latest", "v1"])
def test_a_kubernetes_version_kind_has_no_image_for_is_refused_with_the_choices(version: str) -> None:
    with pytest.raises(UserError, match=r"has node images for 1.37 \(v1.37.0\), .*1.34 \(v1.34.11\)"):
        kind.node_image(version)


def test_kind_command_lines_use_their_own_kubeconfig_and_only_flags_kind_knows(tmp_path: Path) -> None:
    create = kind.create("meshproof-abc123", kind.node_image("1.35"), tmp_path / "kind.yaml", tmp_path / "kubeconfig",
                         timeout=600)
    assert create.argv == ("kind", "create", "cluster", "--name", "meshproof-abc123", "--image",
                           kind.NODE_IMAGES["1.35"], "--config", str(tmp_path / "kind.yaml"), "--kubeconfig",
                           str(tmp_path / "kubeconfig"), "--wait", "600s")
    assert create.timeout > 600  # kind's own --wait ends first, with kind's message
    delete = kind.delete("meshproof-abc123", tmp_path / "kubeconfig")
    assert delete.argv == ("kind", "delete", "cluster", "--name", "meshproof-abc123", "--kubeconfig",
                           str(tmp_path / "kubeconfig"))
    load = kind.load_image("meshproof-abc123", "meshproof-echo:0123456789ab")
    assert load.argv == ("kind", "load", "docker-image", "meshproof-echo:0123456789ab", "--name", "meshproof-abc123")
    build = kind.docker_build("meshproof-echo:0123456789ab", tmp_path)
    assert build.argv[-1] == str(tmp_path) and "--file" in build.argv
    for command in (create, delete, kind.delete("x", None), load, build):
        assert_known_flags(command)
    assert kind.config() == {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4",
                             "nodes": [{"role": "control-plane"}]}
    assert kind.new_name() != kind.new_name() and len(kind.new_name()) <= 32


@pytest.mark.parametrize("context", [None, "prod-east"])
def test_istioctl_installs_the_minimal_profile_with_a_short_drain_on_the_chosen_cluster(
        tmp_path: Path, context: str | None) -> None:
    command = istio.install_command(fake_cluster(tmp_path, context), ClusterSettings(install=300))
    argv = list(command.argv)
    assert argv[:3] == ["istioctl", "install", "--skip-confirmation"]
    assert argv[argv.index("--kubeconfig") + 1] == str(tmp_path / "kubeconfig")
    assert ("--context" in argv) is (context is not None)
    values = [argv[i + 1] for i, part in enumerate(argv) if part == "--set"]
    assert values == ["profile=minimal", "meshConfig.defaultConfig.drainDuration=1s",
                      "meshConfig.defaultConfig.holdApplicationUntilProxyStarts=true",
                      "meshConfig.accessLogFile=/dev/stdout"]
    assert argv[argv.index("--readiness-timeout") + 1] == "300s"
    assert_known_flags(command)
    assert_known_flags(istio.version_command())


def test_the_linkerd_install_renders_crds_then_the_control_plane_then_checks_it(tmp_path: Path) -> None:
    crds, control_plane, check = linkerd.install_commands(fake_cluster(tmp_path), ClusterSettings(install=300))
    flags = ("--kubeconfig", str(tmp_path / "kubeconfig"))
    assert crds.argv == ("linkerd", "install", "--crds", *flags)
    assert control_plane.argv == ("linkerd", "install", *flags)
    assert check.argv == ("linkerd", "check", *flags, "--output", "json", "--wait", "300s")
    for command in (crds, control_plane, check, linkerd.version_command()):
        assert_known_flags(command)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    run = RunDir.create("commands-test")
    try:
        yield Runner(Supervisor(run), tmp_path / "logs")
    finally:
        run.remove()


def _python(code: str, timeout: float = 30.0) -> Command:
    return Command("python", (sys.executable, "-c", code), "run a test program", timeout)


def test_a_tool_s_stdout_is_returned_and_its_stderr_logged(runner: Runner, tmp_path: Path) -> None:
    out = runner(_python("import sys; print('kind: Cluster'); print('progress...', file=sys.stderr)"))
    assert out == "kind: Cluster\n"
    logs = list((tmp_path / "logs").glob("python-*.log"))
    assert [log.read_text() for log in logs] == ["progress...\n"]


def test_a_failing_tool_is_one_line_with_what_it_said_last(runner: Runner) -> None:
    code = "import sys; print('Creating cluster'); print('ERROR: failed to create cluster: node(s) never Ready'," \
           " file=sys.stderr); print('  ', file=sys.stderr); sys.exit(3)"
    with pytest.raises(UserError, match=r"cannot run a test program: `.*python.*` exited 3: "
                                        r"ERROR: failed to create cluster: node\(s\) never Ready \(its log: "):
        runner(_python(code))


def test_a_tool_that_overruns_is_stopped_and_reported(runner: Runner, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"did not finish within 0.5 s"):
        runner(_python("import time; time.sleep(60)", timeout=0.5))
    assert runner.supervisor.children == {}
    assert processes_of(runner.supervisor.run.path) == []


def test_a_tool_that_is_not_on_path_is_a_prerequisite_error(runner: Runner) -> None:
    with pytest.raises(PrerequisiteError, match=r"cannot create the kind cluster x \(v1.35.8\): "
                                                r"kind-that-does-not-exist is not on PATH"):
        runner(Command("kind", ("kind-that-does-not-exist", "create"), "create the kind cluster x (v1.35.8)", 10))
