"""meshproof.stats against published values, scipy, brute force and seeded simulation."""

import itertools
import math
import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from meshproof import stats
from meshproof.stats import (
    BinomialPlan,
    SequentialBinomialTest,
    SequentialPlan,
    binomial_p_value,
    block_bootstrap_quantile_diff,
    chi_square_gof,
    clopper_pearson,
    exact_power,
    judge_split,
    plan_binomial,
    plan_chi_square,
    plan_sequential,
    requests_to_reach,
    two_run_overhead_change,
    wilson,
)

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17:857-872, Table II: 95% intervals, rounded to four places.
NEWCOMBE_EXACT = {(81, 263): (0.2527, 0.3676), (15, 148): (0.0578, 0.1617), (0, 20): (0.0, 0.1684),
                  (1, 29): (0.0009, 0.1776)}  # fmt: skip
NEWCOMBE_SCORE = {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605), (0, 20): (0.0, 0.1611),
                  (1, 29): (0.0061, 0.1718)}  # fmt: skip

# Small designs whose every n can be checked by brute force: (p0, delta, alpha, power).
SMALL_DESIGNS = [(0.5, 0.3, 0.05, 0.8), (0.9, 0.2, 0.05, 0.9), (0.03, 0.05, 0.01, 0.9),
                 (0.97, 0.05, 1e-3, 0.99)]  # fmt: skip

#: the default profile's false-failure budget and power (CanaryProfile), written out
BUDGET = {"alpha": 1e-4, "power": 0.999}


# --- intervals and the exact test ----------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), list(NEWCOMBE_EXACT))
def test_clopper_pearson_matches_newcombes_published_table(k: int, n: int) -> None:
    assert [round(x, 4) for x in clopper_pearson(k, n, 0.95)] == list(NEWCOMBE_EXACT[k, n])


@pytest.mark.parametrize(("k", "n"), list(NEWCOMBE_SCORE))
def test_wilson_matches_newcombes_published_table(k: int, n: int) -> None:
    assert [round(x, 4) for x in wilson(k, n, 0.95)] == list(NEWCOMBE_SCORE[k, n])


@pytest.mark.parametrize("n", [1, 7, 100, 5000])
@pytest.mark.parametrize("confidence", [0.95, 1 - 1e-4])
def test_intervals_at_zero_and_n_have_closed_forms(n: int, confidence: float) -> None:
    tail = (1 - confidence) / 2
    z2 = scipy_stats.norm.isf(tail) ** 2
    assert clopper_pearson(0, n, confidence) == pytest.approx((0.0, 1 - tail ** (1 / n)), rel=1e-9)
    assert clopper_pearson(n, n, confidence) == pytest.approx((tail ** (1 / n), 1.0), rel=1e-9)
    assert wilson(0, n, confidence) == pytest.approx((0.0, z2 / (n + z2)), rel=1e-9)
    assert wilson(n, n, confidence) == pytest.approx((n / (n + z2), 1.0), rel=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 2), (3, 10), (50, 100), (999, 1000), (1190, 11865)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 1 - 1e-4])
def test_intervals_agree_with_scipy(k: int, n: int, confidence: float) -> None:
    result = scipy_stats.binomtest(k, n)
    assert clopper_pearson(k, n, confidence) == pytest.approx(
        tuple(result.proportion_ci(confidence, method="exact")), rel=1e-9, abs=1e-12
    )
    assert wilson(k, n, confidence) == pytest.approx(
        tuple(result.proportion_ci(confidence, method="wilson")), rel=1e-9, abs=1e-12
    )


def test_binomial_p_value_is_twice_the_smaller_tail() -> None:
    assert binomial_p_value(2, 20, 0.5) == pytest.approx(2 * (1 + 20 + 190) / 2**20, rel=1e-12)
    assert binomial_p_value(18, 20, 0.5) == binomial_p_value(2, 20, 0.5)
    assert binomial_p_value(10, 100, 0.1) == 1.0
    for k, n, p0 in [(3, 50, 0.2), (31, 100, 0.2), (1150, 11865, 0.1)]:
        lower = scipy_stats.binomtest(k, n, p0, alternative="less").pvalue
        upper = scipy_stats.binomtest(k, n, p0, alternative="greater").pvalue
        assert binomial_p_value(k, n, p0) == pytest.approx(min(1.0, 2 * min(lower, upper)), rel=1e-9)


def test_binomial_p_value_equals_scipys_default_when_the_null_is_symmetric() -> None:
    for k in range(0, 41, 3):
        scipy_default = scipy_stats.binomtest(k, 40, 0.5).pvalue
        assert binomial_p_value(k, 40, 0.5) == pytest.approx(scipy_default, rel=1e-9)


@pytest.mark.parametrize(("n", "p0", "alpha"), [(20, 0.5, 0.05), (137, 0.1, 0.01), (700, 0.1, 1e-4)])
def test_the_test_fails_exactly_when_clopper_pearson_excludes_p0(n: int, p0: float, alpha: float) -> None:
    for k in range(n + 1):
        low, high = clopper_pearson(k, n, 1 - alpha)
        if min(abs(low - p0), abs(high - p0)) < 1e-9:
            continue  # on the boundary itself the two are equal up to rounding
        assert (binomial_p_value(k, n, p0) <= alpha) == (not low <= p0 <= high), k


def test_chi_square_matches_scipy_and_counts_a_missing_version_as_zero() -> None:
    counts = {"v1": 4930, "v2": 3100, "v3": 1970}
    result = chi_square_gof(counts, {"v1": 50, "v2": 30, "v3": 20})
    expected = scipy_stats.chisquare([4930, 3100, 1970], [5000, 3000, 2000])
    assert (result.statistic, result.p_value) == pytest.approx((expected.statistic, expected.pvalue))
    assert result.df == 2
    missing = chi_square_gof({"v1": 9, "v2": 3}, {"v1": 1, "v2": 1, "v3": 1})
    assert missing.statistic == pytest.approx(scipy_stats.chisquare([9, 3, 0]).statistic)
    with pytest.raises(ValueError, match="without an expected share"):
        chi_square_gof({"v1": 1, "v4": 2}, {"v1": 1, "v2": 1})


# --- planning ------------------------------------------------------------------------------------


def _power_by_brute_force(n: int, p0: float, p: float, alpha: float) -> float:
    """Power of the equal-tailed test computed from scratch: the p-value of every k, with scipy's sf."""
    k = np.arange(n + 1)
    p_values = 2 * np.minimum(scipy_stats.binom.cdf(k, n, p0), scipy_stats.binom.sf(k - 1, n, p0))
    return float(scipy_stats.binom.pmf(k, n, p)[p_values <= alpha].sum())


@pytest.mark.parametrize(
    ("p0", "delta", "n"),
    [(0.10, 0.02, 11865), (0.50, 0.02, 30448), (0.10, 0.05, 2101), (0.25, 0.05, 3874), (0.50, 0.05, 4869),
     (0.75, 0.05, 3874)],
)  # fmt: skip
def test_binomial_plan_has_the_power_at_n_and_not_at_n_minus_one(p0: float, delta: float, n: int) -> None:
    plan = plan_binomial(p0, delta=delta, alpha=1e-4, power=0.999)
    assert plan.n == n
    sides = (p0 + delta, p0 - delta)
    assert min(_power_by_brute_force(n, p0, p, 1e-4) for p in sides) == pytest.approx(plan.achieved_power)
    assert min(exact_power(n, p0, p, 1e-4) for p in sides) == plan.achieved_power >= 0.999
    assert min(_power_by_brute_force(n - 1, p0, p, 1e-4) for p in sides) < 0.999
    assert plan.size == pytest.approx(_power_by_brute_force(n, p0, p0, 1e-4)) and plan.size <= 1e-4
    near = range(plan.accept_low - 3, plan.accept_high + 4)
    passing = [k for k in near if binomial_p_value(k, n, p0) > 1e-4]
    assert (passing[0], passing[-1]) == (plan.accept_low, plan.accept_high)


@pytest.mark.parametrize(("p0", "delta", "alpha", "power"), SMALL_DESIGNS)
def test_binomial_plan_is_the_smallest_n_of_all(p0: float, delta: float, alpha: float, power: float) -> None:
    plan = plan_binomial(p0, delta=delta, alpha=alpha, power=power)
    sides = (min(1.0, p0 + delta), max(0.0, p0 - delta))
    enough = [
        n for n in range(1, plan.n + 1) if min(_power_by_brute_force(n, p0, p, alpha) for p in sides) >= power
    ]
    assert enough[0] == plan.n


def test_a_rollout_step_past_full_weight_is_planned_against_a_clipped_share() -> None:
    plan = plan_binomial(0.97, delta=0.05, alpha=1e-3, power=0.99)
    assert exact_power(plan.n, 0.97, 1.0, 1e-3) >= 0.99
    assert exact_power(plan.n, 0.97, 0.92, 1e-3) >= 0.99


def test_chi_square_plan_is_minimal_for_the_least_detectable_shift() -> None:
    weights = {"v1": 50, "v2": 30, "v3": 20}
    plan = plan_chi_square(weights, delta=0.02, alpha=1e-4, power=0.999)
    assert plan.n == 33246
    assert plan.alternative == pytest.approx({"v1": 0.52, "v2": 0.288, "v3": 0.192})

    def ncx2_power(n: int, shares: dict[str, float]) -> float:
        noncentrality = n * sum((shares[v] - p) ** 2 / p for v, p in plan.probabilities.items())
        return float(scipy_stats.ncx2.sf(plan.critical_value, 2, noncentrality))

    assert ncx2_power(plan.n, plan.alternative) >= 0.999 > ncx2_power(plan.n - 1, plan.alternative)
    # Every other way of putting one version off by delta, e.g. moving delta between two versions, is
    # caught at least as often.
    for source, sink in itertools.permutations(plan.probabilities, 2):
        moved = dict(plan.probabilities)
        moved[source] -= 0.02
        moved[sink] += 0.02
        assert ncx2_power(plan.n, moved) > plan.achieved_power


def test_chi_square_plan_holds_its_false_failure_rate_and_power_by_simulation() -> None:
    plan = plan_chi_square({"a": 6, "b": 3, "c": 1}, delta=0.05, alpha=0.01, power=0.9)
    rng = np.random.default_rng(7)
    runs = 4000
    expected = plan.n * np.array(list(plan.probabilities.values()))

    def failure_rate(shares: dict[str, float]) -> float:
        counts = rng.multinomial(plan.n, list(shares.values()), size=runs)
        statistic = ((counts - expected) ** 2 / expected).sum(axis=1)
        return float((statistic > plan.critical_value).mean())

    assert failure_rate(plan.probabilities) < 0.01 + 3 * math.sqrt(0.01 * 0.99 / runs)
    assert failure_rate(plan.alternative) > 0.9 - 3 * math.sqrt(0.9 * 0.1 / runs)


# --- judge_split ---------------------------------------------------------------------------------


def test_judge_split_of_two_versions_is_the_exact_test_with_its_intervals() -> None:
    plan = plan_binomial(0.1, delta=0.05, **BUDGET)
    good = judge_split({"v1": plan.n - 210, "v2": 210}, {"v1": 90, "v2": 10}, plan)
    assert good.passed and good.n == plan.n and good.shares["v2"] == pytest.approx(210 / plan.n)
    assert good.p_value == binomial_p_value(210, plan.n, 0.1)
    low, high = good.intervals["v2"]
    assert low < 0.1 < high and "exact equal-tailed binomial test of v2" in good.criterion
    too_many = plan.accept_high + 1
    heavy = judge_split({"v1": plan.n - too_many, "v2": too_many}, {"v1": 9, "v2": 1}, plan)
    assert not heavy.passed and not heavy.intervals["v2"][0] <= 0.1 <= heavy.intervals["v2"][1]
    short = judge_split({"v1": 900, "v2": 100}, {"v1": 90, "v2": 10}, plan)
    assert short.passed and f"only 1000 of the planned {plan.n}" in short.criterion


def test_judge_split_of_three_versions_is_the_chi_square_test() -> None:
    weights = {"v1": 50, "v2": 30, "v3": 20}
    plan = plan_chi_square(weights, delta=0.02, **BUDGET)
    counts = {"v1": plan.n // 2 + 400, "v2": plan.n * 3 // 10 - 400, "v3": plan.n // 5}
    verdict = judge_split(counts, weights, plan)
    assert verdict.p_value == chi_square_gof(counts, weights).p_value
    assert not verdict.passed and "chi-square" in verdict.criterion


def test_judge_split_fails_responses_from_a_version_outside_the_split() -> None:
    plan = plan_binomial(0.5, delta=0.05, **BUDGET)
    verdict = judge_split({"v1": 2400, "v2": 2460, "v3": 9}, {"v1": 1, "v2": 1}, plan)
    assert not verdict.passed and verdict.p_value == 0.0 and verdict.expected["v3"] == 0.0
    assert "{'v3': 9}" in verdict.criterion


def test_judge_split_refuses_a_plan_made_for_another_split() -> None:
    with pytest.raises(ValueError, match=r"plan is for a share of 0\.1,"):
        judge_split({"v1": 50, "v2": 50}, {"v1": 1, "v2": 1}, plan_binomial(0.1, delta=0.05, **BUDGET))
    with pytest.raises(ValueError, match="the plan is for"):
        plan = plan_chi_square({"a": 2, "b": 1, "c": 1}, delta=0.02, **BUDGET)
        judge_split({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}, plan)


# --- the sequential test -------------------------------------------------------------------------


def _failure_probability_by_enumeration(plan: SequentialPlan, p: float) -> float:
    """Runs SequentialBinomialTest over every possible sequence of requests per look (each with its whole
    probability, also when the test stops before the later looks) and adds up the failing ones."""
    steps = np.diff((0, *plan.looks))
    pmfs = [scipy_stats.binom.pmf(np.arange(m + 1), m, p) for m in steps]
    failed = 0.0
    for increments in itertools.product(*(range(m + 1) for m in steps)):
        test = SequentialBinomialTest(plan)
        counts = np.cumsum(increments)
        verdict = next(v for k, n in zip(counts, plan.looks, strict=True) if (v := test.update(int(k), n)))
        if not verdict.passed:
            failed += math.prod(pmf[i] for pmf, i in zip(pmfs, increments, strict=True))
    return failed


def test_sequential_false_failure_rate_and_power_are_exact_by_enumeration() -> None:
    plan = plan_sequential(0.5, delta=0.3, alpha=0.05, power=0.8, looks=4)
    assert plan.looks == (5, 10, 15, 20)
    size = _failure_probability_by_enumeration(plan, 0.5)
    assert size == pytest.approx(plan.spent[-1], abs=1e-12) and size <= 0.05
    power = min(_failure_probability_by_enumeration(plan, p) for p in (0.8, 0.2))
    assert power == pytest.approx(plan.achieved_power, abs=1e-12) and power >= 0.8


def test_sequential_false_failure_rate_by_seeded_simulation() -> None:
    plan = plan_sequential(0.2, delta=0.05, alpha=0.05, power=0.9, looks=4)
    rng = np.random.default_rng(11)
    runs = 40_000

    def failure_rate(p: float) -> float:
        counts = rng.binomial(np.diff((0, *plan.looks)), p, size=(runs, len(plan.looks))).cumsum(axis=1)
        outside = (counts < np.array(plan.accept_low)) | (counts > np.array(plan.accept_high))
        return float(outside.any(axis=1).mean())

    size = failure_rate(0.2)
    error = math.sqrt(0.05 * 0.95 / runs)
    assert abs(size - plan.spent[-1]) < 4 * error and size < 0.05 + 3 * error
    assert failure_rate(0.25) > 0.9 - 4 * math.sqrt(0.9 * 0.1 / runs)


def test_sequential_boundaries_spend_alpha_like_obrien_fleming() -> None:
    plan = plan_sequential(0.5, delta=0.02, **BUDGET, looks=4)
    z = scipy_stats.norm.isf(1e-4 / 2)
    budget = [2 * scipy_stats.norm.sf(z / math.sqrt(n / plan.n)) for n in plan.looks]
    assert all(spent <= allowed for spent, allowed in zip(plan.spent, budget, strict=True))
    assert plan.spent[-1] <= 1e-4 and plan.spent[0] < 1e-13
    ranges = zip(plan.accept_low, plan.accept_high, plan.looks, strict=True)
    assert all(low + high == n for low, high, n in ranges)  # symmetric about n/2
    assert plan.achieved_power >= 0.999 and plan.n == pytest.approx(plan.fixed_n, rel=0.01)


def test_sequential_plan_has_the_power_at_n_and_not_at_n_minus_one() -> None:
    plan = plan_sequential(0.1, delta=0.05, **BUDGET, looks=4)
    assert plan.achieved_power >= 0.999
    shorter = tuple(i * (plan.n - 1) // 4 for i in range(1, 5))
    low, high, _ = stats._spending_boundaries(0.1, 1e-4, shorter)
    assert min(stats._sequential_rejection(p, shorter, low, high) for p in (0.15, 0.05)) < 0.999


def test_sequential_test_fails_a_broken_split_at_the_first_look() -> None:
    plan = plan_sequential(0.5, delta=0.02, **BUDGET, looks=4)
    test = SequentialBinomialTest(plan)
    verdict = test.update(round(0.45 * plan.looks[0]), plan.looks[0])
    assert verdict is not None and not verdict.passed and verdict.look == 1
    assert "outside" in verdict.criterion
    with pytest.raises(RuntimeError, match="already reached its verdict"):
        test.update(plan.looks[1] // 2, plan.looks[1])


def test_sequential_test_passes_a_correct_split_only_at_the_last_look() -> None:
    plan = plan_sequential(0.1, delta=0.05, **BUDGET, looks=4)
    test = SequentialBinomialTest(plan)
    verdicts = [test.update(round(0.1 * n), n) for n in plan.looks]
    assert verdicts[:-1] == [None] * 3
    last = verdicts[-1]
    assert last is not None and last.passed and last.look == 4 and test.verdict == last


def test_sequential_test_insists_on_planned_looks_and_cumulative_counts() -> None:
    plan = plan_sequential(0.1, delta=0.05, **BUDGET, looks=4)
    test = SequentialBinomialTest(plan)
    with pytest.raises(ValueError, match="planned after"):
        test.update(50, plan.looks[0] + 1)
    test.update(52, plan.looks[0])
    with pytest.raises(ValueError, match="cumulative"):
        test.update(51, plan.looks[1])


# --- latency overhead ----------------------------------------------------------------------------


Blocks = list[np.ndarray]


def _latency_blocks(blocks: int, per_block: int, shift: float, seed: int) -> tuple[Blocks, Blocks]:
    """Paired blocks with a shared slow-down per block (so requests within a block are correlated) and
    mesh = baseline distribution + `shift` microseconds: the true difference at every quantile is `shift`."""
    rng = np.random.default_rng(seed)
    slowdown = rng.lognormal(0.0, 0.3, size=blocks)
    baseline = [150 * s * rng.lognormal(0.0, 0.5, size=per_block) for s in slowdown]
    mesh = [150 * s * rng.lognormal(0.0, 0.5, size=per_block) + shift for s in slowdown]
    return baseline, mesh


def test_pooled_quantiles_of_a_resample_are_exactly_numpys_inverted_cdf() -> None:
    rng = np.random.default_rng(3)
    blocks = [np.sort(rng.exponential(100, size=rng.integers(1, 400))) for _ in range(12)]
    weights = rng.multinomial(12, np.full(12, 1 / 12), size=20)
    levels = np.array([0.001, 0.5, 0.9, 0.99, 0.999])
    fast = stats._pooled_quantiles(blocks, weights, levels)
    for row, w in zip(fast, weights, strict=True):
        pooled = np.concatenate([np.tile(block, count) for block, count in zip(blocks, w, strict=True)])
        assert np.array_equal(row, np.quantile(pooled, levels, method="inverted_cdf"))


def test_bootstrap_interval_contains_a_known_shift_and_is_reproducible() -> None:
    baseline, mesh = _latency_blocks(60, 2000, shift=500.0, seed=5)
    result = block_bootstrap_quantile_diff(baseline, mesh, resamples=1000, seed=1)
    assert set(result) == {0.5, 0.9, 0.99, 0.999}
    for estimate in result.values():
        assert estimate.lo <= 500.0 <= estimate.hi
        assert estimate.lo <= estimate.value <= estimate.hi
    assert block_bootstrap_quantile_diff(baseline, mesh, resamples=1000, seed=1) == result


def test_bootstrap_covers_the_true_shift_about_as_often_as_stated() -> None:
    covered = 0
    repeats = 60
    for seed in range(repeats):
        baseline, mesh = _latency_blocks(30, 200, shift=80.0, seed=100 + seed)
        result = block_bootstrap_quantile_diff(baseline, mesh, quantiles=(0.9,), resamples=300, seed=seed)
        covered += result[0.9].lo <= 80.0 <= result[0.9].hi
    assert covered >= 0.8 * repeats  # nominal 95%: 57 of 60 expected, fewer than 48 would be a real miss


def test_bootstrap_interval_narrows_with_more_blocks() -> None:
    def width(blocks: int) -> float:
        baseline, mesh = _latency_blocks(blocks, 500, shift=200.0, seed=blocks)
        estimate = block_bootstrap_quantile_diff(baseline, mesh, quantiles=(0.9,), resamples=500, seed=0)[0.9]
        return estimate.hi - estimate.lo

    assert width(128) < 0.5 * width(16)  # sqrt(16 / 128) = 0.35 expected


def test_bootstrap_of_60_blocks_of_2000_samples_with_2000_resamples_is_fast() -> None:
    baseline, mesh = _latency_blocks(60, 2000, shift=500.0, seed=9)
    started = time.perf_counter()
    block_bootstrap_quantile_diff(baseline, mesh, resamples=2000, seed=0)
    assert time.perf_counter() - started < 3.0


def test_bootstrap_refuses_unpaired_or_empty_blocks() -> None:
    baseline, mesh = _latency_blocks(4, 10, shift=1.0, seed=0)
    with pytest.raises(ValueError, match="paired"):
        block_bootstrap_quantile_diff(baseline, mesh[:3])
    with pytest.raises(ValueError, match="block 1"):
        block_bootstrap_quantile_diff(baseline, [mesh[0], np.array([]), *mesh[2:]])
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        block_bootstrap_quantile_diff(baseline, mesh, quantiles=(1.0,))


def test_a_change_of_overhead_between_two_runs_is_found_and_no_change_is_not() -> None:
    before = _latency_blocks(20, 1000, shift=300.0, seed=11)
    same = _latency_blocks(20, 1000, shift=300.0, seed=12)  # another run of the same mesh
    slower = _latency_blocks(20, 1000, shift=900.0, seed=13)  # the overhead grew by 600 us at every quantile
    unchanged = two_run_overhead_change(before, same, quantiles=(0.5, 0.9), resamples=1000)
    grown = two_run_overhead_change(before, slower, quantiles=(0.5, 0.9), resamples=1000)
    for q in (0.5, 0.9):
        assert unchanged[q].lo <= 0.0 <= unchanged[q].hi
        assert grown[q].lo > 0 and grown[q].lo <= 600.0 <= grown[q].hi
        one = block_bootstrap_quantile_diff(*before, quantiles=(q,), resamples=10)[q].value
        other = block_bootstrap_quantile_diff(*slower, quantiles=(q,), resamples=10)[q].value
        assert grown[q].value == pytest.approx(other - one)  # the point estimate is the plain difference


def test_a_two_run_change_is_called_significant_about_as_rarely_as_stated_when_nothing_changed() -> None:
    significant = 0
    repeats = 60
    for seed in range(repeats):
        first = _latency_blocks(10, 300, shift=200.0, seed=1000 + seed)
        second = _latency_blocks(10, 300, shift=200.0, seed=2000 + seed)
        change = two_run_overhead_change(first, second, quantiles=(0.5,), resamples=300, seed=seed)[0.5]
        significant += change.lo > 0 or change.hi < 0
    assert significant <= 0.2 * repeats  # nominal 5%: 3 of 60 expected; 12 or more would mean a broken test


def test_plans_are_frozen_records() -> None:
    plan = plan_binomial(0.1, delta=0.05, **BUDGET)
    assert isinstance(plan, BinomialPlan)
    with pytest.raises(AttributeError):
        plan.n = 1  # type: ignore[misc]


def test_requests_to_reach_is_the_smallest_n_whose_shortfall_is_within_the_budget() -> None:
    n = requests_to_reach(6, 0.25, 1e-6)
    assert scipy_stats.binom.cdf(5, n, 0.25) <= 1e-6 < scipy_stats.binom.cdf(5, n - 1, 0.25)
    assert requests_to_reach(1, 0.5, 0.25) == 2  # P(no pick in 2) = 0.25
    with pytest.raises(ValueError):
        requests_to_reach(0, 0.25, 1e-6)
