"""Durations as the meshes spell them ("300ms", "3s", "1m", "1.5s") and as seconds (float)."""

import re

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h)\s*$")


def parse_duration(text: str | int | float) -> float:
    """Seconds from "250ms", "3s", "1.5m" (a bare number is seconds). Raises ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration like '300ms' or '3s', got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        return float(text)
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"expected a duration like '300ms' or '3s', got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling that Istio, Linkerd and Envoy all accept: whole ms or whole s."""
    millis = round(seconds * 1000)
    if abs(millis - seconds * 1000) > 1e-6:
        raise ValueError(f"durations are rendered in whole milliseconds; {seconds}s is not")
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"


def protobuf_duration(seconds: float) -> str:
    """The protobuf JSON form Envoy reads ("0.300s")."""
    return f"{seconds:.3f}s"
