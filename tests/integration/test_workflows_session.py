"""A fresh clone: `nox -s workflows` passes, catches a broken workflow, and dry runs change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def run(
    repo: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CI_INJECT_FAULT"}
    return subprocess.run(
        list(argv),
        cwd=repo,
        capture_output=True,
        text=True,
        env={**base, "CI": "true", **(env or {})},
        check=False,
    )


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file in the clone, ignored ones included (but not the session venvs)."""
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if path.is_file() and rel.parts[0] not in {".git", ".nox", ".venv"}:
            files[rel.as_posix()] = path.read_bytes()
    return files


def test_nox_workflows_passes_then_fails_on_an_unpinned_action(clone: Path) -> None:
    done = run(clone, sys.executable, "-m", "nox", "-s", "workflows")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workflow(s) clean" in done.stdout
    ci_yml = clone / ".github" / "workflows" / "ci.yml"
    text = ci_yml.read_text(encoding="utf-8")
    pinned = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
    ci_yml.write_text(text.replace(pinned, "actions/checkout@v4", 1), encoding="utf-8")
    done = run(clone, sys.executable, "-m", "nox", "-s", "workflows")
    assert done.returncode == 1
    line = text.splitlines().index(next(ln for ln in text.splitlines() if pinned in ln)) + 1
    # one finding for the one issue: zizmor's, naming the bundle's rule
    assert f".github/workflows/ci.yml:{line}: zizmor/unpinned-uses" in done.stdout
    assert "(also the bundle's pin: actions/checkout@v4" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_invoke_ci_dry_run_changes_nothing(clone: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = snapshot(clone)
    done = run(
        clone, sys.executable, "-m", "invoke", "ci", "--dry-run", env={"CI_STATE_DIR": str(state)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "plan (dry run" in done.stdout
    assert "nox -s workflows" in done.stdout
    assert snapshot(clone) == before
    assert not state.exists()
