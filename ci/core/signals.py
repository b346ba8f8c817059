"""SIGTERM as an exception, and a way to hold SIGINT/SIGTERM off while cleaning up.

A terminated command must unwind like an interrupted one: end its child processes, write
what it has to write (the ledger's ``interrupted`` entry), release its locks, exit 143.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from ci.core.errors import TerminatedError

HELD_OFF = frozenset({signal.SIGINT, signal.SIGTERM})


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise TerminatedError


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block SIGTERM raises TerminatedError in the main thread (a no-op elsewhere).

    SIGINT and SIGTERM are unblocked first: a process inherits its parent's blocked signals,
    and a command started with them blocked could never be interrupted (its deploy command
    would run on, unrecorded). A SIGINT its parent set to be ignored stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_OFF)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def held_off() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM wait; they arrive (and raise) when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_OFF)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
