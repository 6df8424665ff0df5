"""What `meshproof run` shows while it works: a live line on a terminal, little in a CI log.

On a terminal: one line rewritten in place, "[12/40] retries.retries_per_try_timeout  sampled ...".
Elsewhere (CI logs): one line as each capability starts, so a log shows the run is alive without
drowning the summary. Collection errors are printed in full in both cases: they mean the run checked
nothing.
"""

from __future__ import annotations

from typing import Any, TextIO

import pytest


class Progress:
    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.total = 0
        self.done = 0
        self._capability = ""
        self._current = ""

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text[:200])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, check_id: str, text: str) -> None:
        capability = check_id.split(".", 1)[0]
        if capability != self._capability:
            self._capability = capability
            if not self.tty:
                self._line(f"meshproof: checking {capability}")
        self._current = check_id
        if self.tty:
            self._line(f"[{self.done + 1}/{self.total}] {check_id}  {text}")

    def clear(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    # --- pytest hooks ---------------------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.clear()
            self.stream.write(f"meshproof: cannot collect {report.nodeid}:\n{report.longreprtext}\n")

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.done += 1
