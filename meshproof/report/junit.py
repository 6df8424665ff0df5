"""JUnit XML rendered from results.json, for CI systems that read it (one testsuite per capability)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any


def _measured_text(measured: dict[str, Any]) -> str:
    return json.dumps(measured, default=str)


def render_junit(results: dict[str, Any]) -> bytes:
    by_capability: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in results["checks"]:
        by_capability[record["capability"]].append(record)
    root = ET.Element("testsuites", name=f"meshproof {results['run']['mesh']}")
    for capability, records in by_capability.items():
        suite = ET.SubElement(
            root, "testsuite", name=capability, tests=str(len(records)),
            failures=str(sum(r["status"] == "failed" for r in records)),
            errors=str(sum(r["status"] == "error" for r in records)),
            skipped=str(sum(r["status"] in ("skipped", "not_supported") for r in records)),
            time=f"{sum(r['duration_s'] for r in records):.3f}",
        )
        for record in records:
            case = ET.SubElement(suite, "testcase", classname=f"meshproof.{capability}", name=record["id"],
                                 time=f"{record['duration_s']:.3f}")
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="title", value=record["title"])
            ET.SubElement(properties, "property", name="criterion", value=record["criterion"])
            ET.SubElement(properties, "property", name="measured", value=_measured_text(record["measured"]))
            message = record.get("message") or ""
            if record["status"] == "failed":
                ET.SubElement(case, "failure", message=message.splitlines()[0] if message else "").text = message
            elif record["status"] == "error":
                ET.SubElement(case, "error", message=message.splitlines()[0] if message else "").text = message
            elif record["status"] == "skipped":
                ET.SubElement(case, "skipped", message=message)
            elif record["status"] == "not_supported":
                ET.SubElement(case, "skipped", message=f"not supported: {message}")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def write_junit(results: dict[str, Any], path: Path) -> None:
    path.write_bytes(render_junit(results))
