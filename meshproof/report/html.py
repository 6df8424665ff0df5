"""report.html: one self-contained page per run, rendered from results.json alone.

A verdict table per capability (each check's status, what it measured, the criterion it was judged
by, and the message of a failure or skip), then the plots of meshproof.report.plots. Everything is
inline (CSS and SVG); there is no script, nothing is fetched, so the file can be archived, mailed or
opened from a CI artifact years later and look the same.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from meshproof.report.plots import Figure, figures
from meshproof.report.table import Cell, Table, as_html
from meshproof.report.tables import chaos_table, load_table, overview_table, status_cell
from meshproof.report.view import by_capability, counts, counts_text, run_label, status_of, value_text

SECTIONS = {
    "load": "Load: latency the mesh adds",
    "canary": "Canary: traffic shares per split and rollout step",
    "outlier": "Outlier detection: per-endpoint timelines",
    "chaos": "Chaos: error rate and latency around each fault",
}

NUMBERS = {"load": load_table, "chaos": chaos_table}  # the sections whose numbers are a table, too

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } caption { text-align: left; font-weight: bold; padding: .3em 0; }
td.good { background: #e6f4e6; } td.bad { background: #fbe3e3; } td.note { background: #f6f0d8; }
td.criterion { color: #555; max-width: 40em; } td.message { max-width: 40em; white-space: pre-wrap; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figcaption { font-size: .8em; color: #555; max-width: 660px; }
div.figtitle { font-weight: bold; font-size: .95em; max-width: 660px; margin-bottom: .2em; overflow-wrap: anywhere; }
p.none { color: #777; } td:first-child { white-space: pre-line; }
"""


def _run_table(results: Mapping[str, Any]) -> Table:
    run = results["run"]
    host = run.get("host") or {}
    table = Table(["", ""], title="Run")
    for name, value in (
        ("mesh", run_label(results)), ("profile", run.get("profile")), ("started", run.get("started")),
        ("duration", f"{run.get('duration_s', 0):.1f} s"), ("meshproof", run.get("meshproof_version")),
        ("host", f"{host.get('name', '?')}, {host.get('cpus', '?')} CPUs, Python {host.get('python', '?')}"),
        ("interrupted", "yes: partial results" if run.get("interrupted") else "no"),
    ):
        table.add(name, str(value))
    return table


def _checks(capability: str, records: list[Mapping[str, Any]]) -> str:
    table = Table(["check", "status", "measured", "criterion", "message"], title=f"{capability}")
    for record in records:
        status = status_of(record)
        measured = "; ".join(f"{name} = {value_text(entry)}" for name, entry in (record.get("measured") or {}).items())
        table.add(f"{record['id']}\n{record.get('title', '')}", status_cell(status), measured,
                  Cell(record.get("criterion") or "", "criterion"), Cell(record.get("message") or "", "message"))
    return as_html(table)


def _figure(figure: Figure) -> str:
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    return (f'<figure class="plot" data-section="{figure.section}"><div class="figtitle">'
            f"{html.escape(figure.title)}</div>{figure.svg}{caption}</figure>")


def render_html(results: Mapping[str, Any]) -> str:
    drawn = figures(results)
    title = f"meshproof: {run_label(results)}, {counts_text(counts(results['checks']))}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>", as_html(_run_table(results)), as_html(overview_table(results)),
    ]
    for section, heading in SECTIONS.items():
        parts.append(f'<h2 id="{section}">{html.escape(heading)}</h2>')
        if section in NUMBERS and results.get(section):
            parts.append(as_html(NUMBERS[section](results[section])))
        mine = [figure for figure in drawn if figure.section == section]
        parts += [_figure(figure) for figure in mine] or ['<p class="none">nothing recorded in this run</p>']
    parts.append("<h2>Checks</h2>")
    parts += [_checks(capability, records) for capability, records in by_capability(results).items()]
    parts.append("</body></html>")
    return "\n".join(parts)
