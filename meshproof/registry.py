"""The backends, by name: the CLI, `doctor`, `render`, the pytest plugin and cleanup ask here, so that
nothing outside backends/ branches on a mesh's name.

A new backend is a package under meshproof/backends/ with a `DESCRIPTOR` (meshproof.descriptor) in its
`__init__.py`, listed once in `_PACKAGES`. Importing a descriptor is cheap: the backend itself is
imported by its `create` only, so choosing `local` never loads the Kubernetes client.
"""

from __future__ import annotations

import importlib

from meshproof.backend import Backend
from meshproof.descriptor import Descriptor, Options
from meshproof.errors import UserError
from meshproof.profile import Profile

_PACKAGES = ("local", "istio", "linkerd")


def _load() -> dict[str, Descriptor]:
    found = {}
    for package in _PACKAGES:
        descriptor: Descriptor = importlib.import_module(f"meshproof.backends.{package}").DESCRIPTOR
        found[descriptor.name] = descriptor
    return found


DESCRIPTORS = _load()
MESHES = tuple(DESCRIPTORS)


def descriptor(name: str) -> Descriptor:
    found = DESCRIPTORS.get(name)
    if found is None:
        raise UserError(f"--mesh {name!r}: unknown mesh; choose one of {', '.join(MESHES)}")
    return found


def check_options(name: str, options: Options) -> Descriptor:
    """The mesh's descriptor, once the options are known to suit it (UserError otherwise)."""
    chosen = descriptor(name)
    refused = sorted(set(options.given()) - chosen.options)
    if refused:
        flags = ", ".join("--" + option.replace("_", "-") for option in refused)
        takers = ", ".join(d.name for d in DESCRIPTORS.values() if refused[0] in d.options) or "no mesh"
        raise UserError(f"{flags}: not an option of --mesh {name} (it works with --mesh {takers})")
    chosen.validate(options)
    return chosen


def create_backend(name: str, profile: Profile, options: Options) -> Backend:
    return check_options(name, options).create(profile, options)
