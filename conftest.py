"""The checkout's tests (tests/) and checks (suites/) get meshproof's pytest plugin from its `pytest11`
entry point, as a user's project does: install the checkout first (pip install -e '.[dev]'). The
fixtures of a real Kubernetes API server (fixtures/kube.py) are registered here, for meshproof's tests."""

from importlib.metadata import entry_points

import pytest

if not any(point.value == "meshproof.fixtures.plugin" for point in entry_points(group="pytest11")):
    raise pytest.UsageError("meshproof's pytest plugin is not installed: run pip install -e '.[dev]' in the checkout")

pytest_plugins = ["meshproof.fixtures.kube"]
