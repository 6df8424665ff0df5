"""Reading results.json for reports: statuses, capabilities, the run's name, and reading archived runs.

Every report (JUnit, HTML, Markdown, conformance.yaml, compare) is rendered from results.json alone, so
what they share about reading it lives here: one status vocabulary (`passed`, `failed`, `error`,
`skipped`, `not_supported`; a record with `unsupported: true` is `not_supported`, as are records of the
newer schema with that status), capabilities in the suites' order, and one clear line when a path is
not a results file. Unknown statuses pass through unchanged, so a newer file still renders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from meshproof.capabilities import CAPABILITIES
from meshproof.errors import UserError
from meshproof.results import load_results

Record = Mapping[str, Any]
STATUSES = ("passed", "failed", "error", "skipped", "not_supported")
PROBLEMS = frozenset({"failed", "error"})


def status_of(record: Record) -> str:
    status = str(record.get("status", "error"))
    return "not_supported" if status == "skipped" and record.get("unsupported") else status


def by_capability(results: Mapping[str, Any]) -> dict[str, list[Record]]:
    """The run's check records per capability, capabilities in the order suites run them."""
    grouped: dict[str, list[Record]] = {}
    for record in results["checks"]:
        grouped.setdefault(str(record["capability"]), []).append(record)
    order = {capability: index for index, capability in enumerate(CAPABILITIES)}
    return dict(sorted(grouped.items(), key=lambda item: order.get(item[0], len(order))))


def counts(records: Iterable[Record]) -> Counter[str]:
    return Counter(status_of(record) for record in records)


def verdict(tally: Mapping[str, int]) -> str:
    """One word for a group of checks: failed if any failed or errored, passed if any passed, else the rest."""
    if any(tally.get(status, 0) for status in PROBLEMS):
        return "failed"
    if tally.get("passed", 0):
        return "passed"
    return "not_supported" if tally.get("not_supported", 0) and not tally.get("skipped", 0) else "skipped"


def counts_text(tally: Mapping[str, int]) -> str:
    known = [f"{tally[status]} {status.replace('_', ' ')}" for status in STATUSES if tally.get(status)]
    other = [f"{n} {status}" for status, n in sorted(tally.items()) if status not in STATUSES and n]
    return ", ".join(known + other) or "no checks"


def run_label(results: Mapping[str, Any]) -> str:
    """'local (envoy 1.40.0)': the mesh and its version, how runs are told apart in a comparison."""
    run = results["run"]
    version = run.get("mesh_version")
    return f"{run['mesh']} ({version})" if version else str(run["mesh"])


def key_measurement(measured: Mapping[str, Any], width: int = 48) -> str:
    """The last value a check measured: checks measure the inputs first and the verdict's value last."""
    if not measured:
        return ""
    name = list(measured)[-1]
    return f"{name}={value_text(measured[name])}"[:width]


def value_text(entry: Any) -> str:
    """A measured entry ({"value", "unit", ...}) or a bare value, as a short text with its unit."""
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    unit = entry.get("unit", "") if isinstance(entry, Mapping) else ""
    if isinstance(value, float):
        value = f"{value:.4g}"
    elif isinstance(value, Mapping):
        value = ", ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items())
    return f"{value}{(' ' + unit) if unit else ''}"


def read_run(path: Path) -> dict[str, Any]:
    """results.json of a run directory (or the file itself); a UserError naming the path otherwise."""
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        where = "no results.json in this directory" if path.is_dir() else "no such file"
        raise UserError(f"{path}: {where}; give a run's --out directory or its results.json")
    return load_results(file)
