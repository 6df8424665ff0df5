"""meshproof: conformance and chaos checks for service meshes, judged with numbers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshproof")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+checkout"


def discover(discover_system: bool = True) -> dict[str, object]:
    """Chaos Toolkit's discovery entry point (`chaos discover meshproof`), which chaoslib looks up in the
    distribution's top-level package: the actions and probes of meshproof.chaos. Imported on use, so that
    `import meshproof` does not load Chaos Toolkit."""
    from meshproof.chaos.discovery import discover as discover_activities

    return discover_activities(discover_system)
