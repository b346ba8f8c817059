"""Maintainer tasks: each chains ``python -m ci`` commands (run with ``uv run invoke``)."""

from __future__ import annotations

import shlex
import sys

from invoke import Context, task

CI = f"{sys.executable} -m ci"


@task
def preflight(c: Context) -> None:
    """Check uv.lock, [tool.ci], interpreters and tools."""
    c.run(f"{CI} preflight", pty=False)


@task(help={"dry_run": "print the plan and run nothing"})
def ci(c: Context, dry_run: bool = False) -> None:
    """The main job: preflight, every default nox session, then a summary table."""
    c.run(f"{CI} pipeline" + (" --dry-run" if dry_run else ""), pty=False)


@task(help={"tag": "the release tag (default: the v* tag on HEAD)", "dry_run": "print only"})
def record(c: Context, tag: str = "", dry_run: bool = False) -> None:
    """Write dist/RELEASE_NOTES.md and create or update the GitHub release for the tag."""
    args = (f" --tag {shlex.quote(tag)}" if tag else "") + (" --dry-run" if dry_run else "")
    c.run(f"{CI} release-record{args}", pty=False)
