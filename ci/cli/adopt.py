"""``init``: bring the bundle into another repository, or bring its copy up to date."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ci.cli.app import App
from ci.core.errors import ExitCode, ToolError
from ci.release import version


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` to the parser."""
    p = sub.add_parser(
        "init",
        help="copy the bundle (noxfile, tasks, workflows, ci/) into another Python project",
        description=(
            "Copies noxfile.py, tasks.py, .github/workflows/*.yml and the ci/ package (with "
            "ci/VERSION) into TARGET, adds [tool.ci] (packages, tests, pythons detected from the "
            "project) and the dependency groups the sessions sync (lint, test with the "
            "project's own test deps, security, package, workflows, dev) to its pyproject.toml "
            "keeping its formatting and comments, keeps the bundle out of its ruff config, "
            "writes a first .secrets.baseline and runs `uv lock`. Running it again changes "
            "nothing. Exit 2 for a folder that is not a Python project, for a project that has "
            "its own noxfile.py or tasks.py (unless --force) or its own top-level ci package."
        ),
    )
    p.add_argument("target", type=Path, metavar="TARGET", help="the root of the project")
    p.add_argument(
        "--upgrade",
        action="store_true",
        help=(
            "show the diff between TARGET's copy and this bundle and apply it (also deletes "
            "files the bundle no longer has); TARGET's [tool.ci] values are left alone"
        ),
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and the diffs; write nothing"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace TARGET's own noxfile.py / tasks.py (never a project's own ci package)",
    )
    p.set_defaults(handler=_init)


def _init(args: argparse.Namespace, app: App) -> int:
    try:
        from ci.adopt import init as scaffold  # noqa: PLC0415 - needs tomlkit, which gate sessions lack
    except ModuleNotFoundError as exc:
        msg = (
            f"init needs {exc.name}: `uv sync --group scaffold` in a checkout, or "
            f"`uvx --with {exc.name} noxgate init ...` from the registry"
        )
        raise ToolError(msg) from None
    root = (app.cwd / args.target).resolve()
    bundle = scaffold.load_bundle()
    target = scaffold.gather(root, bundle)
    target = replace(target, tag_format=version.tag_format_at(root, app.runner))
    options = scaffold.Options(upgrade=args.upgrade, force=args.force)
    plan = scaffold.plan(target, bundle, options)
    print(scaffold.render(plan, dry_run=args.dry_run, upgrade=args.upgrade), flush=True)
    if args.dry_run:
        return ExitCode.OK
    secrets = scaffold.apply(plan, root, app.runner)
    if secrets:
        print(
            f"note: the first secrets scan found {secrets} possible secret(s); "
            f"{scaffold.BASELINE} records them as known: audit them "
            f"(`detect-secrets audit {scaffold.BASELINE}`) and remove real ones"
        )
    if plan.changes:
        print(f"done: {len(plan.changes)} file(s) changed in {root}")
        print("next: review with `git diff`, commit, then run `nox -s lint test`")
    return ExitCode.OK
