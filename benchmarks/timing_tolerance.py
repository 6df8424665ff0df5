"""How often does a correct mesh fall outside the timing window? (the false-failure rate of timeouts)

Repeats exactly what suites/test_timeouts.py does for "504 at the timeout" (measure the noise with
200 fast calls, then one call to an upstream slower than the route timeout T) `--trials` times on
the local mesh, and prints how late (or early) each 504 came, how wide the windows were, and how
many trials fell outside: the observed false-failure rate with an exact 95% upper bound.
`--busy` keeps the other core busy with a spinning process, as `pytest -n auto` may.

    python benchmarks/timing_tolerance.py --trials 300 [--busy] [--timeout 0.2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from meshproof import scenario
from meshproof.backend import Request
from meshproof.backends.local.mesh import LocalMesh
from meshproof.checks import Check
from meshproof.intent import Retry, Route, RouteRule
from meshproof.profile import Profile
from meshproof.results import CheckRecord
from meshproof.stats import clopper_pearson
from meshproof.timing import measure_noise
from meshproof.workloads.directives import Echo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=0.2, help="route timeout T in seconds")
    parser.add_argument("--busy", action="store_true", help="spin a process on the other core meanwhile")
    args = parser.parse_args()
    profile = Profile()
    mesh = LocalMesh(profile)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    excess, widths, outside = [], [], 0
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, timeout=args.timeout, retries=Retry(0)),))
        mesh.apply([*scenario.BASELINE, route])
        started = time.monotonic()
        for _ in range(args.trials):
            check = Check(CheckRecord("bench", "timeouts", "bench"))
            fast = Request(scenario.ORDER_SERVICE, "/")
            noise = measure_noise(mesh, check, scenario.API_GATEWAY, fast, profile.timing)
            window = noise.window(args.timeout, profile.timing)
            response = mesh.call(scenario.API_GATEWAY, Request(scenario.ORDER_SERVICE, "/",
                                                               headers=Echo(delay=2 * args.timeout).headers()))
            assert response.status == 504, response.describe()
            excess.append((response.elapsed - args.timeout) * 1000)
            widths.append(((window.low - args.timeout) * 1000, (window.high - args.timeout) * 1000))
            outside += not window.contains(response.elapsed)
        elapsed = time.monotonic() - started
    finally:
        mesh.down()
        if hog is not None:
            hog.kill()
            hog.wait()
    excess.sort()
    n = len(excess)
    _, high = clopper_pearson(outside, n, 0.95)
    print(f"trials {n} ({'other core busy' if args.busy else 'idle'}), T = {args.timeout * 1000:.0f} ms, "
          f"{elapsed:.0f} s")
    print(f"504 arrived at T{excess[0]:+.2f} ms (earliest), T{excess[n // 2]:+.2f} ms (median), "
          f"T{excess[int(n * 0.99)]:+.2f} ms (p99), T{excess[-1]:+.2f} ms (latest)")
    print(f"window: early bound median {sorted(w[0] for w in widths)[n // 2]:+.2f} ms, "
          f"late bound median {sorted(w[1] for w in widths)[n // 2]:+.2f} ms, "
          f"narrowest late bound {min(w[1] for w in widths):+.2f} ms")
    print(f"outside the window: {outside}/{n}; false-failure rate <= {high:.4f} (exact 95% upper bound)")


if __name__ == "__main__":
    main()
