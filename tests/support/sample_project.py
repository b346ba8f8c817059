"""A small hatchling project in a real git repository, for building and publishing in tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.27"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "{version}"
description = "A sample project for noxgate's packaging tests."
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"

[tool.hatch.build.targets.wheel]
packages = ["sample_pkg"]
{extra}
[tool.ci]
pythons = ["3.12"]

[tool.ci.publish]
retain = {retain}
"""

UNREPRODUCIBLE_HOOK = """\
import time

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class StampTime(BuildHookInterface):
    def initialize(self, version, build_data):
        path = self.root + "/stamp.txt"
        with open(path, "w") as handle:
            handle.write(str(time.time_ns()))
        build_data["force_include"][path] = "sample_pkg/stamp.txt"
"""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; returns stdout."""
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout


def write_sample_project(
    root: Path,
    *,
    name: str = "sample-pkg",
    version: str = "1.2.3",
    retain: int = 5,
    unreproducible: bool = False,
    backend: str = "hatchling",
) -> Path:
    """Create and commit the project in ``root`` (a new git repository); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    extra = "\n[tool.hatch.build.targets.wheel.hooks.custom]\n" if unreproducible else ""
    files = {
        "pyproject.toml": PYPROJECT.format(name=name, version=version, retain=retain, extra=extra),
        "README.md": f"# {name}\n\nA sample project.\n",
        "sample_pkg/__init__.py": '"""A sample package."""\n\nVALUE = 42\n',
        "noxfile.py": '"""Sessions."""\n',
        "tasks.py": '"""Tasks."""\n',
        ".github/workflows/ci.yml": "name: ci\non: push\njobs: {}\n",
        ".gitignore": "dist/\nreports/\nstamp.txt\n",
        "uv.lock": "version = 1\n",
    }
    if unreproducible:
        files["hatch_build.py"] = UNREPRODUCIBLE_HOOK
    if backend == "setuptools":  # a backend that stamps its own build time into the sdist
        files["pyproject.toml"] = (
            files["pyproject.toml"]
            .replace('requires = ["hatchling>=1.27"]', 'requires = ["setuptools>=68"]')
            .replace('"hatchling.build"', '"setuptools.build_meta"')
            .replace('[tool.hatch.build.targets.wheel]\npackages = ["sample_pkg"]\n', "")
        )
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root
