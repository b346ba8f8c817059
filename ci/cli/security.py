"""``secrets``, ``audit`` and ``advisories serve``: the security gate's commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ci.cli import values
from ci.cli.app import App
from ci.core.config import SEVERITIES
from ci.core.errors import ExitCode
from ci.core.files import atomic_write_text
from ci.security import advisories, audit, secrets

_OUTPUT_HELP = "write the report to FILE (atomically, masked) instead of printing it"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the security commands to the parser."""
    p = sub.add_parser(
        "secrets",
        help="scan the tracked tree, a commit range or the whole history for secrets",
        description=(
            "Runs detect-secrets' plugins and filters over the tracked files of the working "
            "tree (default), over the lines added by the commits of REV..HEAD (--since, a pull "
            "request's range), or over every line ever added (--history: one streamed "
            "`git log -p`; finds secrets committed and later deleted, with the commit that "
            "introduced them). Findings listed in the baseline (.secrets.baseline, made with "
            "`detect-secrets scan > .secrets.baseline`) or waived in [[tool.ci.waivers]] by "
            "their hashed_secret do not fail. Reports never contain the secret, only its hash. "
            "Exit 1 when an unwaived secret is found, 2 for a bad repo, REV or baseline."
        ),
    )
    p.add_argument("--repo", type=Path, metavar="PATH", help="git checkout to scan (default: .)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--since", metavar="REV", help="scan only the commits of REV..HEAD")
    mode.add_argument("--history", action="store_true", help="scan every commit of every ref")
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="detect-secrets baseline (default: .secrets.baseline in the repo, if present)",
    )
    p.add_argument("--format", choices=secrets.FORMATS, default="text", help="report format")
    p.add_argument("--output", type=Path, metavar="FILE", help=_OUTPUT_HELP)
    p.set_defaults(handler=_secrets)

    p = sub.add_parser(
        "audit",
        help="audit the locked dependencies for known vulnerabilities, with severities",
        description=(
            "Exports the pins of uv.lock (uv export, with hashes) or reads --requirements, runs "
            "pip-audit on them (--no-deps --disable-pip, OSV service) and scores each advisory: "
            "CVSS vectors with the cvss library, else GHSA/OSV severity labels, else the "
            "configured unknown_severity (default high). Fails on findings at or above "
            "--fail-on ([tool.ci.gates.audit] fail_on, default high) unless waived in "
            "[[tool.ci.waivers]]. With --advisory-db DIR (or $CI_ADVISORY_DB, or [tool.ci] "
            "advisory_db) the audit is offline: DIR, a folder of OSV records laid out like the "
            "PyPA advisory database (its vulns/ folder), is served on 127.0.0.1 for pip-audit; "
            "a folder holding no OSV records is refused. Exit 1 when the policy fails, 2 for "
            "bad input, 6 when the vulnerability service is unreachable or answers errors."
        ),
    )
    p.add_argument("--requirements", type=Path, metavar="FILE", help="a pinned requirements file")
    p.add_argument("--advisory-db", metavar="DIR", help="folder of OSV records: audit offline")
    p.add_argument("--fail-on", choices=SEVERITIES, help="lowest severity that fails the audit")
    p.add_argument("--format", choices=audit.FORMATS, default="text", help="report format")
    p.add_argument("--output", type=Path, metavar="FILE", help=_OUTPUT_HELP)
    p.set_defaults(handler=_audit)

    p = sub.add_parser(
        "advisories",
        help="the local OSV advisory mirror",
        description="Tools for a local folder of OSV advisory records.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve a folder of OSV records as an OSV-compatible API on 127.0.0.1",
        description=(
            "Serves DIR (OSV records in YAML or JSON, laid out like the PyPA advisory "
            "database) at http://127.0.0.1:PORT with POST /v1/query, POST /v1/querybatch and "
            "GET /v1/vulns/<id>, until interrupted. Point pip-audit at it with "
            "`-s osv --osv-url http://127.0.0.1:PORT/v1/query`. Withdrawn records are ignored."
        ),
    )
    serve.add_argument("--db", type=Path, required=True, metavar="DIR", help="folder of records")
    serve.add_argument(
        "--port", type=values.port, default=8765, help="port on 127.0.0.1 (0: any free port)"
    )
    serve.set_defaults(handler=_serve)


def _emit(text: str, output: Path | None, summary: str) -> None:
    """Write the report to ``output`` (and say so) or print it."""
    if output is None:
        print(text, end="")
        return
    atomic_write_text(output, text)
    print(summary)
    print(f"report written to {output}")


def _progress(app: App) -> secrets.Progress | None:
    """A commits-done counter on a terminal; nothing in CI logs."""
    if not sys.stderr.isatty() or app.env.get("CI"):
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\rscanning commits {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


def _secrets(args: argparse.Namespace, app: App) -> int:
    mode = secrets.Mode.TREE
    if args.history:
        mode = secrets.Mode.HISTORY
    elif args.since is not None:
        mode = secrets.Mode.RANGE
    options = secrets.ScanOptions(
        repo=app.cwd / args.repo if args.repo else app.cwd,
        mode=mode,
        since=args.since,
        baseline=app.cwd / args.baseline if args.baseline else None,
        waivers=app.config.waivers,
        today=app.clock.today(),
    )
    report = secrets.scan(options, app.runner, _progress(app))
    output = app.cwd / args.output if args.output else None
    _emit(secrets.render(report, args.format), output, f"secrets: {report.summary()}")
    return ExitCode.OK if report else ExitCode.GATE_FAILED


def _audit(args: argparse.Namespace, app: App) -> int:
    options = audit.options_for(
        app.config,
        app.env,
        app.clock.today(),
        cwd=app.cwd,
        requirements=app.cwd / args.requirements if args.requirements else None,
        advisory_db=args.advisory_db,
        fail_on=args.fail_on,
    )
    report = audit.audit(options, app.runner, app.http)
    text = audit.render(report, args.format, root=app.config.root, now=app.clock.now())
    output = app.cwd / args.output if args.output else None
    _emit(text, output, f"audit: {report.summary()}")
    return ExitCode.OK if report else ExitCode.GATE_FAILED


def _serve(args: argparse.Namespace, app: App) -> int:
    db = advisories.AdvisoryDB(app.cwd / args.db)
    server = advisories.make_server(db, args.port)
    url = advisories.base_url(server)
    print(f"serving {len(db)} advisories from {args.db} at {url}/v1/query", flush=True)
    print(f"pip-audit -s osv --osv-url {url}/v1/query ...; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return ExitCode.OK
