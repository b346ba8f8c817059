"""tasks.py run by a real invoke from a project whose path holds a space and ``$(...)``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = """\
[project]
name = "odd-path"
version = "1.0.0"

[tool.ci]
pythons = ["3.12"]
"""


def venv_in(project: Path) -> Path:
    """A real venv in ``project/.venv`` that sees this one's packages (invoke, noxgate)."""
    venv = project / ".venv"
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    purelib = sysconfig.get_paths()["purelib"]
    (site / "outer.pth").write_text(f"import site; site.addsitedir({purelib!r})\n")
    return venv / "bin" / "python"


@pytest.fixture
def odd_project(tmp_path: Path) -> Path:
    project = tmp_path / "my project $(touch pwned)"
    project.mkdir()
    shutil.copy(ROOT / "tasks.py", project / "tasks.py")
    (project / "pyproject.toml").write_text(PYPROJECT)
    return project


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ci", "--dry-run", "--jobs", "1"], "plan (dry run, nothing is run):"),
        (["deploy", "--env", "it's", "--version", "1.0.0", "--dry-run"], "may only hold letters"),
    ],
)
def test_invoke_tasks_run_from_a_path_with_a_space_and_command_substitution(
    tmp_path: Path, odd_project: Path, args: list[str], expected: str
) -> None:
    python = venv_in(odd_project)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-m", "invoke", *args],
        cwd=odd_project,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert not list(tmp_path.rglob("pwned")), "a $(...) in the project path ran"
    output = done.stdout + done.stderr
    assert "No such file or directory" not in output
    assert expected in output
