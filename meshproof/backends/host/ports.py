"""Loopback ports for a local mesh, never shared between concurrent runs (`pytest -n auto` included).

Envoy binds its own listeners, so a port cannot be held open for it by this process. Instead each run
takes a *block* of ports by holding an exclusive `flock` on a lock file named after the block; other
meshproof runs skip locked blocks, and the lock dies with the process however it ends. Blocks lie
below the kernel's ephemeral range (32768-60999 on Linux) so outgoing connections do not land on
them, and every port of a block is test-bound before the block is used.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
from pathlib import Path

from meshproof.errors import UserError

BLOCK_SIZE = 64
DEFAULT_RANGE = (20000, 32000)
RANGE_VARIABLE = "MESHPROOF_PORT_RANGE"


def _configured_range() -> tuple[int, int]:
    text = os.environ.get(RANGE_VARIABLE)
    if not text:
        return DEFAULT_RANGE
    try:
        low, high = (int(part) for part in text.split("-"))
    except ValueError:
        raise UserError(f"{RANGE_VARIABLE}={text!r}: expected LOW-HIGH, e.g. 20000-32000") from None
    if not 1024 <= low < high <= 65535 or high - low < BLOCK_SIZE:
        raise UserError(f"{RANGE_VARIABLE}={text!r}: need 1024 <= LOW < HIGH <= 65535, at least {BLOCK_SIZE} ports")
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Envoy binds its listeners
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class PortBlock:
    """BLOCK_SIZE consecutive loopback ports owned by this process until `release()`."""

    def __init__(self, start: int, lock_handle: int) -> None:
        self.start = start
        self._lock_handle = lock_handle
        self._next = start

    @classmethod
    def reserve(cls, lock_dir: Path) -> PortBlock:
        lock_dir.mkdir(parents=True, exist_ok=True)
        low, high = _configured_range()
        starts = list(range(low, high - BLOCK_SIZE + 1, BLOCK_SIZE))
        random.shuffle(starts)  # concurrent runs rarely contend for the same lock
        for start in starts:
            handle = os.open(lock_dir / f"ports-{start}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            if all(_bindable(port) for port in range(start, start + BLOCK_SIZE)):
                return cls(start, handle)
            fcntl.flock(handle, fcntl.LOCK_UN)
            os.close(handle)
        raise UserError(
            f"no free block of {BLOCK_SIZE} loopback ports in {low}-{high}: other processes hold them; "
            f"stop them or set {RANGE_VARIABLE}=LOW-HIGH to a free range"
        )

    def take(self) -> int:
        if self._next >= self.start + BLOCK_SIZE:
            raise UserError(f"the local mesh needs more than {BLOCK_SIZE} ports; use fewer replicas")
        port = self._next
        self._next += 1
        return port

    def release(self) -> None:
        if self._lock_handle >= 0:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            os.close(self._lock_handle)
            self._lock_handle = -1
