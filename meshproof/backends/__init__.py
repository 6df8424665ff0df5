"""Mesh backends by name. Each lives in its own package and never imports another (import-linter);
they are imported lazily so that choosing `local` never loads the Kubernetes client."""

from __future__ import annotations

from pathlib import Path

from meshproof.backend import Backend
from meshproof.backends.local.hook import ConfigHook
from meshproof.errors import UserError
from meshproof.profile import Profile

MESHES = ("local", "istio", "linkerd")


def check_mesh_name(name: str) -> None:
    if name not in MESHES:
        raise UserError(f"--mesh {name!r}: unknown mesh; choose one of {', '.join(MESHES)}")


def create_backend(name: str, profile: Profile, *, hook: ConfigHook | None = None,
                   artifacts_dir: Path | None = None) -> Backend:
    check_mesh_name(name)
    if hook is not None and name != "local":
        raise UserError("--envoy-config-hook works only with --mesh local (it edits the local mesh's Envoy config)")
    if name == "local":
        from meshproof.backends.local.mesh import LocalMesh

        return LocalMesh(profile, hook=hook, artifacts_dir=artifacts_dir)
    from meshproof.backends.kube.prerequisites import require_cluster_tools

    require_cluster_tools(name)
    raise UserError(
        f"--mesh {name}: the cluster lifecycle (kind, install, deploy) is not wired into this version yet; "
        f"its renderers work today: meshproof render --mesh {name}"
    )
