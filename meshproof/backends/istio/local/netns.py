"""A private network namespace for the calling thread: the local Istio mesh's only network.

Why: pilot-agent's status server binds `*:<port>` and Istio's bootstrap template binds the Envoy
status and Prometheus listeners to the wildcard address, with no switch to change either. On the
host that would expose them beyond loopback and collide with everything else listening there. In a
namespace of its own the run has nothing but a loopback interface: wildcard binds reach only it,
every byte stays inside, and parallel runs (xdist workers) cannot see each other's ports.

How: `unshare(CLONE_NEWNET)` moves only the *calling thread* into a new namespace (network
namespaces are per thread on Linux); threads and processes it starts afterwards inherit it, so the
runner's own HTTP clients and every child (etcd, kube-apiserver, istiod, agents, Envoys, echo apps)
live there. `leave()` returns the thread to the namespace it came from (setns on a descriptor kept
at entry); the namespace itself disappears with the last process in it, so a killed run leaves
nothing behind: its children die with it (parent-death signal) and nothing else holds it.

Needs CAP_SYS_ADMIN (root, as in CI). Enter from the thread that runs the mesh (the main thread) and
before starting any thread that should talk to the mesh.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import threading

from meshproof.errors import PrerequisiteError

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH14x"  # struct ifreq: the name, then ifr_flags in the union


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _current() -> str:
    return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")


def can_create() -> tuple[bool, str]:
    """Whether this process may create network namespaces (for `meshproof doctor`), and why not."""
    if os.geteuid() != 0:
        return False, f"needs root (CAP_SYS_ADMIN) to create a network namespace; running as uid {os.geteuid()}"
    if not os.path.exists(f"/proc/self/task/{threading.get_native_id()}/ns/net"):
        return False, "this kernel exposes no network namespaces (/proc/<pid>/task/<tid>/ns/net missing)"
    return True, "root, network namespaces available"


def _loopback_up() -> None:
    """Bring `lo` up in the current namespace; the kernel then gives it 127.0.0.1/8 (all of 127/8 routes there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


class PrivateNetwork:
    """The calling thread inside a fresh network namespace with only loopback, until `leave()`."""

    def __init__(self) -> None:
        self._home: int | None = None
        self._thread: int | None = None
        self.inode = ""

    @property
    def entered(self) -> bool:
        return self._home is not None

    def enter(self) -> None:
        ok, why = can_create()
        if not ok:
            raise PrerequisiteError(f"the local Istio mesh runs in a private network namespace and {why}; "
                                    "run as root (CI and containers usually are)")
        home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if _libc().unshare(CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            os.close(home)
            raise PrerequisiteError(f"cannot create a network namespace: {os.strerror(error)}; "
                                    "the local Istio mesh needs CAP_SYS_ADMIN")
        self._home, self._thread = home, threading.get_native_id()
        self.inode = _current()
        try:
            _loopback_up()
        except OSError:
            self.leave()
            raise

    def leave(self) -> None:
        """Back to the namespace the thread came from; safe to call twice."""
        if self._home is None:
            return
        if threading.get_native_id() != self._thread:
            raise RuntimeError("PrivateNetwork.leave() must run on the thread that entered it")
        try:
            if _libc().setns(self._home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns back to the host network: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(self._home)
            self._home = None
