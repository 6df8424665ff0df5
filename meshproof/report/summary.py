"""The short table `meshproof run` prints at the end, rendered from results.json."""

from __future__ import annotations

from typing import Any

_SYMBOL = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "not_supported": "N/S", "error": "ERROR"}


def _key_measurement(measured: dict[str, Any]) -> str:
    """The last value a check measured: checks measure the inputs first and the verdict's value last."""
    for name, entry in reversed(measured.items()):
        value = entry.get("value") if isinstance(entry, dict) else entry
        unit = entry.get("unit", "") if isinstance(entry, dict) else ""
        if isinstance(value, float):
            value = f"{value:.4g}"
        return f"{name}={value}{(' ' + unit) if unit else ''}"[:48]
    return ""


def render_summary(results: dict[str, Any], *, results_path: str | None = None) -> str:
    checks = results["checks"]
    width = max([len(c["id"]) for c in checks] + [5])
    lines = [f"{'check':<{width}}  {'status':<6}  {'time':>7}  measured"]
    for record in checks:
        lines.append(f"{record['id']:<{width}}  {_SYMBOL[record['status']]:<6}  "
                     f"{record['duration_s']:>6.2f}s  {_key_measurement(record['measured'])}")
    problems = [c for c in checks if c["status"] in ("failed", "error")]
    if problems:
        lines.append("")
        for record in problems:
            lines.append(f"{_SYMBOL[record['status']]} {record['id']}: {record.get('message') or ''}")
    skipped = [c for c in checks if c["status"] in ("skipped", "not_supported")]
    if skipped:
        lines.append("")
        lines.extend(f"{_SYMBOL[c['status']]} {c['id']}: {c.get('message') or ''}" for c in skipped)
    counts = {status: sum(c["status"] == status for c in checks) for status in _SYMBOL}
    run = results["run"]
    totals = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no checks"
    version = f" ({run['mesh_version']})" if run.get("mesh_version") else ""
    interrupted = "INTERRUPTED after " if run.get("interrupted") else ""
    lines.append("")
    lines.append(f"meshproof: {interrupted}{totals} in {run['duration_s']:.1f}s on {run['mesh']}{version}"
                 + (f"; results in {results_path}" if results_path else ""))
    return "\n".join(lines)
