"""canary: weighted routing is accurate with stated error rates, header routing is exact, and a progressive
rollout advances, gates on v2's error rate, and rolls back.

Reference: the seed's VirtualService (`x-user-type: premium` to v2, everyone else 90/10) and its
CanaryRollout script (steps 10/25/50/75/100; v2's error rate < 1% from the mesh's telemetry to go on;
rollback to 100/0). Each split is judged by meshproof.split_sampling: a false-failure budget alpha per check
(default 1e-4, split evenly among the randomised tests of a check: the rollout's four steps share it) and a
sample planned so that a shift of 2 points is caught with probability 0.999, and at each rollout step a
shift of 20% of the step (2 points at 10%, 5 at 25% and beyond). `apply()` returns only once the new
weights are served, and one check proves the first requests after it already follow them. The failing
canary needs retries to stay on the version that failed (a retry that moved to v1 would hide v2's errors
from the split, as Linkerd may: `retries.same_version`).
"""

import pytest

from meshproof import features, scenario
from meshproof.backend import Backend, FaultInjection, Request, Telemetry
from meshproof.checks import Check
from meshproof.faults import AppError
from meshproof.intent import Intent
from meshproof.profile import Profile
from meshproof.split_sampling import SplitSample, exact_leak_n, sample_split
from meshproof.workloads.directives import Echo

pytestmark = pytest.mark.capability("canary")

CALLER = scenario.API_GATEWAY


def _request(**headers: str) -> Request:
    return Request(scenario.ORDER_SERVICE, "/api/v1/orders", headers={**Echo(body_size=0).headers(), **headers})


def _route(profile: Profile, weights: dict[str, int]) -> list[Intent]:
    route = scenario.seed_virtual_service(profile.retries.retry(), profile.retries.timeout, weights)
    return [*scenario.BASELINE, route]


def _judge(mesh: Backend, check: Check, profile: Profile, label: str, weights: dict[str, int], delta: float,
           *, tests: int = 1, **headers: str) -> SplitSample:
    """`tests`: how many randomised split tests the check judges in all; each gets alpha / tests."""
    alpha = profile.canary.alpha / tests
    sample = sample_split(mesh, check, source=CALLER, request=_request(**headers), weights=weights, delta=delta,
                          canary=profile.canary, alpha=alpha)
    sample.record(check, label, alpha)
    return sample


def _randomised_steps(profile: Profile) -> int:
    """The rollout steps judged by a randomised test (0 and 100 are exact: all or nothing to v2)."""
    return sum(0 < step < 100 for step in profile.canary.steps)


def _expect_split(check: Check, sample: SplitSample, name: str) -> None:
    check.expect(sample.passed, f"canary split {name}: {sample.describe()} does not match {sample.weights} "
                                f"({sample.criterion})")


@pytest.mark.parametrize("split", ["weights", "even_weights", "three_way_weights"])
def test_a_weighted_split_is_accurate(mesh: Backend, check: Check, profile: Profile, split: str) -> None:
    """The route's 90/10 (and 50/50, and three-way) split is what the requests see, within the planned test."""
    weights = getattr(profile.canary, split)
    mesh.apply(_route(profile, weights))
    check.criterion(f"split {weights}: false-failure budget alpha = {profile.canary.alpha:g}; a shift of "
                    f"{profile.canary.min_shift:.0%} in any version's share is caught with probability >= "
                    f"{profile.canary.power} (sample size planned, see the plan in the evidence)")
    sample = _judge(mesh, check, profile, "split", weights, profile.canary.min_shift)
    _expect_split(check, sample, "/".join(map(str, weights.values())))


def test_premium_users_go_to_v2_and_everyone_else_follows_the_split(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """`x-user-type: premium` goes 100% to v2; other values of the header follow the 90/10 split."""
    canary = profile.canary
    mesh.apply(_route(profile, canary.weights))
    check.criterion(f"premium: every one of {exact_leak_n(canary.min_shift, canary.power)} requests answered by v2; "
                    f"x-user-type: standard: the {canary.weights} split at alpha {canary.alpha:g}, power "
                    f"{canary.power} against a {canary.step_min_shift:.0%} shift")
    premium = _judge(mesh, check, profile, "premium", {"v2": 100}, canary.min_shift, **{"x-user-type": "premium"})
    check.expect(premium.passed, f"canary header routing: x-user-type: premium must go to v2 only; "
                                 f"{premium.describe()}")
    standard = _judge(mesh, check, profile, "standard", canary.weights, canary.step_min_shift,
                      **{"x-user-type": "standard"})
    _expect_split(check, standard, "for x-user-type: standard")


def test_new_weights_are_served_before_the_first_request_after_apply(
    mesh: Backend, check: Check, profile: Profile
) -> None:
    """Right after apply() returns, requests already follow the new weights (no sampling of stale config)."""
    canary = profile.canary
    n = exact_leak_n(canary.min_shift, canary.power)
    check.criterion(f"switch 100/0 -> 0/100 -> 100/0; right after each apply, all {n} requests go to the new "
                    f"version (a stale config serving {canary.min_shift:.0%} would show with probability >= "
                    f"{canary.power})")
    for weights in ({"v1": 100, "v2": 0}, {"v1": 0, "v2": 100}, {"v1": 100, "v2": 0}):
        mesh.apply(_route(profile, weights))
        sample = _judge(mesh, check, profile, "after_apply", weights, canary.min_shift)
        check.expect(sample.passed, f"canary propagation: right after applying {weights} the route served "
                                    f"{sample.describe()}; the new weights were not in force yet")


def _rollout(mesh: Backend, telemetry: Telemetry, check: Check, profile: Profile) -> tuple[list[int], bool]:
    """The seed's CanaryRollout: each step applied, verified within its interval, then gated on v2's error
    rate from the mesh's telemetry. Returns the steps taken and whether it rolled back."""
    canary = profile.canary
    taken = []
    for step in canary.steps:
        weights = {"v1": 100 - step, "v2": step}
        mesh.apply(_route(profile, weights))
        before = telemetry.request_counts(scenario.ORDER_SERVICE, "v2")
        sample = _judge(mesh, check, profile, f"step_{step}", weights, canary.step_shift(step),
                        tests=_randomised_steps(profile))
        _expect_split(check, sample, f"at rollout step {step}%")
        taken.append(step)
        if step == 100:
            break
        counts = telemetry.request_counts(scenario.ORDER_SERVICE, "v2") - before
        check.evidence({"step": step, "v2_requests": counts.total, "v2_5xx": counts.server_errors,
                        "v2_error_rate": counts.error_rate})
        if counts.error_rate >= canary.error_threshold:
            mesh.apply(_route(profile, {"v1": 100, "v2": 0}))
            rolled_back = _judge(mesh, check, profile, "after_rollback", {"v1": 100}, canary.step_min_shift)
            check.expect(rolled_back.passed, f"canary rollback did not take effect: {rolled_back.describe()}")
            return taken, True
    return taken, False


def test_a_healthy_canary_is_rolled_out_step_by_step(mesh: Backend, telemetry: Telemetry, check: Check,
                                                     profile: Profile) -> None:
    """Each rollout step 10/25/50/75/100 is applied, verified within its interval, and gated on health."""
    canary = profile.canary
    shifts = ", ".join(f"{step}%: {canary.step_shift(step):.0%}" for step in canary.steps)
    check.criterion(f"steps {canary.steps}: alpha {canary.alpha:g} for the whole rollout, "
                    f"{canary.alpha / _randomised_steps(profile):g} per randomised step, power {canary.power} against "
                    f"a shift of 20% of the step ({shifts}); v2's error rate from the mesh's telemetry below "
                    f"{canary.error_threshold:.0%} at every step, so the rollout reaches 100%")
    taken, rolled_back = _rollout(mesh, telemetry, check, profile)
    check.measure("steps_taken", taken)
    check.expect(not rolled_back and taken == canary.steps,
                 f"canary rollout: a healthy v2 was rolled back after steps {taken}")


@pytest.mark.requires(features.FAULT_APP_ERROR, features.RETRIES_SAME_VERSION)
def test_a_failing_canary_is_rolled_back_to_100_0(mesh: Backend, faults: FaultInjection, telemetry: Telemetry,
                                                  check: Check, profile: Profile) -> None:
    """When v2's error rate passes the threshold, the rollout stops and routes everything back to v1."""
    canary = profile.canary
    for instance in mesh.instances(scenario.ORDER_SERVICE, version="v2"):
        faults.inject(AppError(503), instance)
    check.criterion(f"v2 answers 503: the gate (v2's error rate from the mesh's telemetry >= "
                    f"{canary.error_threshold:.0%}) trips after the first step {canary.steps[0]}%, the route goes back "
                    f"to 100/0, and every one of {exact_leak_n(canary.step_min_shift, canary.power)} requests after "
                    "it is answered by v1")
    taken, rolled_back = _rollout(mesh, telemetry, check, profile)
    check.measure("steps_taken", taken)
    check.expect(rolled_back and taken == canary.steps[:1],
                 f"canary rollback: with v2 failing, the rollout went through steps {taken} "
                 f"({'rolled back' if rolled_back else 'never rolled back'}); expected a rollback after "
                 f"{canary.steps[0]}%")

