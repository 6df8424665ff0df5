"""One table, four renderings: aligned text for terminals, Markdown for CI summaries, HTML, and JSON.

Reports and `meshproof compare` build `Table`s and never format rows themselves, so a column added
once shows in every format. A `Cell` may carry a tone (`good`, `bad`, `note`) that HTML colours and
the other formats leave to the words.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str = ""  # "good" | "bad" | "note" | "" (HTML class; the text must say the same in words)


CellLike = Cell | str


@dataclass
class Table:
    columns: Sequence[str]
    rows: list[Sequence[CellLike]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: CellLike) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns ({', '.join(self.columns)})")
        self.rows.append(cells)


def _text(cell: CellLike) -> str:
    return cell.text if isinstance(cell, Cell) else cell


def as_text(table: Table) -> str:
    grid = [list(table.columns), *([_text(cell) for cell in row] for row in table.rows)]
    widths = [max(len(row[i]) for row in grid) for i in range(len(table.columns))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in grid]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(([table.title, ""] if table.title else []) + lines)


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def as_markdown(table: Table) -> str:
    lines = [f"**{_markdown_cell(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(_markdown_cell(column) for column in table.columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
    lines += ["| " + " | ".join(_markdown_cell(_text(cell)) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def as_html(table: Table) -> str:
    def cell_html(cell: CellLike) -> str:
        tone = f' class="{cell.tone}"' if isinstance(cell, Cell) and cell.tone else ""
        return f"<td{tone}>{html.escape(_text(cell))}</td>"

    head = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    body = "".join("<tr>" + "".join(cell_html(cell) for cell in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{html.escape(table.title)}</caption>" if table.title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def as_json(table: Table) -> dict[str, Any]:
    return {"title": table.title, "columns": list(table.columns),
            "rows": [[_text(cell) for cell in row] for row in table.rows]}
