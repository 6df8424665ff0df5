"""Registers meshproof's pytest plugin for this checkout: suites/ (checks of a mesh) and tests/ (of meshproof)."""

pytest_plugins = ["fixtures.plugin"]
