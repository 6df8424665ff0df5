"""Host-level disruptions of one process or port, the mechanics under the local mesh's faults.

- `Freeze`: SIGSTOP a process now and SIGCONT it after a duration (a timer thread sends the signal), or
  earlier on `thaw()`; the kernel keeps accepting connections into its listen backlog meanwhile.
- `Blackhole`: hold a loopback port with a socket that listens with a backlog of 0 and never accepts,
  its accept queue filled by a connection of its own, so the kernel drops every further SYN (Linux
  drops a SYN when the listener's accept queue is full) and clients time out connecting, where a
  closed port would refuse them at once. Nothing beyond 127.0.0.1 and no firewall rule is involved.

`connect_outcome` tells which of the three a port does now (accepted, refused, timeout). All of it only
signals, binds or connects: nothing here starts a process (see meshproof.processes for why that matters).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading

from meshproof.errors import UserError

_QUEUE_FILLERS = 2  # a backlog of 0 admits one connection; the second one's SYN is already dropped


class Freeze:
    """A stopped process that continues by itself after `seconds`, or when thawed."""

    def __init__(self, pid: int, seconds: float) -> None:
        self.pid = pid
        self._lock = threading.Lock()
        self._stopped = True
        os.kill(pid, signal.SIGSTOP)
        self._timer = threading.Timer(seconds, self.thaw)
        self._timer.daemon = True
        self._timer.start()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def thaw(self) -> None:
        """SIGCONT once (later calls and the timer after it do nothing); a process gone meanwhile is fine."""
        self._timer.cancel()
        with self._lock:
            if not self._stopped:
                return
            self._stopped = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)


class Blackhole:
    """A port on 127.0.0.1 where connection attempts go unanswered until `close()`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._fillers: list[socket.socket] = []
        try:
            self._listener.bind(("127.0.0.1", port))
        except OSError as exc:
            self._listener.close()
            raise UserError(f"cannot blackhole port {port}: it is still in use ({exc.strerror})") from None
        self._listener.listen(0)
        for _ in range(_QUEUE_FILLERS):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            code = filler.connect_ex(("127.0.0.1", port))
            if code not in (0, errno.EINPROGRESS):
                filler.close()
                self.close()
                raise UserError(f"cannot fill the accept queue of blackholed port {port}: {os.strerror(code)}")
            self._fillers.append(filler)

    def close(self) -> None:
        """Free the port: the listener goes, and with it every connection waiting in its queue."""
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
        self._listener.close()


def connect_outcome(port: int, timeout: float) -> str:
    """How a TCP connection to 127.0.0.1:`port` ends: "accepted", "refused", or "timeout" (no answer to the SYN)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        return "accepted"
