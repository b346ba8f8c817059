"""The maintainer tasks invoke loads: each chains ``python -m ci`` commands.

A project's ``tasks.py`` (or a submodule of its ``tasks/`` package) imports them:
``from ci.run.tasks import *``; ``uv run --locked invoke --list`` shows them (``--locked``:
a plain ``uv run`` re-locks a stale uv.lock before any task starts, even a dry run).
"""

from __future__ import annotations

import sys
from shlex import join

from invoke.context import Context
from invoke.tasks import task

__all__ = [
    "ci",
    "dashboard",
    "deploy",
    "nightly",
    "preflight",
    "record",
    "release",
    "rollback",
    "unlock",
]


def run_ci(c: Context, *args: str) -> None:
    """Run ``python -m ci ARGS`` with this interpreter, every word quoted for the shell.

    The interpreter's path is the project's: it may hold spaces, quotes or ``$(...)``.
    """
    c.run(join([sys.executable, "-m", "ci", *args]), pty=False)


@task
def preflight(c: Context) -> None:
    """Check uv.lock, [tool.ci], interpreters and tools."""
    run_ci(c, "preflight")


@task(
    help={
        "dry_run": "print the plan and run nothing",
        "jobs": "run up to N sessions at once (default: the number of CPUs)",
        "no_cache": "run every gate even when its inputs are unchanged",
    }
)
def ci(c: Context, dry_run: bool = False, jobs: int = 0, no_cache: bool = False) -> None:
    """The main job: preflight, every default nox session (cached or in parallel), a summary."""
    flags = ["--dry-run"] * dry_run + (["--jobs", str(jobs)] if jobs else [])
    run_ci(c, "pipeline", *flags, *["--no-cache"] * no_cache)


@task
def nightly(c: Context) -> None:
    """The nightly security job: secret scan of the whole history, then the dependency audit."""
    run_ci(c, "secrets", "--history")
    run_ci(c, "audit")


@task(
    help={
        "dry_run": "print the plan (what runs, in which order, published where) and run nothing",
        "until": "stop before this step (e.g. publish)",
        "from_": "start at this step (e.g. publish, after another job uploaded dist/)",
    }
)
def release(c: Context, dry_run: bool = False, until: str = "", from_: str = "") -> None:
    """Release: preflight --release, gates, package, sign, publish, deploy to the first env."""
    flags = ["--dry-run"] * dry_run + (["--until", until] if until else [])
    run_ci(c, "release", *flags, *(["--from", from_] if from_ else []))


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
    flags = ["--approve"] * approve + (["--reason", reason] if reason else [])
    flags += ["--wait", str(wait), *["--dry-run"] * dry_run]
    run_ci(c, "deploy", "--env", env, "--version", version, *flags)


@task(help={"env": "the environment", "to": "the known-good version (default: the one before)"})
def rollback(c: Context, env: str, to: str = "") -> None:
    """Roll an environment back to its last good version before the current one (or --to)."""
    run_ci(c, "rollback", "--env", env, *(["--to", to] if to else []))


@task(help={"env": "the environment", "lock_id": "the exact id of the lock to remove"})
def unlock(c: Context, env: str, lock_id: str) -> None:
    """Remove an environment's deployment lock, given its exact id."""
    run_ci(c, "unlock", "--env", env, "--lock-id", lock_id)


@task(help={"tag": "the release tag (default: the v* tag on HEAD)", "dry_run": "print only"})
def record(c: Context, tag: str = "", dry_run: bool = False) -> None:
    """Write dist-assets/RELEASE_NOTES.md and create or update the GitHub release for the tag."""
    run_ci(c, "release-record", *(["--tag", tag] if tag else []), *["--dry-run"] * dry_run)


@task(
    help={
        "output": "where to write the page (default: reports/dashboard.html)",
        "open_": "open the page in a web browser",
        "summary": "also append the compact trends to the GitHub step summary",
        "merge": "first merge the history logs under this folder (other CI jobs' artifacts)",
    }
)
def dashboard(
    c: Context, output: str = "", open_: bool = False, summary: bool = False, merge: str = ""
) -> None:
    """Write the run history, deploys and waivers as one HTML page (reports/dashboard.html)."""
    flags = (["--output", output] if output else []) + ["--open"] * open_
    flags += ["--merge", merge] if merge else []
    run_ci(c, "dashboard", *flags, *["--summary"] * summary)
