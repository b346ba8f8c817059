"""``plan``: the dry run of the GitHub workflows for an event and a ref."""

from __future__ import annotations

import argparse
import json

from ci.cli.app import App
from ci.core.errors import ExitCode
from ci.github import plan, workflow_files
from ci.release import version


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` command to the parser."""
    p = sub.add_parser(
        "plan",
        help="show which workflow jobs an event would start, in which order, on which Pythons",
        description=(
            "Reads .github/workflows/*.yml and prints, for one event and ref, which workflows "
            "start (branch and tag filters with GitHub's pattern rules), their jobs in `needs:` "
            "order (stage 1 first), the Python versions of each job (matrix or setup step), and "
            "jobs an `if:` skips. Runs nothing. Exit 2 for a bad event or a broken workflow."
        ),
        epilog=(
            "examples:\n"
            "  python -m ci plan                               # a push to main\n"
            "  python -m ci plan --event pull_request          # a pull request into main\n"
            "  python -m ci plan --event tag                   # pushing v<project version>\n"
            "  python -m ci plan --event push --ref release/1.2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--event",
        choices=plan.EVENTS,
        default="push",
        help="what happens (default: push); `tag` is a push of a tag",
    )
    p.add_argument(
        "--ref",
        metavar="REF",
        help=(
            "the branch pushed (or, for pull_request, the base branch) or the tag pushed; "
            "a short name or a full refs/... name (default: main, or the release tag of the "
            "static version for tag)"
        ),
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--matrix",
        action="store_true",
        help=(
            "print the ci workflow's gate jobs as step outputs for $GITHUB_OUTPUT: gates (the "
            "matrix: one job per gate session, Python and test shard of [tool.ci]), combine "
            "and combine-dir (the sharded session the package job combines; empty: none)"
        ),
    )
    p.set_defaults(handler=_plan)


def _plan(args: argparse.Namespace, app: App) -> int:
    from ci.gates import matrix  # noqa: PLC0415 - the registry, only when this command runs

    config = app.config
    jobs = matrix.jobs(config)
    if args.matrix:
        print(jobs.render(), end="")
        return ExitCode.OK
    tag = ""
    if args.event == "tag" and not args.ref and config.project_version:
        tag = version.tag_format(config, app.runner).tag(config.project_version)
    event = plan.event_for(args.event, args.ref or tag or None, version=config.project_version)
    # the gate jobs' matrix a plan job would write: what `--matrix` prints
    matrices = {"gates": json.loads(jobs.outputs()["gates"])}
    result = plan.plan(workflow_files.load_all(config.root), event, matrices)
    if args.json:
        print(json.dumps({"schema": 1, **result.to_dict()}, indent=2))
    else:
        print(plan.render(result))
    return ExitCode.OK
