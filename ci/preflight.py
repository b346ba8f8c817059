"""The checks before a gate run: lock, config, interpreters and tools."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ci import lockfile
from ci.config import Config
from ci.errors import CIError, PreflightError
from ci.runner import Runner


class Status(enum.StrEnum):
    """The outcome of one check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One preflight check: what was checked, how it went, and the error if it failed."""

    name: str
    status: Status
    detail: str
    error: CIError | None = None

    def __bool__(self) -> bool:
        """True unless the check failed."""
        return self.status is not Status.FAIL


REQUIRED_TOOLS = ("uv", "nox")


def gather(config: Config, runner: Runner) -> list[Check]:
    """Run every check of a plain (non-release) preflight and return their records."""
    where = str(config.path) if config.path else "defaults (no pyproject.toml)"
    checks = [Check(name="config", status=Status.OK, detail=f"[tool.ci] valid in {where}")]
    checks.extend(_lock_checks(config, runner))
    checks.extend(_python_checks(config, runner))
    checks.extend(_tool_checks(runner))
    return checks


def _lock_checks(config: Config, runner: Runner) -> list[Check]:
    try:
        info = lockfile.read(config.root)
    except PreflightError as exc:
        return [
            Check(name="uv.lock", status=Status.FAIL, detail=str(exc), error=exc),
            Check(name="uv.lock fresh", status=Status.SKIP, detail="no readable uv.lock"),
        ]
    present = Check(
        name="uv.lock",
        status=Status.OK,
        detail=f"{info.packages} packages, sha256 {info.sha256[:12]}",
    )
    try:
        lockfile.check_fresh(config.root, runner)
    except PreflightError as exc:
        return [
            present,
            Check(name="uv.lock fresh", status=Status.FAIL, detail=str(exc), error=exc),
        ]
    except CIError as exc:
        detail = f"could not run `uv lock --check`: {exc}"
        error = PreflightError(detail)
        return [
            present,
            Check(name="uv.lock fresh", status=Status.FAIL, detail=detail, error=error),
        ]
    fresh = Check(name="uv.lock fresh", status=Status.OK, detail="in sync with pyproject.toml")
    return [present, fresh]


def _python_checks(config: Config, runner: Runner) -> list[Check]:
    checks = []
    for version in config.pythons:
        found = _find_python(version, runner)
        default = version == config.default_python
        name = f"python {version}" + (" (default)" if default else "")
        if found:
            checks.append(Check(name=name, status=Status.OK, detail=found))
        elif default:
            detail = (
                f"Python {version} (the first of [tool.ci] pythons) was not found: install it "
                f"(e.g. `pyenv install {version}`) or put python{version} on PATH"
            )
            checks.append(
                Check(name=name, status=Status.FAIL, detail=detail, error=PreflightError(detail))
            )
        else:
            detail = "not found: `nox -s test` skips it here (and fails in CI)"
            checks.append(Check(name=name, status=Status.WARN, detail=detail))
    return checks


def _find_python(version: str, runner: Runner) -> str | None:
    if runner.which("uv") is None:
        return runner.which(f"python{version}")
    done = runner.run(
        ["uv", "python", "find", "--no-python-downloads", version],
        env={"UV_PYTHON_DOWNLOADS": "never"},
    )
    return done.stdout.strip() or None if done else None


def _tool_checks(runner: Runner) -> list[Check]:
    checks = []
    for tool in REQUIRED_TOOLS:
        path = runner.which(tool)
        if path:
            checks.append(Check(name=tool, status=Status.OK, detail=path))
        else:
            detail = f"{tool} is not on PATH: `pip install {tool}` (or run through `uv run`)"
            checks.append(
                Check(name=tool, status=Status.FAIL, detail=detail, error=PreflightError(detail))
            )
    return checks


def verdict(checks: Sequence[Check]) -> None:
    """Raise the error of the first failed check (exit 3), or return when all passed."""
    for check in checks:
        if check.error is not None:
            raise check.error


def render(checks: Sequence[Check]) -> str:
    """A short aligned table of the checks, one line each."""
    width = max((len(c.name) for c in checks), default=0)
    lines = ["preflight:"]
    for check in checks:
        lines.append(f"  {check.status.value:<4}  {check.name:<{width}}  {check.detail}")
    return "\n".join(lines)
