"""One HTTP request to a pod's port over the kubernetes client's port-forward, for servers that answer only
requests from their own pod's loopback (istiod's debug API serves 127.0.0.1 without authentication and
refuses everyone else; `istioctl` reaches it the same way).

The port-forward stream (`kubernetes.stream.portforward`, the websocket `pods/<name>/portforward`) ends
inside the pod's network namespace, so the server sees a connection from 127.0.0.1. The request is
HTTP/1.0 with `Connection: close`: Go's net/http then answers without chunking and closes, so the
response is everything read until the stream ends. One stream per request: istiod's debug answers are
read a few times per apply, and a stream costs one websocket handshake.

Needs a kubelet that serves port-forwarding (any real cluster; not the local control plane).
"""

from __future__ import annotations

from typing import Any

from meshproof.errors import UserError


def http_get(api_client: Any, namespace: str, pod: str, port: int, path: str, *, timeout: float) -> bytes:
    """The body of `GET path` on `pod`:`port`; UserError for a failed stream or a non-2xx answer."""
    from kubernetes import client
    from kubernetes.stream import portforward

    where = f"pod {namespace}/{pod} port {port}"
    try:
        forward = portforward(client.CoreV1Api(api_client).connect_get_namespaced_pod_portforward, pod, namespace,
                              ports=str(port))
    except Exception as exc:  # the client raises ApiException or websocket errors alike
        raise UserError(f"cannot port-forward to {where}: {exc}") from None
    try:
        sock = forward.socket(port)
        sock.settimeout(timeout)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    except OSError as exc:
        raise UserError(f"GET {path} on {where} over a port-forward: {exc}") from None
    finally:
        forward.close()
    return response_body(received, f"GET {path} on {where}", forward.error(port))


def response_body(received: bytes, what: str, stream_error: str | None = None) -> bytes:
    """The body of a whole HTTP/1.x response; UserError when there is none or its status is not 2xx."""
    head, separator, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        detail = stream_error or (f"{len(received)} bytes that are not an HTTP response" if received else "no answer")
        raise UserError(f"{what}: {detail}")
    if not 200 <= int(parts[1]) <= 299:
        raise UserError(f"{what}: {status_line}: {body[:200].decode(errors='replace')}")
    return body
