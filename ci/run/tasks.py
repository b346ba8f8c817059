"""The maintainer tasks invoke loads: each chains ``python -m ci`` commands.

A project's ``tasks.py`` (or a submodule of its ``tasks/`` package) imports them:
``from ci.run.tasks import *``; ``uv run invoke --list`` shows them.
"""

from __future__ import annotations

import sys
from shlex import quote

from invoke.context import Context
from invoke.tasks import task

__all__ = ["ci", "deploy", "nightly", "preflight", "record", "release", "rollback", "unlock"]

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


@task
def nightly(c: Context) -> None:
    """The nightly security job: secret scan of the whole history, then the dependency audit."""
    c.run(f"{CI} secrets --history", pty=False)
    c.run(f"{CI} audit", pty=False)


@task(
    help={"dry_run": "print the plan (what runs, in which order, published where) and run nothing"}
)
def release(c: Context, dry_run: bool = False) -> None:
    """Release: preflight --release, gates, package, publish, deploy to the first environment."""
    c.run(f"{CI} release" + (" --dry-run" if dry_run else ""), pty=False)


@task(
    help={
        "env": "the environment",
        "version": "the version to deploy",
        "approve": "approve a protected environment (recorded in the ledger)",
        "reason": "why, recorded with --approve",
        "wait": "seconds to wait for the lock",
        "dry_run": "print the plan and change nothing",
    }
)
def deploy(  # noqa: PLR0917 - invoke maps each parameter to a flag
    c: Context,
    env: str,
    version: str,
    approve: bool = False,
    reason: str = "",
    wait: int = 0,
    dry_run: bool = False,
) -> None:
    """Deploy a built version to an environment (lock, checkpoint, automatic rollback)."""
    flags = (" --approve" if approve else "") + (f" --reason {quote(reason)}" if reason else "")
    flags += f" --wait {wait}" + (" --dry-run" if dry_run else "")
    c.run(f"{CI} deploy --env {quote(env)} --version {quote(version)}{flags}", pty=False)


@task(help={"env": "the environment", "to": "the known-good version (default: the one before)"})
def rollback(c: Context, env: str, to: str = "") -> None:
    """Roll an environment back to its last good version before the current one (or --to)."""
    c.run(f"{CI} rollback --env {quote(env)}" + (f" --to {quote(to)}" if to else ""), pty=False)


@task(help={"env": "the environment", "lock_id": "the exact id of the lock to remove"})
def unlock(c: Context, env: str, lock_id: str) -> None:
    """Remove an environment's deployment lock, given its exact id."""
    c.run(f"{CI} unlock --env {quote(env)} --lock-id {quote(lock_id)}", pty=False)


@task(help={"tag": "the release tag (default: the v* tag on HEAD)", "dry_run": "print only"})
def record(c: Context, tag: str = "", dry_run: bool = False) -> None:
    """Write dist-assets/RELEASE_NOTES.md and create or update the GitHub release for the tag."""
    args = (f" --tag {quote(tag)}" if tag else "") + (" --dry-run" if dry_run else "")
    c.run(f"{CI} release-record{args}", pty=False)
