"""The plots of report.html, each drawn from what results.json records (meshproof.report.svg draws).

- load: per rate, latency by percentile for the baseline and the mesh path (from the raw per-block HDR
  histograms in `latency_blocks`, else the four recorded quantiles), beside the overhead at p50..p99.9
  with its confidence interval;
- canary: per check, each split's or rollout step's observed shares with their intervals and the
  expected share (measured entries shaped {"value": {version: share}, "ci": {version: [lo, hi]},
  "expected": {version: share}});
- outlier: per check and phase, the per-endpoint timeline (evidence `timeline_s`: runs of
  [first_s, last_s, outcome, count]); a gap in an endpoint's lane is time it got no traffic;
- chaos: per experiment (results.json `chaos` list), error rate and latency over time, the fault's
  window shaded. The shape of a chaos entry, which the chaos suite writes:

      {"check": "chaos.<id>", "experiment": "<name>", "title": "<sentence>",
       "fault": {"kind": "proxy_crash", "target": "order-service-v1-0", "start_s": 5.0, "end_s": 10.0},
       "timeline": {"bucket_s": 0.5, "columns": ["t_s", "requests", "errors", "p50_ms", "p99_ms"],
                    "rows": [[0.0, 50, 0, 0.8, 1.9], ...]},
       "metrics": {"error_rate_during_fault": {"value": 0.12, "unit": "ratio", "ci": [0.10, 0.14],
                                               "better": "lower"},
                   "recovery_s": {"value": 1.8, "unit": "s", "better": "lower"}, ...}}

  t_s is the bucket's start in seconds since the experiment's traffic began, `end_s` null while the
  fault was never lifted; every metric says which direction is better, so compare can judge it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshproof.load.blocks import merge_histograms
from meshproof.report.svg import PALETTE, Bands, Chart, Linear, Log10, Nines, percentile_label
from meshproof.report.view import Record

QUANTILE_LEVELS = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
PATHS = {"baseline": PALETTE[0], "mesh": PALETTE[1]}
OUTCOME_COLOURS = {"2": "#2ca02c", "500": "#d62728", "503": "#ff7f0e", "502": "#9467bd", "504": "#8c564b"}
OTHER_OUTCOME = "#7f7f7f"


@dataclass(frozen=True)
class Figure:
    section: str  # "load" | "canary" | "outlier" | "chaos"
    title: str
    svg: str
    caption: str = ""


def figures(results: Mapping[str, Any]) -> list[Figure]:
    checks: list[Record] = results["checks"]
    return [*_load(results.get("load") or []), *_canary(checks), *_ejections(checks),
            *_chaos(results.get("chaos") or [])]


def _ms(us: float) -> float:
    return us / 1000.0


def _ms_text(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


# --- load ------------------------------------------------------------------------------------------


def _spectrum(encoded: Sequence[str]) -> list[tuple[float, float]]:
    """(quantile, ms) from 0.5 up to the highest quantile the samples resolve, ten points per nine."""
    histogram = merge_histograms(encoded)
    total = histogram.get_total_count()
    if total == 0:
        return []
    top = min(1 - 1 / total, 0.9999)
    points = []
    step = 0
    while (q := 1 - 0.5 * 10 ** (-step / 10)) <= top:
        points.append((q, _ms(histogram.get_value_at_percentile(q * 100))))
        step += 1
    return points


def _load(entries: Sequence[Mapping[str, Any]]) -> Iterator[Figure]:
    for entry in entries:
        rate = f"{entry['target_rps']:g} req/s"
        blocks = entry.get("latency_blocks") or {}
        lines = {path: _spectrum(blocks.get(path) or []) for path in PATHS}
        recorded = {path: [(QUANTILE_LEVELS[q], _ms(v)) for q, v in (entry.get(f"{path}_us") or {}).items()
                           if q in QUANTILE_LEVELS and v is not None] for path in PATHS}
        values = [ms for series in (*lines.values(), *recorded.values()) for _, ms in series]
        top_q = max([q for series in (*lines.values(), *recorded.values()) for q, _ in series] + [0.999])
        validity = "" if entry.get("valid", True) else " (INVALID run: its numbers are not to be believed)"
        chart = Chart(f"{rate}: latency by percentile{validity}", Nines(hi=top_q),
                      Log10(min(values or [0.01]), max(values or [1.0]), _ms_text),
                      x_label="percentile (spaced by nines)", y_label="latency (ms)")
        for path, colour in PATHS.items():
            chart.line(lines[path], colour, label=path)
            chart.dots(recorded[path], colour, label=path)
        yield Figure("load", chart.title, chart.render(),
                     f"achieved {entry.get('achieved_rps')} of {rate}, {entry.get('duration_s')} s per path; "
                     "lines: all samples (HDR histograms), dots: the recorded quantiles")
        overhead = entry.get("overhead_us") or {}
        judged = {q: o for q, o in overhead.items() if q in QUANTILE_LEVELS}
        bounds = [_ms(v) for o in judged.values() for v in (o["value"], *o.get("ci", ()))]
        chart = Chart(f"{rate}: overhead, mesh - baseline", Nines(hi=0.999),
                      Linear.covering(bounds, fmt=_ms_text, include_zero=True),
                      x_label="percentile", y_label="overhead (ms), 95% interval")
        chart.h_rule(0.0)
        for q, estimate in judged.items():
            level = QUANTILE_LEVELS[q]
            if estimate.get("ci"):
                chart.y_interval(level, _ms(estimate["ci"][0]), _ms(estimate["ci"][1]), PALETTE[1])
            chart.dots([(level, _ms(estimate["value"]))], PALETTE[1], label="overhead")
        yield Figure("load", chart.title, chart.render(), "; ".join(
            f"{percentile_label(QUANTILE_LEVELS[q])} {_ms(o['value']):.3g} ms "
            f"[{_ms(o['ci'][0]):.3g}, {_ms(o['ci'][1]):.3g}]" for q, o in judged.items() if o.get("ci")))


# --- canary ----------------------------------------------------------------------------------------


def _share_entries(record: Record) -> list[tuple[str, Mapping[str, Any]]]:
    return [(name.removesuffix("_shares"), entry) for name, entry in record.get("measured", {}).items()
            if isinstance(entry, Mapping) and isinstance(entry.get("value"), Mapping)
            and isinstance(entry.get("ci"), Mapping) and isinstance(entry.get("expected"), Mapping)]


def _canary(checks: Sequence[Record]) -> Iterator[Figure]:
    for record in checks:
        entries = _share_entries(record)
        if not entries:
            continue
        rows = [(split, version, entry) for split, entry in entries
                for version in sorted(set(entry["value"]) | set(entry["expected"]))]
        bands = Bands([f"{split}: {version}" for split, version, _ in rows])
        chart = Chart(record["id"], Linear(0.0, 1.0, lambda v: f"{v:.0%}"), bands,
                      x_label="share of requests", height=30 + 46 + 22 * len(rows), left=190, width=660)
        confidence = next((entry.get("confidence") for _, entry in entries if entry.get("confidence")), None)
        for index, (_, version, entry) in enumerate(rows):
            observed = entry["value"].get(version, 0.0)
            interval = entry["ci"].get(version)
            if interval:
                chart.x_interval(index, interval[0], interval[1], PALETTE[0])
            chart.dots([(observed, index)], PALETTE[0], label="observed")
            chart.tick(entry["expected"].get(version, 0.0), index, label="expected")
        level = f"{confidence * 100:.4g}%" if confidence else "stated"
        yield Figure("canary", chart.title, chart.render(),
                     f"{record.get('title', '')} Dots: observed shares, whiskers: their {level} intervals, "
                     "black ticks: the weights set.")


# --- outlier ---------------------------------------------------------------------------------------


def _outcome_colour(outcome: object) -> str:
    text = str(outcome)
    return OUTCOME_COLOURS.get(text) or (OUTCOME_COLOURS["2"] if text.startswith("2") else OTHER_OUTCOME)


def _ejections(checks: Sequence[Record]) -> Iterator[Figure]:
    for record in checks:
        for item in record.get("evidence") or []:
            if not isinstance(item, Mapping) or not isinstance(item.get("timeline_s"), Mapping):
                continue
            lanes: Mapping[str, Sequence[Sequence[Any]]] = item["timeline_s"]
            end = max([float(item.get("elapsed_s") or 0.0)]
                      + [float(run[1]) for runs in lanes.values() for run in runs] + [1e-3])
            chart = Chart(f"{record['id']}: {item.get('phase', '')}", Linear(0.0, end, lambda v: f"{v:.3g}"),
                          Bands(list(lanes)), x_label="seconds since the batch began",
                          height=30 + 46 + 30 * len(lanes), left=150, width=660)
            for index, (endpoint, runs) in enumerate(lanes.items()):
                for first, last, outcome, count in runs:
                    chart.bar(index, float(first), float(last), _outcome_colour(outcome), label=f"HTTP {outcome}"
                              if str(outcome).isdigit() else str(outcome),
                              title=f"{endpoint}: {outcome} x{count}, {first:.3f}-{last:.3f} s")
            yield Figure("outlier", chart.title, chart.render(),
                         f"{item.get('requests', '?')} requests one at a time; a bar is a run of equal outcomes at an "
                         "endpoint, a gap in its lane is time it got no traffic (ejected)")


# --- chaos -----------------------------------------------------------------------------------------


def _column(timeline: Mapping[str, Any], name: str) -> list[float | None]:
    columns = list(timeline.get("columns") or [])
    if name not in columns:
        return []
    index = columns.index(name)
    return [row[index] for row in timeline.get("rows") or []]


def _fault_span(chart: Chart, fault: Mapping[str, Any], end: float) -> None:
    start = fault.get("start_s")
    if start is not None:
        stop = fault.get("end_s")
        chart.x_span(float(start), float(stop) if stop is not None else end, PALETTE[3],
                     label=f"fault: {fault.get('kind', '?')} {fault.get('target', '')}".strip())


def _chaos(entries: Sequence[Mapping[str, Any]]) -> Iterator[Figure]:
    for entry in entries:
        timeline = entry.get("timeline") or {}
        bucket = float(timeline.get("bucket_s") or 0.0)
        times = [float(t) + bucket / 2 for t in _column(timeline, "t_s") if t is not None]  # bucket middles
        if not times:
            continue
        end = times[-1] + bucket / 2
        name = entry.get("experiment") or entry.get("check") or "experiment"
        requests, errors = _column(timeline, "requests"), _column(timeline, "errors")
        rate = [(t, 100.0 * (e or 0) / r) for t, r, e in zip(times, requests, errors, strict=False) if r]
        chart = Chart(f"{name}: error rate", Linear(0.0, end, lambda v: f"{v:.3g}"),
                      Linear.covering([v for _, v in rate] + [1.0], include_zero=True, fmt=lambda v: f"{v:.3g}%"),
                      x_label="seconds", y_label="errors (% of requests)")
        _fault_span(chart, entry.get("fault") or {}, end)
        chart.line(rate, PALETTE[1], label="error rate")
        yield Figure("chaos", chart.title, chart.render(), str(entry.get("title") or ""))
        series = {q: [(t, float(v)) for t, v in zip(times, _column(timeline, f"{q}_ms"), strict=False)
                      if v is not None and math.isfinite(float(v))] for q in ("p50", "p99")}
        values = [v for points in series.values() for _, v in points]
        if not values:
            continue
        chart = Chart(f"{name}: latency", Linear(0.0, end, lambda v: f"{v:.3g}"),
                      Log10(min(values), max(values), _ms_text), x_label="seconds", y_label="latency (ms)")
        _fault_span(chart, entry.get("fault") or {}, end)
        for colour, (q, points) in zip(PALETTE, series.items(), strict=False):
            chart.line(points, colour, label=q)
        yield Figure("chaos", chart.title, chart.render(), str(entry.get("title") or ""))
