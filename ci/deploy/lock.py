"""The deployment lock: one O_EXCL lock file per environment, with its holder inside.

Creating, reading, recovering and removing a lock all happen under a short ``flock`` on a
guard file beside it, so a reader never sees a half-written lock and two processes never
recover the same dead holder twice. The lock file itself is what excludes other hosts
sharing the state folder: a lock from another host is never broken automatically.

The lock covers the whole deploy: the holder runs each command in its own process group
and writes the group into the lock before the command starts. A holder that died is
recovered only once that group is gone too, or once the group has outrun its deadline
(the environment's ``timeout_s``), when the recovery ends it and says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import getpass
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ci.core.errors import LockHeldError, UsageError
from ci.core.files import atomic_write_text
from ci.core.runner import end_group, group_alive

SCHEMA = 1
MAX_BACKOFF_S = 1.0


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
    pgid: int | None = None  # the process group of the command the holder runs now
    deadline: float | None = None  # epoch seconds by which that command must have ended

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
            "pid": self.pid,
            "start_time": self.start_time,
            "operation": self.operation,
            "version": self.version,
            "created": self.created,
            "pgid": self.pgid,
            "deadline": self.deadline,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockInfo:
        """Rebuild a LockInfo from ``to_dict`` output (KeyError/TypeError when malformed)."""
        start, pgid, deadline = data["start_time"], data.get("pgid"), data.get("deadline")
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
            pgid=None if pgid is None else int(pgid),
            deadline=None if deadline is None else float(deadline),
        )

    def describe(self) -> str:
        """One line naming the holder: who, what, since when, and the lock id."""
        return (
            f"{self.who} (pid {self.pid}) is running {self.operation} {self.version} "
            f"since {self.created}, lock id {self.id}"
        )


class Holder(enum.StrEnum):
    """What became of a lock's holder, as far as this host can tell."""

    RUNNING = "running"  # alive, or on another host (never judged from here)
    ORPHANED = "orphaned"  # gone, but its command's process group still runs
    OVERDUE = "overdue"  # gone, and its command has outrun its deadline: end it
    GONE = "gone"  # gone, and nothing of its command runs


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """A dead holder's lock taken over, and the process group ended with it (if any)."""

    holder: LockInfo
    ended_group: int | None = None

    def details(self) -> dict[str, Any]:
        """The ledger details of the recovery."""
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
    path: Path
    recovered: tuple[Recovered, ...] = ()


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
    if not holder_dead(info, host):
        return Holder.RUNNING
    if info.pgid is None or not group_alive(info.pgid):
        return Holder.GONE
    if info.deadline is not None and now >= info.deadline:
        return Holder.OVERDUE
    return Holder.ORPHANED


def held_message(holder: LockInfo, verdict: Holder, *, waited: str = "") -> str:
    """The exit-4 line naming the holder and what to do."""
    hint = (
        f"wait for it (--wait SECONDS) or, if it is stuck, "
        f"`python -m ci unlock --env {holder.env} --lock-id {holder.id}`"
    )
    if verdict is Holder.ORPHANED:
        until = dt.datetime.fromtimestamp(holder.deadline or 0, dt.UTC)
        return (
            f"environment {holder.env} is locked{waited}: the holder {holder.who} (pid "
            f"{holder.pid}) is gone but its {holder.operation} {holder.version} command still "
            f"runs (process group {holder.pgid}, allowed until "
            f"{until.isoformat(timespec='seconds').replace('+00:00', 'Z')}), lock id "
            f"{holder.id}; {hint} (unlock ends the command)"
        )
    return f"environment {holder.env} is locked{waited}: {holder.describe()}; {hint}"


def lock_path(state: Path, env: str) -> Path:
    """Where the lock of environment ``env`` lives."""
    return state / "locks" / f"{env}.lock"


def read(path: Path) -> LockInfo | None:
    """The lock at ``path`` (None when there is none); LockHeldError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")  # garbage: unreadable below
    except FileNotFoundError:
        return None
    try:
        return LockInfo.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        msg = (
            f"lock file {path} is unreadable; if no deploy is running on any host, "
            "delete it by hand"
        )
        raise LockHeldError(msg) from None


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".guard"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create(path: Path, info: LockInfo) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(info.to_dict(), indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def new_info(*, env: str, operation: str, version: str, created: str) -> LockInfo:
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
    holder: LockInfo | None = None
    verdict: Holder = Holder.RUNNING
    recovered: Recovered | None = None


def try_acquire(path: Path, info: LockInfo, *, now: float | None = None) -> Attempt:
    """One attempt at the lock at ``path``; recovers a dead holder whose command is gone."""
    with _guard(path):
        if _create(path, info):
            return Attempt(got=True)
        holder = read(path)
        if holder is None:  # released between our create and read
            return Attempt(got=_create(path, info))
        verdict = judge(holder, info.host, time.time() if now is None else now)
        if verdict in {Holder.RUNNING, Holder.ORPHANED}:
            return Attempt(got=False, holder=holder, verdict=verdict)
        ended = None
        if verdict is Holder.OVERDUE:
            assert holder.pgid is not None
            if not end_group(holder.pgid):
                return Attempt(got=False, holder=holder, verdict=Holder.ORPHANED)
            ended = holder.pgid
        path.unlink()
        got = _create(path, info)
        return Attempt(got=got, recovered=Recovered(holder=holder, ended_group=ended))


def acquire(
    path: Path,
    info: LockInfo,
    *,
    wait_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Acquired:
    """Take the lock, waiting up to ``wait_s`` with backoff; LockHeldError (exit 4) otherwise."""
    deadline = monotonic() + max(wait_s, 0.0)
    delay = 0.05
    recovered: list[Recovered] = []
    while True:
        attempt = try_acquire(path, info)
        if attempt.recovered is not None:
            recovered.append(attempt.recovered)
        if attempt.got:
            return Acquired(lock=info, path=path, recovered=tuple(recovered))
        left = deadline - monotonic()
        if attempt.holder is not None and left <= 0:
            waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
            raise LockHeldError(held_message(attempt.holder, attempt.verdict, waited=waited))
        # Jittered exponential backoff so waiters do not retry in lockstep.
        sleep(max(0.0, min(left, delay * (0.5 + random.random()))))  # noqa: S311 - jitter
        delay = min(delay * 2, MAX_BACKOFF_S)


def set_group(acquired: Acquired, pgid: int, deadline: float) -> None:
    """Write the process group of the command about to run (and its deadline) into our lock."""
    with _guard(acquired.path):
        holder = read(acquired.path)
        if holder is None or holder.id != acquired.lock.id:
            msg = (
                f"the lock of {acquired.lock.env} is no longer ours (removed with `unlock`?): "
                "not starting the next command"
            )
            raise LockHeldError(msg)
        updated = replace(holder, pgid=pgid, deadline=deadline)
        atomic_write_text(acquired.path, json.dumps(updated.to_dict(), indent=2) + "\n")


def release(acquired: Acquired) -> None:
    """Remove our lock (only if the file still holds our id)."""
    with _guard(acquired.path):
        try:
            holder = read(acquired.path)
        except LockHeldError:
            return
        if holder is not None and holder.id == acquired.lock.id:
            acquired.path.unlink()


def unlock(path: Path, lock_id: str) -> Recovered:
    """Remove the lock at ``path`` only if its id is ``lock_id``; ends an orphaned command."""
    with _guard(path):
        holder = read(path)
        if holder is None:
            msg = f"no lock at {path}: nothing to unlock"
            raise UsageError(msg)
        if holder.id != lock_id:
            msg = (
                f"the lock at {path} has id {holder.id}, not {lock_id}: "
                "pass the exact id shown by `python -m ci state --env NAME`"
            )
            raise UsageError(msg)
        host = socket.gethostname()
        if holder.host == host and not holder_dead(holder, host):
            msg = (
                f"the holder of {holder.env}'s lock is running on this host (pid {holder.pid}): "
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
        path.unlink()
        return Recovered(holder=holder, ended_group=ended)
