"""``notes``: release notes from the commit history since the previous release tag."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ci.cli.app import App
from ci.core import files
from ci.core.errors import ExitCode
from ci.release import commits as history
from ci.release import notes, version


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``notes`` command to the parser."""
    p = sub.add_parser(
        "notes",
        help="release notes from Conventional Commits since the previous release tag",
        description=(
            "Lists the commits since the previous release tag (in [tool.ci.release] "
            "tag_format, else the format the project's tags use; or --since) up to --until, "
            "grouped by Conventional Commit type (breaking changes, security, features, fixes, "
            "performance, docs, other), each with its short sha (a link on GitHub), then the "
            "contributors and the proposed next version: breaking -> major, feat -> minor, "
            "anything else -> patch; below 1.0.0 breaking -> minor and the rest -> patch. "
            "Merge commits and release commits (chore(release): ..., Release vX, bump "
            "version) are left out."
        ),
    )
    p.add_argument(
        "--since", metavar="TAG", help="start after this ref (default: the previous release tag)"
    )
    p.add_argument("--until", metavar="REF", default="HEAD", help="end at this ref (default: HEAD)")
    p.add_argument(
        "--format",
        choices=("markdown", "json"),
        default="markdown",
        help="output format (default: markdown)",
    )
    p.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=_notes)


def _notes(args: argparse.Namespace, app: App) -> int:
    fmt = version.tag_format(app.config, app.runner)
    found = history.gather_notes(
        app.runner, app.cwd, app.env, since=args.since, until=args.until, tag_format=fmt
    )
    if args.format == "json":
        text = json.dumps({"schema": 1, **notes.to_json(found)}, indent=2) + "\n"
    else:
        text = notes.render_markdown(found)
    if args.output:
        files.atomic_write_text(args.output, text)
        print(f"wrote {args.output} ({len(found.changes)} changes, next {found.proposal.version})")
    else:
        print(text, end="")
    return ExitCode.OK
