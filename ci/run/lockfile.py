"""uv.lock: presence, parseability, freshness (``uv lock --check``) and its hash."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ci.core.errors import PreflightError
from ci.core.runner import Runner

LOCK_NAME = "uv.lock"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    """What a readable uv.lock holds."""

    path: Path
    sha256: str
    packages: int


def read(root: Path) -> LockInfo:
    """Parse ``root/uv.lock``; PreflightError (exit 3) when it is missing or corrupt."""
    path = root / LOCK_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path} is missing: run `uv lock` and commit uv.lock"
        raise PreflightError(msg) from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path} is corrupt ({exc}): restore it from git or run `uv lock` to regenerate it"
        raise PreflightError(msg) from None
    packages = document.get("package", [])
    if "version" not in document or not isinstance(packages, list):
        msg = f"{path} is not a uv lock file (no version or package list): run `uv lock`"
        raise PreflightError(msg)
    return LockInfo(path=path, sha256=hashlib.sha256(data).hexdigest(), packages=len(packages))


def check_fresh(root: Path, runner: Runner) -> None:
    """Run ``uv lock --check``; PreflightError (exit 3) when uv.lock is stale or unreadable."""
    done = runner.run(["uv", "lock", "--check"], cwd=root, env={"UV_PYTHON_DOWNLOADS": "never"})
    if done:
        return
    detail = _cause(done.stderr or done.stdout)
    msg = (
        f"{root / LOCK_NAME} does not match pyproject.toml ({detail}): the release must "
        "refresh the lock first: run `uv lock`, commit uv.lock (with the version bump), tag that "
        "commit"
    )
    raise PreflightError(msg)


def _cause(text: str) -> str:
    """The ``cause:`` line of uv (what changed, e.g. the own version), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [ln.removeprefix("cause:").strip() for ln in lines if ln.startswith("cause:")]
    if causes:
        return causes[0]
    useful = [ln for ln in lines if not ln.startswith("hint:")]
    return (useful or lines or ["uv lock --check failed"])[-1]
