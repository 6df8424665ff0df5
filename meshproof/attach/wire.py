"""The values of the backend contract as JSON, and back: what crosses from an attached process to the
process that owns a running mesh.

Only the types listed in `_TYPES` cross (intents, faults, requests and what backends return), each
rebuilt through its own constructor, so an intent arriving over the wire validates itself as one built
in a suite does. Dataclasses travel as `{"type": NAME, "fields": {...}}`, enums as their value, tuples
as lists; the field annotations say what to rebuild.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

from meshproof import backend, faults, intent

_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        intent.MtlsPolicy, intent.AuthzPolicy, intent.Rule, intent.Route, intent.RouteRule, intent.Retry,
        intent.HeaderMatch, intent.OutlierPolicy, intent.ConnectionPool, intent.LoadBalancer, intent.RateLimit,
        intent.Identity, *faults.ALL,
        backend.Request, backend.Response, backend.Tally, backend.TraceRow, backend.RawOutcome,
        backend.ObservedIdentity, backend.LoadSetup, backend.LoadTarget, backend.RequestCounts,
    )
}


def encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise TypeError(f"{name} does not cross the wire (meshproof.attach.wire)")
        return {"type": name, "fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                                         if f.init}}
    if isinstance(value, bytes):
        return {"type": "bytes", "hex": value.hex()}
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    return value


def decode(data: Any, annotation: Any = Any) -> Any:
    """Rebuild a value encoded by `encode`; `annotation` (a field's type) turns lists back into tuples."""
    if isinstance(data, dict) and data.get("type") == "bytes" and set(data) == {"type", "hex"}:
        return bytes.fromhex(data["hex"])
    if isinstance(data, dict) and set(data) == {"type", "fields"} and data["type"] in _TYPES:
        cls = _TYPES[data["type"]]
        hints = typing.get_type_hints(cls)
        return cls(**{name: decode(value, hints.get(name, Any)) for name, value in data["fields"].items()})
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(annotation) if option is not type(None)]
        return data if data is None else decode(data, options[0] if len(options) == 1 else Any)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation(data)
    if isinstance(data, list):
        item_type = (typing.get_args(annotation) or (Any,))[0]
        items = [decode(item, item_type) for item in data]
        return tuple(items) if origin is tuple else items
    if isinstance(data, dict):
        value_type = (typing.get_args(annotation) or (Any, Any))[-1]
        return {key: decode(item, value_type) for key, item in data.items()}
    return data
