"""Reports rendered from results.json alone, so any of them can be made again from an archived run.

`write_reports(results, out_dir)` writes every per-run file (the pytest plugin calls it at the end of
a session, `meshproof report DIR` again later): junit.xml for CI systems, report.html for people
(verdicts and plots, self-contained), summary.md for CI job summaries, conformance.yaml in the shape
Gateway API conformance reports have. `meshproof compare` (meshproof.report.compare) reads several.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meshproof.report.conformance import render_conformance
from meshproof.report.html import render_html
from meshproof.report.junit import render_junit
from meshproof.report.markdown import render_markdown

RENDERERS: dict[str, Callable[[Mapping[str, Any]], str | bytes]] = {
    "junit.xml": render_junit,
    "report.html": render_html,
    "summary.md": render_markdown,
    "conformance.yaml": render_conformance,
}


def write_reports(results: Mapping[str, Any], out_dir: Path, *, suffix: str = "") -> list[Path]:
    """Every report of one run into `out_dir`; `suffix` tells xdist workers' files apart (junit-gw0.xml)."""
    written = []
    for name, render in RENDERERS.items():
        stem, extension = name.split(".", 1)
        path = out_dir / f"{stem}{suffix}.{extension}"
        document = render(results)
        temporary = path.with_name(f".{path.name}.tmp")
        if isinstance(document, bytes):
            temporary.write_bytes(document)
        else:
            temporary.write_text(document, encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written
