"""Every outlier, connpool and ratelimit check goes red against a mesh that breaks its property."""

from pathlib import Path

import pytest

from tests.mutation import assert_red, run_mutant

CASES = [
    ("higher_ejection_threshold", "outlier",
     "an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1",
     ["outlier threshold", "returned 6 consecutive errors", "expected exactly 5"]),
    ("lower_ejection_threshold", "outlier",
     "an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1",
     ["outlier threshold", "one fewer than 5", "must stay in the pool"]),
    ("longer_ejection", "outlier", "an_ejected_endpoint_gets_no_traffic_for_the_base_ejection_time_then_returns",
     ["outlier ejection time"]),
    ("max_ejection_percent_100", "outlier", "no_more_endpoints_than_max_ejection_percent_are_ejected",
     ["maxEjectionPercent", "2 of 3", "exactly 1"]),
    ("gateway_errors_count_every_5xx", "outlier", "consecutive_gateway_errors_eject_on_503_but_not_on_500",
     ["outlier gateway errors", "500 is not a gateway error"]),
    ("pool_limits_doubled", "connpool", "concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response",
     ["connection pool overflow", "expected 8 answered"]),
    ("no_circuit_breaker", "connpool", "concurrency_beyond_the_pool_is_refused_at_once_with_the_overflow_response",
     ["connection pool overflow", "0 refused"]),
    ("bigger_bucket", "ratelimit", "a_burst_lets_exactly_the_bucket_through_and_limits_the_rest",
     ["rate limit", "to pass (bucket 100 + refill)"]),
    ("rate_limit_not_enforced", "ratelimit", "a_burst_lets_exactly_the_bucket_through_and_limits_the_rest",
     ["rate limit", "0 got 429"]),
    ("rate_limit_headers_off", "ratelimit", "responses_carry_the_rate_limit_headers",
     ["rate limit headers", "passing responses lack"]),
    ("limited_header_missing", "ratelimit", "responses_carry_the_rate_limit_headers",
     ["x-rate-limit-remaining", "expected 0 on every 429"]),
    ("faster_refill", "ratelimit", "after_a_refill_interval_tokens_per_fill_requests_pass_again",
     ["rate limit refill", "tokens_per_fill 10 per 1s"]),
]


@pytest.mark.parametrize(("mutant", "capability", "check", "words"), CASES, ids=[f"{c[0]}->{c[2]}" for c in CASES])
def test_the_check_goes_red_against_its_mutant(
    tmp_path: Path, mutant: str, capability: str, check: str, words: list[str]
) -> None:
    results = run_mutant(tmp_path, mutant, capability, check)
    assert_red(results, f"{capability}.{check}", *words)
