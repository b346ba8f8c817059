"""Where deploy state lives: the ``Store`` interface, and the local folder that implements it.

A store holds a few small files (``ledger.jsonl``, ``state/<env>.json``, ``locks/<env>.lock``,
``logs/<name>.jsonl``) and offers two things: a consistent view of them to read, and an
atomic update (a change function applied to the files, all of it or none of it lands).
The local folder applies the change in place under a lock on the folder; the git remote
(``ci.deploy.gitstore``) applies it to a fresh copy of its ref and pushes it with a
compare-and-swap, redoing the change when another writer won. Everything above the store
(the ledger, locks, state files, logs) is written once, against this interface.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

GUARD = ".guard"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change(Generic[T_co]):
    """What a change function did: its result, and whether it wrote anything."""

    result: T_co
    changed: bool
    message: str = ""  # one line saying what changed (the commit message on a git remote)


class Store(Protocol):
    """The files of the deploy state, read in a consistent view and updated atomically."""

    @property
    def label(self) -> str:
        """Where the state lives, for messages (a folder, or a remote and its ref)."""
        ...

    @property
    def lease_s(self) -> float | None:
        """How long a lock lasts unless renewed; None: until its holder is provably gone."""
        ...

    def shown(self, relative: str) -> str:
        """How to name the file ``relative`` of the store in a message."""
        ...

    def view(self) -> contextlib.AbstractContextManager[Path]:
        """A folder holding the current files, to read only."""
        ...

    def update(self, change: Callable[[Path], Change[T]]) -> T:
        """Apply ``change`` to the files atomically and return its result."""
        ...


@dataclass(frozen=True, slots=True)
class LocalStore:
    """The state folder on this machine (``CI_STATE_DIR``, default ``.ci-state/``)."""

    root: Path

    @property
    def label(self) -> str:
        """The folder."""
        return f"state folder {self.root}"

    @property
    def lease_s(self) -> float | None:
        """Locks here last until their holder is provably gone (pid and process group)."""
        return None

    def shown(self, relative: str) -> str:
        """The file's path."""
        return str(self.root / relative)

    @contextlib.contextmanager
    def view(self) -> Iterator[Path]:
        """The folder itself (each file in it is replaced atomically or appended whole)."""
        yield self.root

    def update(self, change: Callable[[Path], Change[T]]) -> T:
        """Run ``change`` on the folder while holding its lock (one writer at a time)."""
        with _folder_lock(self.root):
            return change(self.root).result


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / GUARD, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # also drops the flock
