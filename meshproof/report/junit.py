"""JUnit XML rendered from results.json, for CI systems that read it (one testsuite per capability).

JUnit knows passed, failure, error and skipped; a check the mesh does not support is a skip whose
message starts with "not supported: " and gives the reason. Each case carries the check's title,
criterion and measured values as properties, and a failure's message names what broke.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from meshproof.report.view import by_capability, status_of

_ELEMENT = {"failed": "failure", "error": "error"}


def _measured_text(measured: Mapping[str, Any]) -> str:
    return json.dumps(measured, default=str)


def _skip_message(status: str, message: str) -> str:
    return f"not supported: {message}" if status == "not_supported" else message


def render_junit(results: Mapping[str, Any]) -> bytes:
    root = ET.Element("testsuites", name=f"meshproof {results['run']['mesh']}")
    for capability, records in by_capability(results).items():
        statuses = [status_of(record) for record in records]
        suite = ET.SubElement(
            root, "testsuite", name=capability, tests=str(len(records)),
            failures=str(statuses.count("failed")), errors=str(statuses.count("error")),
            skipped=str(sum(status not in ("passed", "failed", "error") for status in statuses)),
            time=f"{sum(r['duration_s'] for r in records):.3f}",
        )
        for record, status in zip(records, statuses, strict=True):
            case = ET.SubElement(suite, "testcase", classname=f"meshproof.{capability}", name=record["id"],
                                 time=f"{record['duration_s']:.3f}")
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="title", value=record["title"])
            ET.SubElement(properties, "property", name="criterion", value=record["criterion"])
            ET.SubElement(properties, "property", name="measured", value=_measured_text(record["measured"]))
            message = record.get("message") or ""
            if status in _ELEMENT:
                ET.SubElement(case, _ELEMENT[status], message=message.splitlines()[0] if message else "").text = message
            elif status != "passed":
                ET.SubElement(case, "skipped", message=_skip_message(status, message))
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document
