"""How often does each randomised check fail a correct mesh? (observed false-failure rates, with intervals)

Runs every check whose verdict involves chance (a sampled split, a timing window, the load balancer's
random picks, the rate limiter against the clock) `--runs` times on the local mesh, unbroken, and prints
per check how many failed, with an exact 95% interval, and how many were invalid (a machine too noisy to
judge: never a pass, never counted as a false failure, but reported).

- `--relaxed` (the default for the split checks): the canary statistics at alpha 0.05 for the whole check
  (the rollout's steps share it) and a smaller planned sample (power 0.9 against 5 points, 10 per late
  rollout step), so false failures are frequent enough to count: about 5% of runs should fail if Envoy's
  picks are independent draws and the alpha split holds for the whole check. The real profile's rate
  (alpha 1e-4) is too small to observe; `--planned` runs the checks with it instead.
- The other checks run at the profile's real tolerances: their false-failure rate is what a user sees.
- `--busy` keeps the other core busy with a spinning process, as `pytest -n auto` may.

    python benchmarks/false_failures.py [--runs 300] [--only canary,timing,...] [--planned] [--busy]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter

from repeated_checks import local_mesh, other_core_busy, rate_line, run_once, suite_check

from meshproof.profile import Profile

#: Every randomised check, by what its chance is about.
CHECKS = {
    "canary": ["canary.a_weighted_split_is_accurate[weights]", "canary.a_weighted_split_is_accurate[even_weights]",
               "canary.a_weighted_split_is_accurate[three_way_weights]",
               "canary.premium_users_go_to_v2_and_everyone_else_follows_the_split",
               "canary.a_healthy_canary_is_rolled_out_step_by_step", "canary.a_failing_canary_is_rolled_back_to_100_0"],
    "timing": ["timeouts.an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout",
               "timeouts.the_route_timeout_bounds_the_sum_of_retries",
               "retries.a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried",
               "outlier.an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns"],
    "balancer": ["outlier.an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1",
                 "outlier.no_more_endpoints_than_max_ejection_percent_are_ejected",
                 "outlier.consecutive_gateway_errors_eject_on_503_but_not_on_500",
                 "retries.a_refused_connection_is_retried_when_connect_failure_is_listed"],
    "ratelimit": ["ratelimit.a_burst_lets_exactly_the_bucket_through_and_limits_the_rest",
                  "ratelimit.responses_carry_the_rate_limit_headers",
                  "ratelimit.after_a_refill_interval_tokens_per_fill_requests_pass_again"],
}


def relaxed(profile: Profile) -> Profile:
    canary = dataclasses.replace(profile.canary, alpha=0.05, power=0.9, min_shift=0.05, step_min_shift=0.1)
    return dataclasses.replace(profile, canary=canary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--only", default=",".join(CHECKS), help=f"groups: {','.join(CHECKS)}, or check ids")
    parser.add_argument("--planned", action="store_true", help="the split checks at the real alpha, not relaxed")
    parser.add_argument("--busy", action="store_true", help="spin a process on the other core meanwhile")
    args = parser.parse_args()
    chosen = [check for name in args.only.split(",") for check in CHECKS.get(name, [name])]
    profile = Profile()
    with other_core_busy(args.busy), local_mesh(profile) as mesh:
        print(f"{args.runs} runs each on the local mesh, {'other core busy' if args.busy else 'idle'}; split checks "
              f"at {'the profile alpha' if args.planned else 'alpha 0.05 (relaxed)'}")
        for check_id in chosen:
            check = suite_check(check_id)
            settings = relaxed(profile) if check_id.startswith("canary.") and not args.planned else profile
            outcomes: Counter[str] = Counter()
            started = time.monotonic()
            examples: list[str] = []
            for _ in range(args.runs):
                outcome, record = run_once(mesh, settings, check)
                outcomes[outcome] += 1
                if outcome != "passed" and len(examples) < 2:
                    examples.append(f"{outcome}: {record.message}"[:300])
            print(f"{check_id}: {rate_line(outcomes)} in {time.monotonic() - started:.0f}s", flush=True)
            for example in examples:
                print(f"    {example}")


if __name__ == "__main__":
    main()
