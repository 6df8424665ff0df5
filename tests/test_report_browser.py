"""report.html in a real headless browser (Debian's chromium): it loads without console errors, fetches
nothing, and every plot is present and drawn (its screenshot is not blank and shows coloured marks).

Without chromium the test skips with the install line, except under CI=true, where it fails: the CI
machine installs chromium in .ci/run, so a missing browser there is a broken pipeline, not a choice.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from meshproof.report import write_reports
from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR
from tests.browser import browser, missing
from tests.test_report import REAL_RUN, chaos_entry

SECTIONS = {"load", "canary", "outlier", "chaos"}
# Measured here (chromium 156): a chart with axes and labels but no marks has 2.0% non-white pixels and no
# saturated ones; the report's drawn plots have 2.4-28% non-white and 160-32,000 saturated pixels.
MIN_INK = 0.01  # share of non-white pixels: below it the plot is blank (not rendered at all)
MIN_COLOURED = 100  # saturated pixels: the data marks (lines, dots, bars, spans), which are never grey


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, but the browser test cannot run: {reason}")
        pytest.skip(reason)
    results = json.loads(REAL_RUN.read_text())
    results["chaos"] = [chaos_entry()]
    out = tmp_path_factory.mktemp("report")
    write_reports(results, out)
    return out / "report.html"


def _ink(png: bytes) -> tuple[float, int]:
    """(share of non-white pixels, number of saturated pixels) of a screenshot."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16).reshape(-1, 3)
    ink = int((pixels.min(axis=1) < 235).sum())
    coloured = int((pixels.max(axis=1) - pixels.min(axis=1) > 80).sum())
    return ink / len(pixels), coloured


def test_the_report_loads_without_errors_fetches_nothing_and_draws_every_plot(report_page: Path) -> None:
    with browser() as page:
        page.open(report_page.as_uri())
        state = page.script("""
            return {ready: document.readyState,
                    fetched: performance.getEntriesByType('resource').map(r => r.name),
                    charts: [...document.querySelectorAll('figure.plot')].map(f => {
                        const svg = f.querySelector('svg.chart'), box = svg.getBoundingClientRect();
                        return {section: f.dataset.section, width: box.width, height: box.height,
                                marks: svg.querySelectorAll('.mark').length,
                                title: svg.querySelector('title').textContent};
                    })};""")
        console = page.console()
        shots = [page.element_screenshot(element) for element in page.elements("figure.plot svg.chart")]
    assert state["ready"] == "complete"
    assert [entry for entry in console if entry["level"] in ("SEVERE", "WARNING")] == []
    assert state["fetched"] == []
    charts = state["charts"]
    assert {chart["section"] for chart in charts} == SECTIONS
    for chart in charts:
        assert chart["width"] > 300 and chart["height"] > 80, chart
        assert chart["marks"] > 0, f"nothing drawn in {chart['title']}"
    assert len(shots) == len(charts)
    for chart, png in zip(charts, shots, strict=True):
        ink, coloured = _ink(png)
        assert ink >= MIN_INK, f"{chart['title']}: {ink:.1%} of its pixels are not white, the plot looks blank"
        assert coloured >= MIN_COLOURED, f"{chart['title']}: only {coloured} coloured pixels, its marks did not draw"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), (None, "1 skipped")])
def test_without_chromedriver_the_browser_test_fails_under_ci_and_skips_elsewhere(ci: str | None, outcome: str) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    environment["PATH"] = str(Path(sys.executable).parent)  # the venv's tools, no chromedriver
    if ci is not None:
        environment["CI"] = ci
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "-rs", "-k", "draws_every_plot",
                           str(Path(__file__))], capture_output=True, text=True, env=environment, cwd=PROJECT_DIR,
                          timeout=120)
    assert outcome in done.stdout, done.stdout
    assert "chromedriver not installed: apt-get install -y chromium chromium-driver" in done.stdout
    if ci is not None:
        assert "CI=true, but the browser test cannot run" in done.stdout
