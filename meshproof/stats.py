"""Statistics that judge randomised mesh behaviour with stated error rates instead of fixed tolerances.

What it is for:

- Traffic splits. A weighted route draws afresh for every request, so the number of requests that land on
  one version out of n is Binomial(n, p), and the counts over three or more versions are multinomial.
  `plan_binomial` and `plan_chi_square` choose n from a false-failure budget alpha, a power and the smallest
  shift delta that must be caught; `judge_split` turns the counts into a verdict with its p-value, the
  observed shares and their intervals; `plan_sequential` and `SequentialBinomialTest` look at the counts
  four times on the way and fail a clearly broken split early.
- Batches for a balancer: `requests_to_reach` sizes a batch so that one endpoint of m gets enough requests
  even when the balancer picks at random (Istio's LEAST_REQUEST, one request at a time).
- Latency overhead. `block_bootstrap_quantile_diff` gives mesh-minus-baseline quantiles with confidence
  intervals from a paired block bootstrap (consecutive requests are correlated, so requests are resampled
  in whole time blocks).

What it is not: it does no I/O and knows nothing of meshes, requests, settings or reports. Callers pass
alpha, power and delta from the settings object and record the returned plans and verdicts. Each check
spends its own alpha; nothing here corrects for running many checks in one run (with alpha = 1e-4 per
check, a run of a hundred checks fails falsely at most once in a hundred runs).
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


# --- intervals and the exact binomial test -------------------------------------------------------


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson, 1934) interval for a binomial share, k successes out of n.

    Each side misses the true share with probability at most (1 - confidence) / 2, whatever n and p, so
    the interval is conservative (it covers at least `confidence`, often more). It is the inversion of
    `binomial_p_value`: at confidence 1 - alpha it excludes p0 exactly when that test rejects at alpha,
    which is why `judge_split` reports it next to the verdict.
    """
    _check_count(k, n)
    tail = _tail(confidence)
    low = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.isf(tail, k + 1, n - k))
    return low, high


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson (1927) score interval, without continuity correction.

    Shorter than Clopper-Pearson and close to `confidence` on average over p, but not guaranteed: for some
    p its coverage falls below the nominal level, most for shares near 0 or 1 (Brown, Cai and DasGupta,
    2001). Use it to describe a share, not to judge one.
    """
    _check_count(k, n)
    z = float(stats.norm.isf(_tail(confidence)))
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def binomial_p_value(k: int, n: int, p0: float) -> float:
    """Exact two-sided p-value of H0: p = p0 after k successes out of n: twice the smaller tail, at most 1.

    This is the equal-tailed ("central") definition, not scipy.stats.binomtest's default (R's binom.test,
    which sums the probabilities of all outcomes no likelier than k). We take the equal-tailed one because
    (1) it is exactly the test that the Clopper-Pearson interval inverts, so the reported interval and the
    verdict never disagree; (2) each direction (version too heavy, version too light) gets at most alpha/2
    of the false-failure budget; (3) its rejection region is two binomial quantiles, which makes exact
    sample-size planning cheap. It costs a little power when p0 is far from 1/2; the plans include that.
    """
    _check_count(k, n)
    _check_share("p0", p0)
    return min(1.0, 2.0 * min(_lower_tail(k, n, p0), _lower_tail(n - k, n, 1.0 - p0)))


def _lower_tail(k: int, n: int, p: float) -> float:
    """P(K <= k) for K ~ Binomial(n, p); the upper tail P(K >= k) is _lower_tail(n - k, n, 1 - p)."""
    return float(stats.binom.cdf(k, n, p))


def _acceptance_low(n: IntArray, p: float, tail: float) -> IntArray:
    """Per n, the smallest k with P(K <= k) > tail: smaller counts fall in the lower rejection tail.

    binom.ppf gives a starting point; the loops make the boundary exact with respect to binom.cdf, the
    same function `binomial_p_value` uses, so a planned region and a p-value never disagree.
    """
    k = np.asarray(stats.binom.ppf(tail, n, p), dtype=np.int64)
    while (down := (k > 0) & (stats.binom.cdf(k - 1, n, p) > tail)).any():
        k = k - down
    while (up := stats.binom.cdf(k, n, p) <= tail).any():
        k = k + up
    return k


def _acceptance(n: IntArray, p0: float, alpha: float) -> tuple[IntArray, IntArray]:
    """The equal-tailed exact test at level alpha accepts k out of n iff low <= k <= high (per n)."""
    low = _acceptance_low(n, p0, alpha / 2)
    high = n - _acceptance_low(n, 1.0 - p0, alpha / 2)
    return low, high


def exact_power(n: int, p0: float, p: float, alpha: float) -> float:
    """Exact probability that the equal-tailed test of p0 at level alpha rejects after n requests when
    the true share is p. Also tells a check how much power a run that fell short of its plan still had."""
    _check_count(0, n)
    _check_share("p0", p0)
    _check_share("alpha", alpha)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a share lies in [0, 1], got {p}")
    ns = np.array([n], dtype=np.int64)
    low, high = _acceptance(ns, p0, alpha)
    return float(_rejection_probability(ns, low, high, p)[0])


def _rejection_probability(n: IntArray, low: IntArray, high: IntArray, p: float) -> FloatArray:
    """P(K < low) + P(K > high) for K ~ Binomial(n, p), per n."""
    below = stats.binom.cdf(low - 1, n, p)
    above = stats.binom.cdf(n - high - 1, n, 1.0 - p)
    return np.asarray(below + above, dtype=np.float64)


# --- chi-square goodness of fit ------------------------------------------------------------------


@dataclass(frozen=True)
class ChiSquareResult:
    """Pearson's chi-square goodness-of-fit test of observed counts against expected shares."""

    statistic: float
    df: int
    p_value: float


def chi_square_gof(counts: Mapping[str, int], expected: Mapping[str, float]) -> ChiSquareResult:
    """Pearson's chi-square test that `counts` were drawn with the shares `expected` (weights, normalised).

    The p-value comes from the chi-square distribution with (versions - 1) degrees of freedom, an
    approximation that is good when every expected count is at least 5 (Cochran's rule); the planned n of a
    split is thousands, where its error is far below alpha. Versions missing from `counts` count as 0.
    """
    shares = _normalise(expected)
    unknown = sorted(set(counts) - set(shares))
    if unknown:
        raise ValueError(f"counts for versions without an expected share: {unknown}")
    observed = np.array([_count(counts, name) for name in shares], dtype=np.float64)
    total = observed.sum()
    if total <= 0:
        raise ValueError("no requests counted")
    means = total * np.array(list(shares.values()))
    statistic = float(((observed - means) ** 2 / means).sum())
    df = len(shares) - 1
    return ChiSquareResult(statistic=statistic, df=df, p_value=float(stats.chi2.sf(statistic, df)))


# --- sample-size planning ------------------------------------------------------------------------


@dataclass(frozen=True)
class BinomialPlan:
    """How many requests a two-version split needs, and the exact test they will be judged by.

    After n requests, the version with share p0 passes iff its count k satisfies
    accept_low <= k <= accept_high (the equal-tailed exact test at level alpha). `size` is the exact
    probability that a correct split fails (<= alpha); `achieved_power` is the exact probability of failing
    a split whose share is p0 + delta or p0 - delta, the smaller of the two (>= power).
    """

    p0: float
    delta: float
    alpha: float
    power: float
    n: int
    accept_low: int
    accept_high: int
    size: float
    achieved_power: float


@dataclass(frozen=True)
class ChiSquarePlan:
    """How many requests a split over three or more versions needs for the chi-square test.

    The plan is for the least detectable split in which some version's share is off by delta: `alternative`
    moves delta onto (or off) the version whose share is closest to 1/2 and takes it from (or gives it to)
    all others in proportion to their shares. Every split in which any version is off by at least delta has
    at least that noncentrality, so (in the approximation) at least `achieved_power`. The test passes iff
    statistic <= critical_value (p-value > alpha).

    The power is the noncentral chi-square approximation (scipy.stats.ncx2), not exact. Checked by 400,000
    seeded multinomial draws each: 50/30/20 at delta 0.02 (n = 33246) fails 0.99905 of shifted splits
    (planned 0.999); for a skewed 80/10/10 at delta 0.05 the opposite shift (80 -> 75, 10 -> 12.5) is
    caught only 0.998 of the time, so for skewed splits read the power as roughly, not exactly, planned.
    """

    probabilities: dict[str, float]
    delta: float
    alpha: float
    power: float
    n: int
    df: int
    critical_value: float
    alternative: dict[str, float]
    achieved_power: float


_SCAN = 256
"""How many consecutive n `plan_binomial` checks per vectorised step."""


def plan_binomial(
    p0: float, *, delta: float, alpha: float, power: float
) -> BinomialPlan:
    """The smallest n at which the exact equal-tailed test of p0 at level alpha fails a split with share
    p0 + delta and one with share p0 - delta (each clipped to [0, 1]) with probability >= power each.

    Power is computed exactly from the binomial distribution. It is not monotone in n (the discrete
    rejection region makes it saw-toothed), so "smallest" needs a floor below which no n can do: the power of
    the most powerful randomised one-sided test at size alpha/2, plus alpha/2 for the other tail, bounds
    our power from above and never decreases with n (Neyman-Pearson). A normal approximation brackets that
    floor, bisection finds it, and every n from there up is checked exactly until one has enough power.
    """
    _check_share("p0", p0)
    _check_delta(delta)
    _check_level(alpha, power)
    sides = ((p0, min(1.0, p0 + delta)), (1.0 - p0, min(1.0, 1.0 - p0 + delta)))  # lower side mirrored
    guess = max(_normal_n(null, alternative, alpha, power) for null, alternative in sides)
    start = max(_power_floor(null, alternative, alpha, power, guess) for null, alternative in sides)
    alternatives = (sides[0][1], 1.0 - sides[1][1])
    while True:
        ns = np.arange(start, start + _SCAN, dtype=np.int64)
        low, high = _acceptance(ns, p0, alpha)
        worst = np.minimum(*(_rejection_probability(ns, low, high, p) for p in alternatives))
        hits = np.flatnonzero(worst >= power)
        if hits.size:
            i = int(hits[0])
            n = int(ns[i])
            size = _rejection_probability(ns[i : i + 1], low[i : i + 1], high[i : i + 1], p0)[0]
            return BinomialPlan(
                p0=p0, delta=delta, alpha=alpha, power=power, n=n, accept_low=int(low[i]),
                accept_high=int(high[i]), size=float(size), achieved_power=float(worst[i]),
            )  # fmt: skip
        start += _SCAN


def _normal_n(p0: float, p1: float, alpha: float, power: float) -> int:
    """The normal-approximation sample size of a two-sided test at level alpha with the given power at p1."""
    z_alpha, z_power = float(stats.norm.isf(alpha / 2)), float(stats.norm.isf(1.0 - power))
    spread = z_alpha * math.sqrt(p0 * (1 - p0)) + z_power * math.sqrt(p1 * (1 - p1))
    return max(1, math.ceil((spread / (p1 - p0)) ** 2))


def _power_floor(p0: float, p1: float, alpha: float, power: float, guess: int) -> int:
    """No n below the returned one reaches `power` at p1 > p0 with the equal-tailed test at level alpha.

    Our test's power at p1 is at most that of the most powerful randomised one-sided test of size alpha/2
    (its upper tail has size <= alpha/2), which can only gain from more requests, plus alpha/2 (its lower
    tail rejects less often at p1 than at p0). That bound is monotone in n, so bisection finds where it
    first reaches `power`.
    """
    tail = alpha / 2

    def bound(n: int) -> float:
        c = n - int(_acceptance_low(np.array([n], dtype=np.int64), 1.0 - p0, tail)[0])
        beyond_null = _lower_tail(n - c - 1, n, 1.0 - p0)  # P0(K > c) <= tail < P0(K >= c)
        randomise = (tail - beyond_null) / float(stats.binom.pmf(c, n, p0))
        return _lower_tail(n - c - 1, n, 1.0 - p1) + randomise * float(stats.binom.pmf(c, n, p1)) + tail

    return _first_n(lambda n: bound(n) >= power, guess)


def _first_n(meets: Callable[[int], bool], guess: int) -> int:
    """An n >= 1 with meets(n) and not meets(n - 1) (meets(0) is taken as false), found by doubling from
    `guess` and bisecting. For a predicate that stays true once true, this is the smallest such n."""
    below, above = 0, max(1, guess)
    while not meets(above):
        below, above = above, 2 * above
    while above - below > 1:
        middle = (below + above) // 2
        if meets(middle):
            above = middle
        else:
            below = middle
    return above


def plan_chi_square(
    weights: Mapping[str, float],
    *,
    delta: float,
    alpha: float,
    power: float,
) -> ChiSquarePlan:
    """The smallest n at which the chi-square test at level alpha catches any version's share being off
    by delta with (noncentral chi-square) power >= power; see `ChiSquarePlan` for the shift planned for.

    Why not plan for delta moved between two versions: that is easier to detect. For 50/30/20, delta
    moved from the 50 to the 30 gives noncentrality n * delta^2 * (1/0.5 + 1/0.3) = 5.3 n delta^2, whereas
    the 50 losing delta to the other two in proportion gives n * delta^2 / (0.5 * 0.5) = 4 n delta^2,
    the least of all shifts where a share is off by delta (minimise sum d_i^2 / p_i with d_j = delta).
    """
    probabilities = _normalise(weights)
    if len(probabilities) < 3:
        raise ValueError("the chi-square plan is for three or more versions; use plan_binomial for two")
    _check_delta(delta)
    _check_level(alpha, power)
    alternative = _least_detectable_shift(probabilities, delta)
    per_request = sum((alternative[v] - p) ** 2 / p for v, p in probabilities.items())
    df = len(probabilities) - 1
    critical = float(stats.chi2.isf(alpha, df))

    def chi_square_power(n: int) -> float:
        return float(stats.ncx2.sf(critical, df, n * per_request))

    guess = math.ceil((stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)) ** 2 / per_request)
    n = _first_n(lambda n: chi_square_power(n) >= power, guess)
    return ChiSquarePlan(
        probabilities=probabilities, delta=delta, alpha=alpha, power=power, n=n, df=df,
        critical_value=critical, alternative=alternative, achieved_power=chi_square_power(n),
    )  # fmt: skip


def _least_detectable_shift(probabilities: Mapping[str, float], delta: float) -> dict[str, float]:
    """Shares with the version closest to 1/2 moved by delta, the others in proportion to their shares."""
    target = max(probabilities, key=lambda v: probabilities[v] * (1 - probabilities[v]))
    moved = probabilities[target]
    if delta < 1 - moved:
        sign = 1.0
    elif delta < moved:
        sign = -1.0
    else:
        raise ValueError(f"no split can move {target}'s share {moved:.4f} by {delta}")
    rest = 1 - (sign * delta) / (1 - moved)
    return {v: moved + sign * delta if v == target else p * rest for v, p in probabilities.items()}


# --- the one-call verdict used by checks ---------------------------------------------------------


@dataclass(frozen=True)
class SplitVerdict:
    """The verdict on a traffic split, with everything a check records.

    `intervals` are Clopper-Pearson intervals at confidence 1 - alpha, one per version (each on its own,
    not simultaneous); with two versions the verdict fails exactly when the tested version's interval
    excludes its weight. `expected` holds the normalised weights (0 for a version outside the split).
    """

    passed: bool
    n: int
    planned_n: int
    shares: dict[str, float]
    expected: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    p_value: float
    criterion: str


def judge_split(
    counts: Mapping[str, int], expected_weights: Mapping[str, float], plan: BinomialPlan | ChiSquarePlan
) -> SplitVerdict:
    """Judge responses per version against the route's weights with the plan's test and alpha.

    Two versions: the exact equal-tailed binomial test (`binomial_p_value`) of the version whose share the
    plan was made for. Three or more: Pearson's chi-square test (`chi_square_gof`). A response from a
    version outside the split fails at once (p-value 0). Fewer requests than planned still give a valid
    test at level alpha, but less power than planned; the criterion says so.
    """
    expected = _normalise(expected_weights)
    if any(c < 0 for c in counts.values()):
        raise ValueError(f"counts cannot be negative: {dict(counts)}")
    n = sum(counts.values())
    if n == 0:
        raise ValueError("no requests counted")
    version = _planned_version(expected, plan)
    names = list(expected) + sorted(set(counts) - set(expected))
    intervals = {v: clopper_pearson(_count(counts, v), n, 1 - plan.alpha) for v in names}
    strays = {v: counts[v] for v in names[len(expected) :] if counts[v] > 0}
    if strays:
        p_value = 0.0
        test = f"responses from versions outside the split {strays} fail at once"
    elif version is not None and isinstance(plan, BinomialPlan):
        p_value = binomial_p_value(_count(counts, version), n, plan.p0)
        test = (
            f"exact equal-tailed binomial test of {version}'s share = {plan.p0:.4g}: p = {p_value:.3g}, "
            f"fails iff p <= alpha = {plan.alpha:g}"
        )
    else:
        result = chi_square_gof({v: _count(counts, v) for v in expected}, expected)
        p_value = result.p_value
        test = (
            f"chi-square goodness of fit to {_shares_text(expected)}: X2 = {result.statistic:.2f} "
            f"(df {result.df}), p = {p_value:.3g}, fails iff p <= alpha = {plan.alpha:g}"
        )
    power_text = f"power {plan.power:g} against a share off by {plan.delta:g} at n >= {plan.n}"
    if n < plan.n:
        power_text = f"only {n} of the planned {plan.n} requests, so less than the planned {power_text}"
    return SplitVerdict(
        passed=p_value > plan.alpha, n=n, planned_n=plan.n,
        shares={v: _count(counts, v) / n for v in names},
        expected={v: expected.get(v, 0.0) for v in names}, intervals=intervals, p_value=p_value,
        criterion=f"{test}; {power_text}",
    )  # fmt: skip


def _planned_version(expected: Mapping[str, float], plan: BinomialPlan | ChiSquarePlan) -> str | None:
    """The version whose share a binomial plan tests (None for a chi-square plan); refuses a plan made for
    another split, since its n and power would not be this split's."""
    if isinstance(plan, BinomialPlan):
        if len(expected) == 2:
            for version, share in expected.items():
                if _same_share(share, plan.p0):
                    return version
        raise ValueError(f"the plan is for a share of {plan.p0}, the split is {_shares_text(expected)}")
    same = expected.keys() == plan.probabilities.keys() and all(
        _same_share(share, plan.probabilities[v]) for v, share in expected.items()
    )
    if not same:
        raise ValueError(
            f"the plan is for {_shares_text(plan.probabilities)}, the split is {_shares_text(expected)}"
        )
    return None


def _same_share(a: float, b: float) -> bool:
    """Shares equal up to the rounding of normalising weights."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- group-sequential test -----------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialPlan:
    """A group-sequential test of one version's share p0 with looks at the cumulative counts `looks`.

    At look i the split fails iff the count is outside [accept_low[i], accept_high[i]]; it passes only at
    the last look, by the final boundary (no early acceptance: see `plan_sequential`). `spent[i]` is the
    exact probability that a correct split has failed by look i; spent[-1] <= alpha. `achieved_power` is
    the exact probability of failing (at any look) a split with share p0 + delta or p0 - delta, the smaller.
    `fixed_n` is what the single-look plan (`plan_binomial`) needs, for comparison.
    """

    p0: float
    delta: float
    alpha: float
    power: float
    looks: tuple[int, ...]
    accept_low: tuple[int, ...]
    accept_high: tuple[int, ...]
    spent: tuple[float, ...]
    achieved_power: float
    fixed_n: int

    @property
    def n(self) -> int:
        """The most requests the test takes (the last look)."""
        return self.looks[-1]


def plan_sequential(
    p0: float,
    *,
    delta: float,
    alpha: float,
    power: float,
    looks: int,
) -> SequentialPlan:
    """A group-sequential version of `plan_binomial` that can fail a broken split at its first look.

    Boundaries: Lan-DeMets alpha spending of O'Brien-Fleming type, alpha(t) = 2 - 2 Phi(z_{1-alpha/2} /
    sqrt(t)) at information fraction t = n_i / n, half of it for each tail. At each look the boundary is
    the widest rejection tail whose exact probability of failing a correct split by then, computed by
    dynamic programming over the counts of the paths still running, stays within the spending; so the
    overall false-failure rate is <= alpha exactly (up to floating-point rounding). The last look spends
    what is left (O'Brien-Fleming spends little early: about 7e-6 of 1e-4 by 3n/4), so its boundary is a
    count or so stricter than the single-look test's, and n is searched again, starting from `fixed_n`, so
    that the exact power (by the same dynamic programming) reaches `power`. That power is saw-toothed in
    n: n is found by doubling and bisection such that n has enough power and n - 1 has not; it may differ
    from `fixed_n` by a little either way.

    No early acceptance. Stopping to accept when no remaining outcome could change the verdict (curtailment)
    is honest, but a look can only curtail if the n/4 requests up to the next look cannot leave that look's
    acceptance range. At alpha = 1e-4 that range is about 7.8 sqrt(n p q) wide at every look (the boundaries
    are nearly constant in counts), and n/4 < 7.8 sqrt(n p q) needs n < 970 p q, at most a few hundred
    requests, where these plans need thousands. Accepting on a merely likely verdict (futility stopping)
    would cost the power the plan promises, so a correct split always runs to the last look.
    """
    fixed = plan_binomial(p0, delta=delta, alpha=alpha, power=power)
    if looks < 1:
        raise ValueError(f"a sequential test needs at least one look, got {looks}")
    alternatives = (min(1.0, p0 + delta), max(0.0, p0 - delta))

    def design(n: int) -> SequentialPlan:
        look_ns = tuple(i * n // looks for i in range(1, looks + 1))
        low, high, spent = _spending_boundaries(p0, alpha, look_ns)
        achieved = min(_sequential_rejection(p, look_ns, low, high) for p in alternatives)
        return SequentialPlan(
            p0=p0, delta=delta, alpha=alpha, power=power, looks=look_ns, accept_low=low, accept_high=high,
            spent=spent, achieved_power=achieved, fixed_n=fixed.n,
        )  # fmt: skip

    return design(_first_n(lambda n: n >= looks and design(n).achieved_power >= power, fixed.n))


class _RunningPaths:
    """The exact probability of each cumulative count among paths not yet stopped, look after look.

    `mass[j]` is P(count = offset + j and no boundary crossed so far) when each request succeeds with
    probability p. Only counts inside the last acceptance range carry on, so the arrays stay a few
    standard deviations wide and the convolutions are cheap.
    """

    def __init__(self, p: float) -> None:
        self.p = p
        self.offset = 0
        self.mass: FloatArray = np.ones(1)

    def advance(self, requests: int) -> None:
        step = stats.binom.pmf(np.arange(requests + 1), requests, self.p)
        self.mass = np.convolve(self.mass, step)

    def stop_outside(self, low: int, high: int) -> float:
        """Stop the paths whose count is outside [low, high]; returns their probability."""
        start = min(max(low - self.offset, 0), self.mass.size)
        end = max(min(high - self.offset + 1, self.mass.size), start)
        stopped = float(self.mass[:start].sum() + self.mass[end:].sum())
        self.mass = self.mass[start:end]
        self.offset += start
        return stopped


def _spending_boundaries(
    p0: float, alpha: float, looks: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """Per look: the acceptance range whose tails spend at most the O'Brien-Fleming-type budget, and the
    exact cumulative probability of having failed a correct split by then (see `plan_sequential`)."""
    paths = _RunningPaths(p0)
    z = stats.norm.isf(alpha / 2)
    lows, highs, spent = [], [], []
    spent_low = spent_high = 0.0
    previous = 0
    for n_i in looks:
        paths.advance(n_i - previous)
        previous = n_i
        budget = float(stats.norm.sf(z / math.sqrt(n_i / looks[-1])))  # per tail
        from_below = np.cumsum(paths.mass)
        from_above = np.cumsum(paths.mass[::-1])
        below = int(np.searchsorted(from_below, budget - spent_low, side="right"))  # counts rejected below
        above = int(np.searchsorted(from_above, budget - spent_high, side="right"))
        low, high = paths.offset + below, paths.offset + paths.mass.size - 1 - above
        spent_low += float(from_below[below - 1]) if below else 0.0
        spent_high += float(from_above[above - 1]) if above else 0.0
        paths.stop_outside(low, high)
        lows.append(low)
        highs.append(high)
        spent.append(spent_low + spent_high)
    return tuple(lows), tuple(highs), tuple(spent)


def _sequential_rejection(
    p: float, looks: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]
) -> float:
    """Exact probability that the sequential test fails when the true share is p."""
    paths = _RunningPaths(p)
    rejected = 0.0
    previous = 0
    for n_i, low_i, high_i in zip(looks, low, high, strict=True):
        paths.advance(n_i - previous)
        previous = n_i
        rejected += paths.stop_outside(low_i, high_i)
    return rejected


@dataclass(frozen=True)
class Verdict:
    """The verdict of a sequential test: at which look, on which cumulative count, and why."""

    passed: bool
    look: int
    n: int
    k: int
    criterion: str


class SequentialBinomialTest:
    """Feeds one version's cumulative count to a `SequentialPlan`, look by look.

    `update(k, n)` takes the count after exactly plan.looks[i] requests (the i-th call) and returns a
    failing Verdict as soon as k leaves that look's acceptance range, the final Verdict at the last look,
    and None while the test goes on.
    """

    def __init__(self, plan: SequentialPlan) -> None:
        self.plan = plan
        self.verdict: Verdict | None = None
        self._look = 0
        self._last = (0, 0)

    def update(self, k: int, n: int) -> Verdict | None:
        plan = self.plan
        if self.verdict is not None:
            raise RuntimeError(f"the test has already reached its verdict: {self.verdict.criterion}")
        planned = plan.looks[self._look]
        if n != planned:
            raise ValueError(f"look {self._look + 1} is planned after {planned} requests, not after {n}")
        last_k, last_n = self._last
        if not last_k <= k <= last_k + n - last_n:
            raise ValueError(f"counts are cumulative: after {last_k} of {last_n}, {k} of {n} is impossible")
        low, high = plan.accept_low[self._look], plan.accept_high[self._look]
        inside = low <= k <= high
        self._look += 1
        self._last = (k, n)
        if inside and self._look < len(plan.looks):
            return None
        self.verdict = Verdict(
            passed=inside, look=self._look, n=n, k=k,
            criterion=(
                f"look {self._look} of {len(plan.looks)}: {k} of {n} ({k / n:.4f}) is "
                f"{'inside' if inside else 'outside'} [{low}, {high}], the range for a share of {plan.p0:g} "
                f"with O'Brien-Fleming-type alpha spending (exact false-failure rate {plan.spent[-1]:.3g} "
                f"<= alpha = {plan.alpha:g}; power {plan.achieved_power:.4f} against a share off by "
                f"{plan.delta:g})"
            ),
        )  # fmt: skip
        return self.verdict


# --- latency overhead: paired block bootstrap ----------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval [lo, hi], in the unit of the input."""

    value: float
    lo: float
    hi: float


def block_bootstrap_quantile_diff(
    baseline_blocks: Sequence[npt.ArrayLike],
    mesh_blocks: Sequence[npt.ArrayLike],
    quantiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[float, Estimate]:
    """Mesh-minus-baseline latency at each quantile, with paired block-bootstrap percentile intervals.

    Input: raw latencies (any unit, e.g. microseconds), one array per time block; baseline block i and mesh
    block i are partners measured next to each other in time. Per-block HDR histograms can be passed as
    np.repeat(bin_values, bin_counts), exact up to the histogram's own resolution.

    Statistic: the quantile of all mesh samples minus that of all baseline samples, where the quantile of
    N samples is the smallest sample with at least ceil(q N) samples <= it (numpy's "inverted_cdf"). A
    resample draws B block indices with replacement (B = number of pairs); each drawn index brings its
    baseline block and its mesh partner, so slow periods that hit both stay paired. The interval is the
    percentile interval of the resampled differences. Not BCa: its acceleration is estimated by the
    jackknife, which is inconsistent for quantiles (not smooth statistics).

    Speed without approximation: the resampled quantiles are never computed by pooling samples. A resample
    is a vector of block multiplicities; its quantile is found by bisection over the sorted pooled sample,
    counting samples <= x per block with a binary search in each sorted block. That is exact, and 2000
    resamples of 60 pairs of 2000-sample blocks take well under a second. `seed` makes the result
    reproducible.
    """
    levels = _levels(quantiles)
    tail = _tail(confidence)
    differences = _overhead_replicates(baseline_blocks, mesh_blocks, levels, resamples, np.random.default_rng(seed))
    return _percentile_estimates(differences, levels, tail)


def two_run_overhead_change(
    before: tuple[Sequence[npt.ArrayLike], Sequence[npt.ArrayLike]],
    after: tuple[Sequence[npt.ArrayLike], Sequence[npt.ArrayLike]],
    quantiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999),
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[float, Estimate]:
    """How much the overhead changed from one run to another: overhead(after) - overhead(before) per quantile.

    `before` and `after` are each (baseline blocks, mesh blocks) of one run, paired as in
    block_bootstrap_quantile_diff. The two runs are independent, so each resample draws the pairs of each
    run on its own (a two-sample paired block bootstrap) and takes the difference of the two resampled
    overheads; the interval is the percentile interval of those differences. An interval excluding 0 is
    a significant change at the confidence level *for the sampling noise within the runs*: it does not see
    a machine that was busier during one run than the other, which shifts the overhead itself.
    """
    levels = _levels(quantiles)
    tail = _tail(confidence)
    rng = np.random.default_rng(seed)
    later = _overhead_replicates(*after, levels, resamples, rng)
    return _percentile_estimates(later - _overhead_replicates(*before, levels, resamples, rng), levels, tail)


def _levels(quantiles: Sequence[float]) -> FloatArray:
    levels = np.asarray(quantiles, dtype=np.float64)
    if not ((levels > 0) & (levels < 1)).all():
        raise ValueError(f"quantiles lie strictly between 0 and 1, got {list(quantiles)}")
    return levels


def _overhead_replicates(baseline_blocks: Sequence[npt.ArrayLike], mesh_blocks: Sequence[npt.ArrayLike],
                         levels: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Row 0: mesh - baseline quantiles of the data; rows 1..resamples: of paired block resamples."""
    if len(baseline_blocks) != len(mesh_blocks):
        raise ValueError(f"blocks are paired: {len(baseline_blocks)} baseline vs {len(mesh_blocks)} mesh")
    if len(baseline_blocks) < 2:
        raise ValueError("a block bootstrap needs at least two pairs of blocks")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    count = len(baseline_blocks)
    draws = rng.multinomial(count, np.full(count, 1 / count), size=resamples)
    weights = np.vstack([np.ones(count, dtype=np.int64), draws])  # row 0: the data themselves
    differences: FloatArray = _pooled_quantiles(_sorted_blocks(mesh_blocks), weights, levels) - _pooled_quantiles(
        _sorted_blocks(baseline_blocks), weights, levels
    )
    return differences


def _percentile_estimates(replicates: FloatArray, levels: FloatArray, tail: float) -> dict[float, Estimate]:
    low, high = np.quantile(replicates[1:], [tail, 1 - tail], axis=0)
    return {
        float(q): Estimate(value=float(replicates[0, i]), lo=float(low[i]), hi=float(high[i]))
        for i, q in enumerate(levels)
    }


def _sorted_blocks(blocks: Sequence[npt.ArrayLike]) -> list[FloatArray]:
    result = []
    for i, block in enumerate(blocks):
        values = np.sort(np.asarray(block, dtype=np.float64).ravel())
        if values.size == 0 or not np.isfinite(values).all():
            raise ValueError(f"block {i} must hold finite latencies, got {values.size} values")
        result.append(values)
    return result


def _pooled_quantiles(blocks: list[FloatArray], weights: IntArray, levels: FloatArray) -> FloatArray:
    """Row r, column j: the inverted-CDF quantile levels[j] of the pooled sample holding weights[r, b]
    copies of block b. Exact; costs log2(total samples) rounds of one binary search per block."""
    pooled = np.sort(np.concatenate(blocks))
    totals = weights @ np.array([b.size for b in blocks])
    rank = np.clip(np.ceil(levels[None, :] * totals[:, None]), 1, None)
    below = np.zeros(rank.shape, dtype=np.int64)  # invariant: the answer is pooled[j], below <= j <= above
    above = np.full(rank.shape, pooled.size - 1, dtype=np.int64)
    while (open_ := below < above).any():
        middle = (below + above) // 2
        candidate = pooled[middle]
        at_most = sum(
            weights[:, b, None] * np.searchsorted(block, candidate, side="right")
            for b, block in enumerate(blocks)
        )
        enough = at_most >= rank
        above = np.where(open_ & enough, middle, above)
        below = np.where(open_ & ~enough, middle + 1, below)
    return pooled[below]


# --- how many requests an endpoint picked at random needs -------------------------------------------


def requests_to_reach(k: int, share: float, shortfall: float) -> int:
    """The fewest requests n for which an endpoint that gets each request with probability `share`, independently
    (a random load balancer's pick, one request at a time), receives at least `k` of them with probability at
    least 1 - `shortfall`: the smallest n with P(Binomial(n, share) < k) <= shortfall."""
    _check_share("share", share)
    _check_share("shortfall", shortfall)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = k
    while stats.binom.cdf(k - 1, n, share) > shortfall:
        n += 1
    return n


# --- argument checks -----------------------------------------------------------------------------


def _tail(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence lies strictly between 0 and 1, got {confidence}")
    return (1.0 - confidence) / 2


def _check_count(k: int, n: int) -> None:
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")


def _check_share(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} lies strictly between 0 and 1, got {value}")


def _check_delta(delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta lies strictly between 0 and 1, got {delta}")


def _check_level(alpha: float, power: float) -> None:
    if not 0.0 < alpha < power < 1.0:
        raise ValueError(f"need 0 < alpha < power < 1, got alpha={alpha}, power={power}")


def _normalise(weights: Mapping[str, float]) -> dict[str, float]:
    if len(weights) < 2 or any(not (math.isfinite(w) and w > 0) for w in weights.values()):
        raise ValueError(f"a split needs two or more versions with positive weights, got {dict(weights)}")
    total = sum(weights.values())
    return {v: w / total for v, w in weights.items()}


def _count(counts: Mapping[str, int], version: str) -> int:
    return counts.get(version, 0)


def _shares_text(shares: Mapping[str, float]) -> str:
    return "/".join(f"{v}={p:.4g}" for v, p in shares.items())
