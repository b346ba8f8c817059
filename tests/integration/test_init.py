"""``init --vendor`` on sample projects of each layout, their real nox sessions, ``init`` again.

Real uv (``uv lock`` and the sessions' ``uv sync`` against the configured index or uv's
cache), real nox, real git. Each sample runs ``nox -s test-3.12``, ``nox -s lint`` and
``nox -s package`` once; one also runs ``nox -s security`` (offline advisory records).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci.gates import registry
from tests.conftest import ROOT, git

pytestmark = pytest.mark.integration

SESSIONS = {gate.session for gate in registry.BUILTIN}
HAS_PACKAGE_SESSION = "package" in SESSIONS
HAS_SECURITY_SESSION = "security" in SESSIONS
ADVISORIES = ROOT / "tests" / "fixtures" / "advisories"  # real OSV records, offline


@dataclass(frozen=True)
class Sample:
    name: str
    files: dict[str, str]
    tests: str  # the test summary the gate must report


def _d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


SETUPTOOLS_SRC_TOX = Sample(
    name="setuptools-src-tox",
    files={
        "pyproject.toml": _d("""
            # setuptools, src/ layout; tox keeps the test deps
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "calc-src"
            version = "1.2.0"
            description = "Adds numbers."
            readme = "README.md"
            requires-python = ">=3.10"

            [project.optional-dependencies]
            test = ["iniconfig>=2"]
            """),
        "tox.ini": _d("""
            [tox]
            envlist = py312

            [testenv]
            deps =
                .[test]
                six
            commands = pytest
            """),
        ".gitignore": "*.egg-info/\n",
        "README.md": "# calc-src\n\nAdds numbers.\n",
        "src/calc_src/__init__.py": '"""Calc."""\n\n\ndef add(a: int, b: int) -> int:\n'
        '    """Add."""\n    return a + b\n',
        "tests/test_calc.py": _d('''
            """The tox deps reached the session: six and the test extra's iniconfig."""

            import iniconfig
            import six

            from calc_src import add


            def test_add() -> None:
                assert add(2, 3) == 5


            def test_deps_from_tox_are_installed() -> None:
                assert six.__name__ == "six"
                assert iniconfig.IniConfig.__name__ == "IniConfig"
            '''),
    },
    tests="2 passed, 0 failed",
)

HATCHLING_FLAT = Sample(
    name="hatchling-flat",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "greet-flat"
            version = "0.3.0"
            description = "Greets."
            readme = "README.md"
            requires-python = ">=3.11"

            [dependency-groups]
            test = ["six"]  # the project's own test group

            [tool.ruff]
            line-length = 79
            """),
        "greet_flat/__init__.py": '"""Greet."""\n\n\ndef hello(name: str) -> str:\n'
        '    """Say hello."""\n    return f"hello {name}"\n',
        "tests/test_greet.py": _d('''
            """Greetings."""

            import six

            from greet_flat import hello


            def test_hello() -> None:
                assert hello("you") == "hello you"
                assert six.__name__ == "six"
            '''),
        ".github/workflows/ci.yml": "name: ci\non: push\njobs: {}\n",
        "README.md": "# greet-flat\n\nGreets.\n",
    },
    tests="1 passed, 0 failed",
)

FLIT_MODULE_NO_TESTS = Sample(
    name="flit-module-no-tests",
    files={
        "pyproject.toml": _d("""
            [build-system]
            requires = ["flit_core>=3.4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "tinymod"
            version = "2.0.0"
            description = "A tiny module."
            readme = "README.md"
            requires-python = ">=3.8"
            """),
        "tinymod.py": '"""A tiny module."""\n\n__version__ = "2.0.0"\nVALUE = 42\n',
        "README.md": "# tinymod\n\nA tiny module.\n",
    },
    tests="1 passed, 0 failed",  # the first test init writes
)


def run(argv: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | extra
    env["CI"] = "true"  # a missing interpreter must fail, not skip
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, check=False)


def init(repo: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``init --vendor``: the copy (tests/integration/test_adopt.py covers the dependency)."""
    return run([sys.executable, "-m", "ci", "init", str(repo), "--vendor", *flags], cwd=ROOT)


def nox(repo: Path, session: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "nox", "-s", session], cwd=repo, **env)


@pytest.mark.parametrize(
    "sample",
    [SETUPTOOLS_SRC_TOX, HATCHLING_FLAT, FLIT_MODULE_NO_TESTS],
    ids=lambda s: s.name,
)
def test_init_then_sessions_then_init_again(sample: Sample, make_repo: Callable[..., Path]) -> None:
    repo = make_repo(sample.files, name=sample.name)
    done = init(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    for rel in ("noxfile.py", "tasks.py", "ci/VERSION", "uv.lock", ".secrets.baseline"):
        assert (repo / rel).is_file(), rel
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "adopt noxgate")

    done = nox(repo, "test-3.12")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"test-3.12: passed (required) {sample.tests}" in done.stdout

    # the target's lint config covers its code; the bundle's files are kept out of it
    done = nox(repo, "lint")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lint: passed (required) clean" in done.stdout

    if sample is HATCHLING_FLAT and HAS_SECURITY_SESSION:
        # the first scan's baseline is what the secrets gate judges by; audits run offline
        done = nox(repo, "security", CI_ADVISORY_DB=str(ADVISORIES))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "secrets: passed (required)" in done.stdout
        assert "audit: passed (required)" in done.stdout

    if HAS_PACKAGE_SESSION:
        done = nox(repo, "package")
        assert done.returncode == 0, done.stdout + done.stderr
        wheels = list((repo / "dist").rglob("*.whl"))
        assert wheels, done.stdout
        assert list((repo / "dist-assets").rglob("SHA256SUMS"))

    done = init(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing: the target is up to date" in done.stdout
    assert git(repo, "status", "--porcelain") == ""


def test_hatchling_sample_keeps_its_workflow_and_group(make_repo: Callable[..., Path]) -> None:
    """No nox here: what init did to a project with its own workflow and test group."""
    repo = make_repo(HATCHLING_FLAT.files, name="hatch-only")
    done = init(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (repo / ".github/workflows/ci.yml").read_text() == "name: ci\non: push\njobs: {}\n"
    assert (repo / ".github/workflows/noxgate-ci.yml").is_file()
    text = (repo / "pyproject.toml").read_text()
    # theirs read, not changed (comment and all); the bundle's tools in a group of its own
    assert '\ntest = ["six"]  # the project\'s own test group\n' in text
    assert 'noxgate-test = [\n    {include-group = "test"},\n' in text
    done = run(["uv", "lock", "--check"], cwd=repo)
    assert done.returncode == 0, done.stderr
