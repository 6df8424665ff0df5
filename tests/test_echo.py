"""The echo workload does what each request asks, counts attempts per key, and forwards as itself."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from meshproof.backends.host.ports import PortBlock
from meshproof.processes import wait_until
from meshproof.workloads.directives import Echo


class EchoProcess:
    def __init__(self, ports: PortBlock, name: str, version: str, outbound: int | None = None) -> None:
        self.port, self.control_port = ports.take(), ports.take()
        argv = [sys.executable, "-m", "meshproof.workloads.echo", "--service", "order-service", "--version", version,
                "--instance", name, "--port", str(self.port), "--control-port", str(self.control_port)]
        if outbound is not None:
            argv += ["--outbound", f"127.0.0.1:{outbound}"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        self.app = httpx.Client(base_url=f"http://127.0.0.1:{self.port}")
        self.control = httpx.Client(base_url=f"http://127.0.0.1:{self.control_port}")
        assert wait_until(self._healthy, timeout=10)

    def _healthy(self) -> bool:
        try:
            return self.control.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.app.close()
        self.control.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EchoProcess, EchoProcess]]:
    ports = PortBlock.reserve(tmp_path_factory.mktemp("locks"))
    server = EchoProcess(ports, "order-service-v2-0", "v2")
    client = EchoProcess(ports, "api-gateway-0", "v1", outbound=server.port)  # "outbound" straight to the server
    yield server, client
    client.stop()
    server.stop()
    ports.release()


@pytest.fixture
def server(pair: tuple[EchoProcess, EchoProcess]) -> EchoProcess:
    pair[0].control.post("/reset")
    return pair[0]


def test_it_reports_who_answered_and_what_it_received(server: EchoProcess) -> None:
    reply = server.app.get("/api/v1/orders/7", headers={"x-forwarded-client-cert": "URI=spiffe://x"})
    assert reply.status_code == 200
    assert (reply.headers["x-echo-instance"], reply.headers["x-echo-version"]) == ("order-service-v2-0", "v2")
    body = reply.json()
    assert body["path"] == "/api/v1/orders/7" and body["headers"]["x-forwarded-client-cert"] == "URI=spiffe://x"


def test_the_first_n_attempts_of_a_key_fail_then_it_succeeds(server: EchoProcess) -> None:
    directive = Echo(key="order-1", status=503, first=2).headers()
    statuses = [server.app.get("/", headers=directive).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert server.control.get("/attempts", params={"key": "order-1"}).json()["attempts"] == 4
    assert server.control.get("/attempts", params={"key": "other"}).json()["attempts"] == 0


def test_a_delay_is_honoured(server: EchoProcess) -> None:
    started = time.monotonic()
    server.app.get("/", headers=Echo(delay=0.2).headers())
    assert time.monotonic() - started >= 0.2


def test_a_reset_closes_the_connection_without_a_response(server: EchoProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nx-echo-reset: 1\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            raw.recv(100)


def test_a_fault_can_target_one_instance_or_version(server: EchoProcess) -> None:
    elsewhere = Echo(status=503, only_instance="order-service-v1-0").headers()
    assert server.app.get("/", headers=elsewhere).status_code == 200
    here = Echo(status=503, only_version="v2").headers()
    assert server.app.get("/", headers=here).status_code == 503


def test_an_instance_fault_and_reset_through_the_control_port(server: EchoProcess) -> None:
    server.control.post("/fault", json={"status": 500})
    assert server.app.get("/").status_code == 500
    server.control.post("/reset")
    assert server.app.get("/").status_code == 200


def test_a_malformed_directive_is_a_400_naming_it(server: EchoProcess) -> None:
    reply = server.app.get("/", headers={"x-echo-first": "many"})
    assert reply.status_code == 400 and "bad echo directive" in reply.text


def test_pipelined_requests_are_answered_in_order(server: EchoProcess) -> None:
    slow_then_fast = (b"GET /slow HTTP/1.1\r\nhost: x\r\nx-echo-delay: 100ms\r\n\r\n"
                      b"GET /fast HTTP/1.1\r\nhost: x\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(slow_then_fast)
        received = b""
        while received.count(b"HTTP/1.1 200") < 2:
            received += raw.recv(65536)
    assert received.index(b'"path": "/slow"') < received.index(b'"path": "/fast"')


def test_forward_makes_one_request_as_the_workload(pair: tuple[EchoProcess, EchoProcess]) -> None:
    _, client = pair
    reply = client.control.post("/forward", json={"service": "order-service", "path": "/x",
                                                   "headers": Echo(status=409).headers()}).json()
    assert reply["status"] == 409 and reply["error"] is None
    assert reply["headers"]["x-echo-instance"] == "order-service-v2-0"


def test_forward_batch_tallies_versions_and_statuses(pair: tuple[EchoProcess, EchoProcess]) -> None:
    _, client = pair
    tally = client.control.post("/forward", json={"service": "order-service", "count": 300, "concurrency": 4,
                                                  "headers": Echo(status=503, first=100, key="k").headers()}).json()
    assert tally["sent"] == 300 and tally["versions"] == {"v2": 300}
    assert tally["statuses"] == {"503": 100, "200": 200}


def test_forward_reports_a_refused_connection_as_such(tmp_path: Path) -> None:
    ports = PortBlock.reserve(tmp_path)
    closed = ports.take()
    lonely = EchoProcess(ports, "guest-0", "v1", outbound=closed)
    try:
        reply = lonely.control.post("/forward", json={"service": "order-service"}).json()
        assert (reply["status"], reply["error"]) == (None, "refused")
    finally:
        lonely.stop()
        ports.release()
