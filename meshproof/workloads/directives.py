"""What a request asks the echo app to do, carried in headers so that it crosses any mesh unchanged.

Suites build these with `Echo(...)`; the echo app reads them back with `Echo.from_headers`. A fault
(status, delay, reset) applies to every request unless narrowed: `first=N` applies it to the first N
attempts *counted per key at the serving instance*, `only_instance`/`only_version` to one endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshproof.durations import parse_duration

KEY = "x-echo-key"
STATUS = "x-echo-status"
DELAY = "x-echo-delay"
RESET = "x-echo-reset"
FIRST = "x-echo-first"
ONLY_INSTANCE = "x-echo-only-instance"
ONLY_VERSION = "x-echo-only-version"
BODY_SIZE = "x-echo-body-size"

#: Response headers the echo app sets on everything it answers, so tallies need no body parsing.
SERVED_SERVICE = "x-echo-service"
SERVED_VERSION = "x-echo-version"
SERVED_INSTANCE = "x-echo-instance"
SERVED_ATTEMPT = "x-echo-attempt"


@dataclass(frozen=True)
class Echo:
    key: str = ""
    status: int = 200
    delay: float = 0.0
    reset: bool = False
    first: int | None = None
    only_instance: str | None = None
    only_version: str | None = None
    body_size: int | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.key:
            headers[KEY] = self.key
        if self.status != 200:
            headers[STATUS] = str(self.status)
        if self.delay:
            headers[DELAY] = f"{round(self.delay * 1000)}ms"
        if self.reset:
            headers[RESET] = "1"
        if self.first is not None:
            headers[FIRST] = str(self.first)
        if self.only_instance:
            headers[ONLY_INSTANCE] = self.only_instance
        if self.only_version:
            headers[ONLY_VERSION] = self.only_version
        if self.body_size is not None:
            headers[BODY_SIZE] = str(self.body_size)
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Echo:
        """Read directives; raises ValueError naming the header that is malformed."""
        try:
            return cls(
                key=headers.get(KEY, ""),
                status=int(headers.get(STATUS, "200")),
                delay=parse_duration(headers[DELAY]) if DELAY in headers else 0.0,
                reset=headers.get(RESET, "") in ("1", "true"),
                first=int(headers[FIRST]) if FIRST in headers else None,
                only_instance=headers.get(ONLY_INSTANCE),
                only_version=headers.get(ONLY_VERSION),
                body_size=int(headers[BODY_SIZE]) if BODY_SIZE in headers else None,
            )
        except ValueError as exc:
            raise ValueError(f"bad echo directive: {exc}") from exc

    @property
    def has_fault(self) -> bool:
        return self.status != 200 or self.delay > 0 or self.reset
