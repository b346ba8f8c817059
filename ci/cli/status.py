"""``status publish``, ``status require``, ``notify`` and ``protect``: where users look."""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ci.cli import values
from ci.cli.app import App
from ci.core.config import Config, Mode, state_dir
from ci.core.errors import ExitCode, UsageError
from ci.core.http import ApiError, host_of, send
from ci.gates import registry
from ci.github.status import (
    GitHub,
    GitHubEnv,
    Observed,
    notify_payload,
    observed,
    protection_payload,
    update_for,
    wait_for,
)
from ci.run import report

_FORMATTER = argparse.RawDescriptionHelpFormatter
_GITHUB_ENV = """environment:
  GITHUB_TOKEN       token for the REST API (else GH_TOKEN; only ever sent in the
                     Authorization header)
  GITHUB_REPOSITORY  owner/name of the repository
  GITHUB_SHA         the commit (default for --sha)
  GITHUB_API_URL     REST API root (default https://api.github.com)
  GITHUB_SERVER_URL  web root for run links (default https://github.com)
  GITHUB_RUN_ID      the workflow run the links point to"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``status``, ``notify`` and ``protect`` to the parser."""
    status = sub.add_parser(
        "status",
        help="publish gate results as commit statuses, or require contexts to be green",
        description=_wrap(
            "Commit statuses on GitHub. Every `python -m ci gate NAME` already publishes its "
            "own result when GITHUB_ACTIONS=true; `status publish` does the same for a whole "
            "run report, and `status require` checks that required contexts are green."
        ),
        epilog=_GITHUB_ENV,
        formatter_class=_FORMATTER,
    )
    actions = status.add_subparsers(dest="status_command", metavar="ACTION", required=True)

    p = actions.add_parser(
        "publish",
        help="post a status per gate of a run report, annotations and the step summary",
        description=_wrap(
            "Reads a run report (reports/run.json, written after every gate) and, for each "
            "gate, posts the commit status ci/<gate> (success, failure or error; the test gate "
            "on the default Python is ci/test, other Pythons ci/test-3.11 ...) with a link to "
            "the workflow run. On GitHub it also prints ::error annotations for findings with "
            "a location and appends a Markdown summary to $GITHUB_STEP_SUMMARY. Without "
            "GITHUB_TOKEN it prints a one-line notice; API errors are retried, then reported "
            "as a warning. The exit code is 0 either way (2 for an unreadable report)."
        ),
        epilog=_GITHUB_ENV,
        formatter_class=_FORMATTER,
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="the run report or a single gate record (default: reports/run.json)",
    )
    p.add_argument("--sha", help="the commit to post to (default: $GITHUB_SHA)")
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be posted; post nothing"
    )
    p.set_defaults(handler=_publish)

    p = actions.add_parser(
        "require",
        help="exit 1 unless every required context of a commit is a success",
        description=_wrap(
            "Reads the combined status and the check runs of a commit and checks that each "
            "required context is a success. Exit 1 naming every context that is missing, "
            "pending or failing; 0 when all are green; 6 when the API cannot be reached or "
            "keeps failing, 3 when it refuses the token, 2 for an unknown repository. "
            "With --wait it polls until all are green, one fails (fail fast) or the time is up."
        ),
        epilog=_GITHUB_ENV,
        formatter_class=_FORMATTER,
    )
    p.add_argument(
        "--contexts",
        metavar="A,B",
        action="append",
        help="required contexts, comma-separated or repeated (default: the required gates' "
        "contexts from [tool.ci], as `protect` uses)",
    )
    p.add_argument("--sha", help="the commit (default: $GITHUB_SHA, else git rev-parse HEAD)")
    p.add_argument(
        "--repo", metavar="OWNER/NAME", help="the repository (default: $GITHUB_REPOSITORY)"
    )
    p.add_argument(
        "--wait",
        type=values.seconds,
        default=0.0,
        metavar="SECONDS",
        help="keep polling up to this long while contexts are missing or pending (default: 0)",
    )
    p.add_argument(
        "--interval",
        type=values.interval,
        default=10.0,
        metavar="SECONDS",
        help="pause between polls with --wait (default: 10)",
    )
    p.set_defaults(handler=_require)

    p = sub.add_parser(
        "notify",
        help="on a failed run, post the failing gates and the run link to a chat webhook",
        description=_wrap(
            "Reads the run report; when a required gate failed, POSTs a JSON message naming "
            "the failing gates and the run link to a Slack- or Discord-compatible incoming "
            "webhook (it carries both `text` and `content`). The URL comes from --webhook-url, "
            "else $CI_NOTIFY_WEBHOOK, else [tool.ci.notify] webhook_url; only its host is ever "
            "printed. A passed run, a missing URL or an unreachable webhook print one line and "
            "exit 0."
        ),
        formatter_class=_FORMATTER,
    )
    p.add_argument("--webhook-url", metavar="URL", help="the incoming webhook")
    p.add_argument(
        "--report", type=Path, metavar="FILE", help="the run report (default: reports/run.json)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the message; send nothing")
    p.set_defaults(handler=_notify)

    p = sub.add_parser(
        "protect",
        help="branch protection as code: print (or --apply) the required checks of a branch",
        description=_wrap(
            "Builds the branch-protection payload from [tool.ci]: the contexts of every gate "
            "whose mode is required become required status checks (strict: the branch must be "
            "up to date), admins included, no force-pushes, no deletion. Prints the JSON; with "
            "--apply PUTs it to /repos/{owner}/{repo}/branches/{branch}/protection, which "
            "needs GITHUB_TOKEN with admin rights (exit 2 without one, 3 when the token is "
            "refused, 6 when the API cannot be reached or keeps failing)."
        ),
        epilog=_GITHUB_ENV,
        formatter_class=_FORMATTER,
    )
    p.add_argument("--branch", default="main", help="the branch to protect (default: main)")
    p.add_argument(
        "--repo", metavar="OWNER/NAME", help="the repository (default: $GITHUB_REPOSITORY)"
    )
    p.add_argument("--apply", action="store_true", help="send the payload to the REST API")
    p.set_defaults(handler=_protect)


def _wrap(text: str) -> str:
    """Descriptions wrapped by hand: the raw formatter keeps the environment table intact."""
    return textwrap.fill(text, width=88)


def required_contexts(config: Config) -> list[str]:
    """The status contexts of every registered gate whose mode is required."""
    return [
        gate.context(config)
        for gate in registry.gates(config)
        if config.gate(gate.name).mode is Mode.REQUIRED
    ]


def _github_env(app: App, repo: str | None = None) -> GitHubEnv:
    env = GitHubEnv.from_env(app.env)
    return replace(env, repository=repo) if repo else env


def _run_report_path(app: App, given: Path | None) -> Path:
    if given is None:
        return app.config.reports_path() / report.RUN_REPORT
    return given if given.is_absolute() else app.cwd / given


def _publish(args: argparse.Namespace, app: App) -> int:
    run = report.read_run_report(_run_report_path(app, args.report))
    github = _github_env(app)
    sha = args.sha or run.sha or github.sha
    if args.dry_run:
        print(f"would post to {sha or '(no GITHUB_SHA)'} (dry run, nothing is posted):")
        for result in run.results:
            update = update_for(result, app.config.default_python, github.run_url)
            print(f"  {update.context}: {update.state}: {update.description}")
        return ExitCode.OK
    state = state_dir(app.config.root, app.env)
    posted = report.publish(
        run.results,
        config=app.config,
        github=github,
        client=app.http,
        extras=report.gather_extras(run.results, app.config.root, state),
        retry=app.retry(),
        title=f"noxgate run: {'passed' if run else 'failed'}",
        sha=sha,
        annotate=github.actions,
    )
    if posted:
        print(f"posted {posted} status(es) to {sha[:12]}")
    return ExitCode.OK


def _split(values: Sequence[str] | None) -> list[str]:
    return [c.strip() for value in values or [] for c in value.split(",") if c.strip()]


def _head_sha(app: App) -> str:
    done = app.runner.run(["git", "rev-parse", "HEAD"], cwd=app.config.root)
    if not done:
        msg = "no --sha given, GITHUB_SHA is not set and git rev-parse HEAD failed; pass --sha"
        raise UsageError(msg)
    return done.stdout.strip()


def _require(args: argparse.Namespace, app: App) -> int:
    required = _split(args.contexts) or required_contexts(app.config)
    if args.wait < 0 or args.interval <= 0:
        msg = "--wait must be 0 or more and --interval more than 0 seconds"
        raise UsageError(msg)
    env = _github_env(app, args.repo)
    sha = args.sha or env.sha or _head_sha(app)
    if not env.token:
        print(
            "notice: GITHUB_TOKEN (or GH_TOKEN) is not set; reading statuses without authentication"
        )
    github = GitHub(env, app.http, app.retry())

    unread: list[str] = []

    def fetch() -> list[Observed]:
        statuses = github.combined_status(sha)
        try:
            runs = github.check_runs(sha)
        except ApiError as exc:  # e.g. a token without checks:read; statuses still count
            if not unread:
                print(f"notice: {exc}; judging by commit statuses only")
            unread.append(str(exc))
            runs = []
        return observed(statuses, runs)

    verdict = wait_for(
        required,
        fetch,
        wait_s=args.wait,
        interval_s=args.interval,
        monotonic=time.monotonic,
        sleep=app.sleep,
    )
    for context, seen in verdict.states.items():
        print(f"{context}: {seen.state.value}" + (f" ({seen.detail})" if seen.detail else ""))
    if verdict:
        print(f"all {len(required)} required context(s) are green on {sha[:12]}")
        return ExitCode.OK
    problems = verdict.problems()
    print(
        f"error: {len(problems)} of {len(required)} required context(s) not green on "
        f"{sha[:12]}: " + "; ".join(problems)
    )
    return ExitCode.GATE_FAILED


def _webhook_url(app: App, given: str | None) -> str | None:
    return given or app.env.get("CI_NOTIFY_WEBHOOK") or app.config.notify.webhook_url


def _notify(args: argparse.Namespace, app: App) -> int:
    run = report.read_run_report(_run_report_path(app, args.report))
    github = _github_env(app)
    payload = notify_payload(
        run.results,
        repository=github.repository,
        sha=run.sha or github.sha,
        run_url=github.run_url or run.run_url,
    )
    if payload is None:
        print("the run passed; no notification sent")
        return ExitCode.OK
    url = _webhook_url(app, args.webhook_url)
    if args.dry_run:
        print(f"would POST to {host_of(url) if url else '(no webhook configured)'} (dry run):")
        print(json.dumps(payload, indent=2))
        return ExitCode.OK
    if not url:
        print(
            "notice: no webhook configured (--webhook-url, CI_NOTIFY_WEBHOOK or "
            "[tool.ci.notify] webhook_url); no notification sent"
        )
        return ExitCode.OK
    try:
        send(
            app.http, "POST", url, payload=payload, retry=app.retry(), what="notifying", repeat=True
        )
    except ApiError as exc:
        print(f"warning: {exc}; no notification was delivered to {host_of(url)}")
        return ExitCode.OK
    failing = sum(1 for r in run.results if r.blocking)
    print(f"notified {host_of(url)}: {failing} failing gate(s)")
    return ExitCode.OK


def _protect(args: argparse.Namespace, app: App) -> int:
    contexts = required_contexts(app.config)
    payload = protection_payload(contexts)
    print(json.dumps(payload, indent=2))
    if not args.apply:
        return ExitCode.OK
    env = _github_env(app, args.repo)
    if not env.token:
        msg = (
            "protect --apply needs GITHUB_TOKEN or GH_TOKEN (a token with admin rights on the "
            "repository); "
            "without --apply it only prints the payload"
        )
        raise UsageError(msg)
    # ApiError: exit 6 unreachable or down, 3 token refused, 2 no such repository or branch
    GitHub(env, app.http, app.retry()).put_protection(args.branch, payload)
    print(f"protected {env.repository}@{args.branch}: required {', '.join(contexts) or 'none'}")
    return ExitCode.OK
