"""Maintainer tasks: each chains ``python -m ci`` commands (run with ``uv run invoke``)."""

from __future__ import annotations

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


@task
def nightly(c: Context) -> None:
    """The nightly security job: secret scan of the whole history, then the dependency audit."""
    c.run(f"{CI} secrets --history", pty=False)
    c.run(f"{CI} audit", pty=False)
