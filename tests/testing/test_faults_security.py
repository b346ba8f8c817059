"""The secrets and audit faults inside their real code paths: real detect-secrets over the
tree, real pip-audit against the local advisory mirror."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ci.cli.main import main
from tests.conftest import ROOT

ADVISORY = ROOT / "tests" / "fixtures" / "advisories" / "requests" / "PYSEC-2018-28.yaml"


@pytest.fixture
def project(make_repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "advisories" / "requests"
    db.mkdir(parents=True)
    shutil.copy(ADVISORY, db / ADVISORY.name)  # CC-BY-4.0, see tests/fixtures/advisories
    pyproject = (
        '[project]\nname = "demo"\nversion = "1.0.0"\nrequires-python = ">=3.11"\n'
        f'\n[tool.ci]\nadvisory_db = "{db.parent}"\n'
    )
    repo = make_repo({"pyproject.toml": pyproject, ".gitignore": "reports/\n"})
    subprocess.run(["uv", "lock", "--offline", "--quiet"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    return repo


def test_secrets_fault_is_a_planted_key_the_real_scan_finds(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", "secrets"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CI_INJECT_FAULT", "secrets")
    assert main(["gate", "secrets"]) == 1
    out = capsys.readouterr().out
    assert "fault injection: CI_INJECT_FAULT includes 'secrets'" in out
    assert "reports/faults/injected_secret.ini" in out
    assert "AWS" in out
    assert not re.search(r"AKIA[A-Z2-7]{16}", out)  # the value itself is never printed
    assert not (project / "reports" / "faults").exists()


def test_audit_fault_is_a_vulnerable_pin_the_real_audit_finds(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gate", "audit"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("CI_INJECT_FAULT", "audit")
    assert main(["gate", "audit"]) == 1
    out = capsys.readouterr().out
    assert "requests 2.19.1: PYSEC-2018-28" in out


@pytest.mark.parametrize("layout", ["database-root", "empty", "checkout-root", "unparseable"])
def test_audit_fault_with_a_folder_of_no_advisories_is_exit_2_never_a_pass(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    layout: str,
) -> None:
    """Served, a folder without OSV records answers "no vulnerabilities" to every pin."""
    folder = {
        "database-root": tmp_path / "advisory-database",
        "empty": tmp_path / "empty",
        "checkout-root": project,
        "unparseable": tmp_path / "broken",
    }[layout]
    if layout == "database-root":  # the PyPA checkout: the records live in vulns/<package>/
        (folder / "vulns" / "requests").mkdir(parents=True)
        shutil.copy(ADVISORY, folder / "vulns" / "requests" / ADVISORY.name)
    elif layout == "empty":
        (folder / "requests").mkdir(parents=True)
    elif layout == "unparseable":
        (folder / "requests").mkdir(parents=True)
        (folder / "requests" / "PYSEC-2018-28.yaml").write_text("id: [unclosed\n")
    monkeypatch.setenv("CI_ADVISORY_DB", str(folder))
    monkeypatch.setenv("CI_INJECT_FAULT", "audit")
    assert main(["gate", "audit"]) == 2
    captured = capsys.readouterr()
    assert "0 vulnerabilities" not in captured.out
    error = captured.err.strip()
    assert error.count("\n") == 0
    if layout == "unparseable":  # a damaged database, not the wrong folder: the file, and why
        record = folder / "requests" / "PYSEC-2018-28.yaml"
        assert error == (
            f"error: advisory {record} is not valid YAML (line 2, column 1: did not find "
            "expected ',' or ']'); fix or remove the file"
        )
        return
    assert f"advisory database {folder} holds no OSV records" in error
    assert "*.json/*.yaml OSV records" in error
    hint = folder / "vulns" if layout == "database-root" else ".../vulns"
    assert error.endswith(f"e.g. {hint}")
