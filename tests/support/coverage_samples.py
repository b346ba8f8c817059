"""Sample projects for the coverage tests, and coverage as ``coverage run -m pytest`` measures it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ci.gates import coverage as coverage_module

# Module-level lines run when the package is imported: a conftest that imports it early
# (as plugins and fixtures do) hides them from a measurement that starts after conftest.
PACKAGE = '''\
"""A sample package."""

import os

LIMIT = int(os.environ.get("SAMPLE_LIMIT", "10"))


def clamp(value):
    if value > LIMIT:
        return LIMIT
    return value


def describe(value):
    if value < 0:
        return "negative"
    return "non-negative"


class Box:
    def __init__(self, value):
        self.value = clamp(value)

    def double(self):
        return Box(self.value * 2)
'''

CONFTEST = (
    "import pytest\n\nimport sample\n\n\n@pytest.fixture\ndef box():\n    return sample.Box(3)\n"
)

TESTS = """\
import sample


def test_clamp():
    assert sample.clamp(50) == sample.LIMIT


def test_box(box):
    assert box.double().value == 6
"""

# The rest of the package runs only where the tests need it: 100% with coverage run.
TESTS_FULL = (
    TESTS
    + """

def test_small():
    assert sample.clamp(1) == 1


def test_describe():
    assert sample.describe(-1) == "negative"
    assert sample.describe(1) == "non-negative"
"""
)


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def plain(root: Path, *, full: bool = False, extra_toml: str = "") -> Path:
    """A flat project without coverage configuration; its conftest imports the package."""
    return write(
        root,
        {
            "pyproject.toml": '[project]\nname = "sample"\nversion = "1.0"\n'
            "[tool.ci.gates.test]\ncoverage_min = 0\n" + extra_toml,
            "sample/__init__.py": PACKAGE,
            "tests/conftest.py": CONFTEST,
            "tests/test_sample.py": TESTS_FULL if full else TESTS,
        },
    )


def coveragerc_include(root: Path, *, fail_under: int | None = None) -> Path:
    """A src-layout project measured through ``.coveragerc [run] include``, warnings as errors."""
    rc = "[run]\ninclude =\n    src/sample/*\nbranch = true\n"
    if fail_under is not None:
        rc += f"\n[report]\nfail_under = {fail_under}\n"
    return write(
        root,
        {
            "pyproject.toml": '[project]\nname = "sample"\nversion = "1.0"\n'
            "[tool.ci.gates.test]\ncoverage_min = 0\n"
            '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\npythonpath = ["src"]\n',
            ".coveragerc": rc,
            "src/sample/__init__.py": PACKAGE,
            "tests/conftest.py": CONFTEST,
            "tests/test_sample.py": TESTS,
        },
    )


def reference(root: Path, *run_args: str) -> float:
    """Total coverage of ``coverage run [run_args] -m pytest`` then ``coverage combine``."""
    data = root.parent / f"{root.name}-reference" / ".coverage"
    data.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **coverage_module.quiet_env(data)}
    python = sys.executable
    steps = [
        [
            python,
            "-m",
            "coverage",
            "run",
            "-p",
            *run_args,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        [python, "-m", "coverage", "combine", "-q", str(data.parent)],
    ]
    for argv in steps:
        subprocess.run(argv, cwd=root, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [python, "-m", "coverage", "report", "--format=total", "--precision=4"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,  # exit 2 when the project's own fail_under is missed
    )
    return float(done.stdout.strip())
