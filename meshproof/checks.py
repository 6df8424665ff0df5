"""What a check records while it runs: measurements, the criterion, evidence, and its verdict.

Suites receive a `Check` through the `check` fixture. `expect()` fails the check with a message that
names the property that broke ("strict mTLS: a plaintext client got HTTP 200 ..."), which is what a
mutation test asserts on; plain `assert` works too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshproof.results import CheckRecord

ProgressSink = Callable[[str, str], None]  # (check id, text)
LoadSink = Callable[[dict[str, Any]], None]  # receives one entry of results.json's "load" (or "chaos") list


class CheckFailed(AssertionError):
    """A property of the mesh does not hold; the message says which, with the numbers."""


class CheckInvalid(CheckFailed):
    """The check could not judge the mesh here (the machine too noisy, the path not exercised): never a pass,
    and the message says so, starting with "invalid:" or "inconclusive:"."""


class Check:
    def __init__(self, record: CheckRecord, progress: ProgressSink | None = None,
                 load_sink: LoadSink | None = None, chaos_sink: LoadSink | None = None) -> None:
        self.record = record
        self._progress = progress
        self._load_sink = load_sink
        self._chaos_sink = chaos_sink

    @property
    def id(self) -> str:
        return self.record.id

    def criterion(self, text: str) -> None:
        """How the verdict is reached, with its tolerance and where the tolerance comes from."""
        self.record.criterion = text

    def measure(self, name: str, value: Any, unit: str | None = None, **extra: Any) -> Any:
        """Record a measured value (with its unit and any uncertainty, e.g. ci=[lo, hi]); returns it."""
        entry: dict[str, Any] = {"value": value}
        if unit:
            entry["unit"] = unit
        entry.update(extra)
        self.record.measured[name] = entry
        return value

    def evidence(self, item: Any) -> None:
        """Requests sent and responses seen, proxy statistics, configs: whatever proves the verdict."""
        self.record.evidence.append(item)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise CheckFailed(message)

    def record_load(self, entry: dict[str, Any]) -> None:
        """One load measurement for results.json's `load` list (see meshproof.load for its shape)."""
        if self._load_sink is not None:
            self._load_sink({"check": self.record.id, **entry})

    def record_chaos(self, entry: dict[str, Any]) -> None:
        """One chaos experiment's measurement for results.json's `chaos` list (see meshproof.chaos.analysis)."""
        if self._chaos_sink is not None:
            self._chaos_sink({"check": self.record.id, **entry})

    def progress(self, text: str) -> None:
        """How far a long phase is ("sampled 4000/12000"); shown on a terminal, silent in CI."""
        if self._progress is not None:
            self._progress(self.record.id, text)
