"""Where do 504s land around the route timeout T? (what the timing tolerance floor + share x T rests on)

Repeats what suites/test_timeouts.py does for "504 at the timeout" (measure the noise with 200 fast
calls, then one call to an upstream slower than the route timeout T) `--trials` times on the local
mesh, and prints how late (or early) each 504 came, the noise p99.9, how many trials the noise made
invalid, and how many valid ones fell outside the window: the observed false-failure rate with an
exact 95% upper bound. benchmarks/false_failures.py runs the check itself.
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
from meshproof.checks import Check, CheckInvalid
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
    excess, noises, outside, invalid = [], [], 0, 0
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        route = Route(scenario.ORDER_SERVICE, (RouteRule(splits={"v2": 100}, timeout=args.timeout, retries=Retry(0)),))
        mesh.apply([*scenario.BASELINE, route])
        started = time.monotonic()
        for _ in range(args.trials):
            check = Check(CheckRecord("bench", "timeouts", "bench"))
            fast = Request(scenario.ORDER_SERVICE, "/")
            noise = measure_noise(mesh, check, scenario.API_GATEWAY, fast, profile.timing)
            response = mesh.call(scenario.API_GATEWAY, Request(scenario.ORDER_SERVICE, "/",
                                                               headers=Echo(delay=2 * args.timeout).headers()))
            assert response.status == 504, response.describe()
            excess.append((response.elapsed - args.timeout) * 1000)
            noises.append(noise.p999 * 1000)
            try:
                outside += not noise.window(check, args.timeout, profile.timing).contains(response.elapsed)
            except CheckInvalid:
                invalid += 1
        elapsed = time.monotonic() - started
    finally:
        mesh.down()
        if hog is not None:
            hog.kill()
            hog.wait()
    excess.sort()
    n = len(excess)
    print(f"trials {n} ({'other core busy' if args.busy else 'idle'}), T = {args.timeout * 1000:.0f} ms, "
          f"{elapsed:.0f} s")
    print(f"504 arrived at T{excess[0]:+.2f} ms (earliest), T{excess[n // 2]:+.2f} ms (median), "
          f"T{excess[int(n * 0.99)]:+.2f} ms (p99), T{excess[-1]:+.2f} ms (latest)")
    noises.sort()
    tolerance = profile.timing.tolerance(args.timeout) * 1000
    print(f"window T +/- {tolerance:.1f} ms; noise p99.9 median {noises[n // 2]:.2f} ms, largest {noises[-1]:.2f} ms; "
          f"invalid (3 x p99.9 > tolerance): {invalid}/{n}")
    valid = n - invalid
    _, high = clopper_pearson(outside, valid, 0.95) if valid else (0.0, 1.0)
    print(f"outside the window: {outside}/{valid} valid trials; false-failure rate <= {high:.4f} (exact 95% upper "
          "bound)")


if __name__ == "__main__":
    main()
