"""``release-record``: RELEASE_NOTES.md, the step summary and the GitHub release for a tag."""

from __future__ import annotations

import argparse
from pathlib import Path

from ci.cli.app import App
from ci.core.errors import ExitCode
from ci.deploy.backend import open_backend
from ci.release import record, version


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``release-record`` command to the parser."""
    p = sub.add_parser(
        "release-record",
        help="write dist-assets/RELEASE_NOTES.md and create or update the GitHub release for a tag",
        description=(
            "For the release tag on HEAD (or --tag): builds the release notes since the "
            "previous release tag ([tool.ci.release] tag_format, else the format the tags "
            "use), adds the artifact table (name, size, sha256, where published; from "
            "dist-assets/manifest.json and dist-assets/SHA256SUMS) and the deploy ledger's head "
            "hash as the audit anchor, writes it to dist-assets/RELEASE_NOTES.md and appends it to "
            "$GITHUB_STEP_SUMMARY. With GITHUB_TOKEN (or GH_TOKEN) and GITHUB_REPOSITORY set it "
            "creates the GitHub release (or updates it: re-running changes nothing) through "
            "GITHUB_API_URL "
            "and uploads the dist files as assets. `invoke release` runs it after publish. "
            "Exit 6 when the GitHub API cannot be reached or keeps failing, 3 when it refuses "
            "the token, 2 for an unknown tag or repository."
        ),
    )
    p.add_argument(
        "--tag", metavar="TAG", help="the release tag (default: the release tag on HEAD)"
    )
    p.add_argument(
        "--dist",
        type=Path,
        metavar="DIR",
        help="the built distributions; their assets are read from DIR-assets (default: dist/)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the release body and the plan; write nothing, call no API",
    )
    p.set_defaults(handler=_release_record)


def _release_record(args: argparse.Namespace, app: App) -> int:
    root = app.config.root
    dist = args.dist or root / "dist"
    fmt = version.tag_format(app.config, app.runner)
    tag = args.tag or record.head_tag(app.runner, root, fmt)
    backend = open_backend(app.config, app.env, app.runner)
    rec = record.build(
        app.runner, root, app.env, tag=tag, dist=dist, ledger_head=backend.head, tag_format=fmt
    )
    if rec.warning:
        print(f"warning: {rec.warning}")
    if args.dry_run:
        print(rec.body, end="")
        print()
        print("plan (dry run, nothing is written or sent):")
        print(f"  1. write {dist / record.NOTES_FILE}")
        print("  2. append the notes to $GITHUB_STEP_SUMMARY" + _unset(app, "GITHUB_STEP_SUMMARY"))
        target = record.github_target(app.env)
        if isinstance(target, str):
            print(f"  3. {target}")
        else:
            names = ", ".join(a.name for a in rec.artifacts) or "no assets"
            print(f"  3. create or update the GitHub release {tag} on {target[0]}: {names}")
        return ExitCode.OK
    path = record.write_notes(rec, dist)
    print(f"wrote {path}")
    summary = record.append_summary(rec.body, app.env)
    if summary:
        print("appended the release notes to the step summary")
    elif app.env.get("GITHUB_STEP_SUMMARY"):
        print("warning: the step summary is full: the notes are only in dist-assets/")
    outcome = record.publish(rec, app.env, app.http, app.retry())
    print(outcome if isinstance(outcome, str) else outcome.summary())
    return ExitCode.OK


def _unset(app: App, name: str) -> str:
    return "" if app.env.get(name) else f" (skipped: {name} is not set)"
