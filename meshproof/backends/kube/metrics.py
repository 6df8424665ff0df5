"""The Prometheus text exposition format, as the meshes' proxies serve it, read into samples.

Istio's sidecar serves `istio_requests_total` (and Envoy's own stats) on :15020/stats/prometheus,
Linkerd's proxy `response_total` on :4191/metrics; meshproof reads them straight from each pod
through the API server, so a count is exact at the moment it is read, with no scrape interval in
between. The same counters are what the seed's PromQL (`sum(rate(istio_requests_total{...}[5m]))`)
takes rates of: summing them over a version's pods and differencing two readings gives the seed's
error rate over exactly the requests of one rollout step.

Format (Prometheus exposition format 0.0.4): `name{label="value",...} value [timestamp]`, `#` lines are
comments (HELP, TYPE), label values escape `\\`, `"` and newline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


class MetricsFormatError(ValueError):
    pass


def _unescape(text: str) -> str:
    return re.sub(r'\\[\\"n]', lambda match: _ESCAPES[match.group(0)], text)


def parse(text: str) -> list[Sample]:
    """Every sample in `text`; MetricsFormatError naming the line for anything else."""
    samples = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name_match = _NAME.match(line)
        if name_match is None:
            raise MetricsFormatError(f"line {number}: no metric name: {raw[:120]!r}")
        labels: dict[str, str] = {}
        rest = line[name_match.end():]
        if rest.startswith("{"):
            rest = rest[1:]
            if rest.lstrip().startswith("}"):
                rest = rest.lstrip()[1:]
            else:
                while True:
                    label = _LABEL.match(rest)
                    if label is None:
                        raise MetricsFormatError(f"line {number}: bad labels: {raw[:120]!r}")
                    labels[label.group(1)] = _unescape(label.group(2))
                    rest = rest[label.end():]
                    if label.group(3) == "}":
                        break
        fields = rest.split()
        if not fields:
            raise MetricsFormatError(f"line {number}: no value: {raw[:120]!r}")
        try:
            value = float(fields[0])
        except ValueError:
            raise MetricsFormatError(f"line {number}: value {fields[0]!r} is not a number") from None
        samples.append(Sample(name_match.group(0), labels, value))
    return samples


def total(samples: Iterable[Sample], name: str, where: Callable[[Mapping[str, str]], bool] = lambda _: True) -> int:
    """The sum of the samples of counter `name` whose labels satisfy `where` (NaN samples are skipped)."""
    found = sum(s.value for s in samples if s.name == name and where(s.labels) and not math.isnan(s.value))
    return round(found)
