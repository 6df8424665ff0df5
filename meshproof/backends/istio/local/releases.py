"""The istiod builds the local Istio mesh can run (`--mesh-version`), and what each needs from its module.

Each release is a wrapper Go module of its own under tools/controlplane/istio/<name>/, not one module
with a version parameter: a go.mod pins exactly one istio.io/istio, and the rest of its go.mod and
go.sum (a few hundred dependencies, resolved from that istio's own go.mod) follow from it. Two
versions are two pinned dependency graphs, each reviewable and buildable offline from the module
cache; a parameter would need `go get` at build time, i.e. an unpinned resolution.

pilot-discovery and pilot-agent are built by meshproof.builds into the shared cache (its table has
`pilot-discovery@<release>` and `pilot-agent@<release>`, with the linker flags Istio's own build sets).

Two files are read from the istio module itself, as an install from that commit would: Envoy's
bootstrap template (tools/packaging/common/envoy_bootstrap.json, which pilot-agent renders) and the
CRDs (manifests/charts/base/files/crd-all.gen.yaml, what Istio's `base` chart installs).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from meshproof import builds
from meshproof.errors import PrerequisiteError, UserError

MODULE = "istio.io/istio"
PROGRAMS = ("pilot-discovery", "pilot-agent")
TEMPLATE = Path("tools/packaging/common/envoy_bootstrap.json")
CRDS = Path("manifests/charts/base/files/crd-all.gen.yaml")


@dataclass(frozen=True)
class Release:
    name: str  # what --mesh-version takes; meshproof.builds has `<program>@<name>` for each program
    summary: str

    def component(self, program: str) -> builds.Component:
        return builds.component(f"{program}@{self.name}")

    @property
    def module_version(self) -> str:
        """The istio.io/istio pseudo-version its wrapper module pins."""
        return self.component(PROGRAMS[0]).version

    @property
    def revision(self) -> str:
        return self.module_version.rsplit("-", 1)[-1]


RELEASES = {release.name: release for release in (
    Release("2026-08", "istio master of 2026-08-27 (1.31 development)"),
    Release("2026-04", "istio master of 2026-04-23 (1.31 development), for upgrade runs"),
)}
DEFAULT = "2026-08"


def release(name: str | None) -> Release:
    chosen = RELEASES.get(name or DEFAULT)
    if chosen is None:
        raise UserError(f"--mesh-version {name!r}: no such istiod build; choose one of {', '.join(RELEASES)}")
    return chosen


def ensure_binaries(chosen: Release, progress: builds.BuildProgress | None = None) -> dict[str, Path]:
    """pilot-discovery and pilot-agent of `chosen`, built unless the cache has them."""
    return {program: builds.ensure_built(chosen.component(program), progress=progress) for program in PROGRAMS}


def source_dir(chosen: Release) -> Path:
    """The istio module's directory in Go's module cache (there once its programs are built)."""
    wrapper = builds.wrapper_dir(chosen.component(PROGRAMS[0]))
    done = subprocess.run([str(builds.find_go()), "-C", str(wrapper), "list", "-m", "-mod=readonly",
                           "-f", "{{.Dir}}", MODULE], capture_output=True, text=True, timeout=120)
    directory = Path(done.stdout.strip())
    if done.returncode != 0 or not (directory / TEMPLATE).is_file():
        raise PrerequisiteError(f"the istio module {chosen.module_version} is not in Go's module cache "
                                f"({done.stderr.strip()[:200] or directory}); build it first: "
                                f"meshproof controlplane build pilot-discovery@{chosen.name}")
    return directory
