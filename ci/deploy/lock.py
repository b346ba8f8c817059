"""The deployment lock: one lock file per environment in the state store, its holder inside.

Taking, renewing, recovering and removing a lock are atomic updates of the store (a folder
lock on this machine, a compare-and-swap push on a git remote), so two processes never
both take a lock and never recover the same dead holder twice.

The lock covers the whole deploy: the holder runs each command in its own process group
and writes the group into the lock before the command starts. On this host a holder that
died is recovered only once that group is gone too, or once the group has outrun its
deadline (the environment's ``timeout_s``), when the recovery ends it and says so. A
holder on another host is never judged by its processes: in a local folder its lock is
never broken automatically (use ``unlock``); on a git remote the lock is a lease the holder
renews while it runs, and it may be taken over once it has expired and a grace
(``TAKEOVER_GRACE_S``) has passed: meanwhile the holder's watchdog (``ci.core.watchdog``,
a process apart from the holder) has ended the command of a lease that ran out unrenewed.

Every take is a new epoch of the environment (``locks/<env>.epoch`` counts them; ``unlock``
counts one too): a fencing token handed to the deploy command as ``CI_DEPLOY_FENCE``, and
checked by the state backend, which refuses the writes of an older epoch.
"""

from __future__ import annotations

import datetime as dt
import enum
import getpass
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci.core.errors import DeployError, LockHeldError, UsageError
from ci.core.files import atomic_write_text
from ci.core.runner import WATCHDOG_KILL_S, end_group, group_alive
from ci.deploy.store import Change, Store

SCHEMA = 1
MAX_BACKOFF_S = 1.0
# After a lease's expiry, how long a takeover waits: the holder's watchdog sends SIGTERM at
# the expiry and SIGKILL WATCHDOG_KILL_S later, so the old command has ended by then.
TAKEOVER_GRACE_S = WATCHDOG_KILL_S + 3.0  # 5 s: the SIGKILL and a margin for clock skew
Clock = Callable[[], float]  # epoch seconds


class LockLostError(DeployError):
    """The lock this process held was taken over or removed while it worked (exit 5)."""


class FencedError(DeployError):
    """A write of a lease holder whose epoch is no longer the environment's (exit 5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """The epoch a writer holds an environment's lock at (a fencing token), and its lock."""

    env: str
    epoch: int
    lock_id: str
    who: str = ""


def epoch_file(env: str) -> str:
    """Where the last epoch of ``env``'s lock is counted, relative to the store."""
    return f"locks/{env}.epoch"


def read_epoch(folder: Path, env: str) -> int:
    """The last epoch of ``env``'s lock in ``folder`` (0: never taken, or unreadable)."""
    try:
        return int((folder / epoch_file(env)).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return 0


def next_epoch(folder: Path, env: str) -> int:
    """Count a new epoch of ``env``'s lock in ``folder`` and return it."""
    epoch = read_epoch(folder, env) + 1
    atomic_write_text(folder / epoch_file(env), f"{epoch}\n")
    return epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    """Who holds an environment's lock, and for what."""

    id: str
    env: str
    user: str
    host: str
    pid: int
    start_time: int | None
    operation: str
    version: str
    created: str
    where: str = ""  # the workflow run's URL, when there is one
    pgid: int | None = None  # the process group of the command the holder runs now
    deadline: float | None = None  # epoch seconds by which that command must have ended
    expires: float | None = None  # epoch seconds: a lease the holder renews (git remote)
    epoch: int | None = None  # the fencing token of this take (None: an older lock file)

    @property
    def who(self) -> str:
        """``user@host``."""
        return f"{self.user}@{self.host}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``who`` for readers)."""
        return {
            "schema": SCHEMA,
            "id": self.id,
            "env": self.env,
            "who": self.who,
            "user": self.user,
            "host": self.host,
            "where": self.where,
            "pid": self.pid,
            "start_time": self.start_time,
            "operation": self.operation,
            "version": self.version,
            "created": self.created,
            "pgid": self.pgid,
            "deadline": self.deadline,
            "expires": self.expires,
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockInfo:
        """Rebuild a LockInfo from ``to_dict`` output (KeyError/TypeError when malformed)."""
        start, pgid = data["start_time"], data.get("pgid")
        deadline, expires = data.get("deadline"), data.get("expires")
        epoch = data.get("epoch")
        return cls(
            id=str(data["id"]),
            env=str(data["env"]),
            user=str(data["user"]),
            host=str(data["host"]),
            pid=int(data["pid"]),
            start_time=None if start is None else int(start),
            operation=str(data["operation"]),
            version=str(data["version"]),
            created=str(data["created"]),
            where=str(data.get("where") or ""),
            pgid=None if pgid is None else int(pgid),
            deadline=None if deadline is None else float(deadline),
            expires=None if expires is None else float(expires),
            epoch=None if epoch is None else int(epoch),
        )

    @property
    def fence(self) -> Fence | None:
        """The fencing token of this lock (None for a lock file from before epochs)."""
        if self.epoch is None:
            return None
        return Fence(env=self.env, epoch=self.epoch, lock_id=self.id, who=self.who)

    @property
    def takeover_at(self) -> float | None:
        """When a lease may be taken over: its expiry plus the grace (None: no lease)."""
        return None if self.expires is None else self.expires + TAKEOVER_GRACE_S

    def describe(self) -> str:
        """One line naming the holder: who, what, since when, and the lock id."""
        where = f", {self.where}" if self.where else ""
        return (
            f"{self.who} (pid {self.pid}{where}) is running {self.operation} {self.version} "
            f"since {self.created}, lock id {self.id}"
        )


class Holder(enum.StrEnum):
    """What became of a lock's holder, as far as this host can tell."""

    RUNNING = "running"  # alive, or on another host with a lease still running
    LEASED = "leased"  # gone, but its lease has not expired yet
    ORPHANED = "orphaned"  # gone, but its command's process group still runs
    OVERDUE = "overdue"  # gone, and its command has outrun its deadline: end it
    GONE = "gone"  # gone, and nothing of its command runs
    EXPIRED = "expired"  # on another host, and its lease has run out unrenewed

    @property
    def recoverable(self) -> bool:
        """True when the lock may be taken over (after ending an overdue command)."""
        return self in {Holder.OVERDUE, Holder.GONE, Holder.EXPIRED}


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """A dead holder's lock taken over, and the process group ended with it (if any)."""

    holder: LockInfo
    verdict: Holder = Holder.GONE
    ended_group: int | None = None

    def details(self) -> dict[str, Any]:
        """The ledger details of the recovery."""
        if self.verdict is Holder.EXPIRED:
            reason = f"its lease expired at {stamp(self.holder.expires)} without renewal"
        else:
            reason = "holder process is gone"
        if self.ended_group is not None:
            reason += (
                f"; its command (process group {self.ended_group}) outran its deadline "
                "and was ended"
            )
        return {"holder": self.holder.to_dict(), "reason": reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquired:
    """A lock this process now holds, and the dead holders it recovered on the way."""

    lock: LockInfo
    recovered: tuple[Recovered, ...] = ()
    tries: int = 1  # more than one: the lock was held by someone else and we waited for it


LOCKS_LOG = "locks"  # the run-history log of lock contention


@dataclass(frozen=True, slots=True, kw_only=True)
class LockWait:
    """A deploy or rollback that found its environment's lock held by someone else."""

    time: str
    actor: str
    env: str
    operation: str
    outcome: str  # "refused" (exit 4) or "waited" (it got the lock after waiting)
    waited_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The record's JSON form (the log adds ``schema``)."""
        return {
            "kind": "lock",
            "time": self.time,
            "actor": self.actor,
            "env": self.env,
            "operation": self.operation,
            "outcome": self.outcome,
            "waited_s": round(self.waited_s, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockWait:
        """Rebuild a record from ``to_dict`` output (KeyError, TypeError or ValueError if bad)."""
        return cls(
            time=str(data["time"]),
            actor=str(data.get("actor") or ""),
            env=str(data["env"]),
            operation=str(data["operation"]),
            outcome=str(data["outcome"]),
            waited_s=float(data.get("waited_s", 0.0)),
        )


def stamp(epoch: float | None) -> str:
    """``epoch`` as an ISO time in UTC (``-`` for None)."""
    if epoch is None:
        return "-"
    when = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
    return when.replace("+00:00", "Z")


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 overall; fields here start at field 3
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists (even one we may not signal)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_dead(info: LockInfo, host: str) -> bool:
    """True only when ``info``'s holder is provably gone: same host, and pid gone or reused."""
    if info.host != host:
        return False
    if not pid_alive(info.pid):
        return True
    if info.start_time is None:
        return False
    current = process_start_time(info.pid)
    return current is not None and current != info.start_time


def judge(info: LockInfo, host: str, now: float) -> Holder:
    """What became of ``info``'s holder and of the command it ran (``now``: epoch seconds)."""
    # A lease counts until its expiry plus the grace in which the watchdog ends its command.
    leased = info.takeover_at is not None and now < info.takeover_at
    if info.host != host:
        return Holder.EXPIRED if info.takeover_at is not None and not leased else Holder.RUNNING
    if not holder_dead(info, host):
        return Holder.RUNNING
    if info.pgid is not None and group_alive(info.pgid):
        overdue = info.deadline is not None and now >= info.deadline
        return Holder.OVERDUE if overdue else Holder.ORPHANED
    return Holder.LEASED if leased else Holder.GONE


def held_message(holder: LockInfo, verdict: Holder, *, waited: str = "") -> str:
    """The exit-4 line naming the holder and what to do."""
    hint = (
        f"wait for it (--wait SECONDS) or, if it is stuck, "
        f"`python -m ci unlock --env {holder.env} --lock-id {holder.id}`"
    )
    head = f"environment {holder.env} is locked{waited}"
    if verdict is Holder.ORPHANED:
        return (
            f"{head}: the holder {holder.who} (pid {holder.pid}) is gone but its "
            f"{holder.operation} {holder.version} command still runs (process group "
            f"{holder.pgid}, allowed until {stamp(holder.deadline)}), lock id {holder.id}; "
            f"{hint} (unlock ends the command)"
        )
    if verdict is Holder.LEASED:
        return (
            f"{head}: the holder {holder.who} (pid {holder.pid}) is gone but its lease runs "
            f"until {stamp(holder.expires)} (taken over from {stamp(holder.takeover_at)}), "
            f"lock id {holder.id}; {hint}"
        )
    lease = (
        f" (lease until {stamp(holder.expires)}, taken over from {stamp(holder.takeover_at)})"
        if holder.expires is not None
        else ""
    )
    return f"{head}: {holder.describe()}{lease}; {hint}"


def lock_file(env: str) -> str:
    """Where the lock of environment ``env`` lives, relative to the store."""
    return f"locks/{env}.lock"


def lock_path(folder: Path, env: str) -> Path:
    """The lock file of ``env`` in the state folder ``folder``."""
    return folder / lock_file(env)


def read(folder: Path, env: str, shown: str | None = None) -> LockInfo | None:
    """The lock of ``env`` in ``folder`` (None when free); LockHeldError when unreadable."""
    path = folder / lock_file(env)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")  # garbage: unreadable below
    except FileNotFoundError:
        return None
    try:
        return LockInfo.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError):
        msg = (
            f"lock file {shown or path} is unreadable; if no deploy is running on any host, "
            "delete it by hand"
        )
        raise LockHeldError(msg) from None


def write(folder: Path, info: LockInfo) -> None:
    """Write ``info`` as the lock of its environment (atomically)."""
    atomic_write_text(folder / lock_file(info.env), json.dumps(info.to_dict(), indent=2) + "\n")


def new_info(*, env: str, operation: str, version: str, created: str, where: str = "") -> LockInfo:
    """A LockInfo for this process."""
    pid = os.getpid()
    return LockInfo(
        id=str(uuid.uuid4()),
        env=env,
        user=login_name(),
        host=socket.gethostname(),
        pid=pid,
        start_time=process_start_time(pid),
        operation=operation,
        version=version,
        created=created,
        where=where,
    )


def login_name() -> str:
    """The login name of this process's user (``uid<N>`` when it has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One try at the lock: taken (with what was recovered), or the holder that keeps it."""

    got: bool
    lock: LockInfo | None = None  # the lock written, when taken (with its expiry and epoch)
    holder: LockInfo | None = None
    verdict: Holder = Holder.RUNNING
    recovered: Recovered | None = None


def take(
    folder: Path, info: LockInfo, *, now: float, lease_s: float | None, shown: str
) -> Change[Attempt]:
    """The change that takes ``info``'s lock in ``folder`` if it is free or recoverable."""
    expires = None if lease_s is None else now + lease_s
    holder = read(folder, info.env, shown)
    if holder is None:
        mine = replace(info, expires=expires, epoch=next_epoch(folder, info.env))
        write(folder, mine)
        return Change(result=Attempt(got=True, lock=mine), changed=True, message=_msg("take", mine))
    verdict = judge(holder, info.host, now)
    if not verdict.recoverable:
        return Change(result=Attempt(got=False, holder=holder, verdict=verdict), changed=False)
    ended = None
    if verdict is Holder.OVERDUE:
        assert holder.pgid is not None
        if not end_group(holder.pgid):
            result = Attempt(got=False, holder=holder, verdict=Holder.ORPHANED)
            return Change(result=result, changed=False)
        ended = holder.pgid
    mine = replace(info, expires=expires, epoch=next_epoch(folder, info.env))
    write(folder, mine)
    recovered = Recovered(holder=holder, verdict=verdict, ended_group=ended)
    result = Attempt(got=True, lock=mine, recovered=recovered)
    return Change(result=result, changed=True, message=_msg("take over", mine))


def acquire(
    store: Store,
    info: LockInfo,
    *,
    wait_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    now: Clock = time.time,
    on_wait: Callable[[LockInfo], None] | None = None,
) -> Acquired:
    """Take the lock, waiting up to ``wait_s`` with backoff; LockHeldError (exit 4) otherwise.

    ``on_wait(holder)`` is told once, when the lock is found held and the wait begins.
    """
    deadline = monotonic() + max(wait_s, 0.0)
    delay = 0.05
    recovered: list[Recovered] = []
    shown = store.shown(lock_file(info.env))
    tries = 0
    while True:
        tries += 1
        attempt = store.update(
            lambda folder: take(folder, info, now=now(), lease_s=store.lease_s, shown=shown)
        )
        if attempt.recovered is not None:
            recovered.append(attempt.recovered)
        if attempt.got:
            taken = attempt.lock or info
            return Acquired(lock=taken, recovered=tuple(recovered), tries=tries)
        left = deadline - monotonic()
        if attempt.holder is not None and left <= 0:
            waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
            raise LockHeldError(held_message(attempt.holder, attempt.verdict, waited=waited))
        if attempt.holder is not None and on_wait is not None:
            on_wait(attempt.holder)
            on_wait = None
        # Jittered exponential backoff so waiters do not retry in lockstep.
        sleep(max(0.0, min(left, delay * (0.5 + random.random()))))  # noqa: S311 - jitter
        delay = min(delay * 2, MAX_BACKOFF_S)


def _ours(folder: Path, acquired: Acquired, shown: str, doing: str) -> LockInfo:
    holder = read(folder, acquired.lock.env, shown)
    if holder is None or holder.id != acquired.lock.id:
        taken = f" (now held by {holder.who}, lock id {holder.id})" if holder else ""
        msg = (
            f"the lock of {acquired.lock.env} is no longer ours{taken}: taken over after its "
            f"lease expired, or removed with `unlock`; {doing}"
        )
        raise LockLostError(msg)
    return holder


def set_group(store: Store, acquired: Acquired, pgid: int, deadline: float) -> None:
    """Write the process group of the command about to run (and its deadline) into our lock."""
    shown = store.shown(lock_file(acquired.lock.env))

    def change(folder: Path) -> Change[None]:
        holder = _ours(folder, acquired, shown, "not starting the next command")
        updated = replace(holder, pgid=pgid, deadline=deadline)
        write(folder, updated)
        return Change(result=None, changed=True, message=_msg("run a command", updated))

    store.update(change)


def renew(store: Store, acquired: Acquired, expires: float) -> None:
    """Move our lease's expiry to ``expires``; LockLostError when the lock is not ours."""
    shown = store.shown(lock_file(acquired.lock.env))

    def change(folder: Path) -> Change[None]:
        holder = _ours(folder, acquired, shown, "its command is being stopped")
        updated = replace(holder, expires=expires)
        write(folder, updated)
        return Change(result=None, changed=True, message=_msg("renew", updated))

    store.update(change)


def release(store: Store, acquired: Acquired) -> None:
    """Remove our lock (only if it still holds our id)."""
    shown = store.shown(lock_file(acquired.lock.env))

    def change(folder: Path) -> Change[None]:
        try:
            holder = read(folder, acquired.lock.env, shown)
        except LockHeldError:
            return Change(result=None, changed=False)
        if holder is None or holder.id != acquired.lock.id:
            return Change(result=None, changed=False)
        (folder / lock_file(holder.env)).unlink()
        return Change(result=None, changed=True, message=_msg("release", holder))

    store.update(change)


def release_id(store: Store, env: str, lock_id: str) -> bool:
    """Remove ``env``'s lock if it still holds ``lock_id``; True when it did."""
    shown = store.shown(lock_file(env))

    def change(folder: Path) -> Change[bool]:
        try:
            holder = read(folder, env, shown)
        except LockHeldError:
            return Change(result=False, changed=False)
        if holder is None or holder.id != lock_id:
            return Change(result=False, changed=False)
        (folder / lock_file(env)).unlink()
        return Change(result=True, changed=True, message=_msg("release", holder))

    return store.update(change)


def holder_of(store: Store, env: str) -> LockInfo | None:
    """Who holds ``env``'s lock now (None when free); LockHeldError when unreadable."""
    with store.view() as folder:
        return read(folder, env, store.shown(lock_file(env)))


def unlock(store: Store, env: str, lock_id: str) -> Recovered:
    """Remove ``env``'s lock only if its id is ``lock_id``; ends a dead holder's command."""
    shown = store.shown(lock_file(env))

    def change(folder: Path) -> Change[Recovered]:
        holder = read(folder, env, shown)
        if holder is None:
            msg = f"no lock at {shown}: nothing to unlock"
            raise UsageError(msg)
        if holder.id != lock_id:
            msg = (
                f"the lock at {shown} has id {holder.id}, not {lock_id}: "
                "pass the exact id shown by `python -m ci state --env NAME`"
            )
            raise UsageError(msg)
        host = socket.gethostname()
        if holder.host == host and not holder_dead(holder, host):
            msg = (
                f"the holder of {env}'s lock is running on this host (pid {holder.pid}): "
                f"stop it instead (`kill {holder.pid}` records an interrupted entry and frees "
                "the lock)"
            )
            raise UsageError(msg)
        ended = None
        if holder.host == host and holder.pgid is not None and group_alive(holder.pgid):
            if not end_group(holder.pgid):
                msg = (
                    f"the command of the dead holder (process group {holder.pgid}) did not end "
                    "after SIGKILL: check it (ps -g) and retry"
                )
                raise LockHeldError(msg)
            ended = holder.pgid
        (folder / lock_file(env)).unlink()
        next_epoch(folder, env)  # the removed holder is fenced off: its writes are refused
        removed = Recovered(holder=holder, ended_group=ended)
        return Change(result=removed, changed=True, message=_msg("unlock", holder))

    return store.update(change)


def _msg(what: str, info: LockInfo) -> str:
    return f"lock {info.env}: {what} ({info.operation} {info.version}, {info.who}, {info.id})"
