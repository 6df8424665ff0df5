"""`meshproof compare`: side by side, changes with their significance, and the regression gate's exit codes.

The data are whole `meshproof run`s of this project's machine on two Envoy releases (tests/data/), plus
copies of them changed in one known way, so that each rule of the gate is seen to fire and to hold back.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from meshproof.load.blocks import encode, merge_histograms, new_histogram, record, samples_us
from meshproof.load.profile import QUANTILES
from meshproof.profile import RegressionProfile
from meshproof.report.compare import BOOTSTRAP, NO_OVERLAP, Comparison, Run, compare
from meshproof.report.compare_render import render_comparison
from meshproof.stats import block_bootstrap_quantile_diff
from tests.helpers import one_error_line, run_meshproof
from tests.test_report import DATA, chaos_entry

OLDER = DATA / "results-envoy-1.39.3.json"
NEWER = DATA / "results-envoy-1.40.0.json"
GATE = RegressionProfile()
OUTLIER_CHECK = "an_endpoint_is_ejected_after_exactly_n_consecutive_errors_and_not_after_n_minus_1"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _compare(*results: dict[str, Any]) -> Comparison:
    return compare([Run(f"run{i}", r) for i, r in enumerate(results)], GATE)


def _slowed(results: dict[str, Any], by_us: float) -> dict[str, Any]:
    """The run with every mesh-path latency `by_us` longer, its overheads recomputed as the run would."""
    slowed = copy.deepcopy(results)
    for entry in slowed["load"]:
        blocks = entry["latency_blocks"]
        mesh = []
        for text in blocks["mesh"]:
            histogram = new_histogram()
            for value in samples_us(merge_histograms([text])):
                record(histogram, (value + by_us) / 1e6)
            mesh.append(encode(histogram))
        blocks["mesh"] = mesh
        decoded = [[samples_us(merge_histograms([t])) for t in blocks[path]] for path in ("baseline", "mesh")]
        estimates = block_bootstrap_quantile_diff(*decoded, list(QUANTILES.values()), resamples=500)
        entry["overhead_us"] = {q: {"value": e.value, "ci": [e.lo, e.hi]} for q, e in
                                zip(QUANTILES, estimates.values(), strict=True)}
    return slowed


def test_two_real_runs_compare_side_by_side_with_the_method_of_every_change() -> None:
    older, newer = _load(OLDER), _load(NEWER)
    comparison = _compare(older, newer)
    assert [row.statuses for row in comparison.checks if row.id.startswith("mtls.strict")] == [("passed", "passed")] * 3
    overhead = [c for c in comparison.changes[0] if c.metric.startswith("overhead")]
    assert len(overhead) == 4 * len(newer["load"])
    assert {c.method for c in overhead} == {BOOTSTRAP}  # both files keep their raw blocks
    for change in overhead:
        assert change.difference_ci is not None and change.difference_ci[0] <= change.difference_ci[1]
        assert change.significant == (change.difference_ci[0] > 0 or change.difference_ci[1] < 0)
    text = render_comparison(comparison, "text")
    for row in ("proxy", "envoy 1.39.3", "envoy 1.40.0", "latency overhead p99 at 1000 req/s",
                "proxy vCPU per 1000 req/s at 1000 req/s", "proxy memory, idle", "traffic management", "mTLS"):
        assert row in text
    assert "| proxy | envoy 1.39.3 | envoy 1.40.0 |" in render_comparison(comparison, "markdown")
    page = render_comparison(comparison, "html")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    document = json.loads(render_comparison(comparison, "json"))
    assert document["regressions"] == comparison.regressions
    assert {m["method"] for m in document["changes"][0]["metrics"] if m["metric"].startswith("overhead")} == {BOOTSTRAP}


def test_a_run_against_itself_has_no_significant_change_and_no_regression() -> None:
    newer = _load(NEWER)
    comparison = _compare(newer, copy.deepcopy(newer))
    overhead = [c for c in comparison.changes[0] if c.metric.startswith("overhead")]
    assert overhead and not any(c.significant for c in overhead)
    assert comparison.regressions == []


def test_a_check_that_passed_and_now_fails_is_a_regression_and_a_fix_is_not() -> None:
    newer = _load(NEWER)
    broken = copy.deepcopy(newer)
    target = next(c for c in broken["checks"] if c["id"] == "ratelimit.responses_carry_the_rate_limit_headers")
    target["status"], target["message"] = "failed", "rate-limit headers: x-ratelimit-limit missing\nmore detail"
    regressions = _compare(newer, broken).regressions
    assert regressions == ["run1: check ratelimit.responses_carry_the_rate_limit_headers passed in run0 but failed "
                           "here: rate-limit headers: x-ratelimit-limit missing"]
    assert _compare(broken, newer).regressions == []


def test_an_overhead_increase_counts_when_significant_and_beyond_the_threshold_only() -> None:
    newer = _load(NEWER)
    p50 = {entry["target_rps"]: entry["overhead_us"]["p50"]["value"] for entry in newer["load"]}
    much = _compare(newer, _slowed(newer, by_us=max(p50.values())))  # +100% or more at p50 at every rate
    lines = [line for line in much.regressions if "overhead p50" in line]
    valid = [entry for entry in newer["load"] if entry["valid"]]
    assert valid and len(lines) == len(valid)  # an invalid measurement is shown, never judged
    assert all("threshold +20%" in line and BOOTSTRAP in line for line in lines)
    judged = {c.metric: c for c in much.changes[0] if c.metric.startswith("overhead p50")}
    assert all(change.invalid == (change.regression is None) for change in judged.values())
    little = _compare(newer, _slowed(newer, by_us=0.05 * min(p50.values())))  # +5%: below the threshold
    assert not [line for line in little.regressions if "overhead p50" in line]


def test_a_recovery_time_half_again_as_long_is_a_regression() -> None:
    newer = _load(NEWER)
    before, after, close = (copy.deepcopy(newer) for _ in range(3))
    before["chaos"], after["chaos"], close["chaos"] = [chaos_entry(2.0)], [chaos_entry(3.2)], [chaos_entry(2.6)]
    lines = _compare(before, after).regressions
    assert len(lines) == 1 and "recovery_s: 2 -> 3.2 s (+60%, threshold 50% worse" in lines[0]
    assert _compare(before, close).regressions == []  # +30%
    rates = [c for c in _compare(before, after).changes[0] if c.metric.endswith("error_rate_during_fault")]
    assert rates[0].method == NO_OVERLAP and rates[0].significant is False


def test_the_gate_exits_1_with_a_line_per_regression_and_0_without(tmp_path: Path) -> None:
    newer = _load(NEWER)
    broken = copy.deepcopy(newer)
    broken["checks"][0]["status"] = "error"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    done = run_meshproof("compare", str(NEWER), str(tmp_path / "broken.json"), "--fail-on-regression",
                         state_dir=tmp_path)
    assert done.returncode == 1, done.stderr
    assert [line for line in done.stderr.splitlines() if line] == [
        f"meshproof: regression: {tmp_path / 'broken.json'}: check {broken['checks'][0]['id']} passed in {NEWER} "
        "but error here: no message"]
    assert "REGRESSION" in done.stdout
    assert run_meshproof("compare", str(NEWER), str(tmp_path / "broken.json"), state_dir=tmp_path).returncode == 0
    fixed = run_meshproof("compare", str(tmp_path / "broken.json"), str(NEWER), "--fail-on-regression",
                          state_dir=tmp_path)
    assert fixed.returncode == 0 and "no regression against" in fixed.stdout


@pytest.mark.parametrize(("args", "expected"), [
    (["compare", "/no/such/run"], "compare needs at least two runs"),
    (["compare", str(NEWER), "/no/such/run"], "/no/such/run: no such file"),
    (["compare", str(NEWER), str(OLDER), "--profile", "no-such-profile"], "profile 'no-such-profile'"),
])
def test_compare_on_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    done = run_meshproof(*args, state_dir=tmp_path)
    assert done.returncode == 2
    assert expected in one_error_line(done.stderr)


def test_compare_gates_a_real_run_broken_with_an_envoy_config_hook(tmp_path: Path) -> None:
    """Two real runs of one check on the local mesh, the second with a mutant that ejects too late."""
    runs = {}
    for name, hook in (("good", []), ("broken", ["--envoy-config-hook", "tests.mutants:consecutive_5xx_x1_2"])):
        out = tmp_path / name
        done = run_meshproof("run", "--only", "outlier", "--out", str(out), *hook, "--", "-k", OUTLIER_CHECK,
                             state_dir=tmp_path / f"state-{name}")
        assert done.returncode in (0, 1), done.stderr
        assert {"results.json", "junit.xml", "report.html", "summary.md", "conformance.yaml"} <= {
            path.name for path in out.iterdir()}
        runs[name] = out
    gate = run_meshproof("compare", str(runs["good"]), str(runs["broken"]), "--fail-on-regression",
                         state_dir=tmp_path)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    (line,) = [line for line in gate.stderr.splitlines() if line]
    assert f"check outlier.{OUTLIER_CHECK} passed in {runs['good']} but failed here: outlier threshold" in line
    assert run_meshproof("compare", str(runs["broken"]), str(runs["good"]), "--fail-on-regression",
                         state_dir=tmp_path).returncode == 0


def test_the_gate_thresholds_are_read_from_the_profile(tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("regression:\n  overhead: {p50: 5.0, p99: 5.0}\n")
    newer = _load(NEWER)
    tripled = 2 * min(entry["overhead_us"]["p50"]["value"] for entry in newer["load"] if entry["valid"])
    (tmp_path / "slower.json").write_text(json.dumps(_slowed(newer, by_us=tripled)))
    args = ["compare", str(NEWER), str(tmp_path / "slower.json"), "--fail-on-regression"]
    assert run_meshproof(*args, state_dir=tmp_path).returncode == 1  # +200%: beyond the default +20%
    assert run_meshproof(*args, "--profile", str(lenient), state_dir=tmp_path).returncode == 0  # within +500%
