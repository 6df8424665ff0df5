"""The profile: every scenario parameter, timeout and tolerance of a run, in one documented object.

The defaults *are* the default profile, scaled down so the whole suite runs in minutes; a YAML file
passed as `--profile` overrides any subset of them (`profiles/seed.yaml` restores the seed's values).
Loading is strict, as `kubectl apply` is with CRDs: an unknown key, a wrong type or an inconsistent
value is an error naming the file, the key and the fix, never a silent default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml

from meshproof.durations import parse_duration
from meshproof.errors import UserError
from meshproof.intent import ConnectionPool, OutlierPolicy, RateLimit, Retry, RouteRule
from meshproof.shipped import shipped

Duration = Annotated[float, "duration"]  # seconds; written "300ms", "3s" in YAML
T = TypeVar("T")
PROFILES_DIR = shipped("profiles")


@dataclass(frozen=True)
class Timeouts:
    """Every deadline of the harness (not of the mesh under test) in one place."""

    startup: Duration = 30.0  # bringing a mesh up, per sidecar and app
    apply: Duration = 15.0  # one apply() until every affected proxy serves the new config
    call: Duration = 30.0  # client-side bound of one request, so a broken mesh cannot hang a check
    shutdown_grace: Duration = 2.0  # SIGTERM -> SIGKILL
    admin: Duration = 5.0  # one read of a proxy's admin API (stats, readiness)
    control: Duration = 10.0  # one call to an echo app's control API that makes no request (attempts, reset)
    forward_margin: Duration = 10.0  # how much longer than its request a call made through an app may take
    batch_margin: Duration = 30.0  # the same for a batch, beyond batch_slowdown x its expected duration
    batch_slowdown: float = 3.0  # a batch may take this many times its expected duration
    batch_floor_rate: float = 200.0  # req/s a batch sent as fast as it goes is expected to reach at least
    outside_client: Duration = 10.0  # a client outside the mesh waits at most this long for an answer
    # After a TLS handshake, how long a client outside the mesh listens for the server's verdict on its
    # certificate before it writes (TLS 1.3 tells the client only after its handshake ended; measured here,
    # the alert came within 0.3 s on the busy machine, a request written sooner can destroy it)
    tls_verdict: Duration = 0.5


@dataclass(frozen=True)
class LocalMeshSettings:
    """The embedded local mesh. Istio runs 2 proxy workers by default; 1 keeps 7 sidecars light on
    a 2-core machine, and every limit the suites measure is shared across workers anyway."""

    sidecar_concurrency: int = 1
    drain_time: int = 1  # seconds an old listener keeps serving open connections after an LDS change

    def validate(self) -> None:
        if self.sidecar_concurrency < 1:
            raise ValueError("sidecar_concurrency must be >= 1")


@dataclass(frozen=True)
class ClusterSettings:
    """Cluster meshes (Istio, Linkerd on kind or an existing cluster): the harness's deadlines there, and
    how a change counts as served. `apply()` first waits for the mesh's own signal, then for what the
    intents make observable (a header route's version, an authorization verdict) to hold for
    `consecutive_successes` probes in a row, as Gateway API's conformance suite does (its
    RequiredConsecutiveSuccesses is 3, its MaxTimeToConsistency 30 s); both within `propagation`.
    The deadlines are generous for a 2-core CI runner: a kind node image is ~1 GB to pull."""

    create: Duration = 600.0  # kind create cluster, node image pull included
    install: Duration = 600.0  # the mesh's install until its control plane and webhook serve
    rollout: Duration = 300.0  # the workloads' Deployments until every pod is ready with its proxy
    propagation: Duration = 60.0  # one apply() until the mesh's signal and the observable checks agree
    consecutive_successes: int = 3
    probe_interval: Duration = 0.2  # between two consistency probes
    request: Duration = 30.0  # one request to the API server (a pod's control API through it included)

    def validate(self) -> None:
        if self.consecutive_successes < 1:
            raise ValueError("consecutive_successes must be >= 1")


@dataclass(frozen=True)
class RetriesProfile:
    """The seed's VirtualService: `timeout: 10s`, `retries: {attempts: 3, perTryTimeout: 3s,
    retryOn: 5xx,reset,connect-failure}`; durations scaled down by default (the route timeout 10x, the per-try
    timeout 6x: at 0.3 s, a retry's backoff of up to 25 ms left too little room to see a 20% change)."""

    attempts: int = 3
    per_try_timeout: Duration = 0.5
    timeout: Duration = 1.0
    retry_on: list[str] = field(default_factory=lambda: ["5xx", "reset", "connect-failure"])
    reset_hold: Duration = 1.0  # the app holds a request this long, so its proxy can be crashed mid-request
    connect_failure_requests: int = 20  # sequential requests with one of two endpoints refusing connections

    def validate(self) -> None:
        self.retry()
        if (1 + self.attempts) * self.per_try_timeout <= self.timeout:
            raise ValueError(
                f"(1 + attempts) x per_try_timeout = {(1 + self.attempts) * self.per_try_timeout:g}s must exceed "
                f"timeout = {self.timeout:g}s, as in the seed, so that the route timeout bounds the retries"
            )

    def retry(self) -> Retry:
        return Retry(self.attempts, per_try_timeout=self.per_try_timeout, retry_on=tuple(self.retry_on))


@dataclass(frozen=True)
class TimingProfile:
    """How timing verdicts are judged (meshproof.timing): a window T +/- tolerance stated in advance, with
    tolerance = floor + share x T, and the scheduling noise measured right before each timing check only to
    decide whether the machine can judge at all (`multiplier` x p99.9 of `noise_samples` fast calls on the
    same path must fit in the tolerance, or the check is invalid).

    floor: Envoy's own timer error (timers are armed from the event loop's cached time: 504s arrived
    between T - 2.6 ms and T + 8.7 ms here) plus a margin; share: a small part of T, so long timeouts (the
    seed's 10 s) keep proportionate room. With share well below 20%, a 20% change of T is outside the window
    for any T above floor / (0.2 - share). Measured: benchmarks/timing_tolerance.py.
    """

    noise_samples: int = 200
    multiplier: float = 3.0
    floor: Duration = 0.010
    share: float = 0.05
    retry_backoff: Duration = 0.025  # a first retry waits U(0, 25ms) in Envoy, Istio's default base_interval

    def validate(self) -> None:
        if self.noise_samples < 50 or self.multiplier < 1 or self.floor < 0:
            raise ValueError("noise_samples >= 50, multiplier >= 1 and floor >= 0 are required")
        if not 0 <= self.share < 0.1:
            raise ValueError(f"share must be between 0 and 0.1 (a 20% change must stay detectable), got {self.share}")

    def tolerance(self, expected: float) -> float:
        return self.floor + self.share * expected


@dataclass(frozen=True)
class OutlierProfile:
    """The seed's DestinationRule `outlierDetection` (5 errors, 10s, 30s, 50%) and its circuit-breaker
    variant's `consecutiveGatewayErrors: 5` and `minHealthPercent: 30`; durations scaled down.

    maxEjectionPercent is 85 by default, not the seed's 50: with the scenario's 4 endpoints an ejection is
    allowed while 100 x (ejected + 1) / 4 <= max_ejection_percent, so 50 and 60 both allow 2, and only a
    value in 84..93 makes both a 20% lower and a 20% higher percentage eject a different number (85: 3;
    68: 2; 100: 4). The seed profile keeps 50, where a 20% higher value goes unseen with 4 endpoints.
    """

    consecutive_5xx: int = 5
    consecutive_gateway_errors: int = 5
    interval: Duration = 0.5
    base_ejection_time: Duration = 2.0
    max_ejection_percent: int = 85
    min_health_percent: int = 0
    # Requests per second while an ejection is awaited or timed: one at a time, spaced, so that the caller's
    # proxy has acted on an ejection before the next request leaves (sent back to back, a 6th request
    # reached an endpoint ejected after 5 in 1 of 30 tries here: the ejection travels from the outlier
    # detector to the worker thread meanwhile).
    probe_rate: float = 100.0
    # How long the mesh may take to act on a *second* ejection: Envoy merges host-health updates after
    # the first into 1 s windows (common_lb_config.update_merge_window, which Istio leaves at 1 s);
    # measured here, a second ejected endpoint kept its traffic for ~1 s, whatever the interval.
    settle: Duration = 1.3
    # The chance that the load balancer (Istio's LEAST_REQUEST, which with one request at a time picks an
    # endpoint at random) sends too few requests to the endpoint a phase is about; each phase's size is
    # planned for it (meshproof.stats.requests_to_reach), and a phase that still falls short is inconclusive.
    shortfall: float = 1e-6

    def validate(self) -> None:
        self.policy("order-service")
        if self.probe_rate <= 0:
            raise ValueError("probe_rate must be > 0")
        if not 0 < self.shortfall < 0.01:
            raise ValueError(f"shortfall is a small probability, got {self.shortfall}")
        if self.settle >= self.base_ejection_time:
            raise ValueError(f"settle ({self.settle:g}s) must be shorter than base_ejection_time "
                             f"({self.base_ejection_time:g}s), or an ejection ends before it is observed")

    def policy(self, service: str, **overrides: Any) -> OutlierPolicy:
        settings = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                    if field.name not in ("probe_rate", "settle", "shortfall")}
        return OutlierPolicy(service, **{**settings, **overrides})


@dataclass(frozen=True)
class ConnpoolProfile:
    """The seed's DestinationRule `connectionPool`, scaled down; `excess` and `hold` shape the burst."""

    max_connections: int = 4
    http1_max_pending_requests: int = 4
    http2_max_requests: int = 1000
    max_requests_per_connection: int = 10
    max_retries: int = 3
    excess: int = 8  # requests beyond max_connections + pending in the overflow burst
    hold: Duration = 0.5  # how long the app holds each burst request, so that the whole burst overlaps

    def validate(self) -> None:
        self.pool("order-service")
        if self.http1_max_pending_requests < self.max_connections:
            raise ValueError("the check opens the pool in waves up to max_connections + 1, which queue up to half "
                             "of that: http1_max_pending_requests must be >= max_connections")

    def pool(self, service: str) -> ConnectionPool:
        return ConnectionPool(service, max_connections=self.max_connections,
                              http1_max_pending_requests=self.http1_max_pending_requests,
                              http2_max_requests=self.http2_max_requests,
                              max_requests_per_connection=self.max_requests_per_connection,
                              max_retries=self.max_retries)


@dataclass(frozen=True)
class RateLimitProfile:
    """The seed's EnvoyFilter local rate limit on api-gateway (1000 tokens, 100 per 1s), scaled down (20 per
    second, not 10: one interval then refills ~21 tokens, so a 20% faster or slower refill moves the count by
    ~4, beyond the window's one token either side)."""

    target: str = "api-gateway"
    max_tokens: int = 100
    tokens_per_fill: int = 20
    fill_interval: Duration = 1.0
    burst_extra: int = 50  # requests beyond the bucket in the burst
    pilot_requests: int = 100  # sent one at a time before the limit exists, to size the burst from their rate
    token_tolerance: int = 1  # tokens either side of the predicted count: refill during one request's flight

    def validate(self) -> None:
        self.limit()

    def limit(self) -> RateLimit:
        return RateLimit(self.target, self.max_tokens, self.tokens_per_fill, self.fill_interval)

    @property
    def refill_rate(self) -> float:
        """Tokens per second: Envoy >= 1.33 refills continuously at tokens_per_fill / fill_interval."""
        return self.tokens_per_fill / self.fill_interval


@dataclass(frozen=True)
class CanaryProfile:
    """The seed's canary (the 90/10 split, the CanaryRollout steps and its < 1% error-rate gate) and
    the statistics that judge it: each split check fails a correct mesh with probability <= alpha (a check
    judging several splits, the rollout's steps, gives each alpha / their number) and catches a shift of
    `min_shift` with probability >= power; a rollout step s is judged against a shift of `relative_shift` x s
    (a 20% change of the step), at least `min_shift` and at most `step_min_shift`."""

    weights: dict[str, int] = field(default_factory=lambda: {"v1": 90, "v2": 10})
    even_weights: dict[str, int] = field(default_factory=lambda: {"v1": 50, "v2": 50})
    three_way_weights: dict[str, int] = field(default_factory=lambda: {"v1": 50, "v2": 30, "v3": 20})
    steps: list[int] = field(default_factory=lambda: [10, 25, 50, 75, 100])
    error_threshold: float = 0.01  # the rollout gate: v2's error rate must stay below this
    alpha: float = 1e-4
    power: float = 0.999
    min_shift: float = 0.02
    step_min_shift: float = 0.05
    relative_shift: float = 0.2
    concurrency: int = 16  # connections the sampling caller uses
    looks: int = 4  # a sequential split test looks after n/4, n/2, 3n/4 and n requests

    def validate(self) -> None:
        for weights in (self.weights, self.even_weights, self.three_way_weights):
            RouteRule(splits=weights)  # weights must name versions and add up to 100
        if any(not 0 <= step <= 100 for step in self.steps) or self.steps != sorted(self.steps):
            raise ValueError(f"steps must be increasing percentages, got {self.steps}")
        for name in ("error_threshold", "alpha", "power", "min_shift", "step_min_shift", "relative_shift"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} is a fraction between 0 and 1, got {getattr(self, name)}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")

    def step_shift(self, step: int) -> float:
        """The shift a rollout step's test must catch: 20% of the step's share, within [min_shift, step_min_shift]."""
        return min(self.step_min_shift, max(self.min_shift, self.relative_shift * min(step, 100 - step) / 100))


@dataclass(frozen=True)
class LoadSettings:
    """Which load profile (loadprofiles/<name>.yaml, or a path) the load suite runs."""

    profile: str = "default"


@dataclass(frozen=True)
class ChaosProfile:
    """Chaos experiments under open-model load (meshproof.chaos, chaos/*.json): the load every experiment runs
    under, the limits its steady state is judged against, and the resolution of every time it measures.

    - Load: Locust standing in for the experiment's caller sends `rate` req/s on a constant schedule over
      `connections` connections (enough that a few stalled requests do not make others queue: at 200 req/s a
      1 s stall holds ~100 requests of one endpoint's share), each timed from its due time, so a stall shows in
      every request it held up. `resolution` is the length of one time block of the series: every error rate
      and p99 over time, and every recovery time, is known to within one block.
    - Steady state: over the last `probe_window` of traffic, the error rate is at most `max_error_rate` and the
      p99 of successful requests at most `max_p99`. Derived from a healthy local mesh on this 2-core machine at
      200 req/s through two sidecars: 0 errors in every window; a 2 s window's p99 4-20 ms, single 0.25 s blocks
      up to ~40 ms, with the machine otherwise quiet. 100 ms is 2.5x the worst block yet below every disturbance
      the experiments cause (the smallest, a per-try timeout, is 300 ms). 1% allows 4 stray errors in a window.
      With other test runs on the same two cores (load average 15-25) windows reached 150-1700 ms: such a run
      ends "steady state not met before the fault", a measurement not to be believed, instead of a verdict.
    - Recovery: back within both limits in every block from some instant until the horizon (the fault's end
      for faults the mesh should absorb, the end of the observation otherwise).
    - `confidence`: of the exact (Clopper-Pearson) intervals of the error rates before, during, after a fault.
    - `traffic_limit`: the longest an experiment's load runs (its schedule is planned that long up front).
    """

    rate: float = 200.0
    connections: int = 64
    resolution: Duration = 0.25
    request_timeout: Duration = 10.0  # Locust's own bound on one request: longer than any stall an experiment makes
    startup_timeout: Duration = 60.0  # for the generator to import Locust and spawn its users
    warmup: Duration = 1.0  # load before the experiment's first probe: connections open, proxies warm their pools
    traffic_limit: Duration = 120.0
    probe_window: Duration = 2.0
    max_error_rate: float = 0.01
    max_p99: Duration = 0.1
    confidence: float = 0.95
    max_median_generator_lag: Duration = 0.001  # as a load run's: a generator later than this cannot keep time

    def validate(self) -> None:
        if self.rate <= 0 or self.connections < 1:
            raise ValueError("rate must be > 0 req/s and connections >= 1")
        if self.resolution <= 0 or self.rate * self.resolution < 10:
            raise ValueError(f"a block of {self.resolution:g}s at {self.rate:g} req/s holds fewer than 10 requests: "
                             "raise the rate or the resolution")
        if self.probe_window < 2 * self.resolution or self.traffic_limit < 4 * self.probe_window:
            raise ValueError("probe_window must cover at least two blocks, and traffic_limit four probe windows")
        if not 0 < self.max_error_rate < 1 or self.max_p99 <= 0 or not 0 < self.confidence < 1:
            raise ValueError("max_error_rate and confidence are fractions between 0 and 1, max_p99 > 0")
        if self.request_timeout <= 0 or self.startup_timeout <= 0:
            raise ValueError("request_timeout and startup_timeout must be > 0")


@dataclass(frozen=True)
class RegressionProfile:
    """What `meshproof compare --fail-on-regression` (the nightly upgrade gate) calls a regression of a later
    run against the reference run (the first one given). A check that passed in the reference and fails or
    errors later always is one; beyond that:

    - `overhead`: quantile -> the relative increase of the load overhead (mesh - baseline latency) that
      counts, and only when it is also significant and larger than `overhead_floor`. Significant: the
      `confidence` interval of the change lies wholly above 0, from a two-run paired block bootstrap
      on the raw per-block latencies both results.json files keep (meshproof.stats.two_run_overhead_change),
      or, for files without them, the two runs' own intervals not overlapping (conservative). The interval
      sees the sampling noise within each run, not a machine busier during one run than the other. The
      floor: below 0.2 ms a +20% of a sub-millisecond overhead is the scheduler, not the proxy.
    - `chaos`: chaos metric -> relative worsening that counts (in the metric's own "better" direction).
      A chaos metric is one number per experiment (a recovery time), so it is judged on the values alone
      unless both runs give an interval, which then must not overlap.
    - `proxy_cpu`: relative increase of a proxy's vCPU per 1000 req/s that counts; judged on the values
      alone (one number per run); null, the default, shows it without gating.
    """

    overhead: dict[str, float] = field(default_factory=lambda: {"p50": 0.20, "p99": 0.20})
    overhead_floor: Duration = 0.0002
    chaos: dict[str, float] = field(default_factory=lambda: {"recovery_s": 0.50, "error_rate_during_fault": 0.50})
    proxy_cpu: float | None = None
    confidence: float = 0.95
    resamples: int = 2000

    def validate(self) -> None:
        from meshproof.load.profile import QUANTILES  # load.profile imports this module: resolved at use

        unknown = sorted(set(self.overhead) - set(QUANTILES))
        if unknown:
            raise ValueError(f"overhead names quantiles of the load entries ({', '.join(QUANTILES)}), got {unknown}")
        thresholds = [*self.overhead.values(), *self.chaos.values(), *([self.proxy_cpu] if self.proxy_cpu else [])]
        if any(threshold <= 0 for threshold in thresholds):
            raise ValueError("thresholds are relative increases > 0 (0.2 = +20%)")
        if self.overhead_floor < 0 or not 0 < self.confidence < 1 or self.resamples < 100:
            raise ValueError("overhead_floor >= 0, 0 < confidence < 1 and resamples >= 100 are required")


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    description: str = "scaled-down timings so the suites run in minutes"
    timeouts: Timeouts = field(default_factory=Timeouts)
    local: LocalMeshSettings = field(default_factory=LocalMeshSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    retries: RetriesProfile = field(default_factory=RetriesProfile)
    timing: TimingProfile = field(default_factory=TimingProfile)
    outlier: OutlierProfile = field(default_factory=OutlierProfile)
    connpool: ConnpoolProfile = field(default_factory=ConnpoolProfile)
    ratelimit: RateLimitProfile = field(default_factory=RateLimitProfile)
    canary: CanaryProfile = field(default_factory=CanaryProfile)
    load: LoadSettings = field(default_factory=LoadSettings)
    chaos: ChaosProfile = field(default_factory=ChaosProfile)
    regression: RegressionProfile = field(default_factory=RegressionProfile)


# --- loading --------------------------------------------------------------------------------------------


class _ProfileError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)


def _describe_type(annotation: Any) -> str:
    if annotation is Duration:
        return "a duration like '300ms' or '3s'"
    origin = typing.get_origin(annotation)
    if origin is list:  # "an integer" -> "a list of integers", "a duration like ..." -> "durations like ..."
        first, _, rest = _describe_type(typing.get_args(annotation)[0]).partition(" ")[2].partition(" ")
        return f"a list of {first}s{' ' + rest if rest else ''}"
    if origin is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in typing.get_args(annotation))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _convert(annotation: Any, value: Any, where: str) -> Any:
    if annotation is Duration:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _ProfileError(where, str(exc)) from None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _convert(option, value, where)
            except _ProfileError:
                continue
        raise _ProfileError(where, f"expected {_describe_type(annotation)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise _ProfileError(where, f"expected {_describe_type(annotation)}, got {value!r}")
        (item_type,) = typing.get_args(annotation)
        return [_convert(item_type, item, f"{where}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, dict):
            raise _ProfileError(where, f"expected a mapping, got {value!r}")
        return {_convert(key_type, k, where): _convert(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is type(None) and value is None:
        return None
    if isinstance(annotation, type) and isinstance(value, annotation) and not (
        annotation is int and isinstance(value, bool)
    ):
        return value
    raise _ProfileError(where, f"expected {_describe_type(annotation)}, got {value!r}")


def _build(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _ProfileError(where, f"expected a mapping of {cls.__name__} settings, got {data!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        here = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise _ProfileError(here, f"unknown key; known keys here: {', '.join(sorted(known))}")
        values[key] = _convert(hints[key], value, here)
    try:
        instance = cls(**values)
        if hasattr(instance, "validate"):
            instance.validate()
    except ValueError as exc:
        raise _ProfileError(where, str(exc)) from None
    return instance


def load_yaml_as(cls: type[T], path: Path, *, what: str) -> T:
    """Read a YAML file into the frozen dataclass `cls` as strictly as a profile (unknown keys, wrong
    types and failed `validate()`s are one-line UserErrors naming `what`, the file and the key)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot read it: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{what} {path}{place}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if isinstance(data, dict) and "name" in {f.name for f in dataclasses.fields(cls)}:  # type: ignore[arg-type]
        data.setdefault("name", path.stem)
    try:
        result: T = _build(cls, data, "")
    except _ProfileError as exc:
        raise UserError(f"{what} {path}: {exc} (fix the value, or remove the key to keep the default)") from None
    return result


def load_named(cls: type[T], spec: str, directory: Path, *, what: str) -> T:
    """`spec` is a YAML file, or the name of one shipped in `directory` (`seed` -> directory/seed.yaml)."""
    path = Path(spec)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = directory / f"{spec}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise UserError(f"{what} {spec!r}: cannot read {path}: No such file or directory "
                        f"(give a YAML file or one of: {shipped})")
    return load_yaml_as(cls, path, what=what)


def load_profile(spec: str | None) -> Profile:
    return Profile() if spec is None else load_named(Profile, spec, PROFILES_DIR, what="profile")
