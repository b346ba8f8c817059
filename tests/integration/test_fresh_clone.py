"""A fresh clone of this repository: preflight verdicts and real nox sessions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def ci(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_OFFLINE": "1", **(env or {})},
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert needle in errors[0]


def test_corrupt_lock_is_exit_3_naming_uv_lock(clone: Path) -> None:
    lock = clone / "uv.lock"
    lock.write_text(lock.read_text()[:500] + "\n[[package\nname = ", encoding="utf-8")
    assert_one_line_error(ci(clone, "preflight"), 3, "uv.lock is corrupt")


def test_missing_lock_is_exit_3(clone: Path) -> None:
    (clone / "uv.lock").unlink()
    assert_one_line_error(ci(clone, "preflight"), 3, "run `uv lock`")


def test_stale_lock_is_exit_3(clone: Path) -> None:
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    stale = re.sub(r"(?m)^dependencies = \[.*\]$", "dependencies = []", text, count=1)
    assert stale != text  # the project's dependencies line was found and emptied
    pyproject.write_text(stale, encoding="utf-8")
    done = ci(clone, "preflight")
    assert_one_line_error(done, 3, "uv.lock does not match pyproject.toml")
    assert "FAIL  uv.lock fresh" in done.stdout


def test_unknown_key_is_exit_2_naming_it(clone: Path) -> None:
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = text.replace("[tool.ci.gates.lint]\n", "[tool.ci.gates.lint]\nstrictness = 11\n")
    pyproject.write_text(text, encoding="utf-8")
    assert_one_line_error(
        ci(clone, "preflight"), 2, "unknown key 'strictness' in [tool.ci.gates.lint]"
    )


def test_preflight_passes_with_local_edits(clone: Path) -> None:
    (clone / "README.md").write_text("edited locally\n", encoding="utf-8")
    done = ci(clone, "preflight")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok    uv.lock fresh" in done.stdout


def nox(repo: Path, *args: str, in_ci: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if in_ci:
        env["CI"] = "true"  # a missing interpreter must fail, not skip, in these runs
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_nox_lint_passes_in_a_fresh_clone_and_fails_on_a_finding(clone: Path) -> None:
    done = nox(clone, "-s", "lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (clone / "reports" / "lint.json").exists()
    (clone / "ci" / "scratch.py").write_text('"""Scratch."""\n\nimport os\n', encoding="utf-8")
    done = nox(clone, "-s", "lint")
    assert done.returncode == 1
    assert "ci/scratch.py:3: F401" in done.stdout + done.stderr


def test_missing_interpreter_skips_locally_and_fails_in_ci(clone: Path) -> None:
    pyproject = clone / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace('pythons = ["3.12", "3.11", "3.13"]', 'pythons = ["3.12", "3.4"]'),
        encoding="utf-8",
    )
    local = nox(clone, "-s", "test-3.4", in_ci=False)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "Python interpreter 3.4 not found" in local.stderr
    in_ci = nox(clone, "-s", "test-3.4")
    assert in_ci.returncode != 0
    assert "3.4" in in_ci.stderr
