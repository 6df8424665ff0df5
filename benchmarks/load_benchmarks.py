"""How right are meshproof's load numbers? Four measurements on this machine, printed; not timed tests.

1. overhead: the default load profile against the local mesh, as `meshproof run --only load` measures it:
   overhead p50/p99/p99.9 with their intervals, achieved rate, generator lag, proxy cost.
2. ceiling: the highest rate one Locust process (one core: Python) sustains against one echo app, rate by
   rate: a valid run by the load check's own rules (>= 98% of the rate achieved, median scheduling lag
   under 1 ms, the generator under 90% of a core); next to it, in the same run against the same app,
   `wrk` (1 thread, closed loop: as fast as the app answers).
3. calibration: two identical apps, one delaying every answer by d; the delayed app's p50 must match
   baseline p50 + d within 5% (and meshproof's overhead p50 be d). Twice: with the echo app, whose
   delay wakes its asyncio loop through a timerfd (an asyncio sleep was 0.5 ms late, rounded up to
   whole milliseconds in epoll; the loop's own wake-up still adds ~0.3 ms on this VM), and with a
   threaded app here that sleeps with time.sleep (nanosleep, ~0.1 ms), so that the app's timer error
   and meshproof's own are told apart.
4. stall: the app stalls once for 1 s during a 200 req/s run on the local mesh; meshproof's p99 (from
   each request's due time) shows the requests queued behind the stall, and Locust's own statistics of
   the same requests (timed from when they were actually sent, as a closed-loop tool times them) do not.

    python benchmarks/load_benchmarks.py [--only overhead,ceiling,calibration,stall]
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from meshproof import scenario
from meshproof.backend import LoadSetup, LoadTarget
from meshproof.backends.host.ports import PortBlock
from meshproof.backends.local.mesh import LocalMesh
from meshproof.intent import Retry, Route, RouteRule
from meshproof.load.analysis import RateResult
from meshproof.load.driver import measure_rate
from meshproof.load.profile import LoadProfile, load_load_profile
from meshproof.processes import Supervisor, wait_until
from meshproof.profile import Profile
from meshproof.runs import RunDir, state_root
from meshproof.workloads.directives import Echo

CEILING_RATES = (500, 1000, 1500, 2000, 2500, 3000, 4000)
CALIBRATION_DELAYS = (0.005, 0.020)
SHORT = replace(LoadProfile(), name="benchmark", duration=4.0, blocks=4, warmup=0.5)


def _ci(entry: dict[str, Any], quantile: str) -> str:
    overhead = entry["overhead_us"][quantile]
    return f"{overhead['value'] / 1000:.3f} ms [{overhead['ci'][0] / 1000:.3f}, {overhead['ci'][1] / 1000:.3f}]"


@contextmanager
def _local_mesh() -> Iterator[tuple[LocalMesh, LoadSetup]]:
    mesh = LocalMesh(Profile())
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        mesh.apply([*scenario.BASELINE, Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100},
                                                                                 retries=Retry(0)),))])
        yield mesh, mesh.load_setup(scenario.API_GATEWAY, scenario.ORDER_SERVICE, "v2")
    finally:
        mesh.down()


@contextmanager
def _echo_apps(count: int) -> Iterator[list[tuple[str, str, int]]]:
    """`count` echo apps straight on loopback: (app URL, control URL, pid) each."""
    run = RunDir.create("bench")
    ports = PortBlock.reserve(state_root() / "locks")
    supervisor = Supervisor(run)
    try:
        apps = []
        for index in range(count):
            port, control = ports.take(), ports.take()
            child = supervisor.start(f"echo-{index}", [sys.executable, "-m", "meshproof.workloads.echo", "--service",
                                                       "echo", "--port", str(port), "--control-port", str(control)],
                                     log=run.path / f"echo-{index}.log")
            apps.append((f"http://127.0.0.1:{port}", f"http://127.0.0.1:{control}", child.popen.pid))
        for _, control_url, _ in apps:
            if not wait_until(functools.partial(_healthy, control_url), timeout=10):
                raise RuntimeError(f"echo app at {control_url} did not start")
        yield apps
    finally:
        supervisor.stop_all()
        ports.release()
        run.remove()


def _healthy(control_url: str) -> bool:
    try:
        return httpx.get(f"{control_url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def overhead() -> None:
    profile = load_load_profile("default")
    print(f"== overhead: load profile {profile.name} on the local mesh")
    with _local_mesh() as (_, setup):
        for rate in profile.rates:
            started = time.monotonic()
            result = measure_rate(setup, profile, rate)
            entry = result.entry
            print(f"{rate:6.0f} req/s: achieved {entry['achieved_rps']} req/s, valid {entry['valid']} "
                  f"{list(result.invalid) or ''}; overhead p50 {_ci(entry, 'p50')}, p99 {_ci(entry, 'p99')}, "
                  f"p99.9 {_ci(entry, 'p999')}; baseline p50/p99 {entry['baseline_us']['p50']:.0f}/"
                  f"{entry['baseline_us']['p99']:.0f} us, mesh {entry['mesh_us']['p50']:.0f}/"
                  f"{entry['mesh_us']['p99']:.0f} us; generator lag us {entry['generator_lag_us']}; "
                  f"({time.monotonic() - started:.0f} s)")
            for name, cost in entry["proxy"].items():
                print(f"    {name}: {cost['vcpu']:.3f} vCPU = {cost['vcpu_per_1000rps']:.3f} vCPU per 1000 req/s, "
                      f"RSS MiB {cost['rss_mib']}")


def _wrk(url: str, seconds: int) -> str:
    if shutil.which("wrk") is None:
        return "wrk not installed (Debian package wrk)"
    headers = [arg for name, value in Echo(body_size=1024).headers().items() for arg in ("-H", f"{name}: {value}")]
    done = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", *headers, url],
                          capture_output=True, text=True, timeout=seconds + 30)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", done.stdout, re.MULTILINE))
    return (f"{float(rate.group(1)):.0f} req/s closed loop, latency p50 {latency.get('50')} p99 {latency.get('99')}"
            if rate else done.stdout + done.stderr)


def ceiling() -> None:
    print("== ceiling: one Locust process against one echo app (GET, 1 kB replies, 16 connections)")
    with _echo_apps(1) as [(url, _, pid)]:
        target = LoadTarget(url, "echo")
        setup = LoadSetup(baseline=target, mesh=target, proxies={"echo-app": pid})
        profile = replace(SHORT, payload_bytes=0)
        best = None
        for rate in CEILING_RATES:
            result = measure_rate(setup, profile, rate, echo=Echo(body_size=1024))
            entry, lag = result.entry, result.entry["generator_lag_us"]
            cpu = result.evidence["generator_cpu_of_a_core"]["locust-local"]
            best = rate if result.valid else best
            print(f"{rate:6.0f} req/s: achieved {entry['achieved_rps']:7.1f}, scheduling lag p50/p99 {lag['p50']:.0f}/"
                  f"{lag['p99']:.0f} us, generator {cpu:.0%} of a core, app {entry['proxy']['echo-app']['vcpu']:.0%}"
                  f" of a core, latency p50/p99 {entry['baseline_us']['p50']:.0f}/{entry['baseline_us']['p99']:.0f} us"
                  f" -> {'sustained' if result.valid else 'NOT sustained: ' + '; '.join(result.invalid)}")
            if not result.valid:
                break
        print(f"ceiling: {best} req/s from one Locust process")
        print(f"wrk, same app, same run: {_wrk(url, 5)}")


class _SleepingHandler(BaseHTTPRequestHandler):
    """Reads the request, sleeps the server's `delay` with time.sleep, answers 1 kB; keep-alive."""

    protocol_version = "HTTP/1.1"
    server: _SleepingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("content-length", "1024")
        self.end_headers()
        self.wfile.write(b"x" * 1024)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: one line per request would cost more than the request."""


class _SleepingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _SleepingHandler)
        self.delay = delay


@contextmanager
def _sleeping_apps(delay: float) -> Iterator[LoadSetup]:
    """Two threaded apps in this process, the second sleeping `delay` per request: baseline and "mesh" path."""
    servers = [_SleepingServer(0.0), _SleepingServer(delay)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plain, delayed = (LoadTarget(f"http://127.0.0.1:{server.server_address[1]}", "app") for server in servers)
        yield LoadSetup(baseline=plain, mesh=delayed, proxies={})
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _calibrate(app: str, delay: float, setup: LoadSetup) -> None:
    entry = measure_rate(setup, replace(SHORT, duration=6.0, blocks=6), 200.0).entry
    expected = entry["baseline_us"]["p50"] + delay * 1e6
    error = (entry["mesh_us"]["p50"] - expected) / expected
    print(f"{app}, d = {delay * 1000:.0f} ms: delayed p50 {entry['mesh_us']['p50']:.0f} us vs baseline p50 + d = "
          f"{expected:.0f} us: error {error:+.1%}; overhead p50 {_ci(entry, 'p50')}")


def calibration() -> None:
    print("== calibration: two identical apps, the second delaying every answer by d; 200 req/s, POST 1 kB")
    with _echo_apps(2) as [(plain, _, plain_pid), (delayed, delayed_control, delayed_pid)]:
        for delay in CALIBRATION_DELAYS:
            httpx.post(f"{delayed_control}/fault", json={"status": 200, "delay": delay}, timeout=5).raise_for_status()
            _calibrate("echo app (timerfd delay)", delay, LoadSetup(
                baseline=LoadTarget(plain, "echo"), mesh=LoadTarget(delayed, "echo"),
                proxies={"plain": plain_pid, "delayed": delayed_pid}))
    for delay in CALIBRATION_DELAYS:
        with _sleeping_apps(delay) as setup:
            _calibrate("threaded app (time.sleep)", delay, setup)


def stall() -> None:
    print("== stall: the app stalls for 1 s once during a 200 req/s run (open model vs closed loop, same run)")
    profile = replace(SHORT, duration=10.0, blocks=5, warmup=1.0)
    with _local_mesh() as (mesh, setup):
        app = mesh.apps[mesh.instances(scenario.ORDER_SERVICE, version="v2")[0]]
        stalled_at: list[str] = []

        def stall_once(text: str) -> None:
            if text.startswith("baseline block 3/") and not stalled_at:
                app.control.post("/stall", json={"seconds": 1}).raise_for_status()
                stalled_at.append(text)

        result: RateResult = measure_rate(setup, profile, 200.0, progress=stall_once)
    entry, locust = result.entry, result.evidence["locust_own_stats"]
    print(f"stalled at the start of {stalled_at}")
    print(f"meshproof (from due times): baseline path p99 {entry['baseline_us']['p99'] / 1000:.1f} ms, "
          f"p99.9 {entry['baseline_us']['p999'] / 1000:.1f} ms; mesh path p99 {entry['mesh_us']['p99'] / 1000:.1f} ms; "
          f"requests that waited for a connection: {result.evidence['queued_for_a_connection']}")
    print(f"closed-loop view of the same requests (Locust's own stats, from the actual send): "
          f"{json.dumps(locust['response_time_ms'])} ms, max {locust['max_ms']:.0f} ms, {locust['requests']} requests")


def main() -> None:
    benchmarks = {"overhead": overhead, "ceiling": ceiling, "calibration": calibration, "stall": stall}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(benchmarks), help=f"comma-separated: {','.join(benchmarks)}")
    chosen = parser.parse_args().only.split(",")
    for name, benchmark in benchmarks.items():
        if name in chosen:
            started = time.monotonic()
            benchmark()
            print(f"({name}: {time.monotonic() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
