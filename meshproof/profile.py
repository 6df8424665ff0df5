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
from typing import Annotated, Any

import yaml

from meshproof.durations import parse_duration
from meshproof.errors import UserError
from meshproof.intent import Retry, RouteRule

Duration = Annotated[float, "duration"]  # seconds; written "300ms", "3s" in YAML
PROJECT_DIR = Path(__file__).resolve().parent.parent
PROFILES_DIR = PROJECT_DIR / "profiles"


@dataclass(frozen=True)
class Timeouts:
    """Every deadline of the harness (not of the mesh under test) in one place."""

    startup: Duration = 30.0  # bringing a mesh up, per sidecar and app
    apply: Duration = 15.0  # one apply() until every affected proxy serves the new config
    call: Duration = 30.0  # client-side bound of one request, so a broken mesh cannot hang a check
    shutdown_grace: Duration = 2.0  # SIGTERM -> SIGKILL


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
class RetriesProfile:
    """The seed's VirtualService: `timeout: 10s`, `retries: {attempts: 3, perTryTimeout: 3s,
    retryOn: 5xx,reset,connect-failure}`; durations scaled down 10x by default."""

    attempts: int = 3
    per_try_timeout: Duration = 0.3
    timeout: Duration = 1.0
    retry_on: list[str] = field(default_factory=lambda: ["5xx", "reset", "connect-failure"])

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
    """Where timing tolerances come from: the scheduling noise measured right before each timing check.

    tolerance late = floor + multiplier x p99.9 of `noise_samples` fast calls on the same path;
    tolerance early = floor + p99.9 (Envoy arms timers from its event loop's cached time, so a timer
    can fire early by up to one loop iteration: measured here, 504s arrived up to 2.6 ms before T).
    """

    noise_samples: int = 200
    multiplier: float = 3.0
    floor: Duration = 0.010
    retry_backoff: Duration = 0.025  # a first retry waits U(0, 25ms) in Envoy, Istio's default base_interval

    def validate(self) -> None:
        if self.noise_samples < 50 or self.multiplier < 1 or self.floor < 0:
            raise ValueError("noise_samples >= 50, multiplier >= 1 and floor >= 0 are required")


@dataclass(frozen=True)
class CanaryProfile:
    """The seed's canary: the default split, the rollout steps and the health gate."""

    weights: dict[str, int] = field(default_factory=lambda: {"v1": 90, "v2": 10})
    steps: list[int] = field(default_factory=lambda: [10, 25, 50, 75, 100])
    error_threshold: float = 0.01  # the rollout gate: v2's error rate must stay below this

    def validate(self) -> None:
        RouteRule(splits=self.weights)  # weights must name versions and add up to 100
        if any(not 0 <= step <= 100 for step in self.steps) or self.steps != sorted(self.steps):
            raise ValueError(f"steps must be increasing percentages, got {self.steps}")
        if not 0 < self.error_threshold < 1:
            raise ValueError(f"error_threshold is a fraction between 0 and 1, got {self.error_threshold}")


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    description: str = "scaled-down timings so the suites run in minutes"
    timeouts: Timeouts = field(default_factory=Timeouts)
    local: LocalMeshSettings = field(default_factory=LocalMeshSettings)
    retries: RetriesProfile = field(default_factory=RetriesProfile)
    timing: TimingProfile = field(default_factory=TimingProfile)
    canary: CanaryProfile = field(default_factory=CanaryProfile)


# --- loading --------------------------------------------------------------------------------------------


class _ProfileError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)


def _describe_type(annotation: Any) -> str:
    if annotation is Duration:
        return "a duration like '300ms' or '3s'"
    origin = typing.get_origin(annotation)
    if origin is list:
        return f"a list of {_describe_type(typing.get_args(annotation)[0])}s"
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


def resolve_profile_path(spec: str) -> Path:
    """A file path, or the name of a profile shipped in profiles/ (`seed`)."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return PROFILES_DIR / f"{spec}.yaml"


def load_profile(spec: str | None) -> Profile:
    if spec is None:
        return Profile()
    path = resolve_profile_path(spec)
    try:
        text = path.read_text()
    except OSError as exc:
        shipped = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise UserError(f"profile {spec!r}: cannot read {path}: {exc.strerror} "
                        f"(give a YAML file or one of: {shipped})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"profile {path}{place}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    try:
        profile: Profile = _build(Profile, data, "")
    except _ProfileError as exc:
        raise UserError(f"profile {path}: {exc} (fix the value, or remove the key to keep the default)") from None
    return profile


def profile_as_dict(profile: Profile) -> dict[str, Any]:
    return dataclasses.asdict(profile)
