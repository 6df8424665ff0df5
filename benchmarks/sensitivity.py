"""The smallest change of its parameter each check catches, measured: each check against proportional mutants
of the local mesh (tests/mutants.py: `<parameter>_x<factor>`), factor by factor, moving away from 1.

For each check and direction the factors are tried nearest first; a factor counts as caught when every
one of `--repeat` runs failed (an invalid run, the machine too noisy to judge, counts as not caught and is
reported). Integer parameters change by whole units, so their factors collapse to the nearest distinct
value. A split's parameter is the second version's weight (a 2-point shift of 90/10 is 10 x 1.2). The
mesh starts once; each factor is a new config served through the hook, as a mutant run would be.
`--busy` keeps the other core busy with a spinning process.

    python benchmarks/sensitivity.py [--repeat 3] [--only CHECK_ID,...] [--busy]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from repeated_checks import HookSlot, local_mesh, other_core_busy, run_once, suite_check

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.mutants, from a checkout

from meshproof.profile import Profile
from tests.mutants import proportional

FINE = (0.98, 0.95, 0.9, 0.85, 0.8)
#: check id -> (parameter, factors below 1, nearest first); above 1 mirrors them (1/f is not used: +x%).
SWEEPS: dict[str, tuple[str, tuple[float, ...]]] = {
    "timeouts.an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout": ("route_timeout", FINE),
    "timeouts.the_route_timeout_bounds_the_sum_of_retries": ("route_timeout", FINE),
    "retries.a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried": ("per_try_timeout", FINE),
    "retries.an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times": ("retries", (0.8,)),
    "outlier.an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1":
        ("consecutive_5xx", (0.8,)),
    "outlier.consecutive_gateway_errors_eject_on_503_but_not_on_500": ("consecutive_gateway_errors", (0.8,)),
    "outlier.an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns":
        ("base_ejection_time", FINE),
    "outlier.no_more_endpoints_than_max_ejection_percent_are_ejected": ("max_ejection_percent", (0.95, 0.9, 0.85, 0.8)),
    "connpool.concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response": ("max_connections", (0.8,)),
    "ratelimit.a_burst_lets_exactly_the_bucket_through_and_limits_the_rest": ("max_tokens", (0.98, 0.95, 0.9, 0.8)),
    "ratelimit.after_a_refill_interval_tokens_per_fill_requests_pass_again": ("tokens_per_fill", FINE),
    "canary.a_weighted_split_is_accurate[weights]": ("canary_weight_10", (0.9, 0.8)),
    "canary.a_weighted_split_is_accurate[even_weights]": ("canary_weight_50", (0.98, 0.96)),
    "canary.a_weighted_split_is_accurate[three_way_weights]": ("canary_weight_30", (0.967, 0.933)),
}
#: Checks whose parameter is a second one of the same check.
EXTRA = {
    "connpool.concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response@pending":
        ("max_pending_requests", (0.8,)),
    "ratelimit.after_a_refill_interval_tokens_per_fill_requests_pass_again@interval": ("fill_interval", FINE),
    "canary.a_healthy_canary_is_rolled_out_step_by_step@25": ("canary_weight_25", (0.92, 0.8)),
    "canary.a_healthy_canary_is_rolled_out_step_by_step@75": ("canary_weight_75", (0.93, 0.8)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="check ids (with @variant where EXTRA has one)")
    parser.add_argument("--busy", action="store_true", help="spin a process on the other core meanwhile")
    args = parser.parse_args()
    sweeps = {**SWEEPS, **EXTRA}
    chosen = args.only.split(",") if args.only else list(sweeps)
    profile = Profile()
    slot = HookSlot()
    with other_core_busy(args.busy), local_mesh(profile, slot) as mesh:
        print(f"{args.repeat} runs per factor, {'other core busy' if args.busy else 'idle'}")
        for key in chosen:
            parameter, below = sweeps[key]
            check = suite_check(key.split("@", 1)[0])
            found = []
            for direction in (below, tuple(2 - f for f in below)):
                caught_at = None
                for factor in direction:
                    slot.current = proportional(parameter, factor)
                    outcomes: Counter[str] = Counter(run_once(mesh, profile, check)[0] for _ in range(args.repeat))
                    print(f"  {key} {parameter} x{factor:g}: {dict(outcomes)}", flush=True)
                    if outcomes["failed"] == args.repeat:
                        caught_at = factor
                        break
                found.append("none caught" if caught_at is None else f"{(caught_at - 1):+.0%}")
            slot.current = None
            print(f"{key}: {parameter}: smallest change caught in every run: {found[0]} / {found[1]}", flush=True)


if __name__ == "__main__":
    main()
