"""``dashboard``: the run history, the ledger and the waivers as one HTML page."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from ci.cli.app import App
from ci.core.errors import ExitCode, UsageError
from ci.core.files import atomic_write_text
from ci.core.redact import redact
from ci.deploy.backend import open_backend
from ci.deploy.ledger import LedgerCorruptError
from ci.github.summary import append_step_summary
from ci.run import dashboard, history

DEFAULT_NAME = "dashboard.html"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dashboard`` command to the parser."""
    p = sub.add_parser(
        "dashboard",
        help="write the run history, deploys and waivers as one HTML page (reports/dashboard.html)",
        description=(
            "Reads the run history the state backend keeps (each gate run and each "
            "`invoke ci` or release run adds a record), the deploy ledger and the waivers, and "
            "writes one self-contained HTML page: gate pass rate and duration over time against "
            "each budget, p50/p95 per gate, coverage against the floor, the top 10 slow tests, "
            "flaky tests against the 5 % target, cache hit rate, deploys, rollbacks, lock "
            "contention, takeovers, approvals, and waivers with days to expiry. Charts are "
            "SVG drawn here; the page loads nothing from anywhere and needs no script. With "
            "--summary the compact trends also go to the GitHub step summary."
        ),
    )
    p.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help=f"where to write the page (default: the reports folder's {DEFAULT_NAME})",
    )
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help=(
            "first merge the history logs found under DIR (e.g. other CI jobs' downloaded "
            "artifacts) into the state backend's history; repeatable"
        ),
    )
    p.add_argument(
        "--summary",
        action="store_true",
        help="also append the compact trends to $GITHUB_STEP_SUMMARY (a GitHub job's summary)",
    )
    p.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace, app: App) -> int:
    config = app.config
    summary = app.env.get("GITHUB_STEP_SUMMARY", "")
    if args.summary and not summary:
        msg = "--summary needs GITHUB_STEP_SUMMARY (set in GitHub Actions jobs); drop --summary"
        raise UsageError(msg)
    output = args.output if args.output else config.reports_path() / DEFAULT_NAME
    output = output if output.is_absolute() else app.cwd / output
    if output.is_dir():
        msg = f"--output {output} is a folder; name the file, e.g. {output / DEFAULT_NAME}"
        raise UsageError(msg)
    backend = open_backend(config, app.env, app.runner)
    if args.merge:
        folders = [m if m.is_absolute() else app.cwd / m for m in args.merge]
        added = history.merge(backend, folders, keep=config.history.keep)
        print(f"history: {added} record(s) merged from {', '.join(map(str, args.merge))}")
    records = history.read(backend)
    problem = ""
    try:
        entries = backend.entries()
    except LedgerCorruptError as exc:
        entries, problem = [], str(exc)
    now = app.clock.now()
    page = dashboard.page_from(
        config,
        records,
        entries,
        today=app.clock.today(),
        generated=now.isoformat(timespec="seconds"),
        ledger_problem=problem,
    )
    atomic_write_text(output, redact(dashboard.render(page)))
    what = (
        "no run history yet"
        if records.empty
        else f"{len(records.runs)} pipeline run(s), {len(records.gates)} gate run(s)"
    )
    print(f"dashboard: {output} ({what})")
    if problem:
        print(f"warning: {problem}")
    if args.summary and not append_step_summary(Path(summary), dashboard.trends_markdown(records)):
        print("warning: the step summary is full (1 MiB); the trends were left out")
    if args.open:
        webbrowser.open(output.resolve().as_uri())
    return ExitCode.OK
