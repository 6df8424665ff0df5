"""Does a correct mesh fail the canary split check as rarely as planned? (observed false-failure rate)

Two measurements on the local mesh, with its real Envoy weighted routing:
1. `--relaxed N`: N repetitions of the 90/10 judgement at alpha = 0.05 (sample planned for a 5-point
   shift at power 0.9, a few hundred requests each), so false failures are frequent enough to count:
   if Envoy's choice per request is an independent draw, about 5% fail. Far fewer would mean the
   test is conservative for this mesh; far more, that the draws are correlated and alpha is a lie.
2. `--planned K`: K repetitions of the real check (alpha = 1e-4, power 0.999 against 2 points),
   with how long each took: all should pass.

    python benchmarks/canary_false_failures.py --relaxed 300 --planned 5
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from meshproof import scenario
from meshproof.backend import Request
from meshproof.backends.local.mesh import LocalMesh
from meshproof.checks import Check
from meshproof.profile import CanaryProfile, Profile
from meshproof.results import CheckRecord
from meshproof.split_sampling import sample_split
from meshproof.stats import clopper_pearson
from meshproof.workloads.directives import Echo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relaxed", type=int, default=300, help="repetitions at alpha 0.05")
    parser.add_argument("--planned", type=int, default=5, help="repetitions of the real check")
    args = parser.parse_args()
    profile = Profile()
    canary = profile.canary
    relaxed = dataclasses.replace(canary, alpha=0.05, power=0.9)
    request = Request(scenario.ORDER_SERVICE, "/", headers=Echo(body_size=0).headers())
    mesh = LocalMesh(profile)
    try:
        mesh.up(scenario.WORKLOADS, scenario.BASELINE)
        route = scenario.seed_virtual_service(profile.retries.retry(), profile.retries.timeout, canary.weights)
        mesh.apply([*scenario.BASELINE, route])

        def judge(settings: CanaryProfile, delta: float) -> tuple[bool, int, float]:
            check = Check(CheckRecord("bench", "canary", "bench"))
            sample = sample_split(mesh, check, source=scenario.API_GATEWAY, request=request, weights=canary.weights,
                                  delta=delta, canary=settings)
            return sample.passed, sample.n, sample.seconds

        failures, n = 0, 0
        started = time.monotonic()
        for _ in range(args.relaxed):
            passed, n, _ = judge(relaxed, 0.05)
            failures += not passed
        if args.relaxed:
            low, high = clopper_pearson(failures, args.relaxed, 0.95)
            print(f"alpha 0.05, n = {n} per sample: {failures}/{args.relaxed} correct splits failed "
                  f"({failures / args.relaxed:.1%}, 95% CI {low:.1%}..{high:.1%}) in {time.monotonic() - started:.0f}s")
        results = [judge(canary, canary.min_shift) for _ in range(args.planned)]
        if results:
            passed_count = sum(passed for passed, _, _ in results)
            _, high = clopper_pearson(args.planned - passed_count, args.planned, 0.95)
            print(f"alpha {canary.alpha:g}, power {canary.power} against {canary.min_shift:.0%}: "
                  f"{passed_count}/{args.planned} passed, n = {results[0][1]}, "
                  f"{sum(s for _, _, s in results) / len(results):.1f}s each (false-failure rate <= {high:.1%} "
                  "at 95% from these runs alone)")
    finally:
        mesh.down()


if __name__ == "__main__":
    main()
