"""The process that owns a mesh started by `meshproof up`: `python -m meshproof.attach.daemon`.

It brings the backend up, records itself in the state file, and serves the backend contract on a
loopback control API (`POST /rpc {"method", "args", "kwargs"}`, values in meshproof.attach.wire's
JSON) until SIGTERM or SIGINT, then brings the mesh down and removes the record.

The API is served by the main thread, one request at a time, on purpose: undoing a crash restarts a
proxy, and a child must be started from a thread that lives as long as the mesh (its parent-death
signal fires when the forking thread ends; see meshproof.processes).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import FrameType
from typing import Any

import psutil

from meshproof import scenario
from meshproof.attach import wire
from meshproof.attach.state import UpState, remove_state
from meshproof.backend import Backend, FaultInjection, unsupported_reason
from meshproof.descriptor import RUN_FLAGS, Options, flag
from meshproof.errors import UserError
from meshproof.faults import Fault
from meshproof.features import REGISTRY
from meshproof.profile import load_profile
from meshproof.registry import create_backend

#: what an attached process may ask of the owned backend
METHODS = frozenset({
    "apply", "reset", "call", "call_batch", "call_unmeshed", "observed_identity", "instances", "attempts",
    "describe", "diagnostics", "addresses", "inject", "undo", "observed", "request_counts", "outlier_stats",
    "load_setup", "load_target",
})


class Owner:
    """The owned backend behind the API; faults injected through it are undone by (fault, instance)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _faults(self) -> FaultInjection:
        if not isinstance(self.backend, FaultInjection):
            raise UserError(f"the {self.backend.name} backend cannot inject faults")
        return self.backend

    def inject(self, fault: Fault, instance: str) -> dict[str, Any]:
        self._faults().inject(fault, instance)
        return {"fault": wire.encode(fault), "instance": instance}

    def undo(self, fault: Fault, instance: str) -> bool:
        """Undo the latest fault equal to `fault` still in force on `instance`; False when there is none."""
        return self._faults().undo(fault, instance)

    def observed(self, fault: Fault, instance: str) -> dict[str, int]:
        """What the latest such fault in force saw (an Impostor's counts); {} when there is none."""
        return self._faults().observed(fault, instance)

    def invoke(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if method not in METHODS:
            raise UserError(f"the mesh's control API has no method {method!r}")
        target = self if method in ("inject", "undo", "observed") else self.backend
        function = getattr(target, method, None)
        if function is None:
            raise UserError(f"the {self.backend.name} backend has no {method}()")
        return function(*[wire.decode(a) for a in args], **{k: wire.decode(v) for k, v in kwargs.items()})


def _handler(owner: Owner) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
            try:
                reply = {"ok": wire.encode(owner.invoke(request["method"], request.get("args", []),
                                                        request.get("kwargs", {})))}
            except UserError as exc:
                reply = {"error": str(exc)}
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}", "internal": True}
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(mesh: str, profile_spec: str | None, options: Options, log: str) -> int:
    me = psutil.Process()
    state = UpState(pid=me.pid, create_time=me.create_time(), mesh=mesh, profile=profile_spec or "default", log=log)
    state.write()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    backend: Backend | None = None
    # Bound before up(): a backend may move this thread into a network namespace of its own (the local
    # Istio mesh does); the socket stays in the host's, where attached processes connect. It serves
    # nothing until serve_forever(), by when it has its handler.
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        backend = create_backend(mesh, load_profile(profile_spec), options)
        backend.up(scenario.WORKLOADS, scenario.BASELINE)
        server.RequestHandlerClass = _handler(Owner(backend))
        state.control_url = f"http://127.0.0.1:{server.server_address[1]}"
        state.run, state.addresses = backend.describe(), backend.addresses()
        state.unsupported = {name: reason for name in REGISTRY
                             if (reason := unsupported_reason(backend, name)) is not None}
        state.started, state.status = time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ready"
        state.write()
        server.serve_forever()
    except UserError as exc:
        state.status, state.error = "failed", str(exc)
        state.write()
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if backend is not None:
            backend.down()
        if state.status != "failed":
            remove_state()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m meshproof.attach.daemon")
    parser.add_argument("--mesh", required=True)
    parser.add_argument("--profile")
    parser.add_argument("--envoy-config-hook")
    for name, keywords in RUN_FLAGS.items():
        parser.add_argument(flag(name), **keywords)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    options = Options(envoy_config_hook=args.envoy_config_hook, **{name: getattr(args, name) for name in RUN_FLAGS})
    sys.exit(serve(args.mesh, args.profile, options, args.log))


if __name__ == "__main__":
    main()
