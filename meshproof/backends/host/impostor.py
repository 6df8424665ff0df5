"""An impostor at a workload instance's address: a TLS server presenting a certificate that is not the
destination's, counting what reaches it, so a check can prove that a caller's proxy verifies who answers.

It runs as threads of the process that owns the mesh (it must answer while the check waits, and it holds
no key worth isolating: the certificate is issued for it alone). It does not request a client certificate;
what matters is what the *client* does with the impostor's certificate: a proxy that verifies it aborts
the handshake and never sends the request. What it saw is `observed()`: connections accepted, handshakes
completed, and HTTP request heads received (each answered 200 with the body `impostor`, so a caller that
did not verify would see an answer, and the check would see that too).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path

from meshproof.backends.host.ca import LocalCA, Svid
from meshproof.faults import ImpostorCertificate
from meshproof.intent import Identity


def impostor_svid(certificate: ImpostorCertificate, target: Identity, ca: LocalCA, svids: Mapping[Identity, Svid],
                  *, file_stem: str) -> Svid:
    """What the impostor of an instance with identity `target` presents: that identity signed by a foreign
    CA, or the mesh's own certificate of another workload identity (one of `svids`)."""
    if certificate is ImpostorCertificate.FOREIGN_CA:
        return ca.foreign().issue(target, file_stem=file_stem)
    return next(svid for identity, svid in svids.items() if identity != target)


class ImpostorServer:
    def __init__(self, port: int, cert: Path, key: Path, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(cert), str(key))
        self._counts = {"connections": 0, "handshakes": 0, "requests": 0}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> ImpostorServer:
        """Listen on host:port (the address callers reach the instance on) and serve in the background."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # so that stop() is seen promptly
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def observed(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._count("connections")
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(2.0)
        try:
            with self._context.wrap_socket(connection, server_side=True) as tls:
                self._count("handshakes")
                received = b""
                while not self._stopping.is_set():
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    received += chunk
                    while b"\r\n\r\n" in received:  # one request head (the callers' requests have no body)
                        _, received = received.split(b"\r\n\r\n", 1)
                        self._count("requests")
                        tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\ncontent-type: text/plain\r\n\r\n"
                                    b"impostor")
        except (OSError, ssl.SSLError):
            return  # the caller refused the certificate (the point), or went away
        finally:
            connection.close()
