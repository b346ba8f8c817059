"""The uv the bundle runs ($UV, else the first uv on PATH outside a virtual environment), and
what a failed ``uv lock`` said (read from real uv's output on tiny projects)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ci.core import uv
from tests.support.pypiserver import free_port


def fake_uv(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "uv"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_uv_in_a_virtual_environment_is_skipped(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    fake_uv(venv / "bin")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    own = fake_uv(tmp_path / "tools")
    path = os.pathsep.join([str(venv / "bin"), "", str(tmp_path / "tools")])
    assert uv.find({"PATH": path}) == str(own)


def test_the_uv_that_started_us_comes_first(tmp_path: Path) -> None:
    started = fake_uv(tmp_path / "started")
    other = fake_uv(tmp_path / "other")
    assert uv.find({"UV": str(started), "PATH": str(other.parent)}) == str(started)
    # a relative or missing $UV names nothing: PATH decides
    assert uv.find({"UV": "uv", "PATH": str(other.parent)}) == str(other)
    assert uv.find({"UV": str(tmp_path / "gone"), "PATH": str(other.parent)}) == str(other)


def test_without_a_uv_outside_a_venv_the_name_is_left_to_path(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    fake_uv(venv / "bin")
    (venv / "pyvenv.cfg").write_text("")
    assert uv.find({"PATH": str(venv / "bin")}) == "uv"
    assert uv.find({}) == "uv"


def failed_lock(folder: Path, pyproject: str, env: Mapping[str, str] | None = None) -> str:
    """Real ``uv lock`` (the bundle's uv) on a project of one pyproject.toml: its stderr."""
    folder.mkdir()
    (folder / "pyproject.toml").write_text(pyproject)
    done = subprocess.run(
        [uv.find(os.environ), "lock"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", **(env or {})},
        check=False,
    )
    assert done.returncode != 0, done.stderr
    return done.stderr


DOCS_NEEDS_311 = """[project]
name = "Docsy_Demo"
version = "0.1"
requires-python = ">=3.9"

[dependency-groups]
docs = ["sphinx==8.2.3"]
"""


def test_a_group_that_needs_a_newer_python_is_named_with_the_floors(tmp_path: Path) -> None:
    stderr = failed_lock(tmp_path / "p", DOCS_NEEDS_311)
    assert "hint:" in stderr  # uv's hints follow its cause ...
    failure = uv.read_lock_failure(stderr, "Docsy_Demo")
    assert failure.group == "docs"  # uv spells the project docsy-demo
    assert failure.requirement == "sphinx==8.2.3"
    assert failure.floors[0] == "3.11"
    assert failure.cause.startswith("No solution found when resolving dependencies")
    assert "docsy-demo:docs depends on sphinx==8.2.3" in failure.cause
    assert "hint" not in failure.cause  # ... and are left out of the one line
    assert "\n" not in failure.cause


def test_the_projects_own_dependency_is_no_group(tmp_path: Path) -> None:
    text = DOCS_NEEDS_311.replace(
        'version = "0.1"', 'version = "0.1"\ndependencies = ["sphinx==8.2.3"]'
    )
    text = text.replace('docs = ["sphinx==8.2.3"]', "docs = []")
    failure = uv.read_lock_failure(failed_lock(tmp_path / "p", text), "Docsy_Demo")
    assert failure.group is None
    assert "your project depends on sphinx==8.2.3" in failure.cause


def test_a_chain_of_causes_gives_its_first_and_its_root(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/simple"
    env = {"UV_INDEX_URL": closed, "UV_HTTP_RETRIES": "0", "UV_NO_CACHE": "1"}
    stderr = failed_lock(tmp_path / "p", DOCS_NEEDS_311, env)
    failure = uv.read_lock_failure(stderr, "Docsy_Demo")
    assert closed in failure.cause
    assert "Connection refused" in failure.cause
    assert failure.group is None
    assert "\n" not in failure.cause


def test_an_older_uvs_drawn_report_reads_the_same() -> None:
    drawn = (
        "  \N{MULTIPLICATION SIGN} No solution found when resolving dependencies:\n"
        "  \u2570\u2500\u25b6 Because the requested Python version (>=3.9) does not satisfy "
        "Python>=3.11 and sphinx==8.2.3 depends on Python>=3.11, we can conclude that "
        "sphinx==8.2.3 cannot be used.\n"
        "      And because demo:docs depends on sphinx==8.2.3 and your project requires "
        "demo:docs, we can conclude that your project's requirements are unsatisfiable.\n"
    )
    failure = uv.read_lock_failure(drawn, "demo")
    assert (failure.group, failure.requirement, failure.floors) == (
        "docs",
        "sphinx==8.2.3",
        ("3.11",),
    )
    assert failure.cause.startswith("No solution found when resolving dependencies: And because")


def test_a_requirement_with_uvs_marker_braces_reads_as_the_requirement() -> None:
    stderr = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because demo:docs depends on sphinx{python_full_version >= '3.11'}==8.2.3 and "
        "your project requires demo:docs, we can conclude that your project's requirements "
        "are unsatisfiable.\n"
    )
    assert uv.read_lock_failure(stderr, "demo").requirement == "sphinx==8.2.3"


def test_output_without_an_error_line_gives_its_last_line() -> None:
    assert uv.read_lock_failure("x\n  No solution found: pytest<1\n", "demo").cause == (
        "No solution found: pytest<1"
    )
    assert uv.read_lock_failure("", "demo").cause == "no output"
