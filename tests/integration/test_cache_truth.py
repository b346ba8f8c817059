"""A cached verdict equals a fresh run's: each case once replayed a pass that --no-cache failed.

Every test passes the gate once (storing the pass), changes one thing the gate reads, then
runs the gate with the cache and with --no-cache: both must give the same exit code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from ci.cli.app import App
from ci.cli.main import main
from ci.release import package
from tests.support.gate_project import write, write_gate_project
from tests.support.sample_project import git

pytestmark = pytest.mark.integration


def gate(project: Path, name: str, *flags: str, env: Mapping[str, str] | None = None) -> int:
    """``python -m ci gate [FLAGS] NAME`` in ``project`` (in this process, real tools)."""
    app = App(cwd=project, env={**os.environ, **(env or {})})
    return main(["gate", *flags, name], app)


def cached_and_fresh(
    project: Path, name: str, env: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """The gate's exit code with the cache, then with --no-cache."""
    return gate(project, name, env=env), gate(project, name, "--no-cache", env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_gate_project(tmp_path / "project")
    assert gate(root, "test") == 0
    assert gate(root, "lint") == 0
    return root


def add_test(project: Path, name: str, body: str) -> None:
    write(project / "tests" / name, body)


# -- test ----------------------------------------------------------------------------------


def test_ignored_data_file(project: Path) -> None:
    write(project / ".gitignore", "reports/\ndist/\n.ci-state/\ndata/\n")
    write(project / "data" / "expected.txt", "3\n")
    add_test(
        project,
        "test_data.py",
        "from pathlib import Path\n\n\ndef test_data() -> None:\n"
        "    assert Path('data/expected.txt').read_text() == '3\\n'\n",
    )
    assert gate(project, "test") == 0
    write(project / "data" / "expected.txt", "4\n")
    assert cached_and_fresh(project, "test") == (1, 1)


def test_test_in_an_ignored_folder(project: Path) -> None:
    write(project / ".gitignore", "reports/\ndist/\n.ci-state/\ntests/local/\n")
    assert gate(project, "test") == 0
    add_test(project, "local/test_local.py", "def test_local() -> None:\n    assert False\n")
    assert cached_and_fresh(project, "test") == (1, 1)


def test_committed_change_under_docs(project: Path) -> None:
    write(project / "docs" / "guide.md", "add(1, 2) is 3\n")
    add_test(
        project,
        "test_docs.py",
        "from pathlib import Path\n\n\ndef test_docs() -> None:\n"
        "    assert 'is 3' in Path('docs/guide.md').read_text()\n",
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "docs")
    assert gate(project, "test") == 0
    write(project / "docs" / "guide.md", "add(1, 2) is three\n")
    git(project, "commit", "-q", "-am", "reword")
    assert cached_and_fresh(project, "test") == (1, 1)


ENV_TEST = (
    "import os\n\n\ndef test_mode() -> None:\n    assert os.environ.get('APP_MODE') != 'broken'\n"
)


def test_env_var_the_tests_read_is_invisible_unless_declared(project: Path) -> None:
    add_test(project, "test_mode.py", ENV_TEST)
    assert gate(project, "test") == 0
    broken = {"APP_MODE": "broken"}
    cached, fresh = cached_and_fresh(project, "test", broken)
    assert cached == fresh == 0  # not declared: the gate never sees it
    text = (project / "pyproject.toml").read_text()
    write(project / "pyproject.toml", text + '\n[tool.ci.gates.test]\nenv = ["APP_*"]\n')
    assert cached_and_fresh(project, "test", broken) == (1, 1)


def test_pytest_addopts(project: Path) -> None:
    add_test(
        project,
        "test_warn.py",
        "import warnings\n\n\ndef test_warns() -> None:\n"
        "    warnings.warn('old', DeprecationWarning, stacklevel=1)\n",
    )
    assert gate(project, "test") == 0
    cached, fresh = cached_and_fresh(project, "test", {"PYTEST_ADDOPTS": "-W error"})
    assert cached == fresh


def test_same_size_edit_with_the_mtime_set_back(project: Path) -> None:
    data = project / "tests" / "value.txt"
    write(data, "ok\n")
    add_test(
        project,
        "test_value.py",
        "from pathlib import Path\n\n\ndef test_value() -> None:\n"
        "    assert Path('tests/value.txt').read_text() == 'ok\\n'\n",
    )
    assert gate(project, "test") == 0
    stamp = data.stat()
    with data.open("r+") as handle:
        handle.write("no\n")
    os.utime(data, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert cached_and_fresh(project, "test") == (1, 1)


def test_symlink_to_a_folder_outside(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "value.txt", "ok\n")
    (project / "fixtures").symlink_to(outside, target_is_directory=True)
    add_test(
        project,
        "test_fixture.py",
        "from pathlib import Path\n\n\ndef test_fixture() -> None:\n"
        "    assert Path('fixtures/value.txt').read_text() == 'ok\\n'\n",
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "fixtures")
    assert gate(project, "test") == 0
    write(outside / "value.txt", "changed\n")
    assert cached_and_fresh(project, "test") == (1, 1)


def test_submodule_bump(project: Path, tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    write(upstream / "value.txt", "ok\n")
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "one")
    git(
        project,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(upstream),
        "vendor",
    )
    add_test(
        project,
        "test_vendor.py",
        "from pathlib import Path\n\n\ndef test_vendor() -> None:\n"
        "    assert Path('vendor/value.txt').read_text() == 'ok\\n'\n",
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "vendor")
    assert gate(project, "test") == 0
    write(upstream / "value.txt", "bumped\n")
    git(upstream, "commit", "-q", "-am", "two")
    git(project / "vendor", "pull", "-q", "--ff-only", "origin", "main")
    git(project, "commit", "-q", "-am", "bump vendor")
    assert cached_and_fresh(project, "test") == (1, 1)


@pytest.mark.parametrize("where", ["reports", "state"])
def test_coverage_baseline(project: Path, where: str) -> None:
    folder = project / "reports" if where == "reports" else Path(os.environ["CI_STATE_DIR"])
    text = (project / "pyproject.toml").read_text()
    write(project / "pyproject.toml", text + "\n[tool.ci.gates.test]\ncoverage_min = 50\n")
    code = (project / "app" / "__init__.py").read_text()
    write(project / "app" / "__init__.py", code + "\n\ndef unused() -> int:\n    return 1\n")
    write(folder / "coverage-baseline.json", json.dumps({"coverage": 75.0}))
    assert gate(project, "test") == 0  # 75 %: at the baseline
    write(folder / "coverage-baseline.json", json.dumps({"coverage": 100.0}))
    assert cached_and_fresh(project, "test") == (1, 1)  # a drop of 25 points


# -- lint ----------------------------------------------------------------------------------


def test_nested_ruff_config(project: Path) -> None:
    write(project / "app" / "cli.py", '"""Command line."""\n\nprint("hello")\n')
    assert gate(project, "lint") == 0
    write(project / "app" / "ruff.toml", '[lint]\nselect = ["T20"]\n')
    assert cached_and_fresh(project, "lint") == (1, 1)


def test_notebook(project: Path) -> None:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "cells": [{**cell, "source": ["import os\n"]}],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    write(project / "explore.ipynb", json.dumps(notebook))
    assert cached_and_fresh(project, "lint") == (1, 1)


def test_setup_cfg_mypy(project: Path) -> None:
    text = (project / "pyproject.toml").read_text()
    write(project / "pyproject.toml", text + "\n[tool.ci.gates.lint]\nmypy = true\n")
    write(
        project / "app" / "loose.py",
        '"""Untyped."""\n\n\ndef loose(x):\n    """X."""\n    return x\n',
    )
    write(project / "setup.cfg", "[mypy]\nfiles = app\n")
    assert gate(project, "lint") == 0
    write(project / "setup.cfg", "[mypy]\nfiles = app\ndisallow_untyped_defs = True\n")
    assert cached_and_fresh(project, "lint") == (1, 1)


# -- secrets ---------------------------------------------------------------------------------


def test_untracked_file_committed_later(project: Path) -> None:
    key_id = "AKIA" + "J7QX3ZP5W2NR4TBV"  # AWS-shaped, made up; built so no literal is scanned
    write(project / "notes.txt", f"aws_access_key_id = {key_id}\n")
    assert gate(project, "secrets") == 0  # the tree scan reads tracked files only
    git(project, "add", "notes.txt")
    git(project, "commit", "-q", "-m", "notes")
    assert cached_and_fresh(project, "secrets") == (1, 1)


# -- package ---------------------------------------------------------------------------------


def build_info(project: Path) -> dict[str, object]:
    manifest = json.loads((package.assets_dir(project / "dist") / "manifest.json").read_text())
    return dict(manifest["build"])


def test_package_after_a_tag_and_on_another_branch(project: Path) -> None:
    assert gate(project, "package") == 0
    assert build_info(project)["tag"] is None
    git(project, "tag", "v0.1.0")
    assert gate(project, "package") == 0
    assert build_info(project)["tag"] == "v0.1.0"
    git(project, "checkout", "-q", "-b", "feature")
    assert gate(project, "package") == 0
    assert build_info(project)["branch"] == "feature"


def test_symlink_leaving_the_tree_says_why(project: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "elsewhere").mkdir()
    (project / "link").symlink_to(tmp_path / "elsewhere")
    capsys.readouterr()
    assert gate(project, "lint") == 0
    err = capsys.readouterr().err
    assert "lint: runs without the cache: link leads out of the project" in err
