"""The short table `meshproof run` prints at the end, rendered from results.json."""

from __future__ import annotations

from typing import Any

from meshproof.report.view import PROBLEMS, counts, counts_text, key_measurement, run_label, status_of

_SYMBOL = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERROR", "not_supported": "N/S"}


def _symbol(record: dict[str, Any]) -> str:
    status = status_of(record)
    return _SYMBOL.get(status, status.upper())


def render_summary(results: dict[str, Any], *, results_path: str | None = None) -> str:
    checks = results["checks"]
    width = max([len(c["id"]) for c in checks] + [5])
    lines = [f"{'check':<{width}}  {'status':<6}  {'time':>7}  measured"]
    for record in checks:
        lines.append(f"{record['id']:<{width}}  {_symbol(record):<6}  "
                     f"{record['duration_s']:>6.2f}s  {key_measurement(record['measured'])}")
    for group in (PROBLEMS, {"skipped", "not_supported"}):
        listed = [c for c in checks if status_of(c) in group]
        if listed:
            lines.append("")
            lines.extend(f"{_symbol(c)} {c['id']}: {c.get('message') or ''}" for c in listed)
    run = results["run"]
    interrupted = "INTERRUPTED after " if run.get("interrupted") else ""
    lines.append("")
    lines.append(f"meshproof: {interrupted}{counts_text(counts(checks))} in {run['duration_s']:.1f}s on "
                 f"{run_label(results)}" + (f"; results in {results_path}" if results_path else ""))
    return "\n".join(lines)
