"""The deployment lock: one O_EXCL lock file per environment, with its holder inside.

Creating, reading, recovering and removing a lock all happen under a short ``flock`` on a
guard file beside it, so a reader never sees a half-written lock and two processes never
recover the same dead holder twice. The lock file itself is what excludes other hosts
sharing the state folder: a lock from another host is never broken automatically.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.core.errors import LockHeldError, UsageError

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockInfo:
        """Rebuild a LockInfo from ``to_dict`` output (KeyError/TypeError when malformed)."""
        start = data["start_time"]
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
        )

    def describe(self) -> str:
        """One line naming the holder: who, what, since when, and the lock id."""
        return (
            f"{self.who} (pid {self.pid}) is running {self.operation} {self.version} "
            f"since {self.created}, lock id {self.id}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquired:
    """A lock this process now holds, and the dead holders it recovered on the way."""

    lock: LockInfo
    path: Path
    recovered: tuple[LockInfo, ...] = ()


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


def try_acquire(path: Path, info: LockInfo) -> tuple[bool, LockInfo | None, LockInfo | None]:
    """One attempt: (got it, the live holder if not, the dead holder recovered if any)."""
    with _guard(path):
        if _create(path, info):
            return True, None, None
        holder = read(path)
        if holder is None:  # released between our create and read
            return _create(path, info), None, None
        if not holder_dead(holder, info.host):
            return False, holder, None
        path.unlink()
        return _create(path, info), None, holder


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
    recovered: list[LockInfo] = []
    while True:
        got, holder, dead = try_acquire(path, info)
        if dead is not None:
            recovered.append(dead)
        if got:
            return Acquired(lock=info, path=path, recovered=tuple(recovered))
        assert holder is not None
        left = deadline - monotonic()
        if left <= 0:
            waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
            hint = (
                f"wait for it (--wait SECONDS) or, if it is stuck, "
                f"`python -m ci unlock --env {info.env} --lock-id {holder.id}`"
            )
            msg = f"environment {info.env} is locked{waited}: {holder.describe()}; {hint}"
            raise LockHeldError(msg)
        # Jittered exponential backoff so waiters do not retry in lockstep.
        sleep(min(left, delay * (0.5 + random.random())))  # noqa: S311 - jitter, not crypto
        delay = min(delay * 2, MAX_BACKOFF_S)


def release(acquired: Acquired) -> None:
    """Remove our lock (only if the file still holds our id)."""
    with _guard(acquired.path):
        try:
            holder = read(acquired.path)
        except LockHeldError:
            return
        if holder is not None and holder.id == acquired.lock.id:
            acquired.path.unlink()


def unlock(path: Path, lock_id: str) -> LockInfo:
    """Remove the lock at ``path`` only if its id is ``lock_id``; returns what was removed."""
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
        path.unlink()
        return holder
