"""Every retries and timeouts check goes red against a mesh that breaks the property it guards."""

from pathlib import Path

import pytest

from tests.mutation import assert_red, run_mutant

CASES = [
    ("fewer_retries", "retries", "an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times",
     ["number of attempts is wrong", "saw 3", "exactly 4"]),
    ("more_retries", "retries", "an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times",
     ["saw 5", "exactly 4"]),
    ("fewer_retries", "retries", "an_upstream_failing_the_first_k_attempts_succeeds_after_exactly_k_plus_one",
     ["retries on 5xx", "expected HTTP 200"]),
    ("retry_on_4xx_too", "retries", "a_status_not_in_retry_on_is_not_retried",
     ["retryOn is not honoured", "after 4 attempts", "expected 404 after 1"]),
    ("reset_never_retried", "retries", "a_reset_is_retried_only_when_reset_is_listed", ["retries on reset"]),
    ("reset_always_retried", "retries", "a_reset_is_retried_only_when_reset_is_listed", ["retryOn is not honoured"]),
    ("connect_failure_never_retried", "retries", "a_refused_connection_is_retried_when_connect_failure_is_listed",
     ["retries on connect-failure", "expected none"]),
    ("no_per_try_timeout", "retries", "a_first_attempt_slower_than_the_per_try_timeout_is_abandoned_and_retried",
     ["per-try timeout", "after 1 attempts"]),
    ("longer_route_timeout", "timeouts", "an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout",
     ["route timeout", "outside"]),
    ("no_route_timeout", "timeouts", "an_upstream_slower_than_the_route_timeout_gets_504_at_the_timeout",
     ["route timeout", "HTTP 200", "expected 504"]),
    ("longer_route_timeout", "timeouts", "the_route_timeout_bounds_the_sum_of_retries",
     ["route timeout does not bound retries"]),
]


@pytest.mark.parametrize(("mutant", "capability", "check", "words"), CASES, ids=[f"{c[0]}->{c[2]}" for c in CASES])
def test_the_check_goes_red_against_its_mutant(
    tmp_path: Path, mutant: str, capability: str, check: str, words: list[str]
) -> None:
    results = run_mutant(tmp_path, mutant, capability, check)
    assert_red(results, f"{capability}.{check}", *words)
