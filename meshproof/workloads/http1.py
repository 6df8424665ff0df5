"""Just enough HTTP/1.1 for the echo app's server and its onward client, fast on CPython.

Why not a framework: the echo app must never be the bottleneck of a latency measurement (>= 5,000
req/s on one core through one keep-alive connection), and it must run unchanged in a container with
the standard library only. Requests and responses are framed by Content-Length or chunked encoding;
nothing else (no upgrades, no HTTP/2), which is all a sidecar ever sends to an app.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we understand."""


@dataclass
class Message:
    """A request (method, target) or a response (status); headers lower-cased, last value wins."""

    method: str = ""
    target: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    keep_alive: bool = True


def parse_head(head: bytes, *, response: bool) -> tuple[Message, int | None, bool]:
    """Parse a head (without the blank line). Returns the message, Content-Length, chunked flag."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise ProtocolError(str(exc)) from exc
    lines = text.split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2:
        raise ProtocolError(f"malformed start line {lines[0][:80]!r}")
    message = Message()
    if response:
        if not first[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        message.status = int(first[1])
        http10 = first[0] == "HTTP/1.0"
    else:
        if len(first) != 3 or not first[2].startswith("HTTP/1."):
            raise ProtocolError(f"malformed request line {lines[0][:80]!r}")
        message.method, message.target = first[0], first[1]
        http10 = first[2] == "HTTP/1.0"
    headers = message.headers
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    message.keep_alive = "close" not in connection and (not http10 or "keep-alive" in connection)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    return message, (int(length) if length is not None and not chunked else None), chunked


def encode_head(start_line: str, headers: dict[str, str] | list[tuple[str, str]], body_length: int) -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [start_line]
    lines.extend(f"{name}: {value}" for name, value in items)
    lines.append(f"content-length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_response(status: int, headers: dict[str, str] | list[tuple[str, str]], body: bytes) -> bytes:
    reason = REASONS.get(status, "Status")
    return encode_head(f"HTTP/1.1 {status} {reason}", headers, len(body)) + body


def encode_request(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    return encode_head(f"{method} {target} HTTP/1.1", headers, len(body)) + body


async def read_message(reader: asyncio.StreamReader, *, response: bool) -> Message:
    """Read one whole message from a stream. Raises EOFError when the peer closed before any byte."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise EOFError("connection closed before a response") from exc
        raise ProtocolError(f"connection closed in the middle of a head ({len(exc.partial)} bytes)") from exc
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("head too large") from exc
    message, length, chunked = parse_head(head[:-4], response=response)
    if chunked:
        message.body = await _read_chunked(reader)
    elif length is not None:
        message.body = await reader.readexactly(length)
    elif response and message.status not in (204, 304) and not message.keep_alive:
        message.body = await reader.read()  # body until close
    return message


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class RequestParser:
    """Incremental request parser for the server's Protocol: feed bytes, take whole requests."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise ProtocolError("request head too large")
                return messages
            message, length, chunked = parse_head(bytes(self._buffer[:end]), response=False)
            if chunked:
                body_end = self._chunked_end(end + 4)
                if body_end is None:
                    return messages
                message.body = self._dechunk(end + 4, body_end)
                del self._buffer[:body_end]
            else:
                total = end + 4 + (length or 0)
                if len(self._buffer) < total:
                    return messages
                message.body = bytes(self._buffer[end + 4 : total])
                del self._buffer[:total]
            messages.append(message)

    def _chunked_end(self, start: int) -> int | None:
        position = start
        while True:
            line_end = self._buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(self._buffer[position:line_end]).split(b";", 1)[0], 16)
            position = line_end + 2 + size + 2
            if len(self._buffer) < position:
                return None
            if size == 0:
                return position

    def _dechunk(self, start: int, end: int) -> bytes:
        parts: list[bytes] = []
        position = start
        while position < end:
            line_end = self._buffer.find(b"\r\n", position)
            size = int(bytes(self._buffer[position:line_end]).split(b";", 1)[0], 16)
            parts.append(bytes(self._buffer[line_end + 2 : line_end + 2 + size]))
            position = line_end + 2 + size + 2
        return b"".join(parts)
