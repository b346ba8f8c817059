"""End to end: the security gates as the nox session runs them, on real inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "advisories"

pytestmark = pytest.mark.integration


def test_gate_audit_on_this_projects_lock_offline(tmp_path: Path) -> None:
    """uv export of the real uv.lock, pip-audit against the local mirror, the gate record."""
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, project / name)
    env = {**os.environ, "CI_ADVISORY_DB": str(FIXTURES), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "ci", "gate", "audit"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((project / "reports" / "audit.json").read_text())
    assert record["status"] == "passed"
    assert "0 vulnerabilities in 0 of" in record["summary"]
    packages = int(record["summary"].split(" of ")[1].split()[0])
    assert packages > 50  # every locked pin, whatever its markers


def test_gate_audit_with_a_missing_database_is_exit_2(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    env = {**os.environ, "CI_ADVISORY_DB": "no/such/dir", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "ci", "gate", "audit"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no/such/dir" in done.stderr
    assert done.stderr.count("\n") == 1
