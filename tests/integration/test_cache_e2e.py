"""End to end: a real nox session stores the lint result the main job then replays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, git

pytestmark = pytest.mark.integration


def tool(name: str) -> list[str]:
    """How to start ``name`` (nox, invoke): the test group installs both in this interpreter."""
    return [sys.executable, "-m", name]


def copy_project(dest: Path) -> Path:
    """The project's files as git sees them, committed in a fresh repository at ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "copy")
    return dest


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_main_job_replays_what_the_session_stored(tmp_path: Path) -> None:
    nox = tool("nox")
    project = copy_project(tmp_path / "project")
    first = run([*nox, "-s", "lint"], project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "lint: passed" in first.stdout + first.stderr

    main_job = run([sys.executable, "-m", "ci", "pipeline", "--session", "lint"], project)
    assert main_job.returncode == 0, main_job.stdout + main_job.stderr
    assert "nox -s lint: cached" in main_job.stdout
    assert "nox not started" in main_job.stdout

    again = run([*nox, "-R", "-s", "lint"], project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "lint: cached" in again.stdout + again.stderr


def test_invoke_ci_passes_jobs_and_no_cache_through() -> None:
    done = run([*tool("invoke"), "ci", "--dry-run", "--jobs", "3", "--no-cache"], ROOT)
    assert done.returncode == 0, done.stderr
    assert "sessions run 3 at a time" in done.stdout
    assert "replayed" not in done.stdout  # --no-cache reached the pipeline
