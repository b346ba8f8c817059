"""``preflight``, ``gates``, ``gate``, ``pipeline``: checks, the gates, one gate, the main job."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from ci.cli.app import App
from ci.core.config import Config
from ci.core.errors import CIError, ExitCode
from ci.deploy.backend import open_backend
from ci.gates import cache, registry
from ci.gates.cache import GateCache
from ci.github.summary import append_step_summary
from ci.run import dashboard, history, pipeline, preflight, release, report


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the core commands to the parser."""
    p = sub.add_parser(
        "preflight",
        help="check uv.lock, [tool.ci], interpreters and tools before a gate run",
        description=(
            "Checks that uv.lock exists, parses and matches pyproject.toml (uv lock --check), "
            "that [tool.ci] is valid, and that the default Python and uv/nox are available. "
            "Does not require a clean tree. Exit 3 when a check fails, 2 for a bad config. "
            "With --release (the first step of `invoke release`) it also needs a clean tree, "
            "HEAD tagged vX.Y.Z equal to the project version, and every required secret "
            "(required_secrets and those of the first environment) set."
        ),
    )
    p.add_argument(
        "--release",
        action="store_true",
        help="also check what a release needs: clean tree, version tag, required secrets",
    )
    p.set_defaults(handler=_preflight)

    p = sub.add_parser(
        "gates",
        help="list the project's gates: built-in and declared, their sessions, groups, contexts",
        description=(
            "Lists every gate of the project, from the gate registry: the built-in ones and "
            "those declared in [tool.ci.gates.NAME] with a command. For each: its nox session, "
            "the dependency group the session syncs, its mode, whether its result is cached, "
            "its commit status context and what it checks. --markdown prints the table the "
            "README carries."
        ),
    )
    p.add_argument("--markdown", action="store_true", help="a Markdown table (the README's)")
    p.set_defaults(handler=_gates)

    p = sub.add_parser(
        "gate",
        help="run one gate (what the nox sessions call) and write reports/<gate>.json",
        description=(
            "Runs one gate in the current environment: lint (ruff check, ruff format --check, "
            "mypy if enabled), test (headless pytest with junit and coverage under reports/) "
            "or package (`package --verify-reproducible` into dist/, assets in dist-assets/; "
            "takes --outdir DIR). "
            "--no-cache may come before or after the name (it is never handed to the tool); "
            "other arguments after the name go to the tool (pytest). Writes reports/<gate>.json "
            "and reports/run.json and appends the duration to $CI_STATE_DIR/durations.jsonl. "
            "On GitHub (GITHUB_ACTIONS=true) it also prints ::error annotations, appends to "
            "$GITHUB_STEP_SUMMARY and, with GITHUB_TOKEN (or GH_TOKEN), posts the commit "
            "status ci/<gate> (pending, then success/failure/error). Exit 1 when the gate "
            "found problems, 6 when its tool crashed; a status that cannot be posted never "
            "changes the exit code. When a pass with the same inputs (files, uv.lock, Python, "
            "tool versions, config, env) is cached under CI_STATE_DIR/cache, it is replayed "
            "(status `cached`) instead."
        ),
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help=(
            "run the gate even when a pass with the same inputs is cached (also CI_NO_CACHE=1); "
            "before or after NAME"
        ),
    )
    p.add_argument(
        "name",
        help=(
            f"the gate to run: {', '.join(g.name for g in registry.BUILTIN)} or one "
            "declared in [tool.ci.gates.NAME] with a command"
        ),
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="extra arguments for the tool (pytest)")
    p.set_defaults(handler=_gate)

    p = sub.add_parser(
        "pipeline",
        help="the main job: preflight, then every default nox session, then a summary table",
        description=(
            "Runs the preflight, then each session (lint, test on the default Python, ...) "
            "with nox, and prints a summary table read from reports/*.json. A session whose "
            "gates all have a cached pass for unchanged inputs is replayed without starting "
            "nox; the others run --jobs at a time, each one's output printed when it "
            "finishes. `invoke ci` calls this."
        ),
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run every gate even when its inputs are unchanged (also CI_NO_CACHE=1)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=os.cpu_count() or 1,
        metavar="N",
        help="run up to N sessions at once (default: the number of CPUs, here %(default)s)",
    )
    p.add_argument(
        "--session",
        action="append",
        dest="sessions",
        metavar="NAME",
        help="run only this session (repeatable); default: the main job's sessions",
    )
    p.set_defaults(handler=_pipeline)


def _preflight(args: argparse.Namespace, app: App) -> int:
    if args.release:
        first = release.first_environment(app.config)
        checks = preflight.gather_release(
            app.config, app.runner, app.env, first.name if first else None
        )
    else:
        checks = preflight.gather(app.config, app.runner)
    print(preflight.render(checks))
    preflight.verdict(checks)
    return ExitCode.OK


def gate_args(args: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether ``--no-cache`` came after the gate's name, and the arguments for its tool.

    ``--no-cache`` is the bundle's flag wherever it stands (no gate's tool takes one);
    ``--`` only separates.
    """
    return "--no-cache" in args, [a for a in args if a not in {"--", "--no-cache"}]


def _gates(args: argparse.Namespace, app: App) -> int:
    rows = gate_rows(app.config)
    if args.markdown:
        print(markdown_table(rows))
        return ExitCode.OK
    widths = [max(len(row[i]) for row in rows) for i in range(len(GATE_COLUMNS) - 1)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*padded, row[-1]]))
    return ExitCode.OK


GATE_COLUMNS = ("gate", "session", "group", "mode", "cached", "status", "what it checks")


def gate_rows(config: Config) -> list[tuple[str, ...]]:
    """One row per gate (header first): the registry as ``python -m ci gates`` shows it."""
    rows: list[tuple[str, ...]] = [GATE_COLUMNS]
    for gate in registry.gates(config):
        rows.append(
            (
                gate.name,
                gate.session + ("-<python>" if gate.parametrized else ""),
                gate.group or "-",
                config.gate(gate.name).mode.value,
                "yes" if gate.inputs is not None else "no",
                gate.context(config),
                gate.doc,
            )
        )
    return rows


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` (header first) as a Markdown table, names in code spans."""
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in body:
        cells = [f"`{c}`" if i in {0, 1, 2, 5} and c != "-" else c for i, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _gate(args: argparse.Namespace, app: App) -> int:
    late_no_cache, extra = gate_args(args.args)
    args.no_cache = args.no_cache or late_no_cache
    registry.get(app.config, args.name)  # an unknown gate is a usage error before anything runs
    ctx = app.gate_context()
    report.announce(args.name, ctx)
    try:
        with report.group(f"gate {args.name}", app.env):
            result = pipeline.run_gate(args.name, ctx, extra, no_cache=args.no_cache)
    except BaseException as exc:
        # the pending status must not outlive a gate that never produced a result
        report.announce(
            args.name,
            ctx,
            state="error",
            description=f"did not finish: {str(exc) or type(exc).__name__}",
        )
        raise
    print(f"{result.id}: {result.status.value} ({result.mode.value}) {result.summary}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return pipeline.gate_exit_code(result)


def _pipeline(args: argparse.Namespace, app: App) -> int:
    sessions = args.sessions or pipeline.default_sessions(app.config)
    use_cache = cache.enabled(app.env, args.no_cache)
    if args.dry_run:
        print("plan (dry run, nothing is run):")
        print("  1. python -m ci preflight" + (" (reused if unchanged)" if use_cache else ""))
        for index, session in enumerate(sessions, start=2):
            reuse = " (replayed if its gates' inputs are unchanged)" if use_cache else ""
            print(f"  {index}. nox -s {session}{reuse}")
        print(f"sessions run {args.jobs} at a time" if args.jobs > 1 else "sessions run in order")
        return ExitCode.OK
    store = GateCache(app.config, app.runner, app.clock, app.env)
    if use_cache:
        checks, reused = preflight.gather_cached(store)
    else:
        checks, reused = preflight.gather(app.config, app.runner), False
    print(preflight.render(checks))
    if reused:
        print("  (reused: uv.lock, pyproject.toml, PATH and the tools are unchanged)")
    preflight.verdict(checks)
    started = time.monotonic()
    outcomes = pipeline.run_sessions(
        app.config, app.runner, sessions, jobs=args.jobs, store=store, use_cache=use_cache
    )
    print()
    print(pipeline.render_summary(outcomes))
    for line in pipeline.advisory_notes(outcomes):
        print(line)
    code = pipeline.pipeline_exit_code(outcomes)
    history.record_run(
        app.gate_context(),
        [row for outcome in outcomes for row in outcome.rows()],
        passed=code is ExitCode.OK,
        duration_s=time.monotonic() - started,
    )
    summary_trends(app)
    return code


def summary_trends(app: App) -> None:
    """On GitHub, the main job's step summary ends with the run history's trends."""
    summary = app.env.get("GITHUB_STEP_SUMMARY", "")
    if not summary:
        return
    try:
        records = history.read(open_backend(app.config, app.env, app.runner))
        append_step_summary(Path(summary), dashboard.trends_markdown(records))
    except (CIError, OSError) as exc:
        print(f"warning: the run history's trends are not in the step summary ({exc})")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"--jobs must be a whole number of at least 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
