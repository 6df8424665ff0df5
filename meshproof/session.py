"""The state of one meshproof pytest session, kept in the pytest config's stash.

It lives in the library, not in the plugin (fixtures/), so that `meshproof run` can hand the session
its progress display and read back a fatal error without importing the plugin package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from meshproof.backend import Backend
from meshproof.checks import ProgressSink
from meshproof.descriptor import Options
from meshproof.profile import Profile
from meshproof.results import CheckRecord, Results


@dataclass
class MeshproofSession:
    mesh_name: str
    profile: Profile
    options: Options
    only: frozenset[str] | None
    out: Path | None
    results: Results
    progress: ProgressSink | None = None
    fatal: str | None = None
    backend: Backend | None = None
    in_flight: dict[str, CheckRecord] = field(default_factory=dict)


SESSION = pytest.StashKey[MeshproofSession]()
