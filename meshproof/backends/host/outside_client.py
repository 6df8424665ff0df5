"""Clients from outside the mesh that report exactly what they saw, for the mTLS checks.

A strict mesh must answer a plaintext client with *no* HTTP response. "No response" has several
faces (the proxy closes without a byte, resets, sends a TLS alert), and a check's evidence should say
which one, so each probe classifies how the exchange ended instead of raising.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from meshproof.backend import RawOutcome, Request, Transport
from meshproof.workloads.http1 import ProtocolError, encode_request, parse_head


def _exchange(sock: socket.socket | ssl.SSLSocket, request: Request, host: str) -> tuple[str, int | None, str]:
    headers = {"host": host, "connection": "close", **request.headers}
    sock.sendall(encode_request(request.method, request.path, headers, request.body))
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


def _refused_after_handshake(sock: ssl.SSLSocket, alert_wait: float, timeout: float) -> tuple[str, str] | None:
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
        return ("tls_alert" if "ALERT" in str(exc) else "tls_error"), exc.reason or str(exc)
    finally:
        sock.settimeout(timeout)
    if not data:
        return "closed_after_handshake", "the server closed the connection after the TLS handshake"
    return "not_http", f"{len(data)} bytes before any request"


def probe(
    host: str,
    port: int,
    request: Request,
    transport: Transport,
    *,
    client_cert: tuple[Path, Path] | None = None,
    timeout: float = 5.0,
    alert_wait: float = 0.5,
) -> RawOutcome:
    """Connect to host:port over `transport` and send `request` once; never raises for network errors."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        return RawOutcome(transport, "refused", detail=str(exc))
    except OSError as exc:
        return RawOutcome(transport, "connect_error", detail=str(exc))
    sock: socket.socket | ssl.SSLSocket = raw
    try:
        if transport is not Transport.PLAINTEXT:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the probe judges the server's behaviour, not its identity
            if client_cert is not None:
                context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
            try:
                sock = context.wrap_socket(raw, server_hostname=request.host())
            except ssl.SSLError as exc:
                return RawOutcome(transport, "tls_alert" if "ALERT" in str(exc) else "tls_handshake_failed",
                                  detail=exc.reason or str(exc))
            refused = _refused_after_handshake(sock, alert_wait, timeout)
            if refused is not None:
                return RawOutcome(transport, refused[0], detail=refused[1])
        outcome, status, detail = _exchange(sock, request, request.host())
        return RawOutcome(transport, outcome, status=status, detail=detail)
    except ssl.SSLError as exc:  # TLS 1.3: a missing client cert is reported after the handshake
        return RawOutcome(transport, "tls_alert" if "ALERT" in str(exc) else "tls_error", detail=exc.reason or str(exc))
    except ConnectionResetError as exc:
        return RawOutcome(transport, "reset", detail=str(exc) or "connection reset by peer")
    except (BrokenPipeError, ConnectionAbortedError) as exc:
        return RawOutcome(transport, "reset", detail=str(exc))
    except TimeoutError:
        return RawOutcome(transport, "timeout", detail=f"nothing within {timeout}s")
    finally:
        sock.close()
        raw.close()
