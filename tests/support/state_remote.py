"""A project in git with a bare repository on disk as its remote, and clones of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.deploy_project import write_project


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout (raises on failure)."""
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


def project_remote(tmp_path: Path, environments: str, *, state: str = "") -> Path:
    """A bare remote holding one commit: a pyproject.toml with ``environments`` and ``state``.

    ``state`` is the body of ``[tool.ci.state]`` (default: the git backend, origin).
    """
    source = tmp_path / "source"
    table = state or 'backend = "git"\n'
    write_project(source, environments, extra=f"\n[tool.ci.state]\n{table}")
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "the project")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(remote))
    return remote


def clone(remote: Path, target: Path) -> Path:
    """A fresh clone of ``remote`` at ``target`` (its remote is origin)."""
    git(target.parent, "clone", "-q", str(remote), str(target))
    return target


def state_commits(remote: Path) -> list[list[str]]:
    """The commits of the state ref, oldest first, each as [sha, parent shas...]."""
    out = git(remote, "rev-list", "--reverse", "--parents", "refs/noxgate/state")
    return [line.split() for line in out.splitlines()]


def state_file(remote: Path, relative: str) -> str:
    """A file of the state ref as the remote has it ("" when absent)."""
    done = subprocess.run(
        ["git", "show", f"refs/noxgate/state:{relative}"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""
