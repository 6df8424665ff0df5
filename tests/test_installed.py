"""meshproof as a user installs it: a non-editable install of a copy of the checkout into a fresh venv,
used from an empty directory, and its plugin in a project of the user's own."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from meshproof.results import schema_errors
from meshproof.shipped import CHECKOUT_DIR

USER_CHECK = '''
"""A check of the user's own, written with meshproof's fixtures."""
import pytest

from meshproof.backend import Request


@pytest.mark.capability("mtls")
def test_payment_service_reaches_order_service_as_itself(mesh, check):
    response = mesh.call("payment-service", Request("order-service", "/api/v1/orders/7"))
    identity = mesh.observed_identity(response).identity
    check.measure("status", response.status)
    check.expect(response.status == 200 and identity is not None and identity.service_account == "payment-service",
                 f"payment-service was not seen as itself: {response.describe()}, {identity}")
'''


def _copy_of_the_checkout(target: Path) -> Path:
    """What git tracks plus the working tree's changes: a source tree as a user would download it."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=CHECKOUT_DIR,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        source = CHECKOUT_DIR / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh venv holding a wheel built from a copy of the checkout (no -e)."""
    source = _copy_of_the_checkout(tmp_path_factory.mktemp("source"))
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def _empty_dir(tmp_path: Path) -> Path:
    work = tmp_path / "elsewhere"
    work.mkdir()
    return work


def test_nothing_named_suites_or_fixtures_lands_at_the_top_of_site_packages(installed: Path) -> None:
    site = next((installed.parent / "lib").glob("python3*/site-packages"))
    assert not (site / "suites").exists() and not (site / "fixtures").exists()
    assert (site / "meshproof" / "suites" / "test_mtls.py").is_file()
    assert (site / "meshproof" / "profiles" / "seed.yaml").is_file()


def test_meshproof_run_works_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    work = _empty_dir(tmp_path)
    done = subprocess.run([str(installed / "meshproof"), "run", "--only", "mtls,authz", "--out", "out"], cwd=work,
                          capture_output=True, text=True, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "MESHPROOF_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((work / "out" / "results.json").read_text())
    assert schema_errors(results) == []
    assert {check["capability"] for check in results["checks"]} == {"mtls", "authz"}
    statuses = {check["id"]: check["status"] for check in results["checks"]}
    # the one refusal the local mesh does not make (Linkerd's HTTP 403) is reported, not passed
    assert {check for check, status in statuses.items() if status != "passed"} == {
        "mtls.strict_mtls_refuses_a_plaintext_client_as_the_mesh_documents[plaintext_forbidden]"}, statuses
    assert statuses["mtls.strict_mtls_refuses_a_plaintext_client_as_the_mesh_documents[plaintext_forbidden]"] == (
        "not_supported")
    assert results["run"]["mesh_version"].startswith("envoy 1.40")
    version = subprocess.run([str(installed / "meshproof"), "--version"], capture_output=True, text=True, cwd=work)
    assert version.stdout.strip() == f"meshproof {results['run']['meshproof_version']}"


def test_a_users_own_check_runs_with_pytest_mesh_local(installed: Path, tmp_path: Path) -> None:
    project = _empty_dir(tmp_path)
    (project / "test_my_mesh.py").write_text(USER_CHECK)
    done = subprocess.run([str(installed / "pytest"), "--mesh", "local", "--out", "out", "-p", "no:cacheprovider"],
                          cwd=project, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "MESHPROOF_STATE_DIR": str(tmp_path / "state")})
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((project / "out" / "results.json").read_text())
    assert schema_errors(results) == []
    [record] = results["checks"]
    assert record["id"] == "mtls.payment_service_reaches_order_service_as_itself" and record["status"] == "passed"
