"""The error hierarchy and the stable exit codes; only ``ci.cli.main`` turns these into exits."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of every ``python -m ci`` command (see README)."""

    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    PREFLIGHT = 3
    LOCKED = 4
    DEPLOY_FAILED = 5
    TOOL_CRASHED = 6
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141  # stdout's reader went away (``| head``): 128 + SIGPIPE, as shells report
    TERMINATED = 143


class CIError(Exception):
    """Base of every error the bundle raises on purpose; carries its exit code."""

    exit_code: ExitCode = ExitCode.GATE_FAILED


class GateFailedError(CIError):
    """A gate found problems (lint errors, failing tests, secrets, vulnerabilities)."""

    exit_code = ExitCode.GATE_FAILED


class UsageError(CIError):
    """A bad flag or argument."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A malformed ``[tool.ci]`` table, an unknown key, a bad waiver."""


class PreflightError(CIError):
    """A check before a gate run, a release or a deploy failed."""

    exit_code = ExitCode.PREFLIGHT


class LockHeldError(CIError):
    """The deployment lock is held by someone else."""

    exit_code = ExitCode.LOCKED


class DeployError(CIError):
    """Publish or deploy failed; the message says what was rolled back."""

    exit_code = ExitCode.DEPLOY_FAILED


class ToolError(CIError):
    """A tool a gate runs crashed, is missing or could not be reached."""

    exit_code = ExitCode.TOOL_CRASHED


class TerminatedError(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt (not caught as a CIError), exit 143."""
