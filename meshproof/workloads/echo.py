"""The echo workload: one small, fast HTTP/1.1 app whose behaviour each request chooses.

Two ports. The *app port* is what the mesh routes to: it answers every request with its identity
(service, version, instance), the attempt number of the request's key, and the request's headers (so
a check sees the caller identity the sidecar forwarded), after applying the request's directives
(`meshproof.workloads.directives`). The *control port* is for the test runner only and is never part
of a mesh route: reset counters, read attempts and the request timeline, set an instance-wide fault
or stall, and forward requests onward *as this workload* (one, or a batch with a tally).

Run: `python -m meshproof.workloads.echo --service S --version V --instance I --port P
--control-port C [--outbound HOST:PORT]`. With `--outbound`, onward calls go to that address (the
local sidecar's outbound listener) with the target service as Host; without it, to the service by
name (in a cluster, where the sidecar captures the traffic). Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import functools
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from meshproof.workloads import client, directives, http1, probe, timerfd

TIMELINE_LENGTH = 20000


@dataclass
class Fault:
    """An instance-wide fault set through the control port (chaos, outlier tests)."""

    status: int = 200
    delay: float = 0.0
    reset: bool = False


@dataclass
class EchoState:
    service: str
    version: str
    instance: str
    namespace: str
    outbound: tuple[str, int] | None
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    timeline: collections.deque[tuple[float, str, int]] = field(
        default_factory=lambda: collections.deque(maxlen=TIMELINE_LENGTH)
    )
    fault: Fault | None = None
    stalled_until: float = 0.0
    requests: int = 0

    def reset(self) -> None:
        self.attempts.clear()
        self.timeline.clear()
        self.fault = None
        self.stalled_until = 0.0
        self.requests = 0


RESET = object()  # a handler's answer meaning "reset the connection instead of responding"
Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[http1.Message], "Reply | object | Awaitable[Reply | object]"]


class HttpProtocol(asyncio.Protocol):
    """Serves one connection; synchronous answers are written at once, delayed ones keep order."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._parser = http1.RequestParser()
        self._transport: asyncio.Transport | None = None
        self._tail: asyncio.Future[None] | None = None  # the last response still being produced

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream server's transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._parser.feed(data)
        except (http1.ProtocolError, ValueError) as exc:
            self._write_now(400, {"content-type": "text/plain"}, f"bad request: {exc}\n".encode(), close=True)
            return
        for message in messages:
            result = self._handler(message)
            if self._tail is None and not asyncio.iscoroutine(result):
                self._finish(message, result)
            else:
                self._tail = asyncio.ensure_future(self._ordered(message, result, self._tail))

    async def _ordered(self, message: http1.Message, result: Any, previous: asyncio.Future[None] | None) -> None:
        """Answer after the previous response on this connection (HTTP/1.1 keeps responses in order)."""
        if previous is not None:
            await previous
        if asyncio.iscoroutine(result):
            try:
                result = await result
            except Exception as exc:  # a bug in a handler: answer 500 rather than hang the connection
                result = (500, {"content-type": "text/plain"}, f"{type(exc).__name__}: {exc}\n".encode())
        self._finish(message, result)
        if self._tail is asyncio.current_task():
            self._tail = None

    def _finish(self, message: http1.Message, result: Any) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if result is RESET:
            sock = self._transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends a TCP RST, as a crashed app would
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._transport.abort()
            return
        status, headers, body = result
        self._write_now(status, headers, body, close=not message.keep_alive)

    def _write_now(self, status: int, headers: dict[str, str], body: bytes, *, close: bool) -> None:
        assert self._transport is not None
        if close:
            headers = {**headers, "connection": "close"}
        self._transport.write(http1.encode_response(status, headers, body))
        if close:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class EchoApp:
    def __init__(self, state: EchoState) -> None:
        self.state = state
        self._identity_headers = {
            directives.SERVED_SERVICE: state.service,
            directives.SERVED_VERSION: state.version,
            directives.SERVED_INSTANCE: state.instance,
        }
        self._pools: dict[tuple[str, int], client.Pool] = {}

    # --- the app port -------------------------------------------------------------------------------
    def serve(self, request: http1.Message) -> Reply | object | Awaitable[Reply | object]:
        state = self.state
        try:
            echo = directives.Echo.from_headers(request.headers)
        except ValueError as exc:
            return 400, {"content-type": "text/plain", **self._identity_headers}, f"{exc}\n".encode()
        state.requests += 1
        state.attempts[echo.key] += 1
        attempt = state.attempts[echo.key]
        fault = self._fault_for(echo, attempt)
        now = time.monotonic()
        status = fault.status if fault else 200
        if fault is not None and fault.reset:
            state.timeline.append((time.time(), echo.key, 0))
            return RESET
        state.timeline.append((time.time(), echo.key, status))
        delay = max(fault.delay if fault else 0.0, state.stalled_until - now)
        reply = self._reply(request, echo, attempt, status)
        if delay > 0:
            return self._later(delay, reply)
        return reply

    def _fault_for(self, echo: directives.Echo, attempt: int) -> Fault | None:
        state = self.state
        if echo.has_fault:
            selected = (
                (echo.first is None or attempt <= echo.first)
                and (echo.only_instance is None or echo.only_instance == state.instance)
                and (echo.only_version is None or echo.only_version == state.version)
            )
            if selected:
                return Fault(status=echo.status, delay=echo.delay, reset=echo.reset)
        return state.fault

    def _reply(self, request: http1.Message, echo: directives.Echo, attempt: int, status: int) -> Reply:
        state = self.state
        headers = {
            **self._identity_headers,
            directives.SERVED_ATTEMPT: str(attempt),
            "content-type": "application/json",
        }
        if echo.body_size is not None:
            return status, headers, b"x" * echo.body_size
        body = {
            "service": state.service,
            "version": state.version,
            "instance": state.instance,
            "namespace": state.namespace,
            "method": request.method,
            "path": request.target,
            "key": echo.key,
            "attempt": attempt,
            "headers": request.headers,
        }
        return status, headers, json.dumps(body).encode()

    @staticmethod
    async def _later(delay: float, reply: Reply) -> Reply:
        await precise_sleep(delay)
        return reply

    # --- the control port ---------------------------------------------------------------------------
    def control(self, request: http1.Message) -> Reply | Awaitable[Reply]:
        url = urlsplit(request.target)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        try:
            payload = json.loads(request.body) if request.body else {}
            route = (request.method, url.path)
            if route == ("GET", "/health"):
                return _json(200, {"instance": self.state.instance, "pid": os.getpid()})
            if route == ("POST", "/reset"):
                self.state.reset()
                return _json(200, {"reset": True})
            if route == ("GET", "/attempts"):
                key = query.get("key", "")
                return _json(200, {"instance": self.state.instance, "key": key,
                                   "attempts": self.state.attempts.get(key, 0)})
            if route == ("GET", "/state"):
                return _json(200, self._state_json(since=float(query.get("since", "0"))))
            if route == ("POST", "/fault"):
                self.state.fault = Fault(**payload) if payload else None
                return _json(200, {"fault": payload or None})
            if route == ("POST", "/stall"):
                self.state.stalled_until = time.monotonic() + float(payload["seconds"])
                return _json(200, {"stalled_for": payload["seconds"]})
            if route == ("POST", "/forward"):
                return self._forward(payload)
            if route == ("POST", "/probe"):
                return self._probe(payload)
        except (KeyError, TypeError, ValueError) as exc:
            return _json(400, {"error": f"{type(exc).__name__}: {exc}"})
        return _json(404, {"error": f"no control endpoint {request.method} {url.path}"})

    def _state_json(self, since: float) -> dict[str, Any]:
        state = self.state
        return {
            "instance": state.instance,
            "version": state.version,
            "requests": state.requests,
            "attempts": dict(state.attempts),
            "fault": None if state.fault is None else vars(state.fault),
            "timeline": [list(entry) for entry in state.timeline if entry[0] >= since],
        }

    def _upstream(self, service: str, port: int) -> client.Upstream:
        host = service if port == 80 else f"{service}:{port}"
        if self.state.outbound is not None:
            return client.Upstream(self.state.outbound[0], self.state.outbound[1], host)
        return client.Upstream(service, port, host)

    async def _forward(self, payload: dict[str, Any]) -> Reply:
        upstream = self._upstream(payload["service"], int(payload.get("port", 80)))
        method = payload.get("method", "GET")
        path = payload.get("path", "/")
        headers = dict(payload.get("headers", {}))
        body = base64.b64decode(payload.get("body_b64", ""))
        timeout = float(payload.get("timeout", 30.0))
        count = int(payload.get("count", 0))
        if count:
            result = await client.forward_batch(
                upstream, method, path, headers, body, count=count, rate=float(payload.get("rate", 0)),
                concurrency=int(payload.get("concurrency", 8)), timeout=timeout,
                capture=None if payload.get("capture") is None else tuple(payload["capture"]),
            )
            return _json(200, result)
        key = (upstream.connect_host, upstream.connect_port)
        pool = self._pools.get(key)
        if pool is None or pool.upstream != upstream:
            pool = self._pools[key] = client.Pool(upstream)
        return _json(200, await client.forward_one(pool, method, path, headers, body, timeout))


    async def _probe(self, payload: dict[str, Any]) -> Reply:
        """`/probe`: one request to `host:port` as a client outside the mesh; the outcome, classified. A
        client certificate comes as PEM text (`client_cert_pem`, `client_key_pem`), and `alpn` lists the
        application protocols to offer."""
        with tempfile.TemporaryDirectory() as directory:
            client_cert = None
            if payload.get("client_cert_pem"):
                cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
                for path, text in ((cert, payload["client_cert_pem"]), (key, payload["client_key_pem"])):
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as file:
                        file.write(text)
                client_cert = (cert, key)
            outcome, status, detail = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                probe.probe, payload["host"], int(payload["port"]), method=payload.get("method", "GET"),
                path=payload.get("path", "/"), host_header=payload.get("host_header", payload["host"]),
                headers=dict(payload.get("headers", {})), body=base64.b64decode(payload.get("body_b64", "")),
                tls=bool(payload.get("tls")), client_cert=client_cert, timeout=float(payload.get("timeout", 5.0)),
                alpn=list(payload.get("alpn", []))))
        return _json(200, {"outcome": outcome, "status": status, "detail": detail})


async def precise_sleep(delay: float) -> None:
    """asyncio.sleep, but on time: asyncio's epoll wait rounds up to whole ms (a 5 ms delay came out
    ~0.5 ms late, 9% off), which would skew a latency calibration; a timerfd wakes the loop on time."""
    if not timerfd.available():
        await asyncio.sleep(delay)
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    timer = timerfd.TimerFd()
    def wake() -> None:
        if not woken.done():
            woken.set_result(None)

    try:
        timer.arm(time.monotonic() + delay)
        loop.add_reader(timer.fileno(), wake)
        await woken
    finally:
        loop.remove_reader(timer.fileno())
        timer.close()


def _json(status: int, payload: dict[str, Any]) -> Reply:
    return status, {"content-type": "application/json"}, json.dumps(payload).encode()


def _parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="echo", description=__doc__.splitlines()[0])
    parser.add_argument("--service", default=env("ECHO_SERVICE"), required=env("ECHO_SERVICE") is None)
    parser.add_argument("--version", default=env("ECHO_VERSION", "v1"))
    parser.add_argument("--instance", default=env("ECHO_INSTANCE", socket.gethostname()))
    parser.add_argument("--namespace", default=env("ECHO_NAMESPACE", "default"))
    parser.add_argument("--host", default=env("ECHO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("ECHO_PORT", "8080")))
    parser.add_argument("--control-port", type=int, default=int(env("ECHO_CONTROL_PORT", "8081")))
    parser.add_argument("--outbound", default=env("ECHO_OUTBOUND"), help="HOST:PORT of the sidecar's outbound")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    outbound = None
    if args.outbound:
        host, _, port = args.outbound.rpartition(":")
        outbound = (host, int(port))
    app = EchoApp(EchoState(args.service, args.version, args.instance, args.namespace, outbound))
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda: HttpProtocol(app.serve), args.host, args.port, backlog=1024),
        await loop.create_server(lambda: HttpProtocol(app.control), args.host, args.control_port),
    ]
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"echo {args.instance} serving on {args.host}:{args.port}, control {args.control_port}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(_main(args))
    except OSError as exc:  # the port is taken: say which, no traceback
        print(f"echo {args.instance}: cannot serve on {args.host}:{args.port}/{args.control_port}: {exc}",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
