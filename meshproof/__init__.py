"""meshproof: conformance and chaos checks for service meshes, judged with numbers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshproof")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+checkout"
