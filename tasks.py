"""Maintainer tasks: each chains ``python -m ci`` commands (run with ``uv run invoke``)."""

from __future__ import annotations

import sys

from invoke import Context, task

CI = f"{sys.executable} -m ci"


@task
def preflight(c: Context) -> None:
    """Check uv.lock, [tool.ci], interpreters and tools."""
    c.run(f"{CI} preflight", pty=False)


@task(
    help={
        "dry_run": "print the plan and run nothing",
        "jobs": "run up to N sessions at once (default: the number of CPUs)",
        "no_cache": "run every gate even when its inputs are unchanged",
    }
)
def ci(c: Context, dry_run: bool = False, jobs: int = 0, no_cache: bool = False) -> None:
    """The main job: preflight, every default nox session (cached or in parallel), a summary."""
    flags = (" --dry-run" if dry_run else "") + (f" --jobs {jobs}" if jobs else "")
    c.run(f"{CI} pipeline" + flags + (" --no-cache" if no_cache else ""), pty=False)
