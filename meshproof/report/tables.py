"""The tables one run's reports share (report.html and summary.md): verdicts per capability, load, chaos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from meshproof.report.table import Cell, Table
from meshproof.report.view import by_capability, counts, counts_text, verdict

TONE = {"passed": "good", "failed": "bad", "error": "bad", "skipped": "note", "not_supported": "note"}


def status_cell(status: str) -> Cell:
    return Cell(status.replace("_", " "), TONE.get(status, ""))


def overview_table(results: Mapping[str, Any]) -> Table:
    table = Table(["capability", "verdict", "checks"], title="Verdicts per capability")
    for capability, records in by_capability(results).items():
        tally = counts(records)
        table.add(capability, status_cell(verdict(tally)), counts_text(tally))
    return table


def ms_interval(estimate: Mapping[str, Any] | None) -> str:
    """An overhead estimate {"value", "ci"} in microseconds as '0.79 ms [0.72, 0.85]'."""
    if not estimate:
        return "-"
    ci = estimate.get("ci")
    return f"{estimate['value'] / 1000:.3g} ms" + (f" [{ci[0] / 1000:.3g}, {ci[1] / 1000:.3g}]" if ci else "")


def proxy_cost(entry: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(vCPU per 1000 req/s, steady RSS MiB) per proxy, averaged over the entry's proxies."""
    proxies = list((entry.get("proxy") or {}).values())
    cpu = [p["vcpu_per_1000rps"] for p in proxies if p.get("vcpu_per_1000rps") is not None]
    rss = [p["rss_mib"]["steady"] for p in proxies if (p.get("rss_mib") or {}).get("steady") is not None]
    return (sum(cpu) / len(cpu) if cpu else None, sum(rss) / len(rss) if rss else None)


def _number(value: float | None, digits: str = ".3g") -> str:
    return "-" if value is None else format(value, digits)


def load_table(entries: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(["rate", "achieved", "valid", "overhead p50 (95% CI)", "overhead p99 (95% CI)",
                   "vCPU per 1000 req/s (per proxy)", "RSS MiB (per proxy)"], title="Load: latency the mesh adds")
    for entry in entries:
        cpu, rss = proxy_cost(entry)
        overhead = entry.get("overhead_us") or {}
        table.add(f"{entry['target_rps']:g} req/s", f"{entry.get('achieved_rps')}",
                  Cell("yes", "good") if entry.get("valid") else Cell("NO", "bad"),
                  ms_interval(overhead.get("p50")), ms_interval(overhead.get("p99")), _number(cpu), _number(rss, ".1f"))
    return table


def chaos_table(entries: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(["experiment", "fault", "metric", "value", "interval"], title="Chaos experiments")
    for entry in entries:
        fault = entry.get("fault") or {}
        for name, metric in (entry.get("metrics") or {}).items():
            ci = metric.get("ci")
            table.add(str(entry.get("experiment") or entry.get("check")),
                      f"{fault.get('kind', '?')} {fault.get('target', '')}".strip(), name,
                      f"{metric.get('value')} {metric.get('unit', '')}".strip(),
                      f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "-")
    return table
