"""``deploy``, ``rollback``, ``state``, ``unlock``, ``ledger verify`` and ``release``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from ci.cli import values
from ci.cli.app import App
from ci.core.errors import ExitCode, GateFailedError, UsageError
from ci.deploy.backend import StateBackend, git_store, local_store, push_ledger
from ci.deploy.deployer import Deployer
from ci.deploy.ledger import LEDGER_NAME, LedgerCorruptError, head
from ci.github import deployments
from ci.release import version
from ci.run import history, pipeline, release, report

NEEDS = (
    "Needs the project's [tool.ci] but neither uv.lock nor a clean tree: it acts on versions "
    "already built or published. State lives under CI_STATE_DIR (default .ci-state/)."
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the release and deploy commands to the parser."""
    _register_deploy(sub)
    _register_rollback(sub)
    _register_state(sub)

    p = sub.add_parser(
        "unlock",
        help="remove an environment's deployment lock, given its exact id",
        description=(
            "Removes the lock of --env only when its id is --lock-id (shown by `state` and in "
            "the exit-4 message), and records the removal in the ledger. Use it for a lock "
            "left by a dead deploy on another host; dead holders on this host are recovered "
            f"automatically. {NEEDS}"
        ),
    )
    p.add_argument("--env", required=True, metavar="NAME", help="the environment")
    p.add_argument("--lock-id", required=True, metavar="ID", help="the lock's exact id")
    p.set_defaults(handler=_unlock)

    p = sub.add_parser(
        "ledger",
        help="check the hash chain of the audit ledger",
        description=(
            "`ledger verify` reads CI_STATE_DIR/ledger.jsonl and checks every entry's hash and "
            "its link to the entry before: exit 0 and the head hash, or exit 1 naming the "
            "first bad entry (edited, deleted, reordered or inserted). With --anchor HASH (a "
            "head hash published earlier) it also detects truncation."
        ),
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("verify", help="verify the hash chain (exit 1 at the first bad entry)")
    v.add_argument("--anchor", metavar="HASH", help="a published head hash that must be present")
    v.set_defaults(handler=_ledger_verify)

    p = sub.add_parser(
        "release",
        help="the maintainer's release: preflight, gates, publish, deploy (`invoke release`)",
        description=(
            "Runs `preflight --release`, then the gate sessions (lint, test on the default "
            "Python, security, package) with nox, then publish, then any post-publish steps, "
            "then a deploy of the release version (static, or what the build backend makes) to "
            "the first environment (the first one without `after`), stopping at the first "
            "failure with its exit code."
        ),
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (steps, order, what is published where) and run nothing",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="accepted for symmetry with gate and pipeline: a release never replays a cached "
        "result, every gate runs",
    )
    p.add_argument(
        "--until",
        metavar="STEP",
        help="stop before this step (e.g. publish: build, check and sign in a job without "
        "publishing credentials)",
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="STEP",
        help="start at this step (e.g. publish, after trusted publishing uploaded dist/: "
        "checks what the index serves, then deploys and records)",
    )
    p.set_defaults(handler=_release)


def _register_deploy(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "deploy",
        help="deploy a built version to an environment (lock, checkpoint, automatic rollback)",
        description=(
            "Checks the environment's protections (required_secrets, allowed_actors, "
            "allowed_refs, requires_approval, after), takes its lock, records a checkpoint, "
            "runs deploy_command and healthcheck_command (default: install the built wheel "
            "from dist/ into CI_STATE_DIR/envs/NAME and import it), and records the outcome in "
            "the ledger. A failure rolls back to the checkpoint (exit 5). Deploying the current "
            f"version is a no-op. Exit 3: not allowed; 4: locked. {NEEDS}"
        ),
    )
    p.add_argument("--env", required=True, metavar="NAME", help="the environment")
    p.add_argument("--version", required=True, metavar="V", help="the version (PEP 440)")
    p.add_argument(
        "--approve",
        action="store_true",
        help="approve a requires_approval environment without a prompt (recorded with you)",
    )
    p.add_argument("--reason", default="", metavar="TEXT", help="why, recorded with --approve")
    _add_wait_and_dry_run(p)
    p.set_defaults(handler=_deploy)


def _register_rollback(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rollback",
        help="go back to the last good version before the current one (or --to V)",
        description=(
            "Redeploys the last good version before the current one, or --to V (a version "
            "that deployed successfully there before; already current: a no-op). Needs the "
            "environment's secrets and allowed_actors, not an approval. Exit 5 when the "
            f"rollback itself fails. {NEEDS}"
        ),
    )
    p.add_argument("--env", required=True, metavar="NAME", help="the environment")
    p.add_argument("--to", metavar="V", help="the known-good version to go back to")
    _add_wait_and_dry_run(p)
    p.set_defaults(handler=_rollback)


def _register_state(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "state",
        help="an environment's current version, history and lock; `state rebuild`",
        description=(
            "`state --env NAME [--json]` shows what the ledger says about the environment "
            "(current version, history, status) and its lock. `state rebuild` verifies the "
            "ledger and recreates every environment's state file from it (byte-identical on "
            "every run): the fix for lost or corrupt state files. `state push` copies the "
            "local state folder's ledger to [tool.ci.state] remote (refs/noxgate/state) "
            'byte for byte, once, before switching to backend = "git"; it is refused when '
            f"the remote already has a different history. {NEEDS}"
        ),
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=("rebuild", "push"),
        help="rebuild the state files; push: copy the local ledger to the git remote, once",
    )
    p.add_argument("--env", metavar="NAME", help="the environment to show")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.set_defaults(handler=_state)


def _add_wait_and_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=values.seconds,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the lock (with backoff) instead of exiting 4 at once",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan; lock, run and record nothing"
    )


def _deployer(app: App) -> Deployer:
    ask = input if sys.stdin is not None and sys.stdin.isatty() else None
    mirror = deployments.from_env(app.env, app.http, retry=app.retry())
    return Deployer(
        config=app.config, runner=app.runner, clock=app.clock, env=app.env, ask=ask, mirror=mirror
    )


def _deploy(args: argparse.Namespace, app: App) -> int:
    result = _deployer(app).deploy(
        args.env,
        args.version,
        approve=args.approve,
        reason=args.reason,
        wait_s=args.wait,
        dry_run=args.dry_run,
    )
    return result.exit_code


def _rollback(args: argparse.Namespace, app: App) -> int:
    deployer = _deployer(app)
    return deployer.rollback(args.env, args.to, wait_s=args.wait, dry_run=args.dry_run).exit_code


def _state(args: argparse.Namespace, app: App) -> int:
    deployer = _deployer(app)
    if args.action == "push":
        source = StateBackend(local_store(app.config, app.env))
        target = StateBackend(git_store(app.config, app.env, app.runner))
        done = push_ledger(source, target)
        if done.added == 0:
            print(f"{target.label} already has the {done.entries} entries of {source.label}")
        else:
            print(f"pushed {done.added} of {done.entries} ledger entries to {target.label}")
        print(f"head {done.head or head([])}")
        return ExitCode.OK
    if args.action == "rebuild":
        entries, paths = deployer.rebuild()
        print(f"ledger verified: {len(entries)} entries, head {head(entries)}")
        for path in paths:
            print(f"wrote {path}")
        if not paths:
            print("no environment has ledger entries: no state files")
        return ExitCode.OK
    if not args.env:
        msg = "state needs --env NAME (or `state rebuild`)"
        raise UsageError(msg)
    doc = deployer.show(args.env)
    if args.json:
        print(json.dumps({k: v for k, v in doc.items() if k != "schema"}, indent=2))
        return ExitCode.OK
    current = doc["current"]
    print(f"environment {doc['env']}: {doc['status']}")
    recorded = (
        f"{current['version']} since {current['since']} by {current['actor']}"
        if current
        else "none"
    )
    if doc.get("unknown"):
        print(f"  current  unknown (last recorded: {recorded})")
        print(f"  why      {doc['unknown']}")
    else:
        print(f"  current  {recorded}")
    print(f"  good     {', '.join(doc['good']) or '-'}")
    held = doc["lock"]
    print(f"  lock     {_lock_line(held)}")
    if doc["state_file"] != "ok":
        print(f"  warning  {doc['state_file']}")
    for item in doc["history"][-10:]:
        print(
            f"  #{item['seq']:<5} {item['time']}  {item['action']} {item['version']} "
            f"{item['outcome']}  ({item['actor']})"
        )
    return ExitCode.OK


def _lock_line(held: object) -> str:
    if not isinstance(held, dict):
        return "free"
    if "error" in held:
        return str(held["error"])
    return (
        f"held by {held['who']} (pid {held['pid']}) for {held['operation']} "
        f"{held['version']}, id {held['id']}"
    )


def _unlock(args: argparse.Namespace, app: App) -> int:
    removed = _deployer(app).unlock(args.env, args.lock_id)
    print(f"removed the lock of {args.env}: {removed.holder.describe()}")
    if removed.ended_group is not None:
        print(f"ended its command still running in process group {removed.ended_group}")
    return ExitCode.OK


def _ledger_verify(args: argparse.Namespace, app: App) -> int:
    backend = _deployer(app).backend
    if args.anchor is not None and not re.fullmatch(r"[0-9a-f]{64}", args.anchor):
        msg = f"--anchor {args.anchor!r} is not a sha256 hex digest (64 characters 0-9a-f)"
        raise UsageError(msg)
    try:
        entries = backend.entries(args.anchor)
    except LedgerCorruptError as exc:
        raise GateFailedError(str(exc)) from None  # a finding of the check: exit 1
    where = backend.store.shown(LEDGER_NAME)
    if not entries:
        print(f"{where}: empty (head {head(entries)})")
    else:
        print(f"{where}: {len(entries)} entries verified")
    print(head(entries))
    return ExitCode.OK


def _release(args: argparse.Namespace, app: App) -> int:
    config_file = str(app.config_file) if app.config_file else None
    nox = pipeline.nox_command()
    # the same version and refusals as `preflight --release` (exit 3, or 6 when the build
    # backend cannot be asked), so a dry run never shows a plan the release would refuse
    what = version.resolve(app.config, app.runner)
    the_plan = release.plan(
        app.config,
        release=what,
        env=app.env,
        ci=release.ci_prefix(config_file),
        nox=nox,
        declared=release.declared_sessions(app.runner, nox, app.config),
        publish_ci=release.ci_prefix(config_file, group=app.config.group("package")),
    )
    the_plan = release.select(the_plan, start=args.start, until=args.until)
    if args.dry_run:
        print(release.render(the_plan, release.lock_notes(app.config, app.runner)))
        return ExitCode.OK
    started, since = time.monotonic(), time.time_ns()
    code: int = ExitCode.USAGE
    try:
        code = release.execute(the_plan, app.runner, app.config)
    finally:
        history.record_run(
            app.gate_context(),
            report.gate_records(app.config.reports_path(), since),
            passed=code == ExitCode.OK,
            duration_s=time.monotonic() - started,
            kind="release",
        )
    return code
