"""A comparison (meshproof.report.compare) as text, Markdown, HTML or JSON.

Four parts, in this order: the mesh-comparison table (the seed chapter's "Istio vs Linkerd" table with
measured numbers instead of adjectives), checks side by side, every metric's change against the
reference run with its significance and method, and the regressions the gate counts.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from meshproof.report.compare import Change, Comparison, Run
from meshproof.report.html import STYLE
from meshproof.report.table import Cell, Table, as_html, as_json, as_markdown, as_text
from meshproof.report.tables import ms_interval, proxy_cost, status_cell
from meshproof.report.view import by_capability, counts

FORMATS = ("text", "markdown", "html", "json")
TRAFFIC = ("retries", "timeouts", "outlier", "connpool", "ratelimit", "canary")
NOT_MEASURED = "complexity, learning curve, multi-cluster, web UI, best for"


def _pfn(records: Sequence[Mapping[str, Any]]) -> str:
    """'8 / 0 / 0': checks passed / failed (or errored) / not supported, plus skipped ones when there are."""
    if not records:
        return "not run"
    tally = counts(records)
    text = f"{tally['passed']} / {tally['failed'] + tally['error']} / {tally['not_supported']}"
    return text + (f" ({tally['skipped']} skipped)" if tally["skipped"] else "")


def _rates(runs: Sequence[Run]) -> list[float]:
    return sorted({float(entry["target_rps"]) for run in runs for entry in run.results.get("load") or []})


def _entry_at(run: Run, rate: float) -> Mapping[str, Any] | None:
    return next((entry for entry in run.results.get("load") or [] if float(entry["target_rps"]) == rate), None)


def _idle_memory(run: Run) -> str:
    memory = list((run.results["run"].get("sidecar_memory") or {}).values())
    if not memory:
        return "-"
    rss = sum(m["rss_mib"] for m in memory) / len(memory)
    uss = [m["uss_mib"] for m in memory if m.get("uss_mib") is not None]
    private = f", {sum(uss) / len(uss):.0f} MiB private" if uss else ""
    return f"{rss:.0f} MiB RSS{private} (idle, mean of {len(memory)} proxies)"


def mesh_table(comparison: Comparison) -> Table:
    runs = comparison.runs
    table = Table(["", *(f"{run.name}: {run.label}" for run in runs)],
                  title="Mesh comparison: the seed's table, measured (overhead with 95% intervals)")
    table.add("proxy", *(str(run.results["run"].get("mesh_version") or run.results["run"]["mesh"]) for run in runs))
    for rate in _rates(runs):
        entries = [_entry_at(run, rate) for run in runs]
        for quantile in ("p50", "p99"):
            table.add(f"latency overhead {quantile} at {rate:g} req/s",
                      *(_valid(e, ms_interval((e.get("overhead_us") or {}).get(quantile))) if e else "not run"
                        for e in entries))
        costs = [proxy_cost(e) if e else (None, None) for e in entries]
        table.add(f"proxy vCPU per 1000 req/s at {rate:g} req/s", *(_num(cpu, ".3g") for cpu, _ in costs))
        table.add(f"proxy memory under {rate:g} req/s", *(_num(rss, ".0f", " MiB RSS") for _, rss in costs))
    table.add("proxy memory, idle", *(_idle_memory(run) for run in runs))
    groups = [(run, by_capability(run.results)) for run in runs]
    table.add("checks passed / failed / not supported", *(_pfn(run.results["checks"]) for run, _ in groups))
    table.add("mTLS", *(_pfn(capabilities.get("mtls", [])) for _, capabilities in groups))
    table.add(f"traffic management ({', '.join(TRAFFIC)})",
              *(_pfn([r for c in TRAFFIC for r in capabilities.get(c, [])]) for _, capabilities in groups))
    for capability in dict.fromkeys(c for _, capabilities in groups for c in capabilities):
        table.add(f"  {capability}", *(_pfn(capabilities.get(capability, [])) for _, capabilities in groups))
    table.add(f"not measured (opinions, not numbers): {NOT_MEASURED}", *("-" for _ in runs))
    return table


def _valid(entry: Mapping[str, Any], text: str) -> str:
    return text if entry.get("valid", True) else f"{text} (INVALID run)"


def _num(value: float | None, digits: str, unit: str = "") -> str:
    return "-" if value is None else f"{format(value, digits)}{unit}"


def checks_table(comparison: Comparison) -> Table:
    runs = comparison.runs
    table = Table(["check", *(run.name for run in runs), "same"], title="Checks side by side (status: key measurement)")
    for row in comparison.checks:
        cells = [status_cell(status) if status else Cell("absent", "note") for status in row.statuses]
        shown = [Cell(f"{cell.text}: {measured}" if measured else cell.text, cell.tone)
                 for cell, measured in zip(cells, row.measured, strict=True)]
        same = len(set(row.statuses)) == 1
        table.add(row.id, *shown, Cell("yes" if same else "NO", "" if same else "bad"))
    return table


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.3g} ms" if unit == "us" else f"{value:.4g} {unit}".strip()


def _ci(interval: tuple[float, float] | None, unit: str) -> str:
    if interval is None:
        return ""
    scale = 1000 if unit == "us" else 1
    return f" [{interval[0] / scale:.3g}, {interval[1] / scale:.3g}]"


def changes_table(comparison: Comparison, later: int) -> Table:
    before, after = comparison.runs[0], comparison.runs[later]
    table = Table(["metric", before.name, after.name, "change", f"{comparison.confidence:.0%} interval of the change",
                   "significant", "method", "gate"], title=f"Metrics: {after.name} against {before.name}")
    for change in comparison.changes[later - 1]:
        relative = f" ({change.relative:+.0%})" if change.relative is not None else ""
        significant = {True: "yes", False: "no", None: "-"}[change.significant]
        table.add(change.metric, _value(change.before, change.unit) + _ci(change.before_ci, change.unit),
                  _value(change.after, change.unit) + _ci(change.after_ci, change.unit),
                  Cell(_signed(change) + relative, "bad" if change.worse and change.significant else ""),
                  _ci(change.difference_ci, change.unit).strip() or "-", significant, change.method,
                  Cell("REGRESSION", "bad") if change.regression else "invalid run: not judged" if change.invalid
                  else "ok")
    return table


def _signed(change: Change) -> str:
    difference = change.difference
    if difference is None:
        return "-"
    if change.unit == "us":
        return f"{difference / 1000:+.3g} ms"
    return f"{difference:+.4g} {change.unit}".strip()


def _tables(comparison: Comparison) -> list[Table]:
    changes = [changes_table(comparison, later) for later in range(1, len(comparison.runs))
               if comparison.changes[later - 1]]
    return [mesh_table(comparison), checks_table(comparison), *changes]


def _verdict(comparison: Comparison) -> list[str]:
    if not comparison.regressions:
        return [f"no regression against {comparison.runs[0].name}"]
    return [f"{len(comparison.regressions)} regression(s) against {comparison.runs[0].name}:",
            *(f"REGRESSION {reason}" for reason in comparison.regressions)]


def _text(comparison: Comparison, render: Callable[[Table], str]) -> str:
    return "\n\n".join([*(render(table) for table in _tables(comparison)), "\n".join(_verdict(comparison))]) + "\n"


def _html(comparison: Comparison) -> str:
    title = "meshproof compare: " + " vs ".join(html.escape(run.name) for run in comparison.runs)
    verdict = "".join(f"<li>{html.escape(line)}</li>" for line in _verdict(comparison))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
            + "".join(as_html(table) for table in _tables(comparison))
            + f"<h2>Gate</h2><ul>{verdict}</ul></body></html>\n")


def _json(comparison: Comparison) -> str:
    document = {
        "runs": [{"name": run.name, "label": run.label, "run": run.results["run"]} for run in comparison.runs],
        "mesh_comparison": as_json(mesh_table(comparison)),
        "checks": [asdict(row) for row in comparison.checks],
        "changes": [{"against": comparison.runs[0].name, "run": comparison.runs[later].name,
                     "metrics": [{**asdict(c), "difference": c.difference, "relative": c.relative, "worse": c.worse}
                                 for c in comparison.changes[later - 1]]}
                    for later in range(1, len(comparison.runs))],
        "regressions": comparison.regressions,
    }
    return json.dumps(document, indent=2) + "\n"


def render_comparison(comparison: Comparison, fmt: str) -> str:
    if fmt == "text":
        return _text(comparison, as_text)
    if fmt == "markdown":
        return _text(comparison, as_markdown)
    if fmt == "html":
        return _html(comparison)
    if fmt == "json":
        return _json(comparison)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
