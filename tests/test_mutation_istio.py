"""On real Istio, a broken manifest turns the matching check red.

Each case runs `meshproof run --mesh istio --cluster local --only CAPABILITY --manifest-hook
tests.manifest_mutants:MUTANT -- -k SELECT`: istiod translates the broken manifest, the Envoys enforce
it, and the check must fail naming the property. The same checks pass on the unbroken manifests
(tests/test_istio_suites.py).
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.istio_local import require_local_istio
from tests.mutation import assert_red, run_mutant


@dataclass(frozen=True)
class Case:
    mutant: str
    capability: str
    check: str
    words: list[str]
    select: str


CASES = [
    Case("weights_88_12", "canary", "a_weighted_split_is_accurate[weights]", ["canary split 90/10", "does not match"],
         "a_weighted_split_is_accurate and not even_weights and not three_way"),
    Case("principal_misspelled", "authz", "a_listed_identity_may_use_a_listed_method_on_the_orders_api",
         ["ALLOW by principal", "403"], "a_listed_identity_may_use_a_listed_method"),
    Case("fewer_retries", "retries", "an_upstream_that_always_fails_is_tried_exactly_one_plus_attempts_times",
         ["number of attempts is wrong", "saw 3", "exactly 4"], "always_fails"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{case.mutant}->{case.capability}.{case.check}" for case in CASES])
def test_the_check_goes_red_on_real_istio_against_a_broken_manifest(tmp_path: Path, case: Case) -> None:
    require_local_istio()
    results = run_mutant(tmp_path, case.mutant, case.capability, case.select, hook="--manifest-hook",
                         hooks="tests.manifest_mutants", mesh=("--mesh", "istio", "--cluster", "local"), timeout=1800)
    assert results["run"]["backend"] == "istio-local"
    assert_red(results, f"{case.capability}.{case.check}", *case.words)
