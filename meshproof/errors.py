"""Errors that end a run with one line for the user instead of a traceback.

Everything the user can fix (bad options, a malformed profile, a hook that does not import, a missing
binary, an Envoy that rejects its config) is raised as a `UserError`; the CLI and the pytest plugin
print `str(error)` and exit 2. Anything else is a bug in meshproof and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or environment: what is wrong, where, and how to fix it, in one line."""

    exit_code = 2


class PrerequisiteError(UserError):
    """A tool or binary a mesh needs is missing; the message says how to get it."""


class ConfigRejected(UserError):
    """A proxy refused the configuration it was given (often through --envoy-config-hook)."""
