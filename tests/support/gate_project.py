"""Small projects that every built-in gate passes on: one flat layout, one src layout."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.support.sample_project import git

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "sample-app"
version = "0.1.0"
description = "A sample project for noxgate's cache tests."
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"

[tool.hatch.build.targets.wheel]
packages = ["{package_dir}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["{pythonpath}"]

[tool.ruff]
line-length = 100

[tool.ci]
pythons = ["{python}"]
packages = ["app"]
"""

APP = '''\
"""A tiny application."""


def add(a: int, b: int) -> int:
    """The sum of ``a`` and ``b``."""
    return a + b
'''

TEST = """\
from app import add


def test_add() -> None:
    assert add(1, 2) == 3
"""

WORKFLOW = """\
name: ci
on:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - run: echo hello
"""

LOCK = """\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "sample-app"
version = "0.1.0"
source = { editable = "." }
"""


MYPY = """
[tool.mypy]
files = ["{package_dir}"]

[tool.ci.gates.lint]
mypy = true
"""


def write_gate_project(root: Path, *, layout: str = "flat", mypy: bool = False) -> Path:
    """Write and commit a project (``flat``: app/, ``src``: src/app/) in a new git repository."""
    package_dir = "src/app" if layout == "src" else "app"
    pyproject = PYPROJECT.format(
        package_dir=package_dir, pythonpath="src" if layout == "src" else ".", python=PYTHON
    )
    files = {
        "pyproject.toml": pyproject + (MYPY.format(package_dir=package_dir) if mypy else ""),
        "uv.lock": LOCK,
        "README.md": "# sample-app\n",
        "LICENSE": "MIT\n",
        ".gitignore": "reports/\ndist/\n.ci-state/\n",
        f"{package_dir}/__init__.py": APP,
        "tests/test_app.py": TEST,
        ".github/workflows/ci.yml": WORKFLOW,
    }
    for rel, text in files.items():
        write(root / rel, text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def write(path: Path, text: str) -> None:
    """Write ``path`` (making its folder) with an mtime in the past, like a checkout's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    past = time.time() - 60
    os.utime(path, (past, past))
