"""``python -m ci``: argument parsing, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from ci import __version__
from ci.cli import adopt as scaffold
from ci.cli import artifacts, cache, core, dashboard, notes, plan, record, security, status
from ci.cli import deploy as deploy_commands
from ci.cli.app import App
from ci.core import redact
from ci.core.config import DEFAULT_MASK_ENV
from ci.core.errors import CIError, ConfigError, ExitCode, TerminatedError
from ci.core.files import path_problem
from ci.core.signals import terminate_raises
from ci.testing import faults

COMMAND_MODULES = (
    core,
    security,
    status,
    artifacts,
    deploy_commands,
    cache,
    plan,
    scaffold,
    notes,
    record,
    dashboard,
)

EXIT_CODES = """exit codes:
  0  ok
  1  a gate found problems
  2  usage or configuration error
  3  preflight failed
  4  deployment lock held by someone else
  5  publish or deploy failed (what was done was rolled back)
  6  a tool the gate runs crashed or could not be reached
  130 interrupted (SIGINT, Ctrl-C)
  141 the output was closed early (piped into head): stops quietly
  143 terminated (SIGTERM)"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m ci",
        description="noxgate: the repository's CI/CD pipeline as code.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"noxgate {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="pyproject.toml to read [tool.ci] from (default: the nearest one)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, app: App | None = None) -> int:
    """Run one command and return its exit code; never raises for expected failures."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code or 0)
    app = app or App()
    app.config_file = args.config
    try:
        _install_redaction(app)
        # SIGTERM unwinds like Ctrl-C: child processes end, ledgers and locks are left tidy.
        with terminate_raises():
            faults.active(app.env)  # a mistyped CI_INJECT_FAULT fails every command
            code = int(args.handler(args, app))
            sys.stdout.flush()  # a reader that went away shows up here, not at interpreter exit
    except BrokenPipeError:
        return _output_closed()
    except CIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except TerminatedError:
        print("terminated", file=sys.stderr)
        return int(ExitCode.TERMINATED)
    except OSError as exc:
        problem = path_problem(exc)
        if problem is None:
            return _crashed(exc, app)
        print(f"error: {problem}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except Exception as exc:  # the last resort: one line, never a traceback
        return _crashed(exc, app)
    finally:
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
            redact.drain()  # text held back in case a secret went on in it
    return code


def _crashed(exc: Exception, app: App) -> int:
    if app.env.get("CI_DEBUG"):
        traceback.print_exception(exc)
    print(
        f"error: noxgate crashed ({type(exc).__name__}: {exc}); "
        "rerun with CI_DEBUG=1 for the traceback",
        file=sys.stderr,
    )
    return int(ExitCode.TOOL_CRASHED)


def _output_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as on SIGPIPE.

    Python's signal docs: point stdout at devnull so the flush at exit cannot fail again.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return int(ExitCode.OUTPUT_CLOSED)  # not a real file (a test's capture)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return int(ExitCode.OUTPUT_CLOSED)


def _install_redaction(app: App) -> None:
    """Mask secret env values in everything printed or written from here on."""
    patterns: Sequence[str] = DEFAULT_MASK_ENV
    names: list[str] = []
    try:
        patterns = app.config.mask_env
        names = [*app.config.required_secrets]
        names += [s for env in app.config.environments.values() for s in env.required_secrets]
        signing = app.config.signing
        if signing is not None and signing.key_env is not None:
            names.append(signing.key_env)  # the release's signing key, whatever its name
    except ConfigError:
        pass  # the command reports the bad config itself; mask with the defaults meanwhile
    redactor = redact.Redactor.from_env(app.env, patterns, names)
    if app.env.get("GITHUB_ACTIONS") == "true":
        secrets = [app.env[n] for n in redact.secret_names(patterns, app.env) if app.env[n]]
        secrets += [app.env[n] for n in names if app.env.get(n)]
        out = sys.stdout
        raw = out.inner if isinstance(out, redact.RedactingStream) else out
        for line in redactor.github_masks(secrets):
            raw.write(line + "\n")  # the runner must see the value to mask it later
    redact.install(redactor)


def run() -> None:
    """Console entry point: exit with ``main``'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
