"""``init``: bring the bundle into another repository, or bring its copy up to date."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ci.cli.app import App
from ci.core import uv as bundle_uv
from ci.core.errors import ExitCode, ToolError
from ci.release import version

if TYPE_CHECKING:
    from ci.adopt.init import Plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` to the parser."""
    p = sub.add_parser(
        "init",
        help="adopt noxgate in another Python project: a locked dependency and thin files",
        description=(
            "Adds noxgate, at this version or newer, and the gates' tools in dependency groups "
            "of its own (noxgate-dev, which TARGET's dev group includes, and one per group "
            "the sessions sync: noxgate-lint, noxgate-test including the project's test group, "
            "noxgate-security, noxgate-package, noxgate-workflows); a package the project "
            "declares is written as it declares it (never a newer pin), and locks it "
            "(`uv lock`). Writes only the thin files: noxfile.py (the "
            "gate sessions from ci.gates.sessions; a project's own noxfile keeps its sessions "
            "and gets a block that adds the others), tasks.py (or tasks/noxgate.py in a tasks/ "
            "package), the workflows, .github/dependabot.yml, [tool.ci], .secrets.baseline, "
            "and .noxgate-init.json (what init wrote, for --upgrade). Then it runs the gates "
            "once (unless --no-run): a gate that fails on the untouched project is made "
            'advisory (mode = "advisory" with the reason) and the full-history secret scan\'s '
            "findings go into .secrets.baseline, so `invoke ci` is green on day one; it prints "
            "what to fix to make each gate required. Running it again changes nothing. "
            "--vendor copies the ci/ package instead. Exit 2 for a folder that is not a Python "
            "project or has its own importable `ci`, 6 when uv lock or the gate run fails, or a "
            "gate could not run (it stays required; the files are written)."
        ),
    )
    p.add_argument("target", type=Path, metavar="TARGET", help="the root of the project")
    p.add_argument(
        "--upgrade",
        action="store_true",
        help=(
            "bring the thin files up to this noxgate: a three-way merge against what init "
            "last wrote keeps local edits (a clash is left as conflict markers); after "
            "`uv lock --upgrade-package noxgate`. With --vendor: replace the copied ci/"
        ),
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and the diffs; write nothing"
    )
    p.add_argument(
        "--source",
        metavar="WHERE",
        help=(
            "where uv installs noxgate from: the package index (default), an index URL, "
            "git+URL@TAG or a folder (a [tool.uv.sources] entry; recorded for later runs)"
        ),
    )
    p.add_argument(
        "--no-run", action="store_true", help="write and lock only; do not run the gates once"
    )
    p.add_argument(
        "--vendor",
        action="store_true",
        help="copy the ci/ package, noxfile, tasks and workflows instead (no dependency)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="with --vendor: replace TARGET's own noxfile.py / tasks.py",
    )
    p.set_defaults(handler=_init)


def _init(args: argparse.Namespace, app: App) -> int:
    try:
        from ci.adopt import init as scaffold  # noqa: PLC0415 - needs tomlkit, which gate sessions lack
        from ci.adopt import pyproject_edit  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        msg = (
            f"init needs {exc.name}: `uv sync --group scaffold` in a checkout, or "
            f"`uvx --with {exc.name} noxgate init ...` from the registry"
        )
        raise ToolError(msg) from None
    root = (app.cwd / args.target).resolve()
    bundle = scaffold.load_bundle()
    target = scaffold.gather(root, bundle)
    target = replace(
        target,
        tag_format=version.tag_format_at(root, app.runner),
        lint_families=scaffold.lint_families_of(root, app.runner),
    )
    source = None
    if args.source is not None:
        source = pyproject_edit.parse_source(args.source, target=root)
    options = scaffold.Options(
        upgrade=args.upgrade, force=args.force, vendor=args.vendor, source=source
    )
    plan = scaffold.plan(target, bundle, options, app.runner)
    print(scaffold.render(plan, dry_run=args.dry_run, upgrade=args.upgrade), flush=True)
    if args.dry_run:
        return ExitCode.OK
    uv = bundle_uv.find(app.env)  # the bundle's uv, not one a project's venv puts first
    applied = scaffold.apply(plan, root, app.runner, uv=uv)
    for note in applied.notes:
        print(f"note: {note}")
    secrets = applied.secrets
    if secrets:
        print(
            f"note: the first secrets scan found {secrets} possible secret(s); "
            f"{scaffold.BASELINE} records them as known: audit them "
            f"(`detect-secrets audit {scaffold.BASELINE}`) and remove real ones"
        )
    for rel in plan.conflicts:
        print(f"conflict: {rel} has conflict markers (your edit and noxgate's clash): resolve them")
    if not plan.changes:
        return ExitCode.OK
    print(f"done: {len(plan.changes)} file(s) changed in {root}")
    code = ExitCode.OK
    if not args.vendor and not args.no_run and plan.adopted is None:
        code = _day_one(root, app, plan.project.pythons[0], uv=uv)
    print("next: review with `git diff`, commit, then run `uv run invoke ci`")
    if not args.vendor and plan.adopted is None:
        badges = [
            f"[![{name}](../../actions/workflows/{name}.yml/badge.svg)]"
            f"(../../actions/workflows/{name}.yml)"
            for name in _workflow_names(plan)
        ]
        if badges:
            print(f"badges for your README: {' '.join(badges)}")
    return code


def _workflow_names(plan: Plan) -> list[str]:
    """The workflows ``init`` created, by file stem (what a badge links to)."""
    return [
        c.path.rsplit("/", 1)[-1].removesuffix(".yml")
        for c in plan.changes
        if c.path.startswith(".github/workflows/") and c.old is None
    ]


def _day_one(root: Path, app: App, python: str, *, uv: str) -> ExitCode:
    """Run the gates once; make the ones that fail on the untouched project advisory.

    A gate that could not run stays required: exit 6 (the files are written) with what to fix.
    """
    from ci.adopt import advisory  # noqa: PLC0415 - with init's imports

    print("==> the gates, once, on the untouched project (--no-run skips this)", flush=True)
    found = advisory.day_one(root, app.runner, uv=uv)
    if found.history_secrets:
        print(
            f"note: the full-history secret scan found {found.history_secrets} possible "
            f"secret(s) in old commits; {advisory.BASELINE} records them as known: audit them"
        )
    if found.advisories:
        names = ", ".join(
            f"{a.gate} ({', '.join(a.families)} only)" if a.families else a.gate
            for a in found.advisories
        )
        print(f"advisory (reported, never blocking) in [tool.ci.gates]: {names}")
        for item in found.advisories:
            print(f"  {item.how_to_fix(python)}")
    if found.not_run:
        names = ", ".join(n.gate for n in found.not_run)
        print(f"could not run (still required, the main job fails until fixed): {names}")
        for gone in found.not_run:
            print(f"  {gone.how_to_fix()}")
        return ExitCode.TOOL_CRASHED
    if not found.advisories:
        print("every gate passed: all of them are required")
    return ExitCode.OK
