"""The echo app's onward client: keep-alive connections, failures classified by what the client saw.

A forward call is the test runner's way of making a request *as* a workload: through that workload's
sidecar on the local mesh (the outbound listener), through iptables capture in a cluster. Failures are
reported as kinds a check can reason about ("refused", "reset", "empty_reply", "timeout", "protocol")
rather than as exception text.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from meshproof.workloads import directives, http1


class ClientFailure(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Upstream:
    """Where to connect (the sidecar's outbound listener, or the service itself) and the Host to send."""

    connect_host: str
    connect_port: int
    host_header: str


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = False

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one upstream, reused one request at a time."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self._idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(
                self.upstream.connect_host, self.upstream.connect_port, limit=http1.MAX_HEAD * 16
            )
        except ConnectionRefusedError as exc:
            raise ClientFailure("refused", str(exc)) from exc
        except OSError as exc:
            raise ClientFailure("connect_error", str(exc)) from exc
        return _Connection(reader, writer)

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> http1.Message:
        """One request. A reused idle connection the peer had closed is retried once on a new one:
        no byte of a response arrived, and the sidecars close idle connections when they drain."""
        connection = self._idle.pop() if self._idle else await self._connect()
        try:
            return await self._exchange(connection, method, target, headers, body, timeout)
        except ClientFailure as failure:
            if connection.used and failure.kind in ("empty_reply", "reset"):
                fresh = await self._connect()
                return await self._exchange(fresh, method, target, headers, body, timeout)
            raise

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
    ) -> http1.Message:
        all_headers = {"host": self.upstream.host_header, **headers}
        try:
            connection.writer.write(http1.encode_request(method, target, all_headers, body))
            message = await asyncio.wait_for(http1.read_message(connection.reader, response=True), timeout)
        except TimeoutError as exc:
            connection.close()
            raise ClientFailure("timeout", f"no response within {timeout:.3f}s") from exc
        except EOFError as exc:
            connection.close()
            raise ClientFailure("empty_reply", "the server closed the connection without a response") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            connection.close()
            raise ClientFailure("reset", str(exc) or "connection reset by peer") from exc
        except (http1.ProtocolError, asyncio.IncompleteReadError, ValueError) as exc:
            connection.close()
            raise ClientFailure("protocol", str(exc)) from exc
        connection.used = True
        if message.keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
        return message

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def response_json(message: http1.Message, elapsed: float) -> dict[str, Any]:
    return {
        "status": message.status,
        "headers": message.headers,
        "body": message.body.decode("utf-8", "replace"),
        "elapsed_s": elapsed,
        "error": None,
    }


def failure_json(failure: ClientFailure, elapsed: float) -> dict[str, Any]:
    return {"status": None, "headers": {}, "body": "", "elapsed_s": elapsed, "error": failure.kind,
            "detail": failure.detail}


async def forward_one(
    pool: Pool, method: str, target: str, headers: dict[str, str], body: bytes, timeout: float
) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        message = await pool.request(method, target, headers, body, timeout)
    except ClientFailure as failure:
        return failure_json(failure, time.perf_counter() - started)
    return response_json(message, time.perf_counter() - started)


@dataclass
class Tally:
    """What a batch saw, counted per version, instance, status and failure kind.

    With `capture`, it also keeps a trace: one row per request, in send order, of [send offset (s),
    latency (s), serving instance, status or failure kind, {captured header: value}].
    """

    sent: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    version_statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    capture: tuple[str, ...] | None = None
    trace: list[list[Any]] = field(default_factory=list)

    def add(self, message: http1.Message | None, failure: ClientFailure | None, elapsed: float,
            sent_at: float = 0.0) -> None:
        self.sent += 1
        self.latencies.append(elapsed)
        if self.capture is not None:
            self.trace.append([
                round(sent_at, 6), round(elapsed, 6),
                message.headers.get(directives.SERVED_INSTANCE) if message else None,
                message.status if message else (failure.kind if failure else "unknown"),
                {name: message.headers[name] for name in self.capture if message and name in message.headers},
            ])
        if failure is not None or message is None:
            self.errors[failure.kind if failure else "unknown"] += 1
            return
        version = message.headers.get(directives.SERVED_VERSION, "-")
        self.versions[version] += 1
        self.instances[message.headers.get(directives.SERVED_INSTANCE, "-")] += 1
        self.statuses[str(message.status)] += 1
        self.version_statuses[f"{version} {message.status}"] += 1

    def to_json(self, elapsed: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def quantile(q: float) -> float | None:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None

        return {
            "sent": self.sent,
            "elapsed_s": elapsed,
            "versions": dict(self.versions),
            "instances": dict(self.instances),
            "statuses": dict(self.statuses),
            "version_statuses": dict(self.version_statuses),
            "errors": dict(self.errors),
            "latency_s": {"p50": quantile(0.5), "p99": quantile(0.99), "p999": quantile(0.999), "max": quantile(1.0)},
            "trace": sorted(self.trace) if self.capture is not None else None,
        }


async def forward_batch(
    upstream: Upstream,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    count: int,
    rate: float,
    concurrency: int,
    timeout: float,
    capture: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Send `count` requests over `concurrency` keep-alive connections, at `rate` req/s (0: at once).

    Requests follow a constant-arrival schedule; a worker that falls behind sends at once, so the
    batch never takes longer than its schedule unless the path itself is slower.
    """
    tally = Tally(capture=capture)
    next_index = 0
    started_wall = time.time()
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal next_index
        pool = Pool(upstream)
        try:
            while next_index < count:
                index = next_index
                next_index += 1
                if rate > 0:
                    delay = started + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent_at = time.perf_counter()
                try:
                    message = await pool.request(method, target, headers, body, timeout)
                    tally.add(message, None, time.perf_counter() - sent_at, sent_at - started)
                except ClientFailure as failure:
                    tally.add(None, failure, time.perf_counter() - sent_at, sent_at - started)
        finally:
            pool.close()

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return {**tally.to_json(time.perf_counter() - started), "started_at": started_wall}
