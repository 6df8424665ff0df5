"""Registers meshproof's pytest plugin for this checkout: suites/ (checks of a mesh) and tests/ (of meshproof),
and the fixtures of a real Kubernetes API server (fixtures/kube.py)."""

pytest_plugins = ["fixtures.plugin", "fixtures.kube"]
