"""The control-plane builder: the table agrees with the pinned wrapper modules, builds are serialised
across processes and reused, stale binaries are rebuilt, and a missing toolchain or a failed build is one
line and exit 2 with nothing left running."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshproof import builds
from meshproof.builds import COMPONENTS, Component
from meshproof.errors import UserError
from meshproof.runs import processes_of
from tests.helpers import one_error_line, run_meshproof

HELLO_SOURCE = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from a pinned module") }\n'


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_each_component_is_pinned_by_its_wrapper_module_at_the_tables_version(name: str) -> None:
    item = COMPONENTS[name]
    go_mod = (builds.wrapper_dir(item) / "go.mod").read_text()
    assert builds._pinned_version(item, go_mod) == item.version
    # a `tool` directive, alone or in a block, keeps the command's whole import graph in go.sum
    assert re.search(rf"\ntool {re.escape(item.package)}\n|\ntool \(\n(\t.*\n)*?\t{re.escape(item.package)}\n", go_mod)
    assert (builds.wrapper_dir(item) / "go.sum").stat().st_size > 0
    assert builds.binary_path(item).parts[-2:] == (f"{name}-{item.version}", item.binary)


def test_a_table_version_the_wrapper_does_not_pin_is_refused() -> None:
    drifted = dataclasses.replace(COMPONENTS["etcd"], version="v3.9.9")
    with pytest.raises(UserError, match=r"pins go.etcd.io/etcd/server/v3 at v3.7.3, but .* says v3.9.9"):
        builds._check_pinned(drifted)


def test_kubernetes_gets_its_version_through_the_linker() -> None:
    flags = COMPONENTS["kube-apiserver"].ldflags
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "-X k8s.io/component-base/version.gitMinor=37" in flags


@pytest.fixture
def hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Component:
    """A wrapper module pinning a tiny local module, built into a cache of the test's own."""
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain is needed to build the control plane: " + builds.GO_HOW_TO_GET, pytrace=False)
    source = tmp_path / "modules" / "hello-src"
    source.mkdir(parents=True)
    (source / "go.mod").write_text("module example.com/hello\n\ngo 1.24\n")
    (source / "main.go").write_text(HELLO_SOURCE)
    wrapper = tmp_path / "modules" / "hello"
    wrapper.mkdir()
    (wrapper / "go.mod").write_text("module meshproof.local/controlplane/hello\n\ngo 1.24\n\n"
                                    "require example.com/hello v1.0.0\n\ntool example.com/hello\n\n"
                                    "replace example.com/hello => ../hello-src\n")
    (wrapper / "go.sum").write_text("")
    for variable, value in ((builds.MODULES_VARIABLE, tmp_path / "modules"),
                            (builds.CACHE_VARIABLE, tmp_path / "cache"), ("MESHPROOF_STATE_DIR", tmp_path / "state")):
        monkeypatch.setenv(variable, str(value))
    return Component("hello", "hello", "example.com/hello", "v1.0.0", ("-X main.unused=1",), "hello", "a second")


def _ensure_built_in_a_subprocess(item: Component, stderr: Path) -> subprocess.Popen[str]:
    code = (f"import sys\nfrom meshproof.builds import BuildProgress, Component, ensure_built\n"
            f"print(ensure_built(Component(*{dataclasses.astuple(item)!r}), "
            f"progress=BuildProgress(sys.stderr, tty=False)))\n")
    with stderr.open("w") as errors:
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=errors, text=True)


def test_a_second_builder_waits_for_the_first_and_reuses_its_binary(hello: Component, tmp_path: Path) -> None:
    said = tmp_path / "waiter.err"
    with builds._build_lock(hello, builds.BuildProgress(tty=False)):
        waiter = _ensure_built_in_a_subprocess(hello, said)
        deadline = time.monotonic() + 60
        while "waiting" not in said.read_text() and waiter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hello v1.0.0: another process is building it; waiting" in said.read_text()
        assert not builds.binary_path(hello).exists()  # it waits; it does not build beside us
        builds._build(hello, builds.find_go(), builds.BuildProgress(tty=False))
    out, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, said.read_text()
    assert out.strip() == str(builds.binary_path(hello))
    assert "meshproof: building" not in said.read_text()  # it reused what we built
    done = subprocess.run([str(builds.binary_path(hello))], capture_output=True, text=True, check=True)
    assert done.stdout == "hello from a pinned module\n"
    stamp = builds.built(hello)
    assert stamp is not None and stamp["component"] == "hello"


def test_a_binary_built_from_other_inputs_is_stale_and_rebuilt(hello: Component) -> None:
    first = builds.ensure_built(hello, progress=builds.BuildProgress(tty=False))
    built_at = first.stat().st_mtime_ns
    assert builds.ensure_built(hello, progress=builds.BuildProgress(tty=False)).stat().st_mtime_ns == built_at
    changed = dataclasses.replace(hello, ldflags=("-X main.unused=2",))
    assert builds.built(changed) is None
    assert builds.ensure_built(changed, progress=builds.BuildProgress(tty=False)).stat().st_mtime_ns != built_at
    assert list(first.parent.glob(".*.tmp")) == []


def test_a_missing_go_toolchain_is_one_line_and_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    done = run_meshproof("controlplane", "build", state_dir=tmp_path / "state",
                         env={"PATH": str(empty), builds.CACHE_VARIABLE: str(tmp_path / "cache")})
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert "the Go toolchain (`go`) is not on PATH" in line and "https://go.dev/dl/" in line


def test_a_failed_build_is_one_line_and_exit_2_and_leaves_nothing(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    shutil.copytree(builds.wrapper_dir(COMPONENTS["etcd"]), modules / "etcd")
    (modules / "etcd" / "go.sum").write_text("")  # a wrapper out of tidy: go must refuse it, offline
    cache = tmp_path / "cache"
    done = run_meshproof("controlplane", "build", "etcd", state_dir=tmp_path / "state",
                         env={builds.MODULES_VARIABLE: str(modules), builds.CACHE_VARIABLE: str(cache)})
    assert done.returncode == 2, done.stderr
    line = one_error_line(done.stderr)
    assert "building etcd v3.7.3 failed (go build exit 1): " in line and "missing go.sum entry" in line
    assert f"full log: {cache / 'logs' / 'etcd-v3.7.3.log'}" in line
    assert processes_of(tmp_path / "state") == []
    assert list((tmp_path / "state").glob("run-*")) == []
    assert [path.name for path in (cache / "bin" / "etcd-v3.7.3").iterdir()] == []


def test_doctor_says_which_binaries_are_built_and_how_to_get_the_others(tmp_path: Path) -> None:
    done = run_meshproof("doctor", state_dir=tmp_path, env={builds.CACHE_VARIABLE: str(tmp_path / "cache")})
    assert "controlplane (programs built from pinned Go modules" in done.stdout
    assert "MISSING  kube-apiserver v1.37.2: not built" in done.stdout
    assert "get it: meshproof controlplane build etcd" in done.stdout
    if shutil.which("go", path=os.environ.get("PATH")):
        assert "ok       go go1." in done.stdout
