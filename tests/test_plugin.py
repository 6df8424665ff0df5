"""The pytest plugin: a check needing what the mesh cannot express is skipped with the mesh's reason, and
results.json says so; --only selects by capability."""

import json
from pathlib import Path

import pytest

from meshproof.profile import PROJECT_DIR

pytest_plugins = ["pytester"]

CONFTEST = '''
import pytest
from meshproof.backend import Backend

pytest_plugins = ["fixtures.plugin"]


class LimitedMesh:
    """Stands in for a mesh with gaps: only what the plugin asks of a backend before a check runs."""

    name = "limited"
    unsupported = {"authz.deny": "this mesh has no DENY action", "connpool": "this mesh has no pool limits"}
    support = Backend.support

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


def test_unsupported_features_are_skipped_with_the_meshs_reason(project: pytest.Pytester, tmp_path: Path) -> None:
    outcome = project.runpytest_subprocess(f"--out={tmp_path}", "-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=2, skipped=2)
    checks = _results(tmp_path)
    deny, allow, overflow = checks["authz.deny_wins"], checks["authz.allow"], checks["connpool.overflow"]
    assert deny["status"] == "skipped" and deny["unsupported"] is True
    assert "limited cannot express authz.deny: this mesh has no DENY action" in str(deny["message"])
    assert overflow["unsupported"] is True and "this mesh has no pool limits" in str(overflow["message"])
    assert allow["status"] == "passed" and allow["measured"] == {"answered": {"value": 1, "unit": "requests"}}
    assert (tmp_path / "junit.xml").read_text().count("<skipped") == 2


def test_only_deselects_other_capabilities(project: pytest.Pytester, tmp_path: Path) -> None:
    outcome = project.runpytest_subprocess(f"--out={tmp_path}", "--only=connpool", "-p", "no:cacheprovider")
    outcome.assert_outcomes(skipped=1)
    assert list(_results(tmp_path)) == ["connpool.overflow"]


def test_a_solo_check_is_skipped_when_xdist_runs_checks_side_by_side(project: pytest.Pytester) -> None:
    outcome = project.runpytest_subprocess("-n", "2", "-k", "alone", "-rs", "-p", "no:cacheprovider")
    outcome.assert_outcomes(skipped=1)
    outcome.stdout.fnmatch_lines(["*needs the machine to itself, but xdist runs other checks beside it*"])
