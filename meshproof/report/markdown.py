"""summary.md: the run in a page of Markdown, for CI job summaries (append it to `$GITHUB_STEP_SUMMARY`).

Verdicts per capability first, then every failure with its message, what was skipped or is not
supported and why, the load and chaos numbers; the plots stay in report.html (GitHub strips inline SVG).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshproof.report.table import as_markdown
from meshproof.report.tables import chaos_table, load_table, overview_table
from meshproof.report.view import PROBLEMS, counts, counts_text, run_label, status_of


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def render_markdown(results: Mapping[str, Any]) -> str:
    run, checks = results["run"], results["checks"]
    tally = counts(checks)
    mark = "❌" if any(tally.get(status) for status in PROBLEMS) else "✅"
    lines = [f"## {mark} meshproof: {run_label(results)}: {counts_text(tally)}", "",
             f"profile `{run.get('profile')}`, started {run.get('started')}, {run.get('duration_s', 0):.1f} s, "
             f"meshproof {run.get('meshproof_version')}" + (", **interrupted: partial results**"
                                                            if run.get("interrupted") else ""), "",
             as_markdown(overview_table(results)), ""]
    for heading, group in (("Failed", PROBLEMS), ("Skipped or not supported", {"skipped", "not_supported"})):
        listed = [record for record in checks if status_of(record) in group]
        if listed:
            lines += [f"### {heading}", ""]
            lines += [f"- `{r['id']}` ({status_of(r).replace('_', ' ')}): {_first_line(r.get('message'))}"
                      for r in listed]
            lines.append("")
    if results.get("load"):
        lines += [as_markdown(load_table(results["load"])), ""]
    if results.get("chaos"):
        lines += [as_markdown(chaos_table(results["chaos"])), ""]
    lines.append("Plots, criteria and measured values of every check: `report.html` beside this file.")
    return "\n".join(lines) + "\n"
