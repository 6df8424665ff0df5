"""The pytest plugin: a check needing what the mesh cannot express is skipped with the mesh's reason, and
results.json says so; --only selects by capability."""

import json
from pathlib import Path

import pytest

from meshproof.results import schema_errors
from meshproof.shipped import CHECKOUT_DIR as PROJECT_DIR

pytest_plugins = ["pytester"]

CONFTEST = '''
import pytest


class LimitedMesh:
    """Stands in for a mesh with gaps: only what the plugin asks of a backend before a check runs."""

    name = "limited"
    unsupported = {"authz.deny": "this mesh has no DENY action", "connpool": "this mesh has no pool limits"}

    def reset(self):
        pass


@pytest.fixture(scope="session")
def meshproof_backend():
    yield LimitedMesh()
'''

CHECKS = '''
import pytest

@pytest.mark.capability("authz")
@pytest.mark.requires("authz.deny")
def test_deny_wins(mesh, check):
    pass

@pytest.mark.capability("outlier")
def test_needs_telemetry(telemetry, check):
    pass

@pytest.mark.capability("authz")
def test_allow(mesh, check):
    check.measure("answered", 1, "requests")

@pytest.mark.capability("connpool")
def test_overflow(mesh, check):
    pass

@pytest.mark.capability("authz")
@pytest.mark.solo
def test_alone(mesh, check):
    pass
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_DIR))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    return pytester


def _results(out: Path) -> dict[str, dict[str, object]]:
    return {check["id"]: check for check in json.loads((out / "results.json").read_text())["checks"]}


def test_unsupported_features_are_not_supported_with_the_meshs_reason(project: pytest.Pytester,
                                                                     tmp_path: Path) -> None:
    outcome = project.runpytest_subprocess(f"--out={tmp_path}", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=2, skipped=3)
    checks = _results(tmp_path)
    deny, allow, overflow = checks["authz.deny_wins"], checks["authz.allow"], checks["connpool.overflow"]
    assert deny["status"] == "not_supported" and deny["features"] == ["authz", "authz.deny"]
    assert "limited cannot express authz.deny: this mesh has no DENY action" in str(deny["message"])
    assert overflow["status"] == "not_supported" and "this mesh has no pool limits" in str(overflow["message"])
    telemetry = checks["outlier.needs_telemetry"]
    assert telemetry["status"] == "not_supported" and "has no Telemetry" in str(telemetry["message"])
    assert allow["status"] == "passed" and allow["measured"] == {"answered": {"value": 1, "unit": "requests"}}
    assert checks["authz.alone"]["status"] == "passed"
    assert (tmp_path / "junit.xml").read_text().count("<skipped") == 3
    results = json.loads((tmp_path / "results.json").read_text())
    assert schema_errors(results) == []


def test_a_misspelt_feature_fails_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_typo='''
import pytest

@pytest.mark.capability("authz")
@pytest.mark.requires("authz.dny")
def test_deny(mesh, check):
    pass
''')
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*unknown feature 'authz.dny': did you mean authz.deny*"])


def test_only_deselects_other_capabilities(project: pytest.Pytester, tmp_path: Path) -> None:
    outcome = project.runpytest_subprocess(f"--out={tmp_path}", "--only=connpool", "-p", "no:cacheprovider")
    outcome.assert_outcomes(skipped=1)
    assert list(_results(tmp_path)) == ["connpool.overflow"]


def test_a_solo_check_is_skipped_when_xdist_runs_checks_side_by_side(project: pytest.Pytester) -> None:
    outcome = project.runpytest_subprocess("-n", "2", "-k", "alone", "-rs", "-p", "no:cacheprovider")
    outcome.assert_outcomes(skipped=1)
    outcome.stdout.fnmatch_lines(["*needs the machine to itself, but xdist runs other checks beside it*"])
