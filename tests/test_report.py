"""Reports rendered from results.json alone: every file of a run, every status, and `meshproof report DIR`."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshproof.report import write_reports
from meshproof.report.conformance import conformance_report
from meshproof.report.html import render_html
from meshproof.report.junit import render_junit
from meshproof.report.markdown import render_markdown
from meshproof.report.summary import render_summary
from meshproof.results import SCHEMA
from tests.helpers import one_error_line, run_meshproof

DATA = Path(__file__).parent / "data"
REAL_RUN = DATA / "results-envoy-1.40.0.json"  # a whole `meshproof run` on this project's machine


def _record(check_id: str, status: str, **extra: Any) -> dict[str, Any]:
    capability = check_id.split(".")[0]
    return {"id": check_id, "capability": capability, "title": f"the {check_id} check", "status": status,
            "message": extra.pop("message", None), "measured": extra.pop("measured", {}),
            "criterion": "exact", "evidence": [], "duration_s": 0.5, **extra}


def every_status() -> dict[str, Any]:
    """A run with each status, old style (`skipped` + `unsupported: true`) and new (`not_supported`) alike."""
    return {
        "schema": SCHEMA,
        "run": {"mesh": "limited", "mesh_version": "limited 0.9", "profile": "default", "duration_s": 12.0,
                "started": "2026-01-01T00:00:00", "meshproof_version": "0.1.0", "interrupted": False},
        "checks": [
            _record("mtls.plaintext_is_refused", "passed",
                    measured={"http_responses": {"value": 0, "unit": "responses"}}),
            _record("authz.listed_identity_allowed", "failed", message="ALLOW by principal: got 403\nsecond line"),
            _record("authz.deny_wins", "skipped", unsupported=True, features=["authz.deny"],
                    message="unsupported by the mesh: limited cannot express authz.deny: no DENY action"),
            _record("authz.prometheus_metrics", "passed", features=["authz.methods"]),
            _record("connpool.overflow", "not_supported", message="limited has no pool limits"),
            _record("ratelimit.burst", "error", message="the mesh went away"),
            _record("ratelimit.refill", "skipped", message="needs the machine to itself"),
            _record("canary.split", "provisional", message="a status this version does not know"),
        ],
        "load": [], "chaos": [],
    }


def test_junit_renders_every_status_and_not_supported_as_a_skip_with_its_reason() -> None:
    root = ET.fromstring(render_junit(every_status()))
    suites = {suite.get("name"): suite for suite in root}
    assert list(suites) == ["mtls", "authz", "connpool", "ratelimit", "canary"]  # the suites' order
    assert (suites["authz"].get("failures"), suites["authz"].get("skipped")) == ("1", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["authz.listed_identity_allowed"].find("failure").get("message") == "ALLOW by principal: got 403"
    assert cases["authz.deny_wins"].find("skipped").get("message").startswith("not supported: unsupported by the mesh")
    assert cases["connpool.overflow"].find("skipped").get("message") == "not supported: limited has no pool limits"
    assert cases["ratelimit.burst"].find("error") is not None
    assert cases["ratelimit.refill"].find("skipped").get("message") == "needs the machine to itself"
    assert cases["canary.split"].find("skipped") is not None  # unknown statuses are not passes


def test_the_terminal_summary_and_markdown_name_every_status() -> None:
    results = every_status()
    summary = render_summary(results)
    assert "N/S    " in summary and "PROVISIONAL" in summary
    assert summary.splitlines()[-1] == ("meshproof: 2 passed, 1 failed, 1 error, 1 skipped, 2 not supported, "
                                        "1 provisional in 12.0s on limited (limited 0.9)")
    markdown = render_markdown(results)
    assert markdown.startswith("## ❌ meshproof: limited (limited 0.9)")
    assert "| authz | failed | 1 passed, 1 failed, 1 not supported |" in markdown
    assert "- `authz.listed_identity_allowed` (failed): ALLOW by principal: got 403" in markdown
    assert "- `connpool.overflow` (not supported): limited has no pool limits" in markdown


def test_conformance_splits_core_from_extended_and_gives_the_reasons() -> None:
    report = conformance_report(every_status())
    assert (report["kind"], report["implementation"]["version"], report["mode"]) == ("ConformanceReport", "0.9",
                                                                                      "default")
    profiles = {profile["name"]: profile for profile in report["profiles"]}
    authz = profiles["authz"]
    assert authz["core"] == {"result": "failure", "statistics": {"Failed": 1, "Passed": 0, "Skipped": 0},
                             "failedTests": ["authz.listed_identity_allowed"]}
    assert authz["extended"]["result"] == "success"
    assert authz["extended"]["supportedFeatures"] == ["authz.methods"]
    assert authz["extended"]["unsupportedFeatures"] == ["authz.deny"]
    assert "no DENY action" in authz["extended"]["unsupportedFeatureReasons"]["authz.deny"]
    assert profiles["connpool"]["summary"] == "not supported: limited has no pool limits"
    assert profiles["ratelimit"]["core"]["result"] == "failure"
    assert profiles["mtls"]["core"]["result"] == "success"


def test_a_real_run_renders_every_report(tmp_path: Path) -> None:
    results = json.loads(REAL_RUN.read_text())
    written = write_reports(results, tmp_path)
    assert sorted(path.name for path in written) == ["conformance.yaml", "junit.xml", "report.html", "summary.md"]
    assert yaml.safe_load((tmp_path / "conformance.yaml").read_text())["implementation"]["version"] == "1.40.0"
    ET.parse(tmp_path / "junit.xml")
    page = (tmp_path / "report.html").read_text()
    assert not re.search(r"<script|<link|<img|\bsrc=|\bhref=|@import|url\(", page)  # nothing to fetch, nothing to run
    assert set(re.findall(r"https?://[^\s\"'<]+", page)) <= {"http://www.w3.org/2000/svg"}
    sections = {name: page.count(f'data-section="{name}"') for name in ("load", "canary", "outlier", "chaos")}
    rates = len(results["load"])
    assert sections["load"] == 2 * rates and sections["canary"] == 7 and sections["outlier"] >= 6
    assert sections["chaos"] == 0 and "nothing recorded in this run" in page


def test_a_chaos_entry_in_the_documented_shape_is_plotted_with_its_fault_window() -> None:
    results = copy.deepcopy(json.loads(REAL_RUN.read_text()))
    results["chaos"] = [chaos_entry()]
    page = render_html(results)
    assert page.count('data-section="chaos"') == 2
    assert page.count('class="mark span"') == 2  # the fault window, on both plots
    assert "recovery_s" in page and "proxy_crash order-service-v1-0" in page


def chaos_entry(recovery_s: float = 1.8) -> dict[str, Any]:
    """A chaos entry as meshproof.report.plots documents it (the chaos suite writes them)."""
    rows = [[t / 2, 50, 20 if 5 <= t / 2 < 5 + recovery_s else 0, 0.8 + (t / 2 >= 5), 2.0 + 3 * (t / 2 >= 5)]
            for t in range(30)]
    return {"check": "chaos.a_crashed_proxy_is_routed_around", "experiment": "kill-one-v1-proxy",
            "status": "completed", "deviated": False, "journal": "artifacts/kill-one-v1-proxy.journal.json",
            "phases": {}, "recovery": {"from": "start", "s": recovery_s, "resolution_s": 0.5},
            "title": "callers route around a crashed proxy", "fault": {"kind": "proxy_crash",
                                                                       "target": "order-service-v1-0",
                                                                       "start_s": 5.0, "end_s": 10.0},
            "timeline": {"bucket_s": 0.5, "columns": ["t_s", "requests", "errors", "p50_ms", "p99_ms"], "rows": rows},
            "metrics": {"error_rate_during_fault": {"value": 0.08, "unit": "ratio", "ci": [0.06, 0.1],
                                                    "better": "lower"},
                        "recovery_s": {"value": recovery_s, "unit": "s", "better": "lower"}}}


def test_meshproof_report_renders_an_archived_run_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "archived"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(REAL_RUN.read_text())
    done = run_meshproof("report", str(run_dir), state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {path.name for path in run_dir.iterdir()} == {"results.json", "junit.xml", "report.html", "summary.md",
                                                         "conformance.yaml"}
    elsewhere = tmp_path / "elsewhere"
    assert run_meshproof("report", str(run_dir / "results.json"), "--out", str(elsewhere),
                         state_dir=tmp_path).returncode == 0
    assert (elsewhere / "report.html").read_text() == (run_dir / "report.html").read_text()


@pytest.mark.parametrize(("content", "expected"), [
    (None, "no results.json in this directory"),
    ("{not json", "not JSON"),
    ('{"schema": "something/else"}', "not a meshproof results file"),
    ("[1, 2]", "not a meshproof results file"),
])
def test_meshproof_report_on_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str | None,
                                                              expected: str) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is not None:
        (run_dir / "results.json").write_text(content)
    done = run_meshproof("report", str(run_dir), state_dir=tmp_path)
    assert done.returncode == 2
    assert expected in one_error_line(done.stderr)
