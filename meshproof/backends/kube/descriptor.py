"""The descriptor every cluster mesh shares until its cluster lifecycle is wired in: its renderer's
manifests for `meshproof render`, the CLI tools it needs, and a clear refusal to run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from meshproof.backend import Backend
from meshproof.backends.kube.manifests import Renderer, rendered
from meshproof.backends.kube.prerequisites import cluster_tools
from meshproof.descriptor import Descriptor, Options
from meshproof.errors import UserError
from meshproof.profile import Profile


def _not_wired(name: str, tools: Sequence[str], profile: Profile, options: Options) -> Backend:
    missing = [p for p in cluster_tools(tuple(tools)) if not p.present]
    if missing:
        listed = "; ".join(f"{p.name} ({p.detail}): {p.how_to_get}" for p in missing)
        raise UserError(f"--mesh {name} needs {', '.join(p.name for p in missing)}: {listed} "
                        f"(meshproof doctor shows every prerequisite)")
    raise UserError(f"--mesh {name}: the cluster lifecycle (kind, install, deploy) is not wired into this version "
                    f"yet; its renderer works today: meshproof render --mesh {name}")


def cluster_descriptor(name: str, summary: str, render: Renderer, unsupported: Mapping[str, str],
                       tools: Sequence[str]) -> Descriptor:
    return Descriptor(
        name=name,
        summary=summary,
        create=partial(_not_wired, name, tools),
        prerequisites=partial(cluster_tools, tuple(tools)),
        render=partial(rendered, render),
        unsupported=unsupported,
    )
