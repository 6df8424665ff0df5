"""Is the echo app never the bottleneck? Requests per second it serves on one core, measured with wrk.

Starts one echo app pinned to CPU 0 and runs `wrk` (Debian package `wrk`) pinned to CPU 1 against it:
one keep-alive connection (the requirement: >= 5,000 req/s), sequentially and with 16 requests
pipelined per write (sequential requests on one connection measure this machine's round-trip
latency as much as the app: Envoy's own admin endpoint serves ~3.5k req/s that way here), then 4 and
16 connections; with the full JSON echo body and with an empty body (what the canary sampler asks).

    python benchmarks/echo_throughput.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from meshproof.backends.host.ports import PortBlock
from meshproof.processes import wait_until


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("echo_throughput: wrk not found; install it (apt install wrk)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("echo_throughput: needs two cores (one for the app, one for wrk)")
    ports = PortBlock.reserve(Path(tempfile.mkdtemp()))
    port, control = ports.take(), ports.take()
    echo = [sys.executable, "-m", "meshproof.workloads.echo", "--service", "bench", "--instance", "bench-0",
            "--port", str(port), "--control-port", str(control)]
    app = subprocess.Popen(["taskset", "-c", "0", *echo], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _healthy(control), timeout=10), "the echo app did not start"
        print(f"echo app on CPU 0, wrk on CPU 1, {args.seconds}s per row")
        script = Path(tempfile.mkdtemp()) / "pipeline.lua"
        script.write_text(PIPELINE)
        url = f"http://127.0.0.1:{port}/api/v1/orders/1"
        for label, headers in (("JSON echo body", []), ("empty body", ["-H", "x-echo-body-size: 0"])):
            for connections, extra, how in ((1, [], ""), (1, ["-s", str(script)], ", 16 pipelined"),
                                            (4, [], ""), (16, [], "")):
                done = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{args.seconds}s",
                                       *headers, *extra, url], capture_output=True, text=True, check=True)
                rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
                latency = re.search(r"Latency\s+(\S+)", done.stdout)
                served = float(rate.group(1)) if rate else 0.0
                print(f"{label:15s} {connections:2d} connection(s){how:15s}: {served:8.0f} req/s, "
                      f"mean latency {latency.group(1) if latency else '?'}")
    finally:
        app.terminate()
        app.wait()
        ports.release()


# One write carries 16 requests, so one connection measures what the app serves, not the round trip.
PIPELINE = """
init = function(args)
  local requests = {}
  for i = 1, 16 do requests[i] = wrk.format(nil, nil, wrk.headers) end
  pipelined = table.concat(requests)
end
request = function() return pipelined end
"""


def _healthy(control: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{control}/health").status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
