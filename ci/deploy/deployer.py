"""Deploy and rollback: environment protections, the lock, checkpoints and the ledger.

The checks are pure functions over gathered facts; ``Deployer`` gathers the facts, takes the
lock, records every step in the ledger and keeps ``state/<env>.json`` equal to the ledger's
projection, all through a ``StateBackend`` (the local folder or the git remote: the
deployer does not know which). A failed deploy or healthcheck rolls back to the checkpoint
(exit 5).

On a store with leases (the git remote) each command runs under a watchdog that ends it
when the lease expires unrenewed (``ci.core.watchdog``, told every renewal through
``leases/<env>.<lock id>`` in the local state folder), gets the lease's epoch as
``CI_DEPLOY_FENCE``, and every entry is written with that fence. An outcome is journaled
locally first (``ci.deploy.journal``) and reconciled by the next command when the store
could not take it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from ci.core.clock import Clock
from ci.core.config import (
    Config,
    Environment,
    missing_secret_message,
    missing_secrets,
    state_dir,
)
from ci.core.errors import (
    CIError,
    DeployError,
    ExitCode,
    LockHeldError,
    PreflightError,
    TerminatedError,
    UsageError,
)
from ci.core.files import atomic_write_text
from ci.core.runner import GRACE_S, Runner, end_group
from ci.core.signals import held_off
from ci.deploy import journal, lock
from ci.deploy import state as deploystate
from ci.deploy import steps as deploysteps
from ci.deploy.backend import NewEntry, StateBackend, open_backend
from ci.deploy.ledger import Entry
from ci.deploy.state import EnvState
from ci.deploy.steps import same_version
from ci.testing import faults

ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
Ask = Callable[[str], str]


class UnrecordedError(CIError):
    """An outcome the state store could not take: journaled, with the store's exit code."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        """``message`` names the journal; ``exit_code`` is the store error's."""
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """Who approved a deploy, and why."""

    actor: str
    reason: str
    how: str  # "flag" or "prompt"


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What a deploy or rollback did; failures raise a CIError instead."""

    action: str  # "deploy" or "rollback"
    env: str
    version: str
    changed: bool  # False: the version was already current, or this was a dry run
    dry_run: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit code (always OK: a result is only returned on success)."""
        return ExitCode.OK

    def __bool__(self) -> bool:
        """True: the operation did what it was asked to (or found nothing to do)."""
        return True


def interruption(exc: BaseException) -> str:
    """Which signal ended the operation, for the ledger."""
    return "SIGTERM" if isinstance(exc, TerminatedError) else "SIGINT"


class Mirror(Protocol):
    """Somewhere each deploy and rollback is shown as well (GitHub Deployments); never fails."""

    def started(self, action: str, env: str, version: str) -> None:
        """An operation began."""
        ...

    def finished(self, succeeded: bool, description: str) -> None:
        """The operation begun last ended."""
        ...


@dataclass(slots=True)
class Holding:
    """The lock an operation holds, the process group it runs now, and whether it lost it."""

    acquired: lock.Acquired
    pgid: int | None = None
    lost: str | None = None
    lease_file: Path | None = None  # the expiry the watchdog of each command reads

    def renewed(self, expires: float) -> None:
        """The lease now runs until ``expires``: tell the watchdog."""
        if self.lease_file is not None:
            write_expiry(self.lease_file, expires)

    def lose(self, why: str) -> None:
        """The lock is no longer ours: remember why and stop the running command."""
        self.lost = why
        if self.pgid is not None:
            end_group(self.pgid)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the protections of an environment are judged against."""

    environment: Environment
    actor: str
    refs: tuple[str, ...]
    env: Mapping[str, str]
    global_secrets: tuple[str, ...] = ()


def write_expiry(path: Path, expires: float) -> None:
    """Write a lease's expiry where a watchdog reads it (atomically: never half a number)."""
    atomic_write_text(path, f"{expires!r}\n")


def normalize_version(raw: str) -> str:
    """``raw`` as a normalized PEP 440 version; UsageError (exit 2) when it is not one."""
    try:
        return str(Version(raw))
    except InvalidVersion:
        msg = f"--version {raw!r} is not a PEP 440 version: pass e.g. 1.2.0"
        raise UsageError(msg) from None


def is_current(state: EnvState, version: str) -> bool:
    """True when ``version`` already runs, healthy, in ``state``'s environment."""
    return state.status == deploystate.STATUS_OK and same_version(state.current_version, version)


def check_env_name(name: str) -> None:
    """UsageError unless ``name`` is safe to use in file names."""
    if not ENV_NAME.fullmatch(name):
        msg = f"environment name {name!r} may only hold letters, digits, '.', '_' and '-'"
        raise UsageError(msg)


def protection_problems(facts: Facts) -> list[str]:
    """What stops this actor deploying from these refs (secrets, actors, refs); pure."""
    env = facts.environment
    problems = [
        missing_secret_message(name)
        for name in missing_secrets([*facts.global_secrets, *env.required_secrets], facts.env)
    ]
    if env.allowed_actors and not any(
        fnmatch.fnmatchcase(facts.actor, pattern) for pattern in env.allowed_actors
    ):
        problems.append(
            f"{facts.actor!r} may not deploy to {env.name} (allowed_actors: "
            f"{', '.join(env.allowed_actors)}): ask one of them, or add the actor in "
            f"[tool.ci.environments.{env.name}]"
        )
    if env.allowed_refs and not any(
        fnmatch.fnmatchcase(ref, pattern) for ref in facts.refs for pattern in env.allowed_refs
    ):
        here = ", ".join(facts.refs) or "no git ref"
        problems.append(
            f"{env.name} only takes deploys from {', '.join(env.allowed_refs)} (this is "
            f"{here}): deploy from a matching ref, e.g. the release tag"
        )
    return problems


def after_problem(environment: Environment, version: str, after: EnvState | None) -> str | None:
    """Why ``version`` may not go to ``environment`` yet (its ``after`` env), or None; pure."""
    if environment.after is None:
        return None
    if after is not None and any(same_version(version, v) for v in after.deployed):
        return None
    return (
        f"{version} was never deployed successfully to {environment.after}: deploy it there "
        f"first ({environment.name} comes after {environment.after})"
    )


@dataclass(slots=True, kw_only=True)
class Deployer:
    """Carries out deploys and rollbacks for one project."""

    config: Config
    runner: Runner
    clock: Clock
    env: Mapping[str, str]
    ask: Ask | None = None
    out: Callable[[str], None] = print
    state_backend: StateBackend | None = None  # default: the one [tool.ci.state] names
    mirror: Mirror | None = None  # e.g. GitHub Deployments, when running on GitHub
    _actor: str | None = field(default=None, init=False)
    _fence: lock.Fence | None = field(default=None, init=False)  # the lock held now

    @property
    def state(self) -> Path:
        """The local state folder (where the default deploy keeps its venvs)."""
        path = state_dir(self.config.root, self.env)
        return path if path.is_absolute() else self.config.root / path

    @property
    def backend(self) -> StateBackend:
        """Where the ledger, state files and locks live."""
        if self.state_backend is None:
            self.state_backend = open_backend(self.config, self.env, self.runner)
        return self.state_backend

    # ---- facts -------------------------------------------------------------------------

    def environment(self, name: str) -> Environment:
        """The configured environment ``name`` (ConfigError, exit 2, when unknown)."""
        check_env_name(name)
        return self.config.environment(name)

    def actor(self) -> str:
        """Who acts: GITHUB_ACTOR, else the git user, else the login name."""
        if self._actor is None:
            self._actor = self.env.get("GITHUB_ACTOR") or self._git_user() or lock.login_name()
        return self._actor

    def _git_user(self) -> str | None:
        try:
            done = self.runner.run(["git", "var", "GIT_AUTHOR_IDENT"], cwd=self.config.root)
        except CIError:
            return None
        name = done.stdout.split(" <", 1)[0].strip() if done else ""
        return name or None

    def refs(self) -> tuple[str, ...]:
        """The refs being deployed from: GITHUB_REF, else HEAD's branch and tags."""
        if self.env.get("GITHUB_REF"):
            return (self.env["GITHUB_REF"],)
        refs: list[str] = []
        try:
            head = self.runner.run(
                ["git", "rev-parse", "--symbolic-full-name", "HEAD"], cwd=self.config.root
            )
            tags = self.runner.run(["git", "tag", "--points-at", "HEAD"], cwd=self.config.root)
        except CIError:
            return ()
        if head and head.stdout.strip().startswith("refs/"):
            refs.append(head.stdout.strip())
        if tags:
            refs += [f"refs/tags/{t.strip()}" for t in tags.stdout.splitlines() if t.strip()]
        return tuple(refs)

    def in_ci(self) -> bool:
        """True on a CI runner (no one to answer a prompt)."""
        return bool(self.env.get("CI")) or self.env.get("GITHUB_ACTIONS") == "true"

    def verified(self) -> list[Entry]:
        """The verified ledger entries; LedgerCorruptError (exit 3) when the ledger is broken."""
        return self.backend.entries()

    def approval(
        self, environment: Environment, version: str, approve: bool, reason: str
    ) -> Approval | None:
        """The approval a protected environment needs; PreflightError (exit 3) without one."""
        if not environment.requires_approval:
            return None
        if approve:
            return Approval(
                actor=self.actor(), reason=reason or "approved with --approve", how="flag"
            )
        if self.ask is not None and not self.in_ci():
            answer = self.ask(f"approve deploying {version} to {environment.name}? [y/N] ")
            if answer.strip().lower() in {"y", "yes"}:
                why = self.ask("reason (recorded in the ledger): ").strip()
                return Approval(
                    actor=self.actor(), reason=why or "approved at the prompt", how="prompt"
                )
            msg = f"deploy of {version} to {environment.name} was not approved"
            raise PreflightError(msg)
        msg = (
            f"{environment.name} requires approval: rerun with --approve --reason TEXT (recorded "
            "in the ledger with your name); on GitHub the environment's required reviewers "
            "approve and the deploy job passes --approve"
        )
        raise PreflightError(msg)

    # ---- the steps of a deploy ---------------------------------------------------------

    def artifact(self, version: str) -> Path | None:
        """The built wheel of this project at ``version`` in dist/ (or a kept build), or None."""
        dist = self.config.root / "dist"
        name = self.config.project_name
        # the current build is in dist/; older kept builds in dist-assets/builds/
        found = deploysteps.find_wheel(dist, name, version)
        return found or deploysteps.find_wheel(dist.with_name("dist-assets"), name, version)

    def steps(
        self, environment: Environment, version: str, artifact: Path | None
    ) -> list[deploysteps.Step]:
        """The commands that put ``version`` on ``environment`` and check it."""
        return deploysteps.plan_steps(
            environment,
            version,
            artifact,
            venv=self.state / "envs" / environment.name,
            uv=self.runner.which("uv") or "uv",
            project=self.config.project_name,
            packages=self.config.packages,
        )

    def require_artifact(self, environment: Environment, version: str) -> Path | None:
        """The wheel for ``version`` if the deploy needs one; PreflightError when missing."""
        if not deploysteps.needs_artifact(environment):
            return self.artifact(version)
        found = self.artifact(version)
        if found is None:
            msg = (
                f"no wheel of {self.config.project_name or 'the project'} {version} under "
                f"{self.config.root / 'dist'}: build it (`python -m ci package`) or download "
                "the released files into dist/"
            )
            raise PreflightError(msg)
        return found

    def run_steps(
        self,
        environment: Environment,
        version: str,
        artifact: Path | None,
        *,
        holding: Holding,
        inject_fault: bool = False,
    ) -> str | None:
        """Run the deploy and healthcheck of ``version``; None when all passed, else why not.

        LockLostError (exit 5) when the lock was lost meanwhile: the command was stopped.
        """
        extra = {"CI_DEPLOY_ENV": environment.name, "CI_DEPLOY_VERSION": version}
        epoch = holding.acquired.lock.epoch
        if epoch is not None:  # the fencing token, for targets that can refuse older ones
            extra["CI_DEPLOY_FENCE"] = str(epoch)

        def started(pgid: int) -> None:
            if holding.lost is not None:
                raise lock.LockLostError(holding.lost)
            holding.pgid = pgid
            # Written before the command starts: a recovery must see the group to wait for.
            deadline = time.time() + environment.timeout_s + GRACE_S
            self.backend.command_started(holding.acquired, pgid, deadline)

        for step in self.steps(environment, version, artifact):
            if inject_fault and step.stage == "deploy":
                # fault injection: CI_INJECT_FAULT=deploy runs a failing command
                step = replace(step, argv=tuple(faults.deploy_command(step.argv, self.env)))  # noqa: PLW2901
            self.out(f"==> {step.stage}: {' '.join(step.argv)}")
            try:
                done = self.runner.run(
                    step.argv,
                    cwd=self.config.root,
                    env=extra,
                    timeout=environment.timeout_s,
                    stream=True,  # long deploys show their (masked) output as it comes
                    on_start=started,  # its own process group, ended with us
                    watch=holding.lease_file,  # and ended when the lease runs out unrenewed
                )
            except (LockHeldError, lock.LockLostError):
                raise
            except CIError as exc:
                return f"{step.stage} failed: {exc}"
            finally:
                holding.pgid = None
            if holding.lost is not None:
                msg = f"{holding.lost}; its {step.stage} command was stopped"
                raise lock.LockLostError(msg)
            if not done:
                return f"{step.stage} exited {done.returncode}"
            last = (done.stdout.strip().splitlines() or ["nothing"])[-1].strip()
            if step.expect_output is not None and last != step.expect_output:
                return f"{step.stage} found version {last}, expected {step.expect_output}"
        return None

    # ---- ledger and state ----------------------------------------------------------------

    def now(self) -> str:
        """The time stamp of ledger entries and locks."""
        return self.clock.now().isoformat(timespec="seconds").replace("+00:00", "Z")

    def record(
        self,
        state: EnvState,
        action: str,
        version: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> EnvState:
        """Append one entry for ``state``'s environment and write its new state file.

        Under a lock the entry carries the lock's fence, and an outcome is journaled
        locally until the store has it: when the store cannot take it, the error says so
        and the next command on this machine records it.
        """
        new = NewEntry(
            time=self.now(),
            actor=self.actor(),
            action=action,
            env=state.env,
            version=version,
            outcome=outcome,
            details=details,
        )
        fence = self._fence
        if fence is None or outcome == "started":
            return self.backend.record(state, new, fence=fence)[1]
        item = journal.Pending(entry=_entry_fields(new), fence=fence)
        journal.add(self.state, item)
        try:
            after = self.backend.record(state, new, fence=fence)[1]
        except lock.FencedError:
            journal.remove(self.state, item)  # the refusal is recorded in its place
            raise
        except CIError as exc:
            path = journal.journal_path(self.state, state.env)
            msg = (
                f"{action} {version} on {state.env} {outcome}, but this could not be recorded "
                f"in {self.backend.label} ({exc}); it is journaled in {path}, and the next "
                f"deploy, rollback or `python -m ci state --env {state.env}` on this machine "
                "records it: until then what runs there is unknown"
            )
            raise UnrecordedError(msg, exc.exit_code) from None
        journal.remove(self.state, item)
        return after

    def reconcile(self, env: str) -> None:
        """Record the outcomes journaled on this machine that the store did not take yet."""
        items = journal.pending(self.state, env)
        if not items:
            return
        held = self.backend.holder(env)
        host = socket.gethostname()
        for item in items:
            if (
                held is not None
                and held.id == item.fence.lock_id
                and lock.judge(held, host, time.time()) is lock.Holder.RUNNING
                and held.host == host
                and held.pid != os.getpid()  # this process holds no lock while it reconciles
            ):
                continue  # its deploy still runs here: it records the outcome itself
            entries = self.verified()
            if journal.is_recorded(item, [e.body() for e in entries]):
                journal.remove(self.state, item)
                continue
            state = deploystate.project(entries).get(env, deploystate.empty(env))
            fields = item.entry
            new = NewEntry(
                time=str(fields["time"]),
                actor=str(fields["actor"]),
                action=str(fields["action"]),
                env=env,
                version=str(fields["version"]),
                outcome=str(fields["outcome"]),
                details=fields.get("details") or None,
            )
            what = f"{new.action} {new.version} {new.outcome} (journaled at {new.time})"
            try:
                self.backend.record(state, new, fence=item.fence)
            except lock.FencedError:
                self.out(
                    f"journaled outcome {what} came after the lock of {env} moved on: "
                    "recorded as a stale holder's, not as the environment's state"
                )
            else:
                self.out(f"recorded the journaled outcome {what}")
            journal.remove(self.state, item)
            if self.backend.release_id(env, item.fence.lock_id):
                self.out(f"released the lock {item.fence.lock_id} the journaled outcome held")

    def load(self, env: str) -> tuple[dict[str, EnvState], EnvState]:
        """All projected states and ``env``'s; exit 3 if the ledger or ``env``'s file is bad."""
        return self.backend.load(env)

    def where(self) -> str:
        """The workflow run this happens in (its URL), or ""."""
        server = self.env.get("GITHUB_SERVER_URL") or "https://github.com"
        repo, run = self.env.get("GITHUB_REPOSITORY"), self.env.get("GITHUB_RUN_ID")
        return f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if repo and run else ""

    def take_lock(self, env: str, operation: str, version: str, wait_s: float) -> lock.Acquired:
        """Acquire ``env``'s lock (exit 4 when held)."""
        info = lock.new_info(
            env=env, operation=operation, version=version, created=self.now(), where=self.where()
        )
        began = time.monotonic()
        try:
            acquired = self.backend.acquire(
                info,
                wait_s=wait_s,
                on_wait=lambda holder: self.out(
                    f"environment {env} is locked: {holder.describe()}; "
                    f"waiting up to {wait_s:g} s for it"
                ),
            )
        except LockHeldError:
            self.contention(env, operation, "refused", time.monotonic() - began)
            raise
        if acquired.tries > 1:
            self.contention(env, operation, "waited", time.monotonic() - began)
        return acquired

    def contention(self, env: str, operation: str, outcome: str, waited_s: float) -> None:
        """Add a lock wait to the run history (best effort: it never changes the outcome)."""
        wait = lock.LockWait(
            time=self.now(),
            actor=self.actor(),
            env=env,
            operation=operation,
            outcome=outcome,
            waited_s=waited_s,
        )
        try:
            self.backend.append_log(lock.LOCKS_LOG, wait.to_dict(), keep=self.config.history.keep)
        except (CIError, OSError) as exc:
            self.out(f"warning: lock contention not recorded in the run history ({exc})")

    def release(self, acquired: lock.Acquired) -> None:
        """Give the lock back; when that fails, say so without hiding how the operation ended."""
        try:
            self.backend.release(acquired)
        except CIError as exc:
            lease_s = self.backend.store.lease_s
            after = (
                f"its lease runs out by itself within {lease_s:g} s"
                if lease_s is not None
                else "remove it with `python -m ci unlock --lock-id`"
            )
            self.out(
                f"warning: the lock of {acquired.lock.env} (id {acquired.lock.id}) was not "
                f"released ({exc}); {after}"
            )

    def record_recoveries(self, state: EnvState, acquired: lock.Acquired) -> EnvState:
        """Write each dead holder this process recovered the lock from to the ledger."""
        for dead in acquired.recovered:
            ended = f" (ended its command, process group {dead.ended_group})"
            self.out(
                f"recovered the lock of a dead holder: {dead.holder.describe()}"
                + (ended if dead.ended_group is not None else "")
            )
            state = self.record(state, "lock", dead.holder.version, "recovered", dead.details())
        return state

    def record_interruption(
        self, state: EnvState, action: str, version: str, exc: BaseException, previous: str | None
    ) -> None:
        """Write the ``interrupted`` entry of an operation whose command was ended midway."""
        how = interruption(exc)
        reason = f"interrupted by {how}: its command was ended; no automatic rollback"
        with held_off():  # a second Ctrl-C must not cut the entry short
            self.record(state, action, version, "interrupted", {"from": previous, "reason": reason})
        self.out(f"{action} of {version} to {state.env} interrupted by {how}: recorded")

    def _mirror_started(self, action: str, env: str, version: str) -> None:
        if self.mirror is not None:
            self.mirror.started(action, env, version)

    def _mirror_finished(self, succeeded: bool, description: str) -> None:
        if self.mirror is not None:
            self.mirror.finished(succeeded, description)

    # ---- operations ----------------------------------------------------------------------

    def deploy(
        self,
        env_name: str,
        raw_version: str,
        *,
        approve: bool = False,
        reason: str = "",
        wait_s: float = 0.0,
        dry_run: bool = False,
    ) -> Result:
        """Deploy ``raw_version`` to ``env_name``; a CIError carries the exit code of a failure."""
        environment = self.environment(env_name)
        version = normalize_version(raw_version)
        facts = Facts(
            environment=environment,
            actor=self.actor(),
            refs=self.refs() if environment.allowed_refs else (),
            env=self.env,
            global_secrets=self.config.required_secrets,
        )
        problems = protection_problems(facts)
        if problems:
            raise PreflightError(problems[0])
        if dry_run:
            return self._deploy_plan(environment, version)
        approval = self.approval(environment, version, approve, reason)
        self.reconcile(env_name)
        acquired = self.take_lock(env_name, "deploy", version, wait_s)
        with self.holding(acquired) as holding:
            return self._deploy_held(environment, version, approval, holding)

    @contextlib.contextmanager
    def holding(self, acquired: lock.Acquired) -> Iterator[Holding]:
        """Hold ``acquired`` while the block runs: renew it, fence writes, release it after."""
        holding = Holding(acquired)
        expires = acquired.lock.expires
        if expires is not None:  # a lease: each command runs under a watchdog that reads it
            holding.lease_file = self.state / "leases" / f"{acquired.lock.env}.{acquired.lock.id}"
            write_expiry(holding.lease_file, expires)
        self._fence = acquired.lock.fence
        try:
            with self.backend.keep(acquired, holding.lose, on_renewed=holding.renewed):
                yield holding
        finally:
            self._fence = None
            with held_off():
                self.release(acquired)
                if holding.lease_file is not None:
                    holding.lease_file.unlink(missing_ok=True)

    def _deploy_held(
        self,
        environment: Environment,
        version: str,
        approval: Approval | None,
        holding: Holding,
    ) -> Result:
        env_name = environment.name
        states, state = self.load(env_name)
        state = self.record_recoveries(state, holding.acquired)
        problem = after_problem(environment, version, states.get(environment.after or "", None))
        if problem:
            raise PreflightError(problem)
        if is_current(state, version):
            self.out(f"{env_name} already runs {state.current_version}: nothing to do")
            return Result(action="deploy", env=env_name, version=version, changed=False)
        artifact = self.require_artifact(environment, version)
        return self._deploy_locked(
            environment=environment,
            version=version,
            state=state,
            artifact=artifact,
            approval=approval,
            holding=holding,
        )

    def _deploy_plan(self, environment: Environment, version: str) -> Result:
        states, state = self.load(environment.name)
        problem = after_problem(environment, version, states.get(environment.after or "", None))
        self.out("deploy plan (dry run: nothing is locked, run or recorded):")
        self.out(f"  environment  {environment.name}")
        self.out(f"  version      {version} (current: {state.current_version or 'none'})")
        pending = journal.pending(self.state, environment.name)
        if pending:
            self.out(
                f"  journal      {len(pending)} outcome(s) journaled here are not recorded yet "
                "(the current version above may be stale): the deploy records them first"
            )
        if problem:
            self.out(f"  blocked      {problem}")
        plan = Result(
            action="deploy", env=environment.name, version=version, changed=False, dry_run=True
        )
        if is_current(state, version):
            self.out("  nothing to do: this version is already current")
            return plan
        approval = "required (--approve or a prompt)" if environment.requires_approval else "-"
        self.out(f"  approval     {approval}")
        self.out(f"  checkpoint   {state.current_version or 'none'} (automatic rollback target)")
        self.out(f"  lock         {self.backend.store.shown(lock.lock_file(environment.name))}")
        for index, step in enumerate(
            self.steps(environment, version, self.artifact(version)), start=1
        ):
            self.out(f"  {index}. {step.stage}: {' '.join(step.argv)}")
        if problem:
            raise PreflightError(problem)
        return plan

    def _deploy_locked(
        self,
        *,
        environment: Environment,
        version: str,
        state: EnvState,
        artifact: Path | None,
        approval: Approval | None,
        holding: Holding,
    ) -> Result:
        previous = state.current_version
        details: dict[str, Any] = {"from": previous, "lock": holding.acquired.lock.id}
        if approval is not None:
            details["approval"] = {
                "by": approval.actor,
                "reason": approval.reason,
                "how": approval.how,
            }
        state = self.record(state, "deploy", version, "started", details)
        self._mirror_started("deploy", environment.name, version)
        try:
            failure = self.run_steps(
                environment, version, artifact, holding=holding, inject_fault=True
            )
        except (KeyboardInterrupt, TerminatedError) as exc:
            # The command was ended with us; what runs now is unknown, so the state says so.
            self.record_interruption(state, "deploy", version, exc, previous)
            self._mirror_finished(False, f"deploy {version} interrupted by {interruption(exc)}")
            raise
        except (LockHeldError, lock.LockLostError) as exc:
            reason = f"stopped, no automatic rollback: {exc}"
            self.record(state, "deploy", version, "failed", {"from": previous, "reason": reason})
            self._mirror_finished(False, f"deploy {version} stopped: the lock was lost")
            raise
        if failure is None:
            self.record(state, "deploy", version, "succeeded", {"from": previous})
            self._mirror_finished(True, f"deployed {version}")
            self.out(f"deployed {version} to {environment.name}")
            return Result(action="deploy", env=environment.name, version=version, changed=True)
        state = self.record(
            state, "deploy", version, "failed", {"from": previous, "reason": failure}
        )
        self._mirror_finished(False, f"deploy {version} failed: {failure}")
        head = f"deploy of {version} to {environment.name} failed ({failure})"
        if previous is None:
            msg = f"{head}; nothing to roll back to (no earlier good version there)"
            raise DeployError(msg)
        self.out(f"{head}; rolling back to {previous}")
        rollback_failure = self._rollback_steps(
            environment, state, previous, version, holding=holding, automatic=True
        )
        if rollback_failure is None:
            msg = f"{head}; rolled back to {previous}"
            raise DeployError(msg)
        msg = (
            f"{head}; rolling back to {previous} also failed ({rollback_failure}): "
            f"{environment.name} needs attention, deploy a known-good version"
        )
        raise DeployError(msg)

    def _rollback_steps(
        self,
        environment: Environment,
        state: EnvState,
        target: str,
        current: str | None,
        *,
        holding: Holding,
        automatic: bool,
    ) -> str | None:
        details = {"from": current, "automatic": automatic}
        state = self.record(state, "rollback", target, "started", details)
        self._mirror_started("rollback", environment.name, target)
        try:
            artifact = self.require_artifact(environment, target)
        except PreflightError as exc:
            failure: str | None = str(exc)
        else:
            try:
                failure = self.run_steps(environment, target, artifact, holding=holding)
            except (KeyboardInterrupt, TerminatedError) as exc:
                self.record_interruption(state, "rollback", target, exc, current)
                self._mirror_finished(False, f"rollback interrupted by {interruption(exc)}")
                raise
            except lock.LockLostError as exc:
                reason = f"stopped: {exc}"
                self.record(state, "rollback", target, "failed", {**details, "reason": reason})
                self._mirror_finished(False, "rollback stopped: the lock was lost")
                raise
        if failure is None:
            self.record(state, "rollback", target, "succeeded", details)
            self._mirror_finished(True, f"rolled back to {target}")
            return None
        self.record(state, "rollback", target, "failed", {**details, "reason": failure})
        self._mirror_finished(False, f"rollback to {target} failed: {failure}")
        return failure

    def rollback(
        self, env_name: str, to: str | None = None, *, wait_s: float = 0.0, dry_run: bool = False
    ) -> Result:
        """Go back to the last good version before the current one, or to ``to``."""
        environment = self.environment(env_name)
        wanted = normalize_version(to) if to else None
        # Rolling back to a known-good version needs no approval or ref: only who and secrets.
        facts = Facts(
            environment=_without_refs(environment),
            actor=self.actor(),
            refs=(),
            env=self.env,
            global_secrets=self.config.required_secrets,
        )
        problems = protection_problems(facts)
        if problems:
            raise PreflightError(problems[0])
        if dry_run:
            _, state = self.load(env_name)
            target = rollback_target(state, wanted)
            self.out("rollback plan (dry run: nothing is locked, run or recorded):")
            self.out(f"  environment  {env_name}")
            self.out(f"  from         {state.current_version or 'none'}")
            self.out(f"  to           {target}")
            return Result(
                action="rollback", env=env_name, version=target, changed=False, dry_run=True
            )
        self.reconcile(env_name)
        acquired = self.take_lock(env_name, "rollback", wanted or "", wait_s)
        with self.holding(acquired) as holding:
            _, state = self.load(env_name)
            state = self.record_recoveries(state, acquired)
            target = rollback_target(state, wanted)
            if is_current(state, target):
                self.out(f"{env_name} already runs {target}: nothing to do")
                return Result(action="rollback", env=env_name, version=target, changed=False)
            current = state.current_version
            failure = self._rollback_steps(
                environment, state, target, current, holding=holding, automatic=False
            )
        if failure is not None:
            msg = (
                f"rollback of {env_name} to {target} failed ({failure}): {env_name} is in an "
                "unknown state; deploy a known-good version"
            )
            raise DeployError(msg)
        self.out(f"rolled {env_name} back to {target}")
        return Result(action="rollback", env=env_name, version=target, changed=True)

    def unlock(self, env_name: str, lock_id: str) -> lock.Recovered:
        """Remove ``env_name``'s lock if its id is ``lock_id``, and record it in the ledger."""
        self.environment(env_name)
        entries = self.verified()
        removed = self.backend.unlock(env_name, lock_id)
        before = deploystate.project(entries).get(env_name, deploystate.empty(env_name))
        details: dict[str, Any] = {"holder": removed.holder.to_dict()}
        if removed.ended_group is not None:
            details["ended_group"] = removed.ended_group
        problem = self.backend.state_file_problem(before)
        if problem is not None:
            self.out(f"warning: {problem}")
        self.record(before, "unlock", removed.holder.version, "removed", details)
        return removed

    def show(self, env_name: str) -> dict[str, Any]:
        """``env_name``'s state as the ledger has it, plus the lock (for ``state``)."""
        self.environment(env_name)
        self.reconcile(env_name)
        entries = self.verified()
        state = deploystate.project(entries).get(env_name, deploystate.empty(env_name))
        held: lock.LockInfo | None = None
        try:
            held = self.backend.holder(env_name)
            lock_doc: dict[str, Any] | None = held.to_dict() if held else None
        except CIError as exc:
            lock_doc = {"error": str(exc)}
        file_status = self.backend.state_file_problem(state) or "ok"
        doc = {**deploystate.document(state), "lock": lock_doc, "state_file": file_status}
        unknown = unrecorded(state, entries, held, time.time())
        if unknown is not None:
            doc["status"] = deploystate.STATUS_UNKNOWN
            doc["unknown"] = unknown
        return doc

    def rebuild(self) -> tuple[list[Entry], list[str]]:
        """Recreate every environment's state file from the verified ledger."""
        return self.backend.rebuild()


def rollback_target(state: EnvState, wanted: str | None) -> str:
    """The version a rollback goes to; PreflightError (exit 3) when there is none (pure)."""
    if wanted is not None:
        known = [v for v in state.deployed if same_version(v, wanted)]
        if not known:
            msg = (
                f"{wanted} was never deployed successfully to {state.env}: rollback only goes "
                "to known-good versions; use `python -m ci deploy` for new ones"
            )
            raise PreflightError(msg)
        return known[0]
    target = state.previous_good()
    if target is None:
        msg = (
            f"{state.env} has no good version before "
            f"{state.current_version or 'its current state'}: nothing to roll back to"
        )
        raise PreflightError(msg)
    return target


def unrecorded(
    state: EnvState, entries: list[Entry], held: lock.LockInfo | None, now: float
) -> str | None:
    """Why ``state``'s current version cannot be trusted: an operation with no outcome (pure).

    An operation that started and whose lock is gone or past its lease (plus the grace)
    never recorded how it ended: its command may have changed what runs.
    """
    started = state.in_progress
    if started is None:
        return None
    entry = next((e for e in entries if e.seq == started.get("seq")), None)
    lock_id = entry.details.get("lock") if entry is not None else None
    live = (
        held is not None
        and (lock_id is None or held.id == lock_id)
        and (held.takeover_at is None or now < held.takeover_at)
    )
    if live:
        return None
    return (
        f"{started.get('action')} {started.get('version')} started at {started.get('time')} "
        f"by {started.get('actor')} and its outcome was never recorded: what runs in "
        f"{state.env} is unknown (the machine that ran it records a journaled outcome with "
        "its next command; else deploy a known-good version)"
    )


def _entry_fields(new: NewEntry) -> dict[str, Any]:
    return {
        "time": new.time,
        "actor": new.actor,
        "action": new.action,
        "env": new.env,
        "version": new.version,
        "outcome": new.outcome,
        "details": dict(new.details or {}),
    }


def _without_refs(environment: Environment) -> Environment:
    return Environment(
        name=environment.name,
        allowed_actors=environment.allowed_actors,
        required_secrets=environment.required_secrets,
    )
