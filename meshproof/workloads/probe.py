"""A client outside the mesh that reports exactly what it saw: for the mTLS checks.

A strict mesh must answer a plaintext client with *no* HTTP response. "No response" has several faces
(the proxy closes without a byte, resets, sends a TLS alert), and a check's evidence should say which
one, so a probe classifies how the exchange ended instead of raising. The test runner probes from its
own host on the local meshes (meshproof.backends.host.outside_client) and, on a cluster, asks the echo
app in the unmeshed namespace to probe a pod from there (its control port's `/probe`). Standard
library only.

Outcomes: "http" (with the status), "closed_without_bytes", "closed_after_handshake", "not_http", "reset",
"refused", "connect_error", "tls_alert", "tls_handshake_failed", "tls_error", "timeout".
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence

from meshproof.workloads.http1 import ProtocolError, encode_request, parse_head

Outcome = tuple[str, int | None, str]  # (outcome, HTTP status or None, detail)


def _exchange(sock: socket.socket | ssl.SSLSocket, method: str, path: str, host_header: str,
              headers: Mapping[str, str], body: bytes) -> Outcome:
    sock.sendall(encode_request(method, path, {"host": host_header, "connection": "close", **headers}, body))
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    if not received:
        return "closed_without_bytes", None, "the connection was closed before any response byte"
    head = received.split(b"\r\n\r\n", 1)[0]
    try:
        message, _, _ = parse_head(head, response=True)
    except (ProtocolError, ValueError) as exc:
        return "not_http", None, f"{len(received)} bytes that are not an HTTP response ({exc})"
    return "http", message.status, head.split(b"\r\n", 1)[0].decode("latin-1")


def _tls_failure(exc: ssl.SSLError, otherwise: str) -> Outcome:
    return ("tls_alert" if "ALERT" in str(exc) else otherwise), None, exc.reason or str(exc)


def _refused_after_handshake(sock: ssl.SSLSocket, alert_wait: float, timeout: float) -> Outcome | None:
    """TLS 1.3 completes the client's handshake before the server has judged its certificate, and a server
    that refuses it sends an alert and closes. A client that writes meanwhile races that close: the kernel
    answers the late write with a reset, which can destroy the alert in flight (seen here: EOF or reset
    instead of the alert on 2 of 3 instances). So the probe listens first, for `alert_wait`, and writes
    only when no verdict came."""
    sock.settimeout(alert_wait)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return None
    except ssl.SSLError as exc:
        return _tls_failure(exc, "tls_error")
    finally:
        sock.settimeout(timeout)
    if not data:
        return "closed_after_handshake", None, "the server closed the connection after the TLS handshake"
    return "not_http", None, f"{len(data)} bytes before any request"


def probe(host: str, port: int, *, method: str, path: str, host_header: str, headers: Mapping[str, str],
          body: bytes = b"", tls: bool, client_cert: tuple[str, str] | None = None, timeout: float = 5.0,
          alert_wait: float = 0.5, alpn: Sequence[str] = ()) -> Outcome:
    """Connect to host:port (over TLS when `tls`, presenting `client_cert` = (cert file, key file) if given,
    with `host_header` as the TLS server name too), send one request, and classify how it ended; never
    raises for network or TLS errors. Over TLS it waits up to `alert_wait` for the server's verdict on the
    client's certificate before it writes. `alpn`: the application protocols it offers (a mesh's sidecar may
    tell its own mTLS from an app's TLS by them)."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        return "refused", None, str(exc)
    except OSError as exc:
        return "connect_error", None, str(exc)
    sock: socket.socket | ssl.SSLSocket = raw
    try:
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the probe judges the server's behaviour, not its identity
            if client_cert is not None:
                context.load_cert_chain(*client_cert)
            if alpn:
                context.set_alpn_protocols(list(alpn))
            try:
                sock = context.wrap_socket(raw, server_hostname=host_header)
            except ssl.SSLError as exc:
                return _tls_failure(exc, "tls_handshake_failed")
            refused = _refused_after_handshake(sock, alert_wait, timeout)
            if refused is not None:
                return refused
        return _exchange(sock, method, path, host_header, headers, body)
    except ssl.SSLError as exc:  # TLS 1.3: a missing client cert is reported after the handshake
        return _tls_failure(exc, "tls_error")
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        return "reset", None, str(exc) or "connection reset by peer"
    except TimeoutError:
        return "timeout", None, f"nothing within {timeout}s"
    finally:
        sock.close()
        raw.close()
