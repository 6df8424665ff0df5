"""Clients from outside the mesh that report exactly what they saw, for the mTLS checks: the echo
workload's probe (meshproof.workloads.probe) run from this host, its outcome as a RawOutcome."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshproof.backend import RawOutcome, Request, Transport
from meshproof.workloads import probe as raw_probe


def probe(
    host: str,
    port: int,
    request: Request,
    transport: Transport,
    *,
    client_cert: tuple[Path, Path] | None = None,
    timeout: float = 5.0,
    alert_wait: float = 0.5,
    alpn: Sequence[str] = (),
) -> RawOutcome:
    """Connect to host:port over `transport` and send `request` once; never raises for network errors."""
    outcome, status, detail = raw_probe.probe(
        host, port, method=request.method, path=request.path, host_header=request.host(),
        headers=request.headers, body=request.body, tls=transport is not Transport.PLAINTEXT,
        client_cert=None if client_cert is None else (str(client_cert[0]), str(client_cert[1])), timeout=timeout,
        alert_wait=alert_wait, alpn=alpn)
    return RawOutcome(transport, outcome, status=status, detail=detail)
