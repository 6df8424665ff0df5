"""Every canary check goes red against a mesh that breaks the property it guards."""

from pathlib import Path

import pytest

from tests.mutation import assert_red, run_mutant

CASES = [
    # (mutant, check id, pytest -k selecting just that check, words its failure message must contain)
    ("weights_88_12", "a_weighted_split_is_accurate[weights]",
     "a_weighted_split_is_accurate and not even_weights and not three_way", ["canary split 90/10", "does not match"]),
    ("premium_header_ignored", "premium_users_go_to_v2_and_everyone_else_follows_the_split", "premium_users",
     ["canary header routing", "premium must go to v2 only"]),
    ("stale_by_one_update", "new_weights_are_served_before_the_first_request_after_apply", "new_weights_are_served",
     ["canary propagation", "not in force yet"]),
    ("canary_weight_doubled", "a_healthy_canary_is_rolled_out_step_by_step", "healthy_canary",
     ["canary split at rollout step 10%"]),
    ("stale_by_one_update", "a_failing_canary_is_rolled_back_to_100_0", "failing_canary",
     ["canary split at rollout step 10%"]),
    ("errors_hidden_from_callers", "a_failing_canary_is_rolled_back_to_100_0", "failing_canary",
     ["canary rollback", "never rolled back"]),
]


@pytest.mark.parametrize(("mutant", "check", "select", "words"), CASES, ids=[f"{c[0]}->{c[1]}" for c in CASES])
def test_the_check_goes_red_against_its_mutant(
    tmp_path: Path, mutant: str, check: str, select: str, words: list[str]
) -> None:
    results = run_mutant(tmp_path, mutant, "canary", select)
    assert_red(results, f"canary.{check}", *words)
