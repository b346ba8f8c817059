"""End to end: ``nox -s lint`` in a fresh clone publishes to a GitHub API on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.github_api import GitHubAPI

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghs_" + secrets.token_hex(16)  # made at run time: not even the sources hold it
RUN_URL = "https://github.example/octo/demo/actions/runs/777"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def fresh_clone(dest: Path) -> Path:
    """A clone of this project with the working tree's current files (so edits are tested)."""
    git(ROOT.parent, "clone", "--quiet", str(ROOT), str(dest))
    for rel in git(ROOT, "ls-files", "-co", "--exclude-standard").splitlines():
        source = ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    git(dest, "add", "-A")
    if git(dest, "status", "--porcelain"):
        git(dest, "commit", "--quiet", "-m", "working tree")
    return dest


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def assert_token_hidden(text: str, *folders: Path) -> None:
    for line in text.splitlines():
        assert TOKEN not in line or line.startswith("::add-mask::"), line
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and ".git" not in path.parts and ".nox" not in path.parts:
                assert TOKEN.encode() not in path.read_bytes(), path


def test_nox_lint_publishes_statuses_summary_and_annotations(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    api = GitHubAPI(server=httpserver, token=TOKEN)
    clone = fresh_clone(tmp_path / "clone")
    sha = git(clone, "rev-parse", "HEAD")
    env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": api.api_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": api.repo,
        "GITHUB_SHA": sha,
        "GITHUB_RUN_ID": "777",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary-clean.md"),
    }
    nox = [sys.executable, "-m", "nox", "-s", "lint"]

    clean = run(nox, clone, env)
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
    assert api.posted_states(sha) == [("ci/lint", "pending"), ("ci/lint", "success")]
    final = api.requests("POST", "/statuses/")[-1]
    assert final.body["target_url"] == RUN_URL
    assert final.authorization == f"Bearer {TOKEN}"
    summary = (tmp_path / "summary-clean.md").read_text(encoding="utf-8")
    assert "| `lint` | ✅ passed | required |" in summary
    assert RUN_URL in summary

    (clone / "ci" / "_unused.py").write_text('"""Unused."""\n\nimport os\n', encoding="utf-8")
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary-dirty.md")
    dirty = run(nox, clone, env)
    assert dirty.returncode != 0
    assert "::error file=ci/_unused.py,line=3,title=lint%3A F401::" in dirty.stdout
    assert api.posted_states(sha)[-1] == ("ci/lint", "failure")
    summary = (tmp_path / "summary-dirty.md").read_text(encoding="utf-8")
    assert "`ci/_unused.py:3`" in summary

    require = [sys.executable, "-m", "ci", "status", "require", "--contexts", "ci/lint,ci/test"]
    api.statuses[sha] = [{"context": "ci/lint", "state": "success", "description": "clean"}]
    required = run(require, clone, env)
    assert required.returncode == 1, required.stdout + required.stderr
    assert "ci/test: missing" in required.stdout
    assert "ci/lint: success" in required.stdout

    output = "".join(p.stdout + p.stderr for p in (clean, dirty, required))
    assert_token_hidden(output, clone, tmp_path)
