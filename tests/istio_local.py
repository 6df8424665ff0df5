"""What tests of the local Istio mesh share: the prerequisite check (root for its network namespace, and
Go or the built programs), so that a machine without them says why instead of failing."""

from __future__ import annotations

import shutil

import pytest

from meshproof import builds
from meshproof.backends.istio.local import releases
from meshproof.backends.istio.local.netns import can_create


def require_local_istio(release: str = releases.DEFAULT) -> None:
    able, why = can_create()
    if not able:
        pytest.skip(f"the local Istio mesh cannot run here: it {why}")
    chosen = releases.release(release)
    programs = [chosen.component(p) for p in releases.PROGRAMS]
    programs += [builds.component(name) for name in ("etcd", "kube-apiserver")]
    if shutil.which("go") is None and not all(builds.built(item) for item in programs):
        names = ", ".join(item.name for item in programs)
        pytest.skip(f"the local Istio mesh needs Go to build {names}: {builds.GO_HOW_TO_GET}")
