"""User functions named on the command line as `MODULE:FUNCTION` (the hook options): one loader for all.

`MODULE` is a dotted module on PYTHONPATH (the current directory included, as `python -m` would have it)
or a path to a .py file. Anything that goes wrong is a UserError naming the option and the spec.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meshproof.errors import UserError


def load_function(spec: str, *, option: str, example: str) -> Callable[..., Any]:
    """Import `module:function` for `option`; `example` shows the expected form in the error."""
    module_name, sep, function_name = spec.rpartition(":")
    if not sep or not module_name or not function_name:
        raise UserError(f"{option} {spec!r}: expected MODULE:FUNCTION, e.g. {example}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"{option} {spec!r}: no file {path}")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as `python -m` would: hooks beside the user's files
            module = importlib.import_module(module_name)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"{option} {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc} "
            "(is it on PYTHONPATH, or give a path to a .py file)"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserError(f"{option} {spec!r}: {module_name} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]
