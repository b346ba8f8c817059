"""A gate declared only in pyproject.toml, end to end in an adopted sample project.

``init --vendor`` adopts a small hatchling project whose ``[tool.ci.gates.docs]`` runs a
command; real nox, invoke, uv and git then show the gate is a session (``nox -l``), runs in
the main job with a summary row, is replayed from the cache when nothing changed, is in the
release plan, and fails the pipeline (exit 1, the tail of its output) when its command fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, git

pytestmark = pytest.mark.integration

ADVISORIES = ROOT / "tests" / "fixtures" / "advisories"  # real OSV records, offline
# The docs check: fails (exit 2) while the guide still has a TODO in it.
CHECK = (
    "import pathlib, sys; text = pathlib.Path(sys.argv[1]).read_text(); "
    "print('checked', sys.argv[1]); "
    "sys.exit('docs: the guide still says TODO' if 'TODO' in text else 0)"
)
PYPROJECT = f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "greet-docs"
version = "0.3.0"
description = "Greets, with a checked guide."
readme = "README.md"
requires-python = ">=3.11"

[dependency-groups]
docs = ["packaging>=24"]  # what the copied ci/ needs; a real one adds sphinx and friends

[tool.ci]
packages = ["greet_docs"]
pythons = ["3.12"]

[tool.ci.gates.test]
coverage_min = 0

[tool.ci.gates.docs]
command = ["python", "-c", {json.dumps(CHECK)}, "docs/guide.txt"]
group = "docs"
inputs = ["docs/**"]
"""
FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": "# greet-docs\n\nGreets.\n",
    "greet_docs/__init__.py": '"""Greet."""\n\n\ndef hello(name: str) -> str:\n'
    '    """Say hello."""\n    return f"hello {name}"\n',
    "tests/test_greet.py": textwrap.dedent('''\
        """Greetings."""

        from greet_docs import hello


        def test_hello() -> None:
            assert hello("docs") == "hello docs"
        '''),
    "docs/guide.txt": "How to greet: call hello().\n",
}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {
        "CI": "true",  # a missing interpreter fails, never skips
        "CI_ADVISORY_DB": str(ADVISORIES),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env=env, check=False, timeout=1200
    )


def row(summary: str, gate: str) -> str:
    """The summary table's row of ``gate`` (the table comes last; a gate's own lines before it
    may start with its name too, as ``lint families: ...`` does)."""
    return [line for line in summary.splitlines() if line.split()[:1] == [gate]][-1]


def test_declared_gate_runs_everywhere_a_gate_runs(tmp_path: Path) -> None:
    repo = tmp_path / "greet-docs"
    for rel, text in FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    done = run([sys.executable, "-m", "ci", "init", str(repo), "--vendor"], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "adopt noxgate, with a docs gate")
    nox = [sys.executable, "-m", "nox"]
    invoke = [sys.executable, "-m", "invoke"]

    listed = run([*nox, "-l"], repo)
    assert listed.returncode == 0, listed.stderr
    assert "* docs -> Docs: python -c " in listed.stdout  # a default session, described

    session = run([*nox, "-s", "docs"], repo)
    assert session.returncode == 0, session.stdout + session.stderr
    assert "checked docs/guide.txt" in session.stdout
    assert "docs: passed (required)" in session.stdout

    main_job = run([*invoke, "ci"], repo)
    assert main_job.returncode == 0, main_job.stdout + main_job.stderr
    assert "nox -s docs: cached" in main_job.stdout  # the session above stored its pass
    assert "cached" in row(main_job.stdout, "docs")
    for gate in ("lint", "test-3.12", "secrets", "audit", "package"):
        assert "passed" in row(main_job.stdout, gate), main_job.stdout

    assert "nox -s docs: cached (docs; inputs unchanged, nox not started)" in main_job.stdout
    record = json.loads((repo / "reports" / "run.json").read_text())
    assert "docs" in [g["id"] for g in record["gates"]]

    plan = run([*invoke, "release", "--dry-run"], repo)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "gate docs: nox session" in plan.stdout
    assert plan.stdout.index("gate docs") < plan.stdout.index("publish:")

    (repo / "docs" / "guide.txt").write_text("How to greet: TODO\n", encoding="utf-8")
    failed = run([sys.executable, "-m", "ci", "pipeline", "--session", "docs"], repo)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in row(failed.stdout, "docs")
    assert "docs: the guide still says TODO" in row(failed.stdout, "docs")  # the output's tail
